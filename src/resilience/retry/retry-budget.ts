import { monotonicClock, type Clock } from '../clock.js';
import type { RetryBudgetLike } from './types.js';

export interface RetryBudgetOptions {
  /** Retries allowed per call in the window, on top of the minimum. */
  ratio?: number;
  /** Retries always allowed per window, so a quiet service can still recover from a blip. */
  minRetriesPerWindow?: number;
  windowMs?: number;
  clock?: Clock;
}

export interface RetryBudgetStats {
  calls: number;
  retries: number;
  /** Retries the window allows in total: minRetriesPerWindow + ratio × calls. A retry is free while retries < allowed. */
  allowed: number;
}

/** The window is cut into this many buckets; old ones drop off as a whole, so it slides in steps of windowMs / 10. */
const BUCKET_COUNT = 10;

interface Bucket {
  /** Which bucketMs-long slice of time the counts belong to; a stale one is reset on reuse. */
  epoch: number;
  calls: number;
  retries: number;
}

/**
 * Caps retries to a share of recent calls so that, when upstream is down for everyone, retries do not
 * multiply the load on it. Counts expire lazily as the clock moves; no timers are kept.
 */
export class RetryBudget implements RetryBudgetLike {
  private readonly ratio: number;
  private readonly minRetriesPerWindow: number;
  private readonly bucketMs: number;
  private readonly clock: Clock;
  private readonly buckets: Bucket[];

  constructor({ ratio = 0.2, minRetriesPerWindow = 10, windowMs = 10_000, clock = monotonicClock }: RetryBudgetOptions = {}) {
    if (!(Number.isFinite(ratio) && ratio >= 0)) throw new RangeError(`ratio must be a finite number >= 0, got ${ratio}`);
    if (!(Number.isFinite(minRetriesPerWindow) && minRetriesPerWindow >= 0)) {
      throw new RangeError(`minRetriesPerWindow must be a finite number >= 0, got ${minRetriesPerWindow}`);
    }
    if (!(Number.isFinite(windowMs) && windowMs > 0)) throw new RangeError(`windowMs must be a finite number > 0, got ${windowMs}`);
    this.ratio = ratio;
    this.minRetriesPerWindow = minRetriesPerWindow;
    this.bucketMs = windowMs / BUCKET_COUNT;
    this.clock = clock;
    this.buckets = Array.from({ length: BUCKET_COUNT }, () => ({ epoch: -Infinity, calls: 0, retries: 0 }));
  }

  recordCall(): void {
    this.currentBucket().calls++;
  }

  tryAcquireRetry(): boolean {
    const { retries, allowed } = this.stats();
    if (retries >= allowed) return false;
    this.currentBucket().retries++;
    return true;
  }

  stats(): RetryBudgetStats {
    const current = this.epochNow();
    let calls = 0;
    let retries = 0;
    for (const bucket of this.buckets) {
      if (bucket.epoch > current - BUCKET_COUNT) {
        calls += bucket.calls;
        retries += bucket.retries;
      }
    }
    return { calls, retries, allowed: this.minRetriesPerWindow + this.ratio * calls };
  }

  private epochNow(): number {
    return Math.floor(this.clock.now() / this.bucketMs);
  }

  private currentBucket(): Bucket {
    const epoch = this.epochNow();
    // Euclidean modulo: a clock may start at a negative time.
    const bucket = this.buckets[((epoch % BUCKET_COUNT) + BUCKET_COUNT) % BUCKET_COUNT] as Bucket;
    if (bucket.epoch !== epoch) {
      bucket.epoch = epoch;
      bucket.calls = 0;
      bucket.retries = 0;
    }
    return bucket;
  }
}
