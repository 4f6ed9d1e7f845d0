import { admits, assertLimitArgs, decide, windowStartOf, type WindowCounts } from './sliding-window.js';
import type { RateLimitBackendStatus, RateLimitClock, RateLimitDecision, RateLimiter } from './types.js';

export const DEFAULT_MAX_KEYS = 100_000;
/** Expired entries examined (from the least recently used end) per hit; keeps pruning O(1) amortised. */
const PRUNE_BATCH = 16;

export interface MemoryRateLimiterOptions {
  /** Epoch-ms clock. Default `Date`. */
  clock?: RateLimitClock;
  /** Most keys tracked at once; beyond it the least recently hit key is evicted. Default 100,000. */
  maxKeys?: number;
}

interface Entry {
  windowMs: number;
  windowStart: number;
  current: number;
  previous: number;
}

/**
 * In-process sliding-window counter (see sliding-window.ts), one entry per key. No timers: entries whose
 * two windows have both passed are pruned lazily on later hits, and the number of keys is capped (the
 * least recently hit key is evicted first). Counts are per process, so N instances each allow `limit`.
 */
export class MemoryRateLimiter implements RateLimiter {
  readonly maxKeys: number;
  readonly #clock: RateLimitClock;
  /** Insertion order is last-hit order: every hit moves its key to the end. */
  readonly #entries = new Map<string, Entry>();

  constructor(options: MemoryRateLimiterOptions = {}) {
    const { clock = Date, maxKeys = DEFAULT_MAX_KEYS } = options;
    if (!Number.isSafeInteger(maxKeys) || maxKeys < 1) throw new RangeError('maxKeys must be a positive integer');
    this.#clock = clock;
    this.maxKeys = maxKeys;
  }

  /** Number of keys currently tracked (expired ones may linger until pruned). */
  get size(): number {
    return this.#entries.size;
  }

  async hit(key: string, limit: number, windowMs: number): Promise<RateLimitDecision> {
    return this.hitSync(key, limit, windowMs);
  }

  /** Synchronous hit, used by the resilient limiter. Throws only a RangeError for invalid arguments. */
  hitSync(key: string, limit: number, windowMs: number): RateLimitDecision {
    assertLimitArgs(limit, windowMs);
    let now = this.#clock.now();
    this.#prune(now);

    let entry = this.#entries.get(key);
    if (entry !== undefined) this.#entries.delete(key);
    let windowStart = windowStartOf(now, windowMs);
    if (entry === undefined || entry.windowMs !== windowMs) {
      entry = { windowMs, windowStart, current: 0, previous: 0 };
    } else if (windowStart < entry.windowStart) {
      // The clock went backwards: stay in the window already counted rather than resetting it.
      windowStart = entry.windowStart;
      now = windowStart;
    } else if (windowStart === entry.windowStart + windowMs) {
      entry.previous = entry.current;
      entry.current = 0;
      entry.windowStart = windowStart;
    } else if (windowStart > entry.windowStart) {
      entry.previous = 0;
      entry.current = 0;
      entry.windowStart = windowStart;
    }
    this.#entries.set(key, entry);
    this.#evictOverflow();

    const before: WindowCounts = { current: entry.current, previous: entry.previous, elapsedMs: now - windowStart };
    const allowed = admits(before, limit, windowMs);
    if (allowed) entry.current += 1;
    return decide({ ...before, current: entry.current }, allowed, limit, windowMs);
  }

  backend(): RateLimitBackendStatus {
    return 'memory';
  }

  /** Forgets every counter. Idempotent; the limiter stays usable (it holds no resources). */
  async close(): Promise<void> {
    this.#entries.clear();
  }

  /** Drops expired entries from the least recently hit end, stopping at the first live one. */
  #prune(now: number): void {
    let examined = 0;
    for (const [key, entry] of this.#entries) {
      if (examined++ >= PRUNE_BATCH) break;
      if (now < entry.windowStart + 2 * entry.windowMs) break;
      this.#entries.delete(key);
    }
  }

  #evictOverflow(): void {
    while (this.#entries.size > this.maxKeys) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) return;
      this.#entries.delete(oldest.value);
    }
  }
}
