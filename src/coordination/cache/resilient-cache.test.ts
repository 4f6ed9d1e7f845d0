import { createHook } from 'node:async_hooks';
import { createServer, type Server, type Socket } from 'node:net';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectAdminClient, startRedisServer, type RedisServerHandle } from '../../../test/support/redis-server.js';
import { MemoryResponseCache } from './memory-cache.js';
import { RedisResponseCache } from './redis-cache.js';
import { createResponseCache, ResilientResponseCache } from './resilient-cache.js';
import type { CachedAnswer, ResponseCache } from './types.js';

function answer(text: string): CachedAnswer {
  return {
    text,
    model: 'claude-test',
    stopReason: 'end_turn',
    inputTokens: 1,
    outputTokens: 1,
    toolEvents: [],
    cachedAt: 1_700_000_000_000,
  };
}

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const fast = { connectTimeoutMs: 300, commandTimeoutMs: 300, maxReconnectDelayMs: 150, retryIntervalMs: 200 };

let server: RedisServerHandle;
let admin: Redis;
const opened: ResponseCache[] = [];

function resilient(log?: (event: string, fields: Record<string, unknown>) => void, url = server.url) {
  const cache = createResponseCache({ redisUrl: url, log, ...fast });
  opened.push(cache);
  expect(cache).toBeInstanceOf(ResilientResponseCache);
  return cache as ResilientResponseCache;
}

beforeAll(async () => {
  server = await startRedisServer();
  admin = await connectAdminClient(server.url);
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
});

afterAll(async () => {
  admin?.disconnect();
  await server?.stop();
});

describe('ResilientResponseCache', () => {
  it('uses Redis when healthy', async () => {
    const cache = resilient();
    await cache.set('k', answer('via redis'), 60_000);
    expect(cache.stats().backend).toBe('redis');
    expect(await admin.exists('claude-chat:cache:k')).toBe(1);
    expect((await cache.get('k'))?.text).toBe('via redis');
    expect(cache.memory.size).toBe(0);
    await cache.refreshStats();
    expect(cache.stats()).toMatchObject({ backend: 'redis', entries: 1, hits: 1, misses: 0, sets: 1, backendErrors: 0 });
  });

  it('degrades to memory when Redis stops, never rejects, and recovers when it returns', async () => {
    const events: { event: string; fields: Record<string, unknown> }[] = [];
    const cache = resilient((event, fields) => events.push({ event, fields }));
    await cache.set('before', answer('stored in redis'), 60_000);
    expect(cache.stats().backend).toBe('redis');

    await server.stop();

    // Operations keep resolving (none rejects) while Redis is down.
    await expect(cache.get('before')).resolves.toBeUndefined();
    await expect(cache.set('during', answer('stored in memory'), 60_000)).resolves.toBeUndefined();
    await expect(cache.get('during')).resolves.toMatchObject({ text: 'stored in memory' });
    expect(cache.stats()).toMatchObject({ backend: 'redis_degraded', entries: 1 });
    expect(cache.stats().backendErrors).toBeGreaterThanOrEqual(1);
    expect(events.filter((e) => e.event === 'cache_backend_degraded')).toHaveLength(1);

    // Many concurrent calls while down: all resolve quickly.
    const started = Date.now();
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? cache.get(`x${i}`) : cache.set(`x${i}`, answer('x'), 1000))),
    );
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    expect(Date.now() - started).toBeLessThan(5000); // fails fast instead of hanging (bound kept loose for slow machines)

    await server.restart();
    await waitFor(() => cache.stats().backend === 'redis');
    expect(events.map((e) => e.event)).toEqual(['cache_backend_degraded', 'cache_backend_recovered']);

    // Back on Redis: new writes land there; the answer stored during the outage still serves from memory.
    await cache.set('after', answer('stored in redis again'), 60_000);
    // The admin client reconnects on its own after the restart; use it only once it is ready again.
    await waitFor(() => admin.status === 'ready');
    expect(await admin.exists('claude-chat:cache:after')).toBe(1);
    expect((await cache.get('after'))?.text).toBe('stored in redis again');
    expect((await cache.get('during'))?.text).toBe('stored in memory');
    expect(cache.stats().backend).toBe('redis');
  });

  it('degrades on command timeouts with a live connection and recovers by retrying Redis', async () => {
    const events: string[] = [];
    const cache = resilient((event) => events.push(event));
    await cache.set('k', answer('x'), 60_000); // connected and ready

    await admin.call('CLIENT', 'PAUSE', '700', 'ALL');
    const started = Date.now();
    await expect(cache.get('k')).resolves.toBeUndefined(); // timed out -> memory miss
    expect(Date.now() - started).toBeLessThan(5000); // fails fast instead of hanging (bound kept loose for slow machines)
    expect(cache.stats()).toMatchObject({ backend: 'redis_degraded', backendErrors: 1 });
    expect(cache.redis.isReady).toBe(true);

    await cache.set('paused', answer('memory'), 60_000); // within retry interval: straight to memory
    expect((await cache.get('paused'))?.text).toBe('memory');

    await waitFor(async () => {
      await cache.get('k'); // each call past the retry interval probes Redis
      return cache.stats().backend === 'redis';
    });
    expect((await cache.get('k'))?.text).toBe('x');
    expect(events).toEqual(['cache_backend_degraded', 'cache_backend_recovered']);
  });

  it('starts degraded and keeps working when Redis is unreachable from the start', async () => {
    const events: { event: string; fields: Record<string, unknown> }[] = [];
    const cache = resilient((event, fields) => events.push({ event, fields }), 'redis://127.0.0.1:1');
    const started = Date.now();
    await cache.set('k', answer('memory only'), 60_000);
    expect((await cache.get('k'))?.text).toBe('memory only');
    expect(await cache.clear()).toBe(1);
    expect(Date.now() - started).toBeLessThan(5000); // fails fast instead of hanging (bound kept loose for slow machines)
    expect(cache.stats()).toMatchObject({ backend: 'redis_degraded', entries: 0, sets: 1, hits: 1 });
    expect(events[0]?.event).toBe('cache_backend_degraded');
    expect(events[0]?.fields.error).toMatch(/ECONNREFUSED|closed/);
  });

  it('fails fast against a server that accepts connections but never answers', async () => {
    const sockets = new Set<Socket>();
    const blackHole: Server = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
    const address = blackHole.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    try {
      const cache = resilient(undefined, `redis://127.0.0.1:${port}`);
      const started = Date.now();
      await expect(cache.set('k', answer('v'), 60_000)).resolves.toBeUndefined();
      expect((await cache.get('k'))?.text).toBe('v');
      expect(Date.now() - started).toBeLessThan(5000); // fails fast instead of hanging (bound kept loose for slow machines)
      expect(cache.stats().backend).toBe('redis_degraded');
      await cache.close();
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => blackHole.close(() => resolve()));
    }
  });

  it('close leaves no timers or sockets behind, even while reconnecting', async () => {
    // Track every timer / socket created from here on; all must be gone once close() resolved.
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
      await healthy.set('k', answer('v'), 1000);
      const down = resilient(undefined, 'redis://127.0.0.1:1');
      await down.get('k');
      await waitFor(() => down.stats().backend === 'redis_degraded');
      await waitFor(() => down.redis.client.status === 'reconnecting'); // a reconnect timer is pending

      await healthy.close();
      await down.close();
      await healthy.close(); // idempotent
      expect(healthy.redis.client.status).toBe('end');
      // destroy hooks are delivered asynchronously; give them a few turns (no timers needed)
      for (let i = 0; i < 10 && live.size > 0; i++) await new Promise((resolve) => setImmediate(resolve));
      expect([...live.values()]).toEqual([]);

      // Calls after close still resolve.
      await expect(healthy.get('k')).resolves.toBeUndefined();
      await expect(healthy.set('k', answer('v'), 1000)).resolves.toBeUndefined();
      await expect(healthy.clear()).resolves.toBe(0);
    } finally {
      hook.disable();
    }
  });

  it('createResponseCache returns a memory cache without a Redis URL', async () => {
    const cache = createResponseCache({ maxEntries: 2 });
    opened.push(cache);
    expect(cache).toBeInstanceOf(MemoryResponseCache);
    await cache.set('a', answer('a'), 1000);
    expect(cache.stats()).toMatchObject({ backend: 'memory', entries: 1 });
  });

  it('a throwing logger never breaks the cache', async () => {
    const cache = resilient(() => {
      throw new Error('logger down');
    }, 'redis://127.0.0.1:1');
    await expect(cache.set('k', answer('v'), 1000)).resolves.toBeUndefined();
    expect((await cache.get('k'))?.text).toBe('v');
  });

  it('can be assembled from explicit parts', async () => {
    const cache = new ResilientResponseCache({
      redis: new RedisResponseCache({ url: server.url, prefix: 'custom:' }),
      memory: new MemoryResponseCache({ maxEntries: 10 }),
    });
    opened.push(cache);
    await cache.set('k', answer('v'), 60_000);
    expect(await admin.exists('custom:k')).toBe(1);
  });
});
