/** Milliseconds from a monotonic source; injectable so tests can move time by hand. */
export interface Clock {
  now(): number;
}

/** performance.now() never jumps backwards when the wall clock is adjusted. */
export const monotonicClock: Clock = { now: () => performance.now() };
