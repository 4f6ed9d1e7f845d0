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

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
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
  readonly #retryIntervalMs: number;
  readonly #log: CacheLogFn | undefined;
  readonly #clock: () => number;
  #degraded = false;
  #degradedAt = 0;
  #lastFailureAt = 0;
  #closed = false;
  #hits = 0;
  #misses = 0;
  #sets = 0;
  #backendErrors = 0;
  readonly #onReady = () => this.#recover('reconnected');
  #lastClientError: string | undefined;
  readonly #onClientError = (error: Error) => {
    this.#lastClientError = error.message;
  };
  /** A lost (or never established) connection is one absorbed backend error. */
  readonly #onClose = () => {
    if (this.#closed) return;
    if (this.#degraded) {
      this.#lastFailureAt = this.#clock();
      return;
    }
    this.#backendErrors += 1;
    this.#degrade('connection_lost', undefined, this.#lastClientError ?? 'connection closed');
  };

  constructor(options: ResilientResponseCacheOptions) {
    this.redis = options.redis;
    this.memory = options.memory;
    this.#retryIntervalMs = options.retryIntervalMs ?? 1000;
    this.#log = options.log;
    this.#clock = options.clock ?? Date.now;
    this.redis.client.on('error', this.#onClientError);
    this.redis.client.on('ready', this.#onReady);
    this.redis.client.on('close', this.#onClose);
  }

  get backend(): CacheBackendStatus {
    return this.#degraded ? 'redis_degraded' : 'redis';
  }

  #emit(event: string, fields: Record<string, unknown>): void {
    try {
      this.#log?.(event, fields);
    } catch {
      // a failing logger must not break the cache
    }
  }

  #degrade(reason: string, operation: string | undefined, error: unknown): void {
    if (this.#closed) return;
    this.#lastFailureAt = this.#clock();
    if (this.#degraded) return;
    this.#degraded = true;
    this.#degradedAt = this.#lastFailureAt;
    const fields: Record<string, unknown> = { reason, fallback: 'memory' };
    if (operation !== undefined) fields.operation = operation;
    if (error !== undefined) fields.error = errorMessage(error);
    this.#emit('cache_backend_degraded', fields);
  }

  #recover(reason: string): void {
    if (this.#closed || !this.#degraded) return;
    this.#degraded = false;
    this.#lastClientError = undefined;
    this.#emit('cache_backend_recovered', { reason, degradedMs: this.#clock() - this.#degradedAt });
  }

  #redisFailed(operation: string, error: unknown): void {
    if (this.#closed) return;
    this.#backendErrors += 1;
    this.#degrade('operation_failed', operation, error);
  }

  /** Whether this operation should go to Redis. */
  #useRedis(): boolean {
    if (this.#closed) return false;
    if (!this.#degraded) return true;
    return this.redis.isReady && this.#clock() - this.#lastFailureAt >= this.#retryIntervalMs;
  }

  async get(key: string): Promise<CachedAnswer | undefined> {
    let value: CachedAnswer | undefined;
    if (this.#useRedis()) {
      try {
        value = await this.redis.getOrThrow(key);
        this.#recover('probe_succeeded');
      } catch (error) {
        this.#redisFailed('get', error);
      }
    }
    if (value === undefined && !this.#closed) value = this.memory.getSync(key);
    if (value === undefined) this.#misses += 1;
    else this.#hits += 1;
    return value;
  }

  async set(key: string, value: CachedAnswer, ttlMs: number): Promise<void> {
    if (this.#closed) return;
    if (this.#useRedis()) {
      try {
        if (await this.redis.setOrThrow(key, value, ttlMs)) this.#sets += 1;
        this.#recover('probe_succeeded');
        return;
      } catch (error) {
        this.#redisFailed('set', error);
        if (this.#closed) return;
      }
    }
    if (this.memory.setSync(key, value, ttlMs)) this.#sets += 1;
  }

  /** Clears memory and, when reachable, the Redis prefix (best effort while degraded). */
  async clear(): Promise<number> {
    if (this.#closed) return 0;
    let removed = this.memory.clearSync();
    if (this.#useRedis()) {
      try {
        removed += await this.redis.clearOrThrow();
        this.#recover('probe_succeeded');
      } catch (error) {
        this.#redisFailed('clear', error);
      }
    }
    return removed;
  }

  /** Refreshes the Redis entry/byte figures reported by stats() while healthy. Never throws. */
  async refreshStats(): Promise<void> {
    if (!this.#useRedis()) return;
    try {
      await this.redis.refreshStatsOrThrow();
    } catch (error) {
      this.#redisFailed('stats', error);
    }
  }

  /** While healthy, entries/bytes are Redis's last refreshed figures; while degraded, memory's. */
  stats(): ResponseCacheStats {
    const source = this.#degraded ? this.memory.stats() : this.redis.stats();
    return {
      backend: this.backend,
      entries: source.entries,
      bytes: source.bytes,
      hits: this.#hits,
      misses: this.#misses,
      sets: this.#sets,
      backendErrors: this.#backendErrors,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.redis.client.off('ready', this.#onReady);
    this.redis.client.off('close', this.#onClose);
    this.redis.client.off('error', this.#onClientError);
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
