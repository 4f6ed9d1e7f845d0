import { LRUCache } from 'lru-cache';
import type { CachedAnswer, ResponseCache, ResponseCacheStats } from './types.js';

export interface MemoryResponseCacheOptions {
  /** Maximum number of entries (LRU eviction beyond it). Default 1000. */
  maxEntries?: number;
  /** Maximum total size in bytes of the stored JSON values (LRU eviction beyond it). Default 16 MiB. */
  maxBytes?: number;
  /** Millisecond clock driving TTL expiry; only differences matter. Default `Date.now`. */
  clock?: () => number;
}

/** Normalises a TTL to a positive integer of milliseconds, or undefined when it cannot be stored. */
export function normalizeTtl(ttlMs: number): number | undefined {
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) return undefined;
  return Math.max(1, Math.ceil(ttlMs));
}

/**
 * In-process LRU response cache bounded by entry count and total bytes, with per-entry TTL.
 * Values are stored as their JSON text, so callers never share mutable objects with the cache and the
 * byte accounting is exact (UTF-8 length of the JSON).
 */
export class MemoryResponseCache implements ResponseCache {
  readonly maxEntries: number;
  readonly maxBytes: number;
  readonly #lru: LRUCache<string, string>;
  #hits = 0;
  #misses = 0;
  #sets = 0;

  constructor(options: MemoryResponseCacheOptions = {}) {
    const { maxEntries = 1000, maxBytes = 16 * 1024 * 1024, clock = Date.now } = options;
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError('maxEntries must be a positive integer');
    if (!Number.isInteger(maxBytes) || maxBytes < 1) throw new RangeError('maxBytes must be a positive integer');
    this.maxEntries = maxEntries;
    this.maxBytes = maxBytes;
    // lru-cache treats a start time of 0 as "no TTL", so the clock is rebased to start at 1.
    const origin = clock();
    this.#lru = new LRUCache<string, string>({
      max: maxEntries,
      maxSize: maxBytes,
      sizeCalculation: (json) => Math.max(1, Buffer.byteLength(json, 'utf8')),
      perf: { now: () => clock() - origin + 1 },
      // No timers at all: expiry is checked on access, and the clock is read on every check.
      ttlAutopurge: false,
      ttlResolution: 0,
      allowStale: false,
      updateAgeOnGet: false,
    });
  }

  async get(key: string): Promise<CachedAnswer | undefined> {
    return this.getSync(key);
  }

  /** Synchronous get, used by the resilient cache. */
  getSync(key: string): CachedAnswer | undefined {
    const json = this.#lru.get(key);
    if (json === undefined) {
      this.#misses += 1;
      return undefined;
    }
    try {
      const value = JSON.parse(json) as CachedAnswer;
      this.#hits += 1;
      return value;
    } catch {
      this.#lru.delete(key);
      this.#misses += 1;
      return undefined;
    }
  }

  async set(key: string, value: CachedAnswer, ttlMs: number): Promise<void> {
    this.setSync(key, value, ttlMs);
  }

  /** Synchronous set; returns whether the value was stored (false for a bad TTL or a value over maxBytes). */
  setSync(key: string, value: CachedAnswer, ttlMs: number): boolean {
    const ttl = normalizeTtl(ttlMs);
    let json: string | undefined;
    try {
      json = JSON.stringify(value);
    } catch {
      json = undefined;
    }
    if (ttl === undefined || json === undefined) {
      this.#lru.delete(key);
      return false;
    }
    // An entry larger than maxBytes is refused by lru-cache (and any older value of the key removed).
    this.#lru.set(key, json, { ttl });
    const stored = this.#lru.has(key);
    if (stored) this.#sets += 1;
    return stored;
  }

  async clear(): Promise<number> {
    return this.clearSync();
  }

  clearSync(): number {
    this.#lru.purgeStale();
    const removed = this.#lru.size;
    this.#lru.clear();
    return removed;
  }

  /** Number of live (non-expired) entries. */
  get size(): number {
    this.#lru.purgeStale();
    return this.#lru.size;
  }

  stats(): ResponseCacheStats {
    this.#lru.purgeStale();
    return {
      backend: 'memory',
      entries: this.#lru.size,
      bytes: this.#lru.calculatedSize,
      hits: this.#hits,
      misses: this.#misses,
      sets: this.#sets,
      backendErrors: 0,
    };
  }

  async close(): Promise<void> {
    this.#lru.clear();
  }
}
