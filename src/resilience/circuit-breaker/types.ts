import type { Clock } from '../clock.js';

export type CircuitState = 'closed' | 'open' | 'half_open';

/** Rate-based opening (resilience4j style) instead of counting consecutive failures. */
export interface SlidingWindowConfig {
  /** `count`: the last `size` calls; `time`: the calls of the last `size` seconds. */
  type: 'count' | 'time';
  size: number;
  /** No verdict until the window holds at least this many calls. */
  minimumCalls: number;
  /** Open when failures / calls ≥ this percentage. */
  failureRateThreshold: number;
  /** A successful call slower than this counts as slow (0 or absent: off). */
  slowCallDurationMs?: number;
  /** Open when slow calls / calls ≥ this percentage. */
  slowCallRateThreshold?: number;
}

export interface CircuitBreakerConfig {
  /** Consecutive failures that open the circuit (consecutive mode). */
  failureThreshold: number;
  /** Successful half-open probes needed to close again. */
  successThreshold: number;
  /** How long the circuit stays open before admitting probes. */
  timeoutSeconds: number;
  /** Probes admitted at once while half-open; the rest are rejected immediately. */
  halfOpenMaxCalls: number;
  /** When set, opening is decided by failure / slow-call rates over this window. */
  slidingWindow?: SlidingWindowConfig | undefined;
}

export interface CircuitBreakerOptions {
  clock?: Clock;
  /** Which errors count as failures; others count as successes (upstream answered). Aborts count as neither. */
  isFailure?: (error: unknown) => boolean;
}

/** A pure snapshot: reading it never changes the breaker. */
export interface CircuitBreakerStats {
  name: string;
  state: CircuitState;
  enabled: boolean;
  forcedOpen: boolean;
  /**
   * Consecutive failures in closed state (consecutive mode) or failures in the window (sliding mode).
   * Every transition clears it, so it is 0 while open.
   */
  failureCount: number;
  /**
   * Successes counted by the current state: consecutive successes in closed state (consecutive mode),
   * successes in the window (sliding mode), successful probes in half-open.
   */
  successCount: number;
  /** Probes currently running in half-open. */
  halfOpenInFlight: number;
  /** Whether a call made now would be admitted. */
  canExecute: boolean;
  /** Milliseconds until an open circuit admits a probe; 0 otherwise. */
  retryAfterMs: number;
  /** Calls admitted while enabled (lifetime). */
  totalCalls: number;
  /** Failures reported while enabled (lifetime), including late ones that no longer changed the state. */
  totalFailures: number;
  /** Calls refused with CircuitOpenError (lifetime). */
  totalRejections: number;
  /** Failure and slow-call rates over the window, in percent (sliding mode only). */
  failureRate?: number;
  slowCallRate?: number;
  /** Reading of the breaker's (monotonic) clock at the last transition, or at construction. */
  lastStateChangeAt: number;
  config: CircuitBreakerConfig;
}

export interface CircuitTransition {
  circuitName: string;
  from: CircuitState;
  to: CircuitState;
  /** Failures counted by the state being left, read just before the transition cleared them. */
  failureCount: number;
  reason: 'threshold' | 'probe_failed' | 'probes_succeeded' | 'timeout_elapsed' | 'manual_reset' | 'forced_open';
}

export type TransitionListener = (transition: CircuitTransition) => void;

/** One admitted call. Report exactly one outcome; reports from a permit of an earlier state are ignored. */
export interface BreakerPermit {
  success(durationMs?: number): void;
  failure(error?: unknown): void;
  /** The call ended as neither (e.g. the client aborted): frees a half-open slot, counts nothing. */
  release(): void;
}
