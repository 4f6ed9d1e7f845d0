import { errorMessage, RedisBackendSwitch } from '../redis/backend-switch.js';
import { MemoryResponseCache } from './memory-cache.js';
import { RedisResponseCache } from './redis-cache.js';
import type { CachedAnswer, CacheBackendStatus, ResponseCache, ResponseCacheStats } from './types.js';

export type CacheLogFn = (event: string, fields: Record<string, unknown>) => void;

export interface ResilientResponseCacheOptions {
  redis: RedisResponseCache;
  memory: MemoryResponseCache;
  /**
   * While degraded with a connected client (e.g. after command timeouts), Redis is retried by the next
   * operation once this long has passed since the last failure. Reconnections recover immediately via
   * the client's 'ready' event. Default 1000 ms.
   */
  retryIntervalMs?: number;
  log?: CacheLogFn;
  clock?: () => number;
}

/**
 * Redis first, memory as fallback. Any Redis failure is absorbed (counted in `backendErrors`), the cache
 * reports `redis_degraded` and reads/writes go to the in-process memory cache until Redis is healthy
 * again. Reads that miss in Redis also consult memory, so answers stored during an outage keep serving
 * after recovery until they expire. Never throws; holds no timers of its own.
 */
export class ResilientResponseCache implements ResponseCache {
  readonly redis: RedisResponseCache;
  readonly memory: MemoryResponseCache;
  readonly #switch: RedisBackendSwitch;
  #hits = 0;
  #misses = 0;
  #sets = 0;

  constructor(options: ResilientResponseCacheOptions) {
    this.redis = options.redis;
    this.memory = options.memory;
    const redis = this.redis;
    this.#switch = new RedisBackendSwitch({
      client: redis.client,
      isReady: () => redis.isReady,
      now: options.clock ?? Date.now,
      retryIntervalMs: options.retryIntervalMs ?? 1000,
      log: options.log,
      events: { degraded: 'cache_backend_degraded', recovered: 'cache_backend_recovered' },
    });
  }

  get backend(): CacheBackendStatus {
    return this.#switch.degraded ? 'redis_degraded' : 'redis';
  }

  #redisFailed(operation: string, error: unknown): void {
    const fields: Record<string, unknown> = { operation };
    if (error !== undefined) fields.error = errorMessage(error);
    this.#switch.operationFailed(fields);
  }

  async get(key: string): Promise<CachedAnswer | undefined> {
    let value: CachedAnswer | undefined;
    if (this.#switch.shouldUseRedis()) {
      try {
        value = await this.redis.getOrThrow(key);
        this.#switch.recover('probe_succeeded');
      } catch (error) {
        this.#redisFailed('get', error);
      }
    }
    if (value === undefined && !this.#switch.closed) value = this.memory.getSync(key);
    if (value === undefined) this.#misses += 1;
    else this.#hits += 1;
    return value;
  }

  async set(key: string, value: CachedAnswer, ttlMs: number): Promise<void> {
    if (this.#switch.closed) return;
    if (this.#switch.shouldUseRedis()) {
      try {
        if (await this.redis.setOrThrow(key, value, ttlMs)) this.#sets += 1;
        this.#switch.recover('probe_succeeded');
        return;
      } catch (error) {
        this.#redisFailed('set', error);
        if (this.#switch.closed) return;
      }
    }
    if (this.memory.setSync(key, value, ttlMs)) this.#sets += 1;
  }

  /** Clears memory and, when reachable, the Redis prefix (best effort while degraded). */
  async clear(): Promise<number> {
    if (this.#switch.closed) return 0;
    let removed = this.memory.clearSync();
    if (this.#switch.shouldUseRedis()) {
      try {
        removed += await this.redis.clearOrThrow();
        this.#switch.recover('probe_succeeded');
      } catch (error) {
        this.#redisFailed('clear', error);
      }
    }
    return removed;
  }

  /** Refreshes the Redis entry/byte figures reported by stats() while healthy. Never throws. */
  async refreshStats(): Promise<void> {
    if (!this.#switch.shouldUseRedis()) return;
    try {
      await this.redis.refreshStatsOrThrow();
    } catch (error) {
      this.#redisFailed('stats', error);
    }
  }

  /** While healthy, entries/bytes are Redis's last refreshed figures; while degraded, memory's. */
  stats(): ResponseCacheStats {
    const source = this.#switch.degraded ? this.memory.stats() : this.redis.stats();
    return {
      backend: this.backend,
      entries: source.entries,
      bytes: source.bytes,
      hits: this.#hits,
      misses: this.#misses,
      sets: this.#sets,
      backendErrors: this.#switch.backendErrors,
    };
  }

  async close(): Promise<void> {
    if (!this.#switch.close()) return;
    await this.redis.close();
    await this.memory.close();
  }
}

export interface CreateResponseCacheOptions {
  /** When set, Redis backs the cache (with a memory fallback); otherwise an in-process memory cache. */
  redisUrl?: string;
  maxEntries?: number;
  maxBytes?: number;
  log?: CacheLogFn;
  /** Redis key prefix. Default `claude-chat:cache:`. */
  redisPrefix?: string;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  maxReconnectDelayMs?: number;
  retryIntervalMs?: number;
}

export function createResponseCache(options: CreateResponseCacheOptions): ResponseCache {
  const memory = new MemoryResponseCache({ maxEntries: options.maxEntries, maxBytes: options.maxBytes });
  if (options.redisUrl === undefined || options.redisUrl === '') return memory;
  const redis = new RedisResponseCache({
    url: options.redisUrl,
    prefix: options.redisPrefix,
    connectTimeoutMs: options.connectTimeoutMs,
    commandTimeoutMs: options.commandTimeoutMs,
    maxReconnectDelayMs: options.maxReconnectDelayMs,
  });
  return new ResilientResponseCache({ redis, memory, retryIntervalMs: options.retryIntervalMs, log: options.log });
}
