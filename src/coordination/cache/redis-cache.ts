import { Redis } from 'ioredis';
import { normalizeTtl } from './memory-cache.js';
import type { CachedAnswer, ResponseCache, ResponseCacheStats } from './types.js';

export const DEFAULT_REDIS_PREFIX = 'claude-chat:cache:';

export interface RedisResponseCacheOptions {
  /** redis://[user:pass@]host:port[/db] */
  url: string;
  /** Namespace of every key this cache writes (and the only keys clear() touches). */
  prefix?: string;
  /** TCP connect timeout (ms). Default 500. */
  connectTimeoutMs?: number;
  /** Per-command timeout (ms). Default 500. */
  commandTimeoutMs?: number;
  /** Cap of the reconnect backoff (ms); the client keeps reconnecting forever. Default 1000. */
  maxReconnectDelayMs?: number;
  /** Receives every client 'error' event (they are otherwise swallowed; never unhandled). */
  onClientError?: (error: Error) => void;
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
  #closed = false;
  /** Settles when the first connection attempt succeeds or fails; undefined afterwards. */
  #initialConnect: Promise<void> | undefined;

  constructor(options: RedisResponseCacheOptions) {
    const {
      url,
      prefix = DEFAULT_REDIS_PREFIX,
      connectTimeoutMs = 500,
      commandTimeoutMs = 500,
      maxReconnectDelayMs = 1000,
      onClientError,
    } = options;
    this.prefix = prefix;
    this.connectTimeoutMs = connectTimeoutMs;
    this.client = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      connectTimeout: connectTimeoutMs,
      commandTimeout: commandTimeoutMs,
      // close() tears the socket down at once instead of leaving ioredis' 2 s "graceful end" timer behind.
      disconnectTimeout: 0,
      retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 16), maxReconnectDelayMs),
    });
    this.client.on('error', (error: Error) => {
      onClientError?.(error);
    });
    this.#initialConnect = this.client.connect().then(
      () => undefined,
      () => undefined, // reported through 'error'; the client keeps retrying per retryStrategy
    );
    void this.#initialConnect.then(() => {
      this.#initialConnect = undefined;
    });
  }

  /** True when the client has a ready connection. */
  get isReady(): boolean {
    return this.client.status === 'ready';
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** Waits (bounded by connectTimeoutMs) for the first connection attempt, so early calls are not spurious failures. */
  async #awaitInitialConnect(): Promise<void> {
    const pending = this.#initialConnect;
    if (pending === undefined || this.client.status === 'ready') return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        pending,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, this.connectTimeoutMs);
        }),
      ]);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('RedisResponseCache is closed');
  }

  async getOrThrow(key: string): Promise<CachedAnswer | undefined> {
    this.#assertOpen();
    await this.#awaitInitialConnect();
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
    await this.#awaitInitialConnect();
    await this.client.set(this.prefix + key, json, 'PX', ttl);
    return true;
  }

  /** Deletes every key under the prefix with SCAN + UNLINK (never KEYS / FLUSHDB). */
  async clearOrThrow(): Promise<number> {
    this.#assertOpen();
    await this.#awaitInitialConnect();
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
    await this.#awaitInitialConnect();
    await this.client.ping();
  }

  /**
   * Counts the entries and value bytes under the prefix (SCAN + STRLEN) and remembers them for stats(),
   * which is synchronous and therefore reports the last refreshed figures.
   */
  async refreshStatsOrThrow(): Promise<{ entries: number; bytes: number }> {
    this.#assertOpen();
    await this.#awaitInitialConnect();
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
    if (this.#closed) return;
    this.#closed = true;
    const client = this.client;
    if (client.status !== 'end') {
      let onEnd: (() => void) | undefined;
      let timer: NodeJS.Timeout | undefined;
      const ended = new Promise<void>((resolve) => {
        onEnd = resolve;
        client.once('end', onEnd);
      });
      client.disconnect(false);
      // With a live socket the client reaches 'end' promptly. While it waits to reconnect there is no
      // socket to close and no 'end' follows: the grace period lets ioredis' zero-delay timer run.
      await Promise.race([ended, new Promise<void>((resolve) => (timer = setTimeout(resolve, 50)))]);
      clearTimeout(timer);
      if (onEnd !== undefined) client.off('end', onEnd);
    }
    if (this.#initialConnect !== undefined) await this.#initialConnect;
  }
}
