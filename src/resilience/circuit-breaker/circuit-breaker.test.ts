import { describe, expect, it, vi } from 'vitest';
import type { Clock } from '../clock.js';
import { CircuitOpenError } from '../errors.js';
import { CircuitBreaker } from './circuit-breaker.js';
import type { CircuitBreakerConfig, CircuitBreakerOptions, CircuitTransition, SlidingWindowConfig } from './types.js';

class ManualClock implements Clock {
  constructor(public ms = 1_000) {}
  now(): number {
    return this.ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}

const CLAUDE: CircuitBreakerConfig = { failureThreshold: 3, timeoutSeconds: 30, successThreshold: 2, halfOpenMaxCalls: 1 };

function setup(config: Partial<CircuitBreakerConfig> = {}, options: CircuitBreakerOptions = {}) {
  const clock = new ManualClock();
  const breaker = new CircuitBreaker('claude_sdk', { ...CLAUDE, ...config }, { clock, ...options });
  const transitions: CircuitTransition[] = [];
  breaker.onTransition((t) => transitions.push(t));
  return { clock, breaker, transitions };
}

const boom = () => new Error('upstream 529');
const fail = (breaker: CircuitBreaker, times = 1) => {
  for (let i = 0; i < times; i++) breaker.acquire().failure(boom());
};
const succeed = (breaker: CircuitBreaker, times = 1) => {
  for (let i = 0; i < times; i++) breaker.acquire().success();
};

function rejection(breaker: CircuitBreaker): CircuitOpenError {
  try {
    breaker.acquire();
  } catch (error) {
    if (error instanceof CircuitOpenError) return error;
    throw error;
  }
  throw new Error('expected the breaker to reject');
}

/** Open (by threshold) at the clock's current time. */
function tripped(config: Partial<CircuitBreakerConfig> = {}, options: CircuitBreakerOptions = {}) {
  const s = setup(config, options);
  fail(s.breaker, s.breaker.config.failureThreshold);
  expect(s.breaker.state).toBe('open');
  s.transitions.length = 0;
  return s;
}

describe('CircuitBreaker: configuration', () => {
  it.each<[string, Partial<CircuitBreakerConfig>]>([
    ['failureThreshold 0', { failureThreshold: 0 }],
    ['fractional successThreshold', { successThreshold: 1.5 }],
    ['halfOpenMaxCalls 0', { halfOpenMaxCalls: 0 }],
    ['negative timeout', { timeoutSeconds: -1 }],
    ['NaN timeout', { timeoutSeconds: Number.NaN }],
    ['count window with minimumCalls > size', { slidingWindow: { type: 'count', size: 5, minimumCalls: 6, failureRateThreshold: 50 } }],
    ['failure rate 0 %', { slidingWindow: { type: 'count', size: 5, minimumCalls: 5, failureRateThreshold: 0 } }],
    ['failure rate over 100 %', { slidingWindow: { type: 'time', size: 10, minimumCalls: 5, failureRateThreshold: 101 } }],
  ])('rejects %s', (_label, config) => {
    expect(() => setup(config)).toThrow(RangeError);
  });

  it('keeps its own frozen copy of the config', () => {
    const config = { ...CLAUDE };
    const breaker = new CircuitBreaker('x', config);
    config.failureThreshold = 1;
    expect(breaker.config.failureThreshold).toBe(3);
    expect(Object.isFrozen(breaker.config)).toBe(true);
    expect(breaker.config).not.toHaveProperty('slidingWindow');
  });
});

describe('CircuitBreaker: closed → open (consecutive failures)', () => {
  it('opens after failureThreshold consecutive failures, reporting the count', () => {
    const { breaker, transitions } = setup();
    fail(breaker, 2);
    expect(breaker.state).toBe('closed');
    expect(breaker.stats().failureCount).toBe(2);
    fail(breaker);
    expect(breaker.state).toBe('open');
    expect(transitions).toEqual([{ circuitName: 'claude_sdk', from: 'closed', to: 'open', failureCount: 3, reason: 'threshold' }]);
    expect(breaker.stats().failureCount).toBe(0); // cleared by the transition
  });

  it('a success in between resets the consecutive count', () => {
    const { breaker } = setup();
    fail(breaker, 2);
    succeed(breaker);
    expect(breaker.stats()).toMatchObject({ failureCount: 0, successCount: 1 });
    fail(breaker, 2);
    expect(breaker.state).toBe('closed');
    fail(breaker);
    expect(breaker.state).toBe('open');
  });

  it('counts overlapping calls of one closed period together', () => {
    const { breaker } = setup();
    const permits = [breaker.acquire(), breaker.acquire(), breaker.acquire()];
    for (const permit of permits) permit.failure(boom());
    expect(breaker.state).toBe('open');
  });
});

describe('CircuitBreaker: open', () => {
  it('rejects without running the function, with the remaining open time', async () => {
    const { breaker, clock } = tripped();
    const fn = vi.fn(async () => 'never');
    const error = await breaker.execute(fn).catch((e: unknown) => e);
    expect(fn).not.toHaveBeenCalled();
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(error).toMatchObject({ circuitName: 'claude_sdk', retryAfterMs: 30_000, failureClass: 'non_retryable' });

    clock.advance(12_345);
    expect(rejection(breaker).retryAfterMs).toBe(17_655);
    expect(breaker.stats()).toMatchObject({ canExecute: false, retryAfterMs: 17_655, totalRejections: 2, totalCalls: 3 });
  });

  it('rounds a fractional remaining time up, so a retry never comes too early', () => {
    const { breaker, clock } = tripped();
    clock.advance(0.25);
    expect(rejection(breaker).retryAfterMs).toBe(30_000);
  });

  it('becomes half-open after timeoutSeconds, on the next call, which it admits as a probe', () => {
    const { breaker, clock, transitions } = tripped();
    clock.advance(29_999);
    expect(() => breaker.acquire()).toThrow(CircuitOpenError);
    clock.advance(1);
    expect(transitions).toEqual([]); // nothing happens without a call
    const probe = breaker.acquire();
    expect(breaker.state).toBe('half_open');
    expect(transitions).toEqual([{ circuitName: 'claude_sdk', from: 'open', to: 'half_open', failureCount: 0, reason: 'timeout_elapsed' }]);
    expect(breaker.stats().halfOpenInFlight).toBe(1);
    probe.success();
  });
});

describe('CircuitBreaker: half-open', () => {
  it('closes after successThreshold successful probes', () => {
    const { breaker, clock, transitions } = tripped();
    clock.advance(30_000);
    succeed(breaker);
    expect(breaker.state).toBe('half_open');
    expect(breaker.stats().successCount).toBe(1);
    succeed(breaker);
    expect(breaker.state).toBe('closed');
    expect(transitions.map((t) => [t.from, t.to, t.reason])).toEqual([
      ['open', 'half_open', 'timeout_elapsed'],
      ['half_open', 'closed', 'probes_succeeded'],
    ]);
    expect(breaker.stats()).toMatchObject({ failureCount: 0, successCount: 0, halfOpenInFlight: 0 });
    // Closed afresh: it takes a full threshold again to open.
    fail(breaker, 2);
    expect(breaker.state).toBe('closed');
  });

  it('re-opens on a failed probe and restarts the open period', () => {
    const { breaker, clock, transitions } = tripped();
    clock.advance(30_000);
    succeed(breaker);
    clock.advance(500);
    fail(breaker);
    expect(breaker.state).toBe('open');
    expect(transitions.at(-1)).toEqual({ circuitName: 'claude_sdk', from: 'half_open', to: 'open', failureCount: 1, reason: 'probe_failed' });
    expect(rejection(breaker).retryAfterMs).toBe(30_000);
    clock.advance(29_999);
    expect(() => breaker.acquire()).toThrow(CircuitOpenError);
    clock.advance(1);
    breaker.acquire().success();
    expect(breaker.state).toBe('half_open'); // the earlier probe success was discarded by the re-open
  });

  it('admits at most halfOpenMaxCalls probes at once and rejects the rest immediately', () => {
    const { breaker, clock } = tripped({ halfOpenMaxCalls: 2, successThreshold: 3 });
    clock.advance(30_000);
    const a = breaker.acquire();
    const b = breaker.acquire();
    const refused = rejection(breaker);
    expect(refused.retryAfterMs).toBe(0); // busy, not open
    expect(breaker.stats()).toMatchObject({ state: 'half_open', halfOpenInFlight: 2, canExecute: false, retryAfterMs: 0 });
    a.success();
    expect(breaker.stats()).toMatchObject({ halfOpenInFlight: 1, canExecute: true });
    const c = breaker.acquire();
    expect(() => breaker.acquire()).toThrow(CircuitOpenError);
    b.release(); // counts nothing, frees the slot
    expect(breaker.stats()).toMatchObject({ halfOpenInFlight: 1, successCount: 1 });
    c.success();
    breaker.acquire().success();
    expect(breaker.state).toBe('closed');
  });

  it('an aborted probe frees its slot and counts as neither', () => {
    const { breaker, clock } = tripped();
    clock.advance(30_000);
    breaker.acquire().failure(Object.assign(new Error('client went away'), { name: 'AbortError' }));
    expect(breaker.stats()).toMatchObject({ state: 'half_open', halfOpenInFlight: 0, successCount: 0, failureCount: 0 });
    succeed(breaker, 2);
    expect(breaker.state).toBe('closed');
  });
});

describe('CircuitBreaker: late results from an earlier state', () => {
  it('a success from a permit acquired while closed does not close a circuit that opened meanwhile', () => {
    const { breaker } = setup();
    const slow = breaker.acquire();
    fail(breaker, 3);
    expect(breaker.state).toBe('open');
    slow.success();
    expect(breaker.state).toBe('open');
    expect(breaker.stats().successCount).toBe(0);
  });

  it('a failure from a permit of an earlier state does not count towards the current one', () => {
    const { breaker, clock } = setup();
    const old = breaker.acquire();
    fail(breaker, 3);
    clock.advance(30_000);
    breaker.acquire().success(); // half-open, one probe of two succeeded
    old.failure(boom()); // would re-open the circuit if it counted
    expect(breaker.state).toBe('half_open');
    expect(breaker.stats()).toMatchObject({ successCount: 1, failureCount: 0, totalFailures: 4 });
  });

  it('a probe from an earlier half-open period neither counts nor frees a slot of the current one', () => {
    const { breaker, clock, transitions } = tripped({ halfOpenMaxCalls: 1 });
    clock.advance(30_000);
    const oldProbe = breaker.acquire();
    breaker.forceOpen();
    breaker.reset();
    fail(breaker, 3);
    clock.advance(30_000);
    const probe = breaker.acquire();
    expect(breaker.stats().halfOpenInFlight).toBe(1);
    oldProbe.release();
    expect(breaker.stats().halfOpenInFlight).toBe(1);
    expect(() => breaker.acquire()).toThrow(CircuitOpenError);
    oldProbe.failure(boom()); // already settled: no-op
    expect(breaker.state).toBe('half_open');
    probe.success();
    expect(breaker.stats().successCount).toBe(1);
    expect(transitions.map((t) => t.reason)).toEqual(['timeout_elapsed', 'forced_open', 'manual_reset', 'threshold', 'timeout_elapsed']);
  });

  it('reporting twice on one permit is a no-op after the first', () => {
    const { breaker } = setup();
    const permit = breaker.acquire();
    permit.failure(boom());
    permit.failure(boom());
    permit.success();
    permit.release();
    expect(breaker.stats()).toMatchObject({ failureCount: 1, successCount: 0, totalFailures: 1 });
  });
});

describe('CircuitBreaker: stats are pure', () => {
  it('an elapsed open period shows as canExecute, but the state stays open until a call', () => {
    const { breaker, clock, transitions } = tripped();
    clock.advance(30_000);
    const before = breaker.stats();
    expect(before).toMatchObject({ state: 'open', canExecute: true, retryAfterMs: 0, halfOpenInFlight: 0 });
    expect(breaker.stats()).toEqual(before);
    expect(breaker.state).toBe('open');
    expect(transitions).toEqual([]);
    breaker.acquire().success();
    expect(breaker.state).toBe('half_open');
  });

  it('reports the counters and the config', () => {
    const { breaker, clock } = setup();
    succeed(breaker);
    fail(breaker);
    expect(breaker.stats()).toEqual({
      name: 'claude_sdk',
      state: 'closed',
      enabled: true,
      forcedOpen: false,
      failureCount: 1,
      successCount: 0,
      halfOpenInFlight: 0,
      canExecute: true,
      retryAfterMs: 0,
      totalCalls: 2,
      totalFailures: 1,
      totalRejections: 0,
      lastStateChangeAt: 1_000,
      config: CLAUDE,
    });
    fail(breaker, 2);
    expect(breaker.stats().lastStateChangeAt).toBe(clock.now());
  });
});

describe('CircuitBreaker: manual controls', () => {
  it('reset closes an open circuit and clears the counts', () => {
    const { breaker, transitions } = tripped();
    breaker.reset();
    expect(breaker.state).toBe('closed');
    expect(transitions).toEqual([{ circuitName: 'claude_sdk', from: 'open', to: 'closed', failureCount: 0, reason: 'manual_reset' }]);
    fail(breaker, 2);
    expect(breaker.state).toBe('closed');
  });

  it('reset of a closed circuit clears the counts without a transition', () => {
    const { breaker, transitions } = setup();
    fail(breaker, 2);
    const inFlight = breaker.acquire();
    breaker.reset();
    expect(breaker.stats().failureCount).toBe(0);
    inFlight.failure(boom()); // from before the reset: does not count
    fail(breaker, 2);
    expect(breaker.state).toBe('closed');
    expect(transitions).toEqual([]);
  });

  it('forceOpen rejects every call, even after the open period, until reset', () => {
    const { breaker, clock, transitions } = setup();
    breaker.forceOpen();
    expect(transitions).toEqual([{ circuitName: 'claude_sdk', from: 'closed', to: 'open', failureCount: 0, reason: 'forced_open' }]);
    clock.advance(10 * 60_000);
    expect(rejection(breaker).retryAfterMs).toBe(30_000);
    expect(breaker.stats()).toMatchObject({ state: 'open', forcedOpen: true, canExecute: false, retryAfterMs: 30_000 });
    breaker.forceOpen(); // already open: no second event
    expect(transitions).toHaveLength(1);
    breaker.reset();
    expect(breaker.stats()).toMatchObject({ state: 'closed', forcedOpen: false, canExecute: true });
    succeed(breaker);
  });

  it('forceOpen of an already open circuit stops its probes', () => {
    const { breaker, clock, transitions } = tripped();
    breaker.forceOpen();
    clock.advance(30_000);
    expect(() => breaker.acquire()).toThrow(CircuitOpenError);
    expect(transitions).toEqual([]);
  });

  it('disable admits everything and records nothing; enable resumes the kept state', () => {
    const { breaker, clock, transitions } = tripped();
    const openStats = breaker.stats();
    breaker.disable();
    expect(breaker.stats()).toMatchObject({ enabled: false, state: 'open', canExecute: true, retryAfterMs: 0 });
    for (let i = 0; i < 10; i++) breaker.acquire().failure(boom());
    expect(breaker.stats()).toMatchObject({
      totalCalls: openStats.totalCalls,
      totalFailures: openStats.totalFailures,
      totalRejections: openStats.totalRejections,
    });
    expect(breaker.executeSync(() => 7)).toBe(7);
    breaker.enable();
    expect(() => breaker.acquire()).toThrow(CircuitOpenError);
    clock.advance(30_000);
    succeed(breaker, 2);
    expect(breaker.state).toBe('closed');
    expect(transitions.map((t) => t.reason)).toEqual(['timeout_elapsed', 'probes_succeeded']);
  });

  it('calls in flight when the breaker is disabled do not count after it is enabled again', () => {
    const { breaker } = setup();
    const inFlight = [breaker.acquire(), breaker.acquire(), breaker.acquire()];
    breaker.disable();
    breaker.enable();
    for (const permit of inFlight) permit.failure(boom());
    expect(breaker.state).toBe('closed');
  });
});

describe('CircuitBreaker: transition listeners', () => {
  it('runs listeners synchronously after the state changed, and unsubscribes', () => {
    const { breaker } = setup();
    const seen: string[] = [];
    const off = breaker.onTransition((t) => seen.push(`${t.to}:${breaker.state}`));
    fail(breaker, 3);
    expect(seen).toEqual(['open:open']);
    off();
    breaker.reset();
    expect(seen).toEqual(['open:open']);
  });

  it('a throwing listener breaks neither the breaker nor the other listeners', () => {
    const { breaker, transitions } = setup();
    breaker.onTransition(() => {
      throw new Error('listener bug');
    });
    const after = vi.fn();
    breaker.onTransition(after);
    expect(() => fail(breaker, 3)).not.toThrow();
    expect(breaker.state).toBe('open');
    expect(transitions).toHaveLength(1);
    expect(after).toHaveBeenCalledTimes(1);
  });

  it('a listener that moves the state again during a probe admission is respected', () => {
    const { breaker, clock } = tripped();
    breaker.onTransition((t) => {
      if (t.to === 'half_open') breaker.forceOpen();
    });
    clock.advance(30_000);
    expect(() => breaker.acquire()).toThrow(CircuitOpenError);
    expect(breaker.stats()).toMatchObject({ state: 'open', forcedOpen: true, halfOpenInFlight: 0 });
  });
});

describe('CircuitBreaker: what counts as a failure', () => {
  const nonRetryable = Object.assign(new Error('400 invalid_request_error'), { failureClass: 'non_retryable' as const });
  const aborted = Object.assign(new Error('interrupted'), { failureClass: 'aborted' as const });

  it('non-retryable errors count as successes (upstream answered)', () => {
    const { breaker } = setup();
    fail(breaker, 2);
    breaker.acquire().failure(nonRetryable);
    expect(breaker.stats()).toMatchObject({ failureCount: 0, successCount: 1, totalFailures: 2 });
    fail(breaker, 2);
    expect(breaker.state).toBe('closed');
  });

  it('aborts count as neither success nor failure', () => {
    const { breaker } = setup();
    fail(breaker, 2);
    breaker.acquire().failure(aborted);
    breaker.acquire().failure(Object.assign(new Error('aborted'), { name: 'AbortError' }));
    expect(breaker.stats()).toMatchObject({ failureCount: 2, successCount: 0 });
    fail(breaker);
    expect(breaker.state).toBe('open');
  });

  it('a failure without an error, or with an unclassified one, counts', () => {
    const { breaker } = setup();
    breaker.acquire().failure();
    breaker.acquire().failure('a string');
    breaker.acquire().failure(Object.assign(new Error('overloaded'), { failureClass: 'retryable' }));
    expect(breaker.state).toBe('open');
  });

  it('options.isFailure decides, except that aborts stay neutral', () => {
    const isFailure = (error: unknown) => (error as { status?: number }).status === 503;
    const { breaker } = setup({}, { isFailure });
    breaker.acquire().failure({ status: 503 });
    breaker.acquire().failure(Object.assign(new Error('x'), { status: 503, failureClass: 'aborted' }));
    breaker.acquire().failure({ status: 503 });
    expect(breaker.stats().failureCount).toBe(2);
    breaker.acquire().failure({ status: 500 });
    expect(breaker.stats()).toMatchObject({ failureCount: 0, successCount: 1 });
  });

  it('a throwing isFailure counts the call as a failure', () => {
    const { breaker } = setup({ failureThreshold: 1 }, {
      isFailure: () => {
        throw new Error('predicate bug');
      },
    });
    expect(() => breaker.acquire().failure(boom())).not.toThrow();
    expect(breaker.state).toBe('open');
  });

  it('a non-retryable answer to a probe counts as a successful probe', () => {
    const { breaker, clock } = tripped();
    clock.advance(30_000);
    breaker.acquire().failure(nonRetryable);
    breaker.acquire().failure(nonRetryable);
    expect(breaker.state).toBe('closed');
  });
});

describe('CircuitBreaker: execute and executeSync', () => {
  it('execute returns the value and reports success with the measured duration', async () => {
    const { breaker, clock } = setup({ slidingWindow: { type: 'count', size: 2, minimumCalls: 2, failureRateThreshold: 100, slowCallDurationMs: 1_000, slowCallRateThreshold: 50 } });
    await expect(breaker.execute(() => 'sync value')).resolves.toBe('sync value');
    await expect(
      breaker.execute(async () => {
        clock.advance(1_000);
        return 42;
      }),
    ).resolves.toBe(42);
    expect(breaker.state).toBe('open'); // the second call was slow: 1 of 2 ≥ 50 %
  });

  it('execute rethrows the error after reporting it', async () => {
    const { breaker } = setup({ failureThreshold: 2 });
    const error = boom();
    await expect(breaker.execute(() => Promise.reject(error))).rejects.toBe(error);
    await expect(
      breaker.execute(() => {
        throw error;
      }),
    ).rejects.toBe(error);
    expect(breaker.state).toBe('open');
    await expect(breaker.execute(() => 1)).rejects.toBeInstanceOf(CircuitOpenError);
  });

  it('executeSync runs synchronous work, reports, and rethrows', () => {
    const { breaker } = setup({ failureThreshold: 1 });
    expect(breaker.executeSync(() => 'row')).toBe('row');
    const error = boom();
    expect(() =>
      breaker.executeSync(() => {
        throw error;
      }),
    ).toThrow(error);
    const work = vi.fn();
    expect(() => breaker.executeSync(work)).toThrow(CircuitOpenError);
    expect(work).not.toHaveBeenCalled();
  });
});

describe('CircuitBreaker: sliding count window', () => {
  const window: SlidingWindowConfig = { type: 'count', size: 10, minimumCalls: 5, failureRateThreshold: 50 };

  it('gives no verdict before minimumCalls', () => {
    const { breaker } = setup({ slidingWindow: window });
    fail(breaker, 4);
    expect(breaker.state).toBe('closed');
    expect(breaker.stats()).toMatchObject({ failureCount: 4, failureRate: 100 });
    fail(breaker);
    expect(breaker.state).toBe('open');
  });

  it('opens once the failure rate reaches the threshold, not on consecutive failures', () => {
    const { breaker, transitions } = setup({ failureThreshold: 1, slidingWindow: window });
    succeed(breaker, 4);
    fail(breaker, 3); // 3 of 7 = 43 %
    expect(breaker.state).toBe('closed');
    expect(breaker.stats()).toMatchObject({ failureCount: 3, successCount: 4 });
    succeed(breaker); // 3 of 8
    fail(breaker); // 4 of 9 = 44 %
    expect(breaker.state).toBe('closed');
    fail(breaker); // 5 of 10 = 50 %
    expect(breaker.state).toBe('open');
    expect(transitions).toEqual([{ circuitName: 'claude_sdk', from: 'closed', to: 'open', failureCount: 5, reason: 'threshold' }]);
  });

  it('old outcomes leave the ring as new ones arrive', () => {
    const { breaker } = setup({ slidingWindow: window });
    succeed(breaker, 5);
    fail(breaker, 4);
    succeed(breaker); // s s s s s f f f f s: 4 of 10
    expect(breaker.stats()).toMatchObject({ failureCount: 4, failureRate: 40 });
    succeed(breaker, 5); // pushes out the five oldest successes
    expect(breaker.stats()).toMatchObject({ failureCount: 4, successCount: 6 });
    succeed(breaker, 4); // and now the four failures
    expect(breaker.stats()).toMatchObject({ failureCount: 0, successCount: 10, failureRate: 0 });
    fail(breaker, 4); // 4 of 10 again
    expect(breaker.state).toBe('closed');
  });

  it('opens on the slow-call rate', () => {
    const slow: SlidingWindowConfig = { ...window, failureRateThreshold: 100, slowCallDurationMs: 2_000, slowCallRateThreshold: 60 };
    const { breaker } = setup({ slidingWindow: slow });
    breaker.acquire().success(1_999);
    breaker.acquire().success(); // no duration: not slow
    for (let i = 0; i < 2; i++) breaker.acquire().success(2_000);
    breaker.acquire().success(5);
    expect(breaker.stats()).toMatchObject({ state: 'closed', slowCallRate: 40 });
    breaker.acquire().success(9_000); // 3 of 6 = 50 %
    expect(breaker.state).toBe('closed');
    breaker.acquire().success(9_000); // 4 of 7 = 57 %
    expect(breaker.state).toBe('closed');
    breaker.acquire().success(9_000); // 5 of 8 = 62.5 %
    expect(breaker.state).toBe('open');
  });

  it('ignores the slow-call rate when no threshold is set', () => {
    const { breaker } = setup({ slidingWindow: { ...window, slowCallDurationMs: 10 } });
    for (let i = 0; i < 10; i++) breaker.acquire().success(1_000);
    expect(breaker.stats()).toMatchObject({ state: 'closed', slowCallRate: 100 });
  });

  it('clears the window on every transition and uses the half-open rules', () => {
    const { breaker, clock } = setup({ slidingWindow: window });
    fail(breaker, 5);
    expect(breaker.stats()).toMatchObject({ state: 'open', failureCount: 0, failureRate: 0 });
    clock.advance(30_000);
    succeed(breaker, 2);
    expect(breaker.state).toBe('closed');
    fail(breaker, 4); // the five failures before do not count any more
    expect(breaker.state).toBe('closed');
  });

  it('aborts are not recorded in the window', () => {
    const { breaker } = setup({ slidingWindow: window });
    for (let i = 0; i < 10; i++) breaker.acquire().release();
    expect(breaker.stats()).toMatchObject({ failureCount: 0, successCount: 0 });
  });
});

describe('CircuitBreaker: sliding time window', () => {
  const window: SlidingWindowConfig = { type: 'time', size: 10, minimumCalls: 4, failureRateThreshold: 50 };

  it('counts only the calls of the last size seconds: old failures expire as time passes', () => {
    const { breaker, clock } = setup({ slidingWindow: window });
    clock.ms = 0;
    fail(breaker, 3);
    clock.advance(9_999);
    expect(breaker.stats()).toMatchObject({ failureCount: 3, failureRate: 100 });
    clock.advance(1); // t = 10 s: the failures of second 0 have left the window
    expect(breaker.stats()).toMatchObject({ failureCount: 0, successCount: 0, failureRate: 0 });
    fail(breaker); // 1 call in the window: below minimumCalls
    expect(breaker.state).toBe('closed');
    succeed(breaker, 3);
    fail(breaker, 2); // 3 of 6 = 50 %
    expect(breaker.state).toBe('open');
  });

  it('a slot reused after a full revolution does not carry old counts', () => {
    const { breaker, clock } = setup({ slidingWindow: window });
    clock.ms = 0;
    fail(breaker, 3);
    clock.advance(20_000); // same slot as second 0, two revolutions later
    succeed(breaker, 3);
    expect(breaker.stats()).toMatchObject({ failureCount: 0, successCount: 3 });
    fail(breaker); // 1 of 4 = 25 %
    expect(breaker.state).toBe('closed');
  });

  it('mixes calls across seconds and opens when the rate is reached', () => {
    const { breaker, clock, transitions } = setup({ slidingWindow: window });
    clock.ms = 0;
    for (let second = 0; second < 8; second++) {
      succeed(breaker);
      if (second % 2 === 1) fail(breaker);
      clock.advance(1_000);
    }
    // 8 successes, 4 failures in the last 10 s = 33 %
    expect(breaker.stats()).toMatchObject({ state: 'closed', failureCount: 4, successCount: 8 });
    fail(breaker, 4); // 8 of 16 = 50 %
    expect(breaker.state).toBe('open');
    expect(transitions[0]).toMatchObject({ reason: 'threshold', failureCount: 8 });
  });

  it('reads of stats do not change the window', () => {
    const { breaker, clock } = setup({ slidingWindow: window });
    clock.ms = 0;
    fail(breaker, 3);
    clock.advance(60_000);
    breaker.stats();
    clock.ms = 5_000; // a read in the far future must not have discarded anything
    expect(breaker.stats().failureCount).toBe(3);
  });

  it('uses wider buckets for long windows but still expires old calls', () => {
    const { breaker, clock } = setup({ slidingWindow: { ...window, size: 3_600 } });
    clock.ms = 0;
    fail(breaker, 3);
    clock.advance(3_000_000);
    expect(breaker.stats().failureCount).toBe(3);
    clock.advance(660_000); // past an hour plus a bucket
    expect(breaker.stats().failureCount).toBe(0);
  });
});
