import { monotonicClock, type Clock } from '../clock.js';
import { CircuitOpenError } from '../errors.js';
import { failureClassOf, retryAfterOf } from '../outcome.js';
import type { RetryBudgetLike, RetryOptions } from './types.js';

/** 1, 2, 5, 10, 30, 60 s: quick recovery from blips, then backing off hard for real outages. */
export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = Object.freeze([1000, 2000, 5000, 10000, 30000, 60000]);

const DEFAULT_MAX_RETRIES = 6;
const DEFAULT_JITTER = 0.2;
const DEFAULT_MAX_RETRY_AFTER_MS = 60_000;
/** A server's retry-after is only ever lengthened, by at most this share, so clients told the same time spread out. */
const MAX_RETRY_AFTER_SPREAD = 0.1;

export type RetryStopReason = 'not_retryable' | 'max_retries' | 'deadline' | 'budget' | 'aborted';

export type RetryDecision = { retry: true; delayMs: number } | { retry: false; reason: RetryStopReason };

/** Decides whether (and after how long) a failed attempt is tried again. Holds no per-call state. */
export class RetryPolicy {
  readonly clock: Clock;
  private readonly delaysMs: readonly number[];
  private readonly maxRetries: number;
  private readonly jitter: number;
  private readonly maxRetryAfterMs: number;
  private readonly deadlineMs: number | undefined;
  private readonly budget: RetryBudgetLike | undefined;
  private readonly signal: AbortSignal | undefined;
  private readonly shouldRetry: (error: unknown) => boolean;
  private readonly random: () => number;

  constructor(options: RetryOptions = {}) {
    const delaysMs = options.delaysMs ?? DEFAULT_RETRY_DELAYS_MS;
    if (delaysMs.length === 0) throw new RangeError('delaysMs must not be empty');
    for (const delay of delaysMs) requireNonNegative('each of delaysMs', delay);
    const maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
    if (!Number.isInteger(maxRetries) || maxRetries < 0) {
      throw new RangeError(`maxRetries must be an integer >= 0, got ${maxRetries}`);
    }
    const jitter = options.jitter ?? DEFAULT_JITTER;
    if (!(jitter >= 0 && jitter <= 1)) throw new RangeError(`jitter must be within [0, 1], got ${jitter}`);

    // Copied so a caller mutating its array later cannot change a policy already in use.
    this.delaysMs = [...delaysMs];
    this.maxRetries = maxRetries;
    this.jitter = jitter;
    this.maxRetryAfterMs = requireNonNegative('maxRetryAfterMs', options.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS);
    this.deadlineMs = options.deadlineMs === undefined ? undefined : requireNonNegative('deadlineMs', options.deadlineMs);
    this.budget = options.budget;
    this.signal = options.signal;
    this.shouldRetry = options.shouldRetry ?? ((error) => failureClassOf(error) === 'retryable');
    this.clock = options.clock ?? monotonicClock;
    this.random = options.random ?? Math.random;
  }

  /**
   * @param retryNumber 1 for the first retry.
   * @param startedAt this.clock's time when the first attempt began.
   */
  decide(error: unknown, retryNumber: number, startedAt: number): RetryDecision {
    if (this.signal?.aborted) return { retry: false, reason: 'aborted' };
    // A breaker rejection never reached upstream; retrying it would only wait out the breaker, whatever shouldRetry says.
    if (error instanceof CircuitOpenError || !this.shouldRetry(error)) return { retry: false, reason: 'not_retryable' };
    if (retryNumber > this.maxRetries) return { retry: false, reason: 'max_retries' };

    const delayMs = this.delayFor(error, retryNumber);
    if (this.deadlineMs !== undefined && this.clock.now() + delayMs > startedAt + this.deadlineMs) {
      return { retry: false, reason: 'deadline' };
    }
    // Last, so a retry refused for any other reason never spends the shared budget.
    if (this.budget && !this.budget.tryAcquireRetry()) return { retry: false, reason: 'budget' };
    return { retry: true, delayMs };
  }

  private delayFor(error: unknown, retryNumber: number): number {
    const retryAfter = retryAfterOf(error);
    if (retryAfter !== undefined) {
      // The server knows when it can take us again: never come back sooner than it asked (unless it asked
      // for more than our cap), and only spread upwards.
      const spread = Math.min(this.jitter, MAX_RETRY_AFTER_SPREAD) * this.random();
      return Math.min(Math.ceil(retryAfter) + Math.round(retryAfter * spread), this.maxRetryAfterMs);
    }
    const index = Math.min(Math.max(retryNumber, 1), this.delaysMs.length) - 1;
    const base = this.delaysMs[index] ?? 0;
    // Uniform over [base × (1 − jitter), base × (1 + jitter)) so clients that failed together do not retry together.
    return Math.round(base * (1 - this.jitter + 2 * this.jitter * this.random()));
  }
}

function requireNonNegative(name: string, value: number): number {
  if (!(Number.isFinite(value) && value >= 0)) throw new RangeError(`${name} must be a finite number >= 0, got ${value}`);
  return value;
}
