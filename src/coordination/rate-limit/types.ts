/** One rate-limit decision; headers follow the IETF RateLimit draft plus Retry-After. */
export interface RateLimitDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Milliseconds until the window resets (when a rejected caller may try again). */
  resetMs: number;
}

export type RateLimitBackendStatus = 'memory' | 'redis' | 'redis_degraded';

export interface RateLimiter {
  /**
   * Counts one request for `key` (e.g. "chat:key-id" or "chat:ip:1.2.3.4") against `limit` per
   * `windowMs`, and says whether it is allowed. Never throws: a failing backend degrades to memory.
   * (A `limit` that is not a non-negative integer or a `windowMs` that is not a positive integer is a
   * programming error and rejects with a RangeError.)
   */
  hit(key: string, limit: number, windowMs: number): Promise<RateLimitDecision>;
  backend(): RateLimitBackendStatus;
  close(): Promise<void>;
}

/** Millisecond wall clock (epoch ms); injectable so tests can drive windows by hand. */
export interface RateLimitClock {
  now(): number;
}

/** Structured log callback (e.g. `(event, fields) => logger.warn(fields, event)`). */
export type RateLimitLogFn = (event: string, fields: Record<string, unknown>) => void;
