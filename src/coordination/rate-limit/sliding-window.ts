import type { RateLimitDecision } from './types.js';

/**
 * Sliding-window counter shared by the memory and Redis limiters (the Lua script mirrors it).
 *
 * Windows are aligned: `windowStart = floor(now / windowMs) * windowMs`. The request rate is estimated as
 * `previous * (windowMs - elapsed) / windowMs + current`, i.e. the previous window's count weighted by
 * how much of it still overlaps the sliding window ending now. A request is allowed when
 * `estimate + 1 <= limit`; only allowed requests are counted, so a client that keeps retrying while
 * rejected is not locked out for longer.
 */
export interface WindowCounts {
  /** Allowed requests counted in the current window (including this one when it was allowed). */
  current: number;
  /** Allowed requests counted in the previous window. */
  previous: number;
  /** Milliseconds since the current window started, in [0, windowMs). */
  elapsedMs: number;
}

export function windowStartOf(now: number, windowMs: number): number {
  return Math.floor(now / windowMs) * windowMs;
}

/** Weighted request count of the sliding window ending now. Same operation order as the Lua script. */
export function slidingEstimate(counts: WindowCounts, windowMs: number): number {
  return (counts.previous * (windowMs - counts.elapsedMs)) / windowMs + counts.current;
}

/** Whether one more request fits, given the counts before counting it. */
export function admits(counts: WindowCounts, limit: number, windowMs: number): boolean {
  return slidingEstimate(counts, windowMs) + 1 <= limit;
}

/**
 * Milliseconds until one more request would be admitted, assuming no other request is counted
 * meanwhile (at least 1). Used as `resetMs` / Retry-After of a rejected request.
 */
export function retryAfterMs(counts: WindowCounts, limit: number, windowMs: number): number {
  const { current, previous, elapsedMs } = counts;
  const untilWindowEnd = windowMs - elapsedMs;
  if (limit < 1) return Math.max(1, untilWindowEnd); // nothing is ever admitted; report the window end
  if (current + 1 <= limit) {
    // Blocked by the previous window's weight: wait until enough of it has slid out (within this window).
    if (previous <= 0) return 1;
    const wait = untilWindowEnd - (windowMs * (limit - current - 1)) / previous;
    return Math.min(untilWindowEnd, Math.max(1, Math.ceil(wait)));
  }
  // This window alone is full: in the next one it becomes the previous window, admitting one more
  // request once `current * (windowMs - e) / windowMs + 1 <= limit`.
  const intoNext = windowMs * (1 - (limit - 1) / current);
  return Math.max(1, untilWindowEnd + Math.ceil(intoNext));
}

/**
 * The decision for counts read after the (possibly skipped) increment. `resetMs` is the time until the
 * current window ends for an allowed request, and the time until one more request would be admitted
 * for a rejected one (suitable for Retry-After).
 */
export function decide(counts: WindowCounts, allowed: boolean, limit: number, windowMs: number): RateLimitDecision {
  const remaining = Math.max(0, Math.floor(limit - slidingEstimate(counts, windowMs)));
  const resetMs = allowed ? Math.max(1, windowMs - counts.elapsedMs) : retryAfterMs(counts, limit, windowMs);
  return { allowed, limit, remaining, resetMs };
}

/** Rejects (as a RangeError) limits / windows the counters cannot represent; these are programming errors. */
export function assertLimitArgs(limit: number, windowMs: number): void {
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new RangeError(`rate limit must be a non-negative integer (got ${String(limit)})`);
  }
  if (!Number.isSafeInteger(windowMs) || windowMs < 1) {
    throw new RangeError(`rate limit window must be a positive integer of milliseconds (got ${String(windowMs)})`);
  }
}
