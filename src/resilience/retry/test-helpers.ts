import type { FailureClass } from '../outcome.js';

/** An upstream-like failure carrying the fields the resilience layer reads. */
export class FakeUpstreamError extends Error {
  constructor(
    readonly errorType = 'overloaded_error',
    readonly failureClass: FailureClass = 'retryable',
    readonly retryAfterMs?: number,
  ) {
    super(errorType);
    this.name = 'FakeUpstreamError';
  }
}

/** A hand-moved clock for tests that need no timers. */
export function manualClock(start = 0) {
  let now = start;
  return {
    now: () => now,
    advance(ms: number) {
      now += ms;
    },
  };
}

/** Settles into a plain record so a rejection is never unhandled while fake time is moved. */
export function capture<T>(promise: Promise<T>) {
  const state: { settled: 'pending' | 'resolved' | 'rejected'; value?: T; reason?: unknown } = { settled: 'pending' };
  promise.then(
    (value) => {
      state.settled = 'resolved';
      state.value = value;
    },
    (reason: unknown) => {
      state.settled = 'rejected';
      state.reason = reason;
    },
  );
  return state;
}
