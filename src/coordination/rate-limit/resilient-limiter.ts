import { errorMessage, RedisBackendSwitch } from '../redis/backend-switch.js';
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
  readonly #switch: RedisBackendSwitch;

  constructor(options: ResilientRateLimiterOptions) {
    this.redis = options.redis;
    this.memory = options.memory;
    const redis = this.redis;
    const clock = options.clock ?? Date;
    this.#switch = new RedisBackendSwitch({
      client: redis.client,
      isReady: () => redis.isReady,
      now: () => clock.now(),
      retryIntervalMs: options.retryIntervalMs ?? 1000,
      log: options.log,
      events: { degraded: 'rate_limit_backend_degraded', recovered: 'rate_limit_backend_recovered' },
    });
  }

  backend(): RateLimitBackendStatus {
    return this.#switch.degraded || this.#switch.closed ? 'redis_degraded' : 'redis';
  }

  /** Redis failures absorbed so far. */
  get backendErrors(): number {
    return this.#switch.backendErrors;
  }

  async hit(key: string, limit: number, windowMs: number): Promise<RateLimitDecision> {
    assertLimitArgs(limit, windowMs);
    if (this.#switch.shouldUseRedis()) {
      try {
        const { allowed, remaining, resetMs } = await this.redis.hitOrThrow(key, limit, windowMs);
        this.#switch.recover('probe_succeeded');
        return { allowed, limit, remaining, resetMs };
      } catch (error) {
        this.#switch.operationFailed({ error: errorMessage(error) });
      }
    }
    return this.memory.hitSync(key, limit, windowMs);
  }

  /** Closes Redis and forgets the memory counters; idempotent. Later hits are served from memory. */
  async close(): Promise<void> {
    if (!this.#switch.close()) return;
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
