import { MemoryRateLimiter } from './memory-limiter.js';
import { RedisRateLimiter } from './redis-limiter.js';
import { assertLimitArgs } from './sliding-window.js';
import type {
  RateLimitBackendStatus,
  RateLimitClock,
  RateLimitDecision,
  RateLimiter,
  RateLimitLogFn,
} from './types.js';

export interface ResilientRateLimiterOptions {
  redis: RedisRateLimiter;
  memory: MemoryRateLimiter;
  /**
   * While degraded with a connected client (e.g. after command timeouts), Redis is retried by the next
   * hit once this long has passed since the last failure. Reconnections recover immediately via the
   * client's 'ready' event. Default 1000 ms.
   */
  retryIntervalMs?: number;
  log?: RateLimitLogFn;
  /** Clock of the retry interval and the degraded duration. Default `Date`. */
  clock?: RateLimitClock;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Redis first, memory as fallback. Any Redis failure is absorbed (counted in `backendErrors`): the
 * limiter reports `redis_degraded`, logs `rate_limit_backend_degraded`, and enforces the limits from the
 * in-process memory limiter (per instance) until Redis is healthy again, which it logs as
 * `rate_limit_backend_recovered`. Counts taken in memory during an outage are not copied to Redis.
 * Never rejects for backend failures; holds no timers of its own.
 */
export class ResilientRateLimiter implements RateLimiter {
  readonly redis: RedisRateLimiter;
  readonly memory: MemoryRateLimiter;
  readonly #retryIntervalMs: number;
  readonly #log: RateLimitLogFn | undefined;
  readonly #clock: RateLimitClock;
  #degraded = false;
  #degradedAt = 0;
  #lastFailureAt = 0;
  #closed = false;
  #backendErrors = 0;
  #lastClientError: string | undefined;
  readonly #onReady = () => this.#recover('reconnected');
  readonly #onClientError = (error: Error) => {
    this.#lastClientError = error.message;
  };
  /** A lost (or never established) connection is one absorbed backend error. */
  readonly #onClose = () => {
    if (this.#closed) return;
    if (this.#degraded) {
      this.#lastFailureAt = this.#clock.now();
      return;
    }
    this.#backendErrors += 1;
    this.#degrade('connection_lost', this.#lastClientError ?? 'connection closed');
  };

  constructor(options: ResilientRateLimiterOptions) {
    this.redis = options.redis;
    this.memory = options.memory;
    this.#retryIntervalMs = options.retryIntervalMs ?? 1000;
    this.#log = options.log;
    this.#clock = options.clock ?? Date;
    this.redis.client.on('error', this.#onClientError);
    this.redis.client.on('ready', this.#onReady);
    this.redis.client.on('close', this.#onClose);
  }

  backend(): RateLimitBackendStatus {
    return this.#degraded || this.#closed ? 'redis_degraded' : 'redis';
  }

  /** Redis failures absorbed so far. */
  get backendErrors(): number {
    return this.#backendErrors;
  }

  #emit(event: string, fields: Record<string, unknown>): void {
    try {
      this.#log?.(event, fields);
    } catch {
      // a failing logger must not break rate limiting
    }
  }

  #degrade(reason: string, error: unknown): void {
    if (this.#closed) return;
    this.#lastFailureAt = this.#clock.now();
    if (this.#degraded) return;
    this.#degraded = true;
    this.#degradedAt = this.#lastFailureAt;
    this.#emit('rate_limit_backend_degraded', { reason, fallback: 'memory', error: errorMessage(error) });
  }

  #recover(reason: string): void {
    if (this.#closed || !this.#degraded) return;
    this.#degraded = false;
    this.#lastClientError = undefined;
    this.#emit('rate_limit_backend_recovered', { reason, degradedMs: this.#clock.now() - this.#degradedAt });
  }

  /** Whether this hit should go to Redis. */
  #useRedis(): boolean {
    if (this.#closed) return false;
    if (!this.#degraded) return true;
    return this.redis.isReady && this.#clock.now() - this.#lastFailureAt >= this.#retryIntervalMs;
  }

  async hit(key: string, limit: number, windowMs: number): Promise<RateLimitDecision> {
    assertLimitArgs(limit, windowMs);
    if (this.#useRedis()) {
      try {
        const { allowed, remaining, resetMs } = await this.redis.hitOrThrow(key, limit, windowMs);
        this.#recover('probe_succeeded');
        return { allowed, limit, remaining, resetMs };
      } catch (error) {
        if (!this.#closed) {
          this.#backendErrors += 1;
          this.#degrade('operation_failed', error);
        }
      }
    }
    return this.memory.hitSync(key, limit, windowMs);
  }

  /** Closes Redis and forgets the memory counters; idempotent. Later hits are served from memory. */
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

export interface CreateRateLimiterOptions {
  /** When set, Redis backs the limiter (with a memory fallback); otherwise an in-process memory limiter. */
  redisUrl?: string;
  log?: RateLimitLogFn;
  clock?: RateLimitClock;
  /** Redis key prefix. Default `claude-chat:rl:`. */
  redisPrefix?: string;
  /** Most keys the memory limiter tracks. Default 100,000. */
  maxKeys?: number;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  maxReconnectDelayMs?: number;
  retryIntervalMs?: number;
}

export function createRateLimiter(options: CreateRateLimiterOptions = {}): RateLimiter {
  const memory = new MemoryRateLimiter({ clock: options.clock, maxKeys: options.maxKeys });
  if (options.redisUrl === undefined || options.redisUrl === '') return memory;
  const redis = new RedisRateLimiter({
    url: options.redisUrl,
    prefix: options.redisPrefix,
    connectTimeoutMs: options.connectTimeoutMs,
    commandTimeoutMs: options.commandTimeoutMs,
    maxReconnectDelayMs: options.maxReconnectDelayMs,
  });
  return new ResilientRateLimiter({
    redis,
    memory,
    retryIntervalMs: options.retryIntervalMs,
    log: options.log,
    clock: options.clock,
  });
}
