import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectAdminClient, startRedisServer, type RedisServerHandle } from '../../../test/support/redis-server.js';
import { RATE_LIMIT_SCRIPT, RedisRateLimiter, type RedisRateLimiterOptions } from './redis-limiter.js';

let server: RedisServerHandle;
let admin: Redis;
const opened: RedisRateLimiter[] = [];

function limiter(options: Partial<RedisRateLimiterOptions> = {}): RedisRateLimiter {
  const created = new RedisRateLimiter({ url: server.url, connectTimeoutMs: 300, commandTimeoutMs: 300, ...options });
  opened.push(created);
  return created;
}

const uniqueKey = (name: string) => `${name}-${randomUUID()}`;

beforeAll(async () => {
  server = await startRedisServer();
  admin = await connectAdminClient(server.url);
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((l) => l.close()));
});

afterAll(async () => {
  admin?.disconnect();
  await server?.stop();
});

describe('RedisRateLimiter', () => {
  it('enforces the limit, counting only admitted requests, under claude-chat:rl:<key>:<windowStart>', async () => {
    const rl = limiter();
    const key = uniqueKey('enforce');
    const window = 60_000;
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await rl.hitOrThrow(key, 3, window));
    expect(results.map((r) => r.allowed)).toEqual([true, true, true, false, false]);
    expect(results.slice(0, 3).map((r) => r.count)).toEqual([1, 2, 3]);
    expect(results[3]?.count).toBe(3); // rejected requests are not counted
    for (const r of results) {
      expect(r.limit).toBe(3);
      expect(r.resetMs).toBeGreaterThan(0);
      expect(r.resetMs).toBeLessThanOrEqual(2 * window);
    }
    expect(results[0]?.remaining).toBeLessThanOrEqual(2);
    expect(results[4]?.remaining).toBe(0);

    const first = results[0];
    if (first === undefined) throw new Error('no result');
    const windowStart = Math.floor(first.serverTimeMs / window) * window;
    const stored = await admin.get(`claude-chat:rl:${key}:${windowStart}`);
    // (unless the window rolled over between the hits, all three were counted in this key)
    expect(Number(stored)).toBeGreaterThanOrEqual(1);
    const ttl = await admin.pttl(`claude-chat:rl:${key}:${windowStart}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(2 * window);
    expect(first.ttlMs).toBeLessThanOrEqual(2 * window);

    const decision = await rl.hit(key, 3, window);
    expect(decision).toEqual({ allowed: false, limit: 3, remaining: 0, resetMs: expect.any(Number) });
    expect(rl.backend()).toBe('redis');
  });

  it('shares counts between limiter instances on the same server', async () => {
    const a = limiter();
    const b = limiter();
    const key = uniqueKey('shared');
    expect((await a.hit(key, 4, 60_000)).allowed).toBe(true);
    expect((await b.hit(key, 4, 60_000)).allowed).toBe(true);
    expect((await a.hit(key, 4, 60_000)).allowed).toBe(true);
    expect((await b.hit(key, 4, 60_000)).allowed).toBe(true);
    expect((await a.hit(key, 4, 60_000)).allowed).toBe(false);
    expect((await b.hit(key, 4, 60_000)).allowed).toBe(false);
  });

  it('is atomic under concurrent hits from several instances', async () => {
    const instances = [limiter(), limiter(), limiter()];
    const key = uniqueKey('concurrent');
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => instances[i % instances.length]!.hitOrThrow(key, 10, 60_000)),
    );
    // A window boundary during the burst could only admit fewer (the previous window still weighs ~10).
    expect(results.filter((r) => r.allowed).length).toBeLessThanOrEqual(10);
    expect(results.filter((r) => r.allowed).length).toBeGreaterThanOrEqual(9);
  });

  it('lets requests through again once the window has passed, and the counters expire', async () => {
    const rl = limiter();
    const key = uniqueKey('expire');
    const window = 300;
    let rejected;
    for (let i = 0; i < 5 && rejected === undefined; i++) {
      const r = await rl.hitOrThrow(key, 2, window);
      if (!r.allowed) rejected = r;
    }
    expect(rejected).toBeDefined();
    expect(rejected!.resetMs).toBeLessThanOrEqual(2 * window);
    await new Promise((resolve) => setTimeout(resolve, rejected!.resetMs + 20));
    expect((await rl.hitOrThrow(key, 2, window)).allowed).toBe(true);

    // Counters live for two windows at most.
    await new Promise((resolve) => setTimeout(resolve, 2 * window + 50));
    expect(await admin.keys(`claude-chat:rl:${key}:*`)).toEqual([]);
    expect(await rl.hitOrThrow(key, 2, window)).toMatchObject({ allowed: true, remaining: 1, count: 1, previousCount: 0 });
  });

  it('recovers from a flushed script cache (EVALSHA falls back to EVAL)', async () => {
    const rl = limiter();
    const key = uniqueKey('noscript');
    await rl.hitOrThrow(key, 5, 60_000);
    await admin.script('FLUSH');
    expect(await rl.hitOrThrow(key, 5, 60_000)).toMatchObject({ allowed: true });
    expect(RATE_LIMIT_SCRIPT).toContain("redis.call('TIME')");
  });

  it('uses a custom prefix', async () => {
    const rl = limiter({ prefix: 'custom-rl:' });
    const key = uniqueKey('prefix');
    await rl.hitOrThrow(key, 5, 60_000);
    expect((await admin.keys(`custom-rl:${key}:*`)).length).toBe(1);
  });

  it('hitOrThrow rejects fast when Redis is unreachable; hit fails open', async () => {
    const errors: Error[] = [];
    const rl = limiter({ url: 'redis://127.0.0.1:1', onClientError: (e) => errors.push(e) });
    const started = Date.now();
    await expect(rl.hitOrThrow('k', 1, 1000)).rejects.toThrow();
    await expect(rl.hit('k', 1, 1000)).resolves.toEqual({ allowed: true, limit: 1, remaining: 0, resetMs: 1000 });
    expect(Date.now() - started).toBeLessThan(5000); // fails fast (bound kept loose for slow machines)
    expect(rl.backendErrors).toBe(1);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    await rl.close();
    await rl.close(); // idempotent
    await expect(rl.hitOrThrow('k', 1, 1000)).rejects.toThrow(/closed/);
  });
});
