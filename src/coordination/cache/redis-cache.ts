import type { Redis } from 'ioredis';
import { FailFastRedisClient, type FailFastRedisClientOptions } from '../redis/fail-fast-client.js';
import { normalizeTtl } from './memory-cache.js';
import type { CachedAnswer, ResponseCache, ResponseCacheStats } from './types.js';

export const DEFAULT_REDIS_PREFIX = 'claude-chat:cache:';

export interface RedisResponseCacheOptions extends FailFastRedisClientOptions {
  /** Namespace of every key this cache writes (and the only keys clear() touches). */
  prefix?: string;
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

function isCachedAnswer(value: unknown): value is CachedAnswer {
  if (value === null || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  return typeof v.text === 'string' && typeof v.model === 'string' && Array.isArray(v.toolEvents);
}

/**
 * Response cache stored in Redis: `SET <prefix><key> <json> PX <ttl>`.
 *
 * The `*OrThrow` methods surface Redis errors (used by ResilientResponseCache to detect failures);
 * the ResponseCache methods never throw: an error becomes a miss / no-op and is counted in
 * `backendErrors`. A dead Redis fails fast (no offline queue, short connect/command timeouts) while the
 * client keeps reconnecting in the background with a capped backoff.
 */
export class RedisResponseCache implements ResponseCache {
  readonly client: Redis;
  readonly prefix: string;
  readonly connectTimeoutMs: number;
  #hits = 0;
  #misses = 0;
  #sets = 0;
  #backendErrors = 0;
  #entries = 0;
  #bytes = 0;
  readonly #connection: FailFastRedisClient;

  constructor(options: RedisResponseCacheOptions) {
    const { prefix = DEFAULT_REDIS_PREFIX, ...connection } = options;
    this.prefix = prefix;
    this.#connection = new FailFastRedisClient(connection);
    this.client = this.#connection.client;
    this.connectTimeoutMs = this.#connection.connectTimeoutMs;
  }

  /** True when the client has a ready connection. */
  get isReady(): boolean {
    return this.#connection.isReady;
  }

  get isClosed(): boolean {
    return this.#connection.isClosed;
  }

  #assertOpen(): void {
    if (this.#connection.isClosed) throw new Error('RedisResponseCache is closed');
  }

  async getOrThrow(key: string): Promise<CachedAnswer | undefined> {
    this.#assertOpen();
    await this.#connection.awaitInitialConnect();
    const json = await this.client.get(this.prefix + key);
    if (json === null) return undefined;
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch {
      return undefined;
    }
    return isCachedAnswer(value) ? value : undefined;
  }

  /** Stores the value; returns false (without touching Redis) for an unusable TTL or value. */
  async setOrThrow(key: string, value: CachedAnswer, ttlMs: number): Promise<boolean> {
    this.#assertOpen();
    const ttl = normalizeTtl(ttlMs);
    let json: string | undefined;
    try {
      json = JSON.stringify(value);
    } catch {
      json = undefined;
    }
    if (ttl === undefined || json === undefined) return false;
    await this.#connection.awaitInitialConnect();
    await this.client.set(this.prefix + key, json, 'PX', ttl);
    return true;
  }

  /** Deletes every key under the prefix with SCAN + UNLINK (never KEYS / FLUSHDB). */
  async clearOrThrow(): Promise<number> {
    this.#assertOpen();
    await this.#connection.awaitInitialConnect();
    const match = `${escapeGlob(this.prefix)}*`;
    let cursor = '0';
    let removed = 0;
    do {
      const [next, keys] = await this.client.scan(cursor, 'MATCH', match, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) removed += await this.client.unlink(...keys);
    } while (cursor !== '0');
    this.#entries = 0;
    this.#bytes = 0;
    return removed;
  }

  /** Round-trips a PING. */
  async pingOrThrow(): Promise<void> {
    this.#assertOpen();
    await this.#connection.awaitInitialConnect();
    await this.client.ping();
  }

  /**
   * Counts the entries and value bytes under the prefix (SCAN + STRLEN) and remembers them for stats(),
   * which is synchronous and therefore reports the last refreshed figures.
   */
  async refreshStatsOrThrow(): Promise<{ entries: number; bytes: number }> {
    this.#assertOpen();
    await this.#connection.awaitInitialConnect();
    const match = `${escapeGlob(this.prefix)}*`;
    let cursor = '0';
    let entries = 0;
    let bytes = 0;
    do {
      const [next, keys] = await this.client.scan(cursor, 'MATCH', match, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) {
        const pipeline = this.client.pipeline();
        for (const key of keys) pipeline.strlen(key);
        const results = (await pipeline.exec()) ?? [];
        for (const [error, length] of results) {
          if (error) throw error;
          if (typeof length === 'number' && length > 0) {
            entries += 1;
            bytes += length;
          }
        }
      }
    } while (cursor !== '0');
    this.#entries = entries;
    this.#bytes = bytes;
    return { entries, bytes };
  }

  async get(key: string): Promise<CachedAnswer | undefined> {
    try {
      const value = await this.getOrThrow(key);
      if (value === undefined) this.#misses += 1;
      else this.#hits += 1;
      return value;
    } catch {
      this.#backendErrors += 1;
      this.#misses += 1;
      return undefined;
    }
  }

  async set(key: string, value: CachedAnswer, ttlMs: number): Promise<void> {
    try {
      if (await this.setOrThrow(key, value, ttlMs)) this.#sets += 1;
    } catch {
      this.#backendErrors += 1;
    }
  }

  async clear(): Promise<number> {
    try {
      return await this.clearOrThrow();
    } catch {
      this.#backendErrors += 1;
      return 0;
    }
  }

  /** Best effort; never throws. */
  async refreshStats(): Promise<void> {
    try {
      await this.refreshStatsOrThrow();
    } catch {
      this.#backendErrors += 1;
    }
  }

  /** entries / bytes are the figures of the last refreshStats() (0 before). */
  stats(): ResponseCacheStats {
    return {
      backend: 'redis',
      entries: this.#entries,
      bytes: this.#bytes,
      hits: this.#hits,
      misses: this.#misses,
      sets: this.#sets,
      backendErrors: this.#backendErrors,
    };
  }

  /** Closes the connection immediately and stops reconnecting; leaves no timers or sockets. Idempotent. */
  async close(): Promise<void> {
    await this.#connection.close();
  }
}
