import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { FailFastRedisClient, type FailFastRedisClientOptions } from '../redis/fail-fast-client.js';
import { assertLimitArgs, decide, type WindowCounts } from './sliding-window.js';
import type { RateLimitBackendStatus, RateLimitDecision, RateLimiter } from './types.js';

export const DEFAULT_RATE_LIMIT_PREFIX = 'claude-chat:rl:';

/**
 * One atomic sliding-window hit. KEYS[1] = `<prefix><key>:` (the window start is appended);
 * ARGV = limit, windowMs. Uses the Redis server clock (TIME) so every instance agrees on the windows
 * whatever its own clock says. Only an admitted request is counted (INCR + PEXPIRE 2 windows, so the
 * counter outlives its window as the next window's "previous"). Returns
 * {allowed 0|1, current, previous, elapsedMs, pttl of the current counter, server time ms}.
 * The admission test uses the same arithmetic, in the same order, as sliding-window.ts.
 */
export const RATE_LIMIT_SCRIPT = `
if redis.replicate_commands then pcall(redis.replicate_commands) end
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local start = now - (now % window)
local currentKey = KEYS[1] .. string.format('%.0f', start)
local previousKey = KEYS[1] .. string.format('%.0f', start - window)
local current = tonumber(redis.call('GET', currentKey) or '0') or 0
local previous = tonumber(redis.call('GET', previousKey) or '0') or 0
local elapsed = now - start
local allowed = 0
if (previous * (window - elapsed)) / window + current + 1 <= limit then
  current = redis.call('INCR', currentKey)
  redis.call('PEXPIRE', currentKey, window * 2)
  allowed = 1
end
local ttl = redis.call('PTTL', currentKey)
return {allowed, current, previous, elapsed, ttl, now}
`;

const SCRIPT_SHA = createHash('sha1').update(RATE_LIMIT_SCRIPT).digest('hex');

export interface RedisRateLimitResult extends RateLimitDecision {
  /** Counter of the current window after this hit. */
  count: number;
  /** Counter of the previous window (weighted into the estimate). */
  previousCount: number;
  /** PTTL of the current window's counter in ms (-2 when it does not exist: nothing counted yet). */
  ttlMs: number;
  /** Redis server time (epoch ms) the decision was taken at. */
  serverTimeMs: number;
}

export interface RedisRateLimiterOptions extends FailFastRedisClientOptions {
  /** Namespace of the counters: `<prefix><key>:<windowStart>`. Default `claude-chat:rl:`. */
  prefix?: string;
}

function toInt(value: unknown): number {
  const n = typeof value === 'number' ? value : Number(value);
  return Number.isFinite(n) ? n : 0;
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}

/**
 * Sliding-window rate limiter kept in Redis, shared by every instance pointed at the same server.
 * Each hit is one script call (EVALSHA, falling back to EVAL when the server does not know the script).
 *
 * `hitOrThrow` surfaces Redis errors (used by ResilientRateLimiter to fall back to memory); `hit` never
 * throws and *fails open* on a Redis error (the request is allowed, counted in `backendErrors`) — use
 * ResilientRateLimiter to keep enforcing limits during an outage. A dead Redis fails fast (no offline
 * queue, short connect/command timeouts) while the client reconnects in the background with a capped
 * backoff.
 */
export class RedisRateLimiter implements RateLimiter {
  readonly client: Redis;
  readonly prefix: string;
  readonly connectTimeoutMs: number;
  #backendErrors = 0;
  readonly #connection: FailFastRedisClient;

  constructor(options: RedisRateLimiterOptions) {
    const { prefix = DEFAULT_RATE_LIMIT_PREFIX, ...connection } = options;
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

  /** Redis errors absorbed by `hit` (which then failed open). */
  get backendErrors(): number {
    return this.#backendErrors;
  }

  async #runScript(key: string, limit: number, windowMs: number): Promise<unknown> {
    const counterPrefix = `${this.prefix}${key}:`;
    try {
      return await this.client.evalsha(SCRIPT_SHA, 1, counterPrefix, limit, windowMs);
    } catch (error) {
      if (!isNoScript(error)) throw error;
      return await this.client.eval(RATE_LIMIT_SCRIPT, 1, counterPrefix, limit, windowMs);
    }
  }

  /** Counts one request atomically in Redis; rejects on any Redis error (or RangeError for bad arguments). */
  async hitOrThrow(key: string, limit: number, windowMs: number): Promise<RedisRateLimitResult> {
    assertLimitArgs(limit, windowMs);
    if (this.#connection.isClosed) throw new Error('RedisRateLimiter is closed');
    await this.#connection.awaitInitialConnect();
    const reply = await this.#runScript(key, limit, windowMs);
    if (!Array.isArray(reply) || reply.length < 6) throw new Error('unexpected rate-limit script reply');
    const [allowedFlag, current, previous, elapsed, ttl, now] = reply.map(toInt) as [
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    const allowed = allowedFlag === 1;
    const counts: WindowCounts = { current, previous, elapsedMs: elapsed };
    return {
      ...decide(counts, allowed, limit, windowMs),
      count: current,
      previousCount: previous,
      ttlMs: ttl,
      serverTimeMs: now,
    };
  }

  /**
   * Never rejects for Redis errors: they fail open (allowed, `remaining` = limit - 1) and are counted in
   * `backendErrors`. Prefer ResilientRateLimiter, which falls back to in-process limits instead.
   */
  async hit(key: string, limit: number, windowMs: number): Promise<RateLimitDecision> {
    assertLimitArgs(limit, windowMs);
    try {
      const { allowed, remaining, resetMs } = await this.hitOrThrow(key, limit, windowMs);
      return { allowed, limit, remaining, resetMs };
    } catch {
      this.#backendErrors += 1;
      return { allowed: limit > 0, limit, remaining: Math.max(0, limit - 1), resetMs: windowMs };
    }
  }

  /** Round-trips a PING. */
  async pingOrThrow(): Promise<void> {
    if (this.#connection.isClosed) throw new Error('RedisRateLimiter is closed');
    await this.#connection.awaitInitialConnect();
    await this.client.ping();
  }

  backend(): RateLimitBackendStatus {
    return 'redis';
  }

  /** Closes the connection immediately and stops reconnecting; leaves no timers or sockets. Idempotent. */
  async close(): Promise<void> {
    await this.#connection.close();
  }
}
