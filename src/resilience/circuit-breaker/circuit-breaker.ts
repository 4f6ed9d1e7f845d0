import { monotonicClock, type Clock } from '../clock.js';
import { CircuitOpenError } from '../errors.js';
import { failureClassOf } from '../outcome.js';
import { normalizeConfig } from './config.js';
import { createOutcomeWindow, emptyCounts, type OutcomeWindow, type WindowCounts } from './outcome-window.js';
import { Permit, UNTRACKED_PERMIT, settlePermit, type PermitOutcome, type PermitOwner } from './permit.js';
import type {
  BreakerPermit,
  CircuitBreakerConfig,
  CircuitBreakerOptions,
  CircuitBreakerStats,
  CircuitState,
  CircuitTransition,
  TransitionListener,
} from './types.js';

/** Default: only failures a retry could fix say anything about upstream health. */
const isRetryableFailure = (error: unknown): boolean => failureClassOf(error) === 'retryable';

/**
 * A circuit breaker driven purely by call outcomes and a monotonic clock: no timers, so an idle breaker
 * costs nothing and time only matters when someone asks. Open becomes half-open lazily, on the first
 * `acquire` after the open period.
 *
 * Every transition (and reset / disable) starts a new generation and discards the old state's counts;
 * permits remember their generation, so a slow call that began in an earlier state can neither move
 * the current state nor free a half-open slot it never held.
 */
export class CircuitBreaker implements PermitOwner {
  readonly config: Readonly<CircuitBreakerConfig>;
  private readonly clock: Clock;
  private readonly isFailure: (error: unknown) => boolean;
  private readonly timeoutMs: number;
  private readonly window: OutcomeWindow | undefined;
  private readonly slowCallMs: number;
  private readonly slowCallRate: number;
  /** Scratch for window reads on the call path, so recording allocates nothing. */
  private readonly counts: WindowCounts = emptyCounts();
  private readonly listeners = new Set<TransitionListener>();

  private current: CircuitState = 'closed';
  private generation = 0;
  /** Counts of the current generation (closed consecutive mode, or half-open probes). */
  private failures = 0;
  private successes = 0;
  private inFlight = 0;
  private openUntil = 0;
  private forced = false;
  private active = true;
  private lastChangeAt: number;
  private totalCalls = 0;
  private totalFailures = 0;
  private totalRejections = 0;

  constructor(
    readonly name: string,
    config: CircuitBreakerConfig,
    options: CircuitBreakerOptions = {},
  ) {
    this.config = normalizeConfig(config);
    this.clock = options.clock ?? monotonicClock;
    this.isFailure = options.isFailure ?? isRetryableFailure;
    this.timeoutMs = this.config.timeoutSeconds * 1000;
    const sliding = this.config.slidingWindow;
    this.window = sliding ? createOutcomeWindow(sliding) : undefined;
    this.slowCallMs = sliding?.slowCallDurationMs ?? 0;
    this.slowCallRate = sliding?.slowCallRateThreshold ?? 0;
    this.lastChangeAt = this.clock.now();
  }

  /** The stored state. Pure: an elapsed open period shows as 'open' until the next `acquire`. */
  get state(): CircuitState {
    return this.current;
  }

  /** Admits a call, or throws CircuitOpenError without any work being started. */
  acquire(): BreakerPermit {
    if (!this.active) return UNTRACKED_PERMIT;
    if (this.current === 'closed') {
      this.totalCalls++;
      return new Permit(this, this.generation);
    }
    return this.acquireGuarded();
  }

  /** Runs `fn` under a permit, timing it on the breaker's clock (for slow-call detection). */
  async execute<T>(fn: () => T | Promise<T>): Promise<T> {
    const permit = this.acquire();
    const startedAt = this.clock.now();
    let value: T;
    try {
      value = await fn();
    } catch (error) {
      permit.failure(error);
      throw error;
    }
    permit.success(this.clock.now() - startedAt);
    return value;
  }

  /** `execute` for synchronous work (e.g. a database write). `fn` must not return a promise. */
  executeSync<T>(fn: () => T): T {
    const permit = this.acquire();
    const startedAt = this.clock.now();
    let value: T;
    try {
      value = fn();
    } catch (error) {
      permit.failure(error);
      throw error;
    }
    permit.success(this.clock.now() - startedAt);
    return value;
  }

  /** A pure snapshot: works out what `acquire` would do now without doing it. */
  stats(): CircuitBreakerStats {
    const now = this.clock.now();
    const stats: CircuitBreakerStats = {
      name: this.name,
      state: this.current,
      enabled: this.active,
      forcedOpen: this.forced,
      failureCount: this.failures,
      successCount: this.successes,
      halfOpenInFlight: this.current === 'half_open' ? this.inFlight : 0,
      canExecute: true,
      retryAfterMs: 0,
      totalCalls: this.totalCalls,
      totalFailures: this.totalFailures,
      totalRejections: this.totalRejections,
      lastStateChangeAt: this.lastChangeAt,
      config: this.config,
    };
    if (!this.active) {
      // Disabled: admits everything whatever the state.
    } else if (this.forced) {
      stats.canExecute = false;
      stats.retryAfterMs = Math.ceil(this.timeoutMs);
    } else if (this.current === 'open' && now < this.openUntil) {
      stats.canExecute = false;
      stats.retryAfterMs = Math.ceil(this.openUntil - now);
    } else if (this.current === 'half_open') {
      stats.canExecute = this.inFlight < this.config.halfOpenMaxCalls;
    }
    if (this.window) {
      // A fresh object: `this.counts` belongs to the call path.
      const counts = this.window.read(now, emptyCounts());
      if (this.current === 'closed') {
        stats.failureCount = counts.failures;
        stats.successCount = counts.calls - counts.failures;
      }
      stats.failureRate = counts.calls > 0 ? (counts.failures / counts.calls) * 100 : 0;
      stats.slowCallRate = counts.calls > 0 ? (counts.slow / counts.calls) * 100 : 0;
    }
    return stats;
  }

  /** Closed, with every count cleared and any forced-open lifted. Emits only if the state changes. */
  reset(): void {
    this.forced = false;
    if (this.current === 'closed') this.discardGeneration();
    else this.transition('closed', 'manual_reset', this.clock.now());
  }

  /** Open, and rejecting every call (no probes) until `reset`. */
  forceOpen(): void {
    this.forced = true;
    if (this.current !== 'open') this.transition('open', 'forced_open', this.clock.now());
  }

  /**
   * Bypass: admit everything, record nothing. Calls in flight are forgotten (they started under the
   * old rules); the state, and an open period, are kept for `enable`.
   */
  disable(): void {
    if (!this.active) return;
    this.active = false;
    this.discardGeneration();
  }

  enable(): void {
    this.active = true;
  }

  /** Listeners run synchronously after each state change; a throwing listener is ignored. */
  onTransition(listener: TransitionListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  [settlePermit](generation: number, outcome: PermitOutcome, durationMs: number | undefined, error: unknown): void {
    if (outcome === 'failure') {
      outcome = this.classify(error);
      if (outcome === 'failure' && this.active) this.totalFailures++;
    }
    // A result from an earlier state: that state and its slots are gone, so it must not count.
    if (generation !== this.generation) return;
    if (this.current === 'half_open') {
      this.settleProbe(outcome);
      return;
    }
    // Closed: permits are never issued while open, and entering open starts a new generation.
    if (outcome === 'release') return;
    if (this.window) {
      this.recordInWindow(outcome === 'failure', outcome === 'success' ? durationMs : undefined);
    } else if (outcome === 'success') {
      this.failures = 0;
      this.successes++;
    } else {
      this.successes = 0;
      if (++this.failures >= this.config.failureThreshold) this.transition('open', 'threshold', this.clock.now());
    }
  }

  private acquireGuarded(): BreakerPermit {
    if (this.current === 'open') {
      if (this.forced) throw this.reject(this.timeoutMs);
      const now = this.clock.now();
      if (now < this.openUntil) throw this.reject(this.openUntil - now);
      this.transition('half_open', 'timeout_elapsed', now);
      // Re-dispatch: a transition listener may already have moved the state again.
      return this.acquire();
    }
    // Half-open: a probe slot or an immediate refusal; queueing would pile load on a sick upstream.
    if (this.inFlight >= this.config.halfOpenMaxCalls) throw this.reject(0);
    this.inFlight++;
    this.totalCalls++;
    return new Permit(this, this.generation);
  }

  private reject(waitMs: number): CircuitOpenError {
    this.totalRejections++;
    return new CircuitOpenError(this.name, Math.ceil(waitMs));
  }

  private classify(error: unknown): PermitOutcome {
    if (failureClassOf(error) === 'aborted') return 'release';
    try {
      return this.isFailure(error) ? 'failure' : 'success';
    } catch {
      return 'failure'; // a broken predicate must not hide failures
    }
  }

  private settleProbe(outcome: PermitOutcome): void {
    if (this.inFlight > 0) this.inFlight--;
    if (outcome === 'release') return;
    if (outcome === 'failure') {
      this.failures++;
      this.transition('open', 'probe_failed', this.clock.now()); // restarts the open period
    } else if (++this.successes >= this.config.successThreshold) {
      this.transition('closed', 'probes_succeeded', this.clock.now());
    }
  }

  private recordInWindow(failed: boolean, durationMs: number | undefined): void {
    const window = this.window!;
    const sliding = this.config.slidingWindow!;
    const now = this.clock.now();
    const slow = !failed && this.slowCallMs > 0 && durationMs !== undefined && durationMs >= this.slowCallMs;
    window.record(now, failed, slow);
    const { calls, failures, slow: slowCalls } = window.read(now, this.counts);
    if (calls < sliding.minimumCalls) return;
    // Compared as products: no float division, and 50 % of 2 calls is exactly 1.
    const failing = failures * 100 >= sliding.failureRateThreshold * calls;
    const slowing = this.slowCallRate > 0 && slowCalls * 100 >= this.slowCallRate * calls;
    if (failing || slowing) this.transition('open', 'threshold', now);
  }

  private transition(to: CircuitState, reason: CircuitTransition['reason'], now: number): void {
    const from = this.current;
    const failureCount =
      this.window && from === 'closed' ? this.window.read(now, this.counts).failures : this.failures;
    this.current = to;
    this.discardGeneration();
    this.lastChangeAt = now;
    if (to === 'open') this.openUntil = now + this.timeoutMs;
    this.emit({ circuitName: this.name, from, to, failureCount, reason });
  }

  /** Forgets the current state's calls: their permits become stale and every count starts at zero. */
  private discardGeneration(): void {
    this.generation++;
    this.failures = 0;
    this.successes = 0;
    this.inFlight = 0;
    this.window?.clear();
  }

  private emit(transition: CircuitTransition): void {
    for (const listener of this.listeners) {
      try {
        listener(transition);
      } catch {
        // The breaker knows nothing of its observers; one failing must not break the breaker.
      }
    }
  }
}
