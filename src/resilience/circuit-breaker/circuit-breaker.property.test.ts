import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CircuitOpenError } from '../errors.js';
import { CircuitBreaker } from './circuit-breaker.js';
import type { BreakerPermit, CircuitBreakerConfig, CircuitState } from './types.js';

/**
 * Model-based check of consecutive mode: random command sequences run against the real breaker and
 * against the plain reference model below, compared after every command.
 */

type Outcome = 'success' | 'failure' | 'non_retryable' | 'aborted' | 'release';

type Command =
  | { kind: 'call'; outcome: Outcome }
  | { kind: 'hold' }
  | { kind: 'settle'; index: number; outcome: Outcome }
  | { kind: 'advance'; ms: number }
  | { kind: 'reset' }
  | { kind: 'stats' };

/** The rules, written as plainly as possible. */
class Model {
  state: CircuitState = 'closed';
  generation = 0;
  failures = 0;
  successes = 0;
  inFlight = 0;
  openUntil = 0;
  transitions: string[] = [];

  constructor(private readonly config: CircuitBreakerConfig) {}

  /** The generation of the admitted call, or the retry-after of the rejection. */
  acquire(now: number): { admitted: true; generation: number } | { admitted: false; retryAfterMs: number } {
    if (this.state === 'open') {
      if (now < this.openUntil) return { admitted: false, retryAfterMs: this.openUntil - now };
      this.moveTo('half_open', now, 'timeout_elapsed');
    }
    if (this.state === 'half_open') {
      if (this.inFlight >= this.config.halfOpenMaxCalls) return { admitted: false, retryAfterMs: 0 };
      this.inFlight++;
    }
    return { admitted: true, generation: this.generation };
  }

  settle(generation: number, outcome: Outcome, now: number): void {
    if (generation !== this.generation) return;
    // Upstream answered (non-retryable) counts as success; an abort is a release.
    const kind = outcome === 'non_retryable' ? 'success' : outcome === 'aborted' ? 'release' : outcome;
    if (this.state === 'half_open') {
      this.inFlight--;
      if (kind === 'failure') {
        this.failures++;
        this.moveTo('open', now, 'probe_failed');
      } else if (kind === 'success') {
        this.successes++;
        if (this.successes >= this.config.successThreshold) this.moveTo('closed', now, 'probes_succeeded');
      }
      return;
    }
    if (kind === 'success') {
      this.failures = 0;
      this.successes++;
    } else if (kind === 'failure') {
      this.successes = 0;
      this.failures++;
      if (this.failures >= this.config.failureThreshold) this.moveTo('open', now, 'threshold');
    }
  }

  reset(now: number): void {
    if (this.state !== 'closed') {
      this.moveTo('closed', now, 'manual_reset');
    } else {
      this.generation++;
      this.failures = 0;
      this.successes = 0;
    }
  }

  private moveTo(state: CircuitState, now: number, reason: string): void {
    this.transitions.push(`${this.state}->${state}:${reason}:${this.failures}`);
    this.state = state;
    this.generation++;
    this.failures = 0;
    this.successes = 0;
    this.inFlight = 0;
    if (state === 'open') this.openUntil = now + this.config.timeoutSeconds * 1000;
  }
}

const errorFor: Record<Outcome, unknown> = {
  success: undefined,
  release: undefined,
  failure: new Error('upstream failed'),
  non_retryable: Object.assign(new Error('bad request'), { failureClass: 'non_retryable' }),
  aborted: Object.assign(new Error('client went away'), { name: 'AbortError' }),
};

function report(permit: BreakerPermit, outcome: Outcome): void {
  if (outcome === 'success') permit.success();
  else if (outcome === 'release') permit.release();
  else permit.failure(errorFor[outcome]);
}

const configArb = fc.record({
  failureThreshold: fc.integer({ min: 1, max: 4 }),
  successThreshold: fc.integer({ min: 1, max: 3 }),
  halfOpenMaxCalls: fc.integer({ min: 1, max: 3 }),
  timeoutSeconds: fc.integer({ min: 0, max: 3 }),
});

const outcomeArb = fc.constantFrom<Outcome>('success', 'failure', 'failure', 'non_retryable', 'aborted', 'release');

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 5, arbitrary: outcomeArb.map((outcome) => ({ kind: 'call' as const, outcome })) },
  { weight: 2, arbitrary: fc.constant({ kind: 'hold' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('settle' as const), index: fc.nat(), outcome: outcomeArb }) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 4_000 }).map((ms) => ({ kind: 'advance' as const, ms })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reset' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'stats' as const }) },
);

/** Acquires on the real breaker: the permit, or the rejection's retry-after. */
function tryAcquire(breaker: CircuitBreaker): { permit: BreakerPermit } | { retryAfterMs: number } {
  try {
    return { permit: breaker.acquire() };
  } catch (error) {
    if (!(error instanceof CircuitOpenError)) throw error;
    return { retryAfterMs: error.retryAfterMs };
  }
}

function run(config: CircuitBreakerConfig, commands: Command[]): void {
  let now = 0;
  const breaker = new CircuitBreaker('model', config, { clock: { now: () => now } });
  const model = new Model(config);
  const transitions: string[] = [];
  breaker.onTransition((t) => transitions.push(`${t.from}->${t.to}:${t.reason}:${t.failureCount}`));
  const held: { permit: BreakerPermit; generation: number }[] = [];

  for (const [step, command] of commands.entries()) {
    const where = `step ${step}: ${JSON.stringify(command)}`;
    switch (command.kind) {
      case 'call':
      case 'hold': {
        const real = tryAcquire(breaker);
        const expected = model.acquire(now);
        expect('permit' in real, `${where}: admitted`).toBe(expected.admitted);
        if ('permit' in real && expected.admitted) {
          if (command.kind === 'call') {
            report(real.permit, command.outcome);
            model.settle(expected.generation, command.outcome, now);
          } else {
            held.push({ permit: real.permit, generation: expected.generation });
          }
        } else if (!('permit' in real) && !expected.admitted) {
          expect(real.retryAfterMs, `${where}: retryAfterMs`).toBe(expected.retryAfterMs);
        }
        break;
      }
      case 'settle': {
        if (held.length === 0) break;
        const [entry] = held.splice(command.index % held.length, 1);
        report(entry!.permit, command.outcome);
        model.settle(entry!.generation, command.outcome, now);
        break;
      }
      case 'advance':
        now += command.ms;
        break;
      case 'reset':
        breaker.reset();
        model.reset(now);
        break;
      case 'stats': {
        const before = breaker.state;
        const stats = breaker.stats();
        const openElapsed = model.state === 'open' && now >= model.openUntil;
        const halfOpenBusy = model.state === 'half_open' && model.inFlight >= config.halfOpenMaxCalls;
        expect(stats.canExecute, `${where}: canExecute`).toBe(
          model.state === 'closed' || openElapsed || (model.state === 'half_open' && !halfOpenBusy),
        );
        expect(breaker.state, `${where}: stats changed the state`).toBe(before);
        break;
      }
    }
    const stats = breaker.stats();
    expect(stats.state, `${where}: state`).toBe(model.state);
    expect(stats.failureCount, `${where}: failureCount`).toBe(model.failures);
    expect(stats.successCount, `${where}: successCount`).toBe(model.successes);
    expect(stats.halfOpenInFlight, `${where}: halfOpenInFlight`).toBe(model.state === 'half_open' ? model.inFlight : 0);
    expect(transitions, `${where}: transitions`).toEqual(model.transitions);
  }
}

describe('CircuitBreaker (model-based)', () => {
  it('behaves like the reference model in consecutive mode', () => {
    fc.assert(
      fc.property(configArb, fc.array(commandArb, { maxLength: 80 }), (config, commands) => run(config, commands)),
      { numRuns: 600 },
    );
  });

  it('never lets more than halfOpenMaxCalls current-state probes run at once', () => {
    fc.assert(
      fc.property(configArb, fc.array(commandArb, { maxLength: 80 }), (config, commands) => {
        let now = 0;
        const breaker = new CircuitBreaker('bound', config, { clock: { now: () => now } });
        const held: BreakerPermit[] = [];
        for (const command of commands) {
          if (command.kind === 'advance') now += command.ms;
          else if (command.kind === 'reset') breaker.reset();
          else if (command.kind === 'settle' && held.length > 0) report(held.splice(command.index % held.length, 1)[0]!, command.outcome);
          else if (command.kind === 'hold' || command.kind === 'call') {
            const real = tryAcquire(breaker);
            if ('permit' in real) {
              if (command.kind === 'hold') held.push(real.permit);
              else report(real.permit, command.outcome);
            }
          }
          const stats = breaker.stats();
          expect(stats.halfOpenInFlight).toBeLessThanOrEqual(config.halfOpenMaxCalls);
          expect(stats.halfOpenInFlight).toBeGreaterThanOrEqual(0);
        }
      }),
      { numRuns: 300 },
    );
  });
});
