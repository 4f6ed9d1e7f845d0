import { createHook } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { connectAdminClient, startRedisServer, type RedisServerHandle } from '../../../test/support/redis-server.js';
import { MemoryRateLimiter } from './memory-limiter.js';
import { RedisRateLimiter } from './redis-limiter.js';
import { createRateLimiter, ResilientRateLimiter } from './resilient-limiter.js';
import type { RateLimiter, RateLimitLogFn } from './types.js';

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const fast = { connectTimeoutMs: 300, commandTimeoutMs: 300, maxReconnectDelayMs: 150, retryIntervalMs: 200 };
const WINDOW = 60_000;

let server: RedisServerHandle;
let admin: Redis;
const opened: RateLimiter[] = [];

function resilient(log?: RateLimitLogFn, url = server.url): ResilientRateLimiter {
  const limiter = createRateLimiter({ redisUrl: url, log, ...fast });
  opened.push(limiter);
  expect(limiter).toBeInstanceOf(ResilientRateLimiter);
  return limiter as ResilientRateLimiter;
}

const uniqueKey = (name: string) => `${name}-${randomUUID()}`;

beforeAll(async () => {
  server = await startRedisServer();
  admin = await connectAdminClient(server.url);
});

beforeEach(async () => {
  await waitFor(() => admin.status === 'ready');
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((l) => l.close()));
});

afterAll(async () => {
  admin?.disconnect();
  await server?.stop();
});

describe('ResilientRateLimiter', () => {
  it('uses Redis when healthy', async () => {
    const limiter = resilient();
    const key = uniqueKey('healthy');
    expect(await limiter.hit(key, 2, WINDOW)).toMatchObject({ allowed: true, limit: 2, remaining: 1 });
    expect(limiter.backend()).toBe('redis');
    expect((await admin.keys(`claude-chat:rl:${key}:*`)).length).toBe(1);
    expect(limiter.memory.size).toBe(0);
  });

  it('degrades to memory when Redis stops, keeps enforcing limits, never rejects, and recovers', async () => {
    const events: { event: string; fields: Record<string, unknown> }[] = [];
    const limiter = resilient((event, fields) => events.push({ event, fields }));
    const key = uniqueKey('outage');
    expect((await limiter.hit(key, 3, WINDOW)).allowed).toBe(true);
    expect(limiter.backend()).toBe('redis');

    await server.stop();

    const started = Date.now();
    const during = [];
    for (let i = 0; i < 5; i++) during.push(await limiter.hit(key, 3, WINDOW));
    expect(limiter.backend()).toBe('redis_degraded');
    // Memory starts from zero for this key: three admitted, then rejected.
    expect(during.map((d) => d.allowed)).toEqual([true, true, true, false, false]);
    expect(during[4]).toMatchObject({ limit: 3, remaining: 0 });
    expect(during[4]!.resetMs).toBeGreaterThan(0);

    // Many concurrent hits while down: all resolve, quickly.
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => limiter.hit(`x${i}`, 1, WINDOW)));
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    expect(Date.now() - started).toBeLessThan(5000); // fails fast instead of hanging (bound kept loose)
    expect(limiter.backendErrors).toBeGreaterThanOrEqual(1);
    const degraded = events.filter((e) => e.event === 'rate_limit_backend_degraded');
    expect(degraded).toHaveLength(1);
    expect(degraded[0]?.fields).toMatchObject({ fallback: 'memory' });

    await server.restart();
    await waitFor(() => limiter.backend() === 'redis');
    await waitFor(() => admin.status === 'ready'); // the test's own client reconnects independently
    expect(events.map((e) => e.event)).toEqual(['rate_limit_backend_degraded', 'rate_limit_backend_recovered']);

    // Back on Redis (a fresh server: the counter starts again there).
    const fresh = uniqueKey('after');
    expect(await limiter.hit(fresh, 1, WINDOW)).toMatchObject({ allowed: true });
    expect((await admin.keys(`claude-chat:rl:${fresh}:*`)).length).toBe(1);
    expect((await limiter.hit(fresh, 1, WINDOW)).allowed).toBe(false);
    expect(limiter.backend()).toBe('redis');
  });

  it('degrades on command timeouts with a live connection and recovers by retrying Redis', async () => {
    const events: string[] = [];
    const limiter = resilient((event) => events.push(event));
    const key = uniqueKey('paused');
    await limiter.hit(key, 5, WINDOW); // connected and ready

    await admin.call('CLIENT', 'PAUSE', '700', 'ALL');
    const started = Date.now();
    await expect(limiter.hit(key, 5, WINDOW)).resolves.toMatchObject({ allowed: true });
    expect(Date.now() - started).toBeLessThan(5000); // fails fast instead of hanging (bound kept loose)
    expect(limiter.backend()).toBe('redis_degraded');
    expect(limiter.redis.isReady).toBe(true);

    await waitFor(async () => {
      await limiter.hit(uniqueKey('probe'), 5, WINDOW); // each hit past the retry interval probes Redis
      return limiter.backend() === 'redis';
    });
    expect(events).toEqual(['rate_limit_backend_degraded', 'rate_limit_backend_recovered']);
  });

  it('starts degraded and keeps limiting when Redis is unreachable from the start', async () => {
    const events: { event: string; fields: Record<string, unknown> }[] = [];
    const limiter = resilient((event, fields) => events.push({ event, fields }), 'redis://127.0.0.1:1');
    const started = Date.now();
    expect((await limiter.hit('k', 1, WINDOW)).allowed).toBe(true);
    expect((await limiter.hit('k', 1, WINDOW)).allowed).toBe(false);
    expect(Date.now() - started).toBeLessThan(5000); // fails fast (bound kept loose for slow machines)
    expect(limiter.backend()).toBe('redis_degraded');
    expect(events[0]?.event).toBe('rate_limit_backend_degraded');
    expect(events[0]?.fields.error).toMatch(/ECONNREFUSED|closed|writeable/);
  });

  it('close leaves no timers or sockets behind, even while reconnecting', async () => {
    const live = new Map<number, string>();
    const hook = createHook({
      init(id, type) {
        if (type === 'Timeout' || type === 'TCPWRAP' || type === 'TCPCONNECTWRAP') live.set(id, type);
      },
      destroy(id) {
        live.delete(id);
      },
    });
    hook.enable();
    try {
      const healthy = resilient();
      await healthy.hit('k', 5, 1000);
      const down = resilient(undefined, 'redis://127.0.0.1:1');
      await down.hit('k', 5, 1000);
      await waitFor(() => down.backend() === 'redis_degraded');
      await waitFor(() => down.redis.client.status === 'reconnecting'); // a reconnect timer is pending

      await healthy.close();
      await down.close();
      await healthy.close(); // idempotent
      expect(healthy.redis.client.status).toBe('end');
      for (let i = 0; i < 10 && live.size > 0; i++) await new Promise((resolve) => setImmediate(resolve));
      expect([...live.values()]).toEqual([]);

      // Hits after close still resolve (from memory).
      await expect(healthy.hit('k', 1, 1000)).resolves.toMatchObject({ allowed: true });
    } finally {
      hook.disable();
    }
  });

  it('a throwing logger never breaks the limiter', async () => {
    const limiter = resilient(() => {
      throw new Error('logger down');
    }, 'redis://127.0.0.1:1');
    await expect(limiter.hit('k', 1, 1000)).resolves.toMatchObject({ allowed: true });
  });

  it('can be assembled from explicit parts', async () => {
    const limiter = new ResilientRateLimiter({
      redis: new RedisRateLimiter({ url: server.url, prefix: 'custom-rl:' }),
      memory: new MemoryRateLimiter({ maxKeys: 10 }),
    });
    opened.push(limiter);
    const key = uniqueKey('parts');
    await limiter.hit(key, 1, WINDOW);
    expect((await admin.keys(`custom-rl:${key}:*`)).length).toBe(1);
  });

  it('invalid arguments reject with a RangeError', async () => {
    const limiter = resilient();
    await expect(limiter.hit('k', -1, WINDOW)).rejects.toThrow(RangeError);
    await expect(limiter.hit('k', 1, 0)).rejects.toThrow(RangeError);
  });
});
