import { createRequire } from 'node:module';
import type * as IORedis from 'ioredis';
import type { Redis } from 'ioredis';

/** ioredis is loaded on first use: an instance without REDIS_URL never pays its ~10 MB of memory. */
const requireModule = createRequire(import.meta.url);
function redisClass(): typeof Redis {
  return (requireModule('ioredis') as typeof IORedis).Redis;
}

export interface FailFastRedisClientOptions {
  /** redis://[user:pass@]host:port[/db] */
  url: string;
  /** TCP connect timeout (ms). Default 500. */
  connectTimeoutMs?: number;
  /** Per-command timeout (ms). Default 500. */
  commandTimeoutMs?: number;
  /** Cap of the reconnect backoff (ms); the client keeps reconnecting forever. Default 1000. */
  maxReconnectDelayMs?: number;
  /** Receives every client 'error' event (they are otherwise swallowed; never unhandled). */
  onClientError?: (error: Error) => void;
}

/**
 * An ioredis client set up to fail fast: no offline queue, one retry per request, short connect/command
 * timeouts, while it keeps reconnecting in the background with a capped backoff. Connects at once;
 * `awaitInitialConnect()` lets the first commands wait (bounded) for that attempt. Client 'error' events
 * are forwarded to `onClientError` and never go unhandled.
 */
export class FailFastRedisClient {
  readonly client: Redis;
  readonly connectTimeoutMs: number;
  #closed = false;
  /** Settles when the first connection attempt succeeds or fails; undefined afterwards. */
  #initialConnect: Promise<void> | undefined;

  constructor(options: FailFastRedisClientOptions) {
    const { url, connectTimeoutMs = 500, commandTimeoutMs = 500, maxReconnectDelayMs = 1000, onClientError } = options;
    this.connectTimeoutMs = connectTimeoutMs;
    this.client = new (redisClass())(url, {
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
  async awaitInitialConnect(): Promise<void> {
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
