import type { FailureClass } from './outcome.js';

/** A call refused by an open (or saturated half-open) breaker. Never retried: it did not reach upstream. */
export class CircuitOpenError extends Error {
  readonly failureClass: FailureClass = 'non_retryable';
  readonly errorType = 'circuit_open';

  constructor(
    readonly circuitName: string,
    /** How long until the breaker lets a probe through; 0 when half-open probes are merely busy. */
    readonly retryAfterMs: number,
  ) {
    super(`Circuit '${circuitName}' is open; retry in ${Math.ceil(retryAfterMs / 1000)} s`);
    this.name = 'CircuitOpenError';
  }
}

export type TimerKind = 'connect' | 'first_token' | 'idle' | 'total';

/** An upstream call ended by one of the four timers. Retryable: a fresh attempt may well succeed. */
export class UpstreamTimeoutError extends Error {
  readonly failureClass: FailureClass = 'retryable';
  readonly errorType: string;

  constructor(
    readonly timer: TimerKind,
    readonly limitMs: number,
  ) {
    super(`${TIMER_DESCRIPTIONS[timer]} after ${limitMs} ms`);
    this.name = 'UpstreamTimeoutError';
    this.errorType = `${timer}_timeout`;
  }
}

const TIMER_DESCRIPTIONS: Record<TimerKind, string> = {
  connect: 'No response headers from upstream',
  first_token: 'No first token from upstream',
  idle: 'Upstream stream went silent',
  total: 'Upstream call exceeded its total time',
};
