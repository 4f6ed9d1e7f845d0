import type { Clock } from '../clock.js';

export interface RetryAttemptInfo {
  /** 1 for the first retry. */
  attempt: number;
  delayMs: number;
  /** The error's errorType / name, for the `reconnection_attempt` log. */
  reason: string;
  error: unknown;
}

export interface RetryOptions {
  /** Delay before retry n is delaysMs[n-1] (the last value repeats). Default 1, 2, 5, 10, 30, 60 s. */
  delaysMs?: readonly number[];
  /** Retries after the first attempt; 0 means none. Default 6. */
  maxRetries?: number;
  /** Each delay is drawn uniformly from [delay × (1 − jitter), delay × (1 + jitter)]. Default 0.2. */
  jitter?: number;
  /** A retry-after longer than this is capped to it. Default 60 s. */
  maxRetryAfterMs?: number;
  /** No retry starts (or sleeps) past this many ms after the first attempt began. Default: none. */
  deadlineMs?: number;
  /** Shared budget limiting retries to a share of calls. */
  budget?: RetryBudgetLike;
  /** Aborting ends a sleep at once and stops retrying. */
  signal?: AbortSignal;
  /** Default: retry only errors classified retryable (never breaker rejections, client errors, aborts). */
  shouldRetry?: (error: unknown) => boolean;
  onRetry?: (info: RetryAttemptInfo) => void;
  clock?: Clock;
  /** Returns [0, 1); injectable for deterministic jitter in tests. */
  random?: () => number;
}

export interface RetryBudgetLike {
  /** Count one first attempt (a call). */
  recordCall(): void;
  /** Take one retry from the budget; false when the share is spent. */
  tryAcquireRetry(): boolean;
}
