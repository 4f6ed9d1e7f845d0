import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectAdminClient, startRedisServer, type RedisServerHandle } from '../../../test/support/redis-server.js';
import { RedisResponseCache } from './redis-cache.js';
import type { CachedAnswer } from './types.js';

function answer(text: string): CachedAnswer {
  return {
    text,
    model: 'claude-test',
    stopReason: null,
    inputTokens: 1,
    outputTokens: 2,
    toolEvents: [{ type: 'tool_result', id: 't1', content: 'ok' }],
    cachedAt: 1_700_000_000_000,
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

let server: RedisServerHandle;
let admin: Redis;
const caches: RedisResponseCache[] = [];

function newCache(prefix?: string): RedisResponseCache {
  const cache = new RedisResponseCache({ url: server.url, prefix });
  caches.push(cache);
  return cache;
}

beforeAll(async () => {
  server = await startRedisServer();
  admin = await connectAdminClient(server.url, {});
});

afterEach(async () => {
  await Promise.all(caches.splice(0).map((c) => c.close()));
  await admin.flushdb(); // the admin client owns this throw-away server
});

afterAll(async () => {
  admin?.disconnect();
  await server?.stop();
});

describe('RedisResponseCache', () => {
  it('sets and gets JSON values under the prefix with PX TTL', async () => {
    const cache = newCache();
    expect(await cache.get('k1')).toBeUndefined();
    await cache.set('k1', answer('hello'), 60_000);
    expect(await cache.get('k1')).toEqual(answer('hello'));

    const raw = await admin.get('claude-chat:cache:k1');
    expect(JSON.parse(raw!)).toEqual(answer('hello'));
    const pttl = await admin.pttl('claude-chat:cache:k1');
    expect(pttl).toBeGreaterThan(59_000);
    expect(pttl).toBeLessThanOrEqual(60_000);

    expect(cache.stats()).toMatchObject({ backend: 'redis', hits: 1, misses: 1, sets: 1, backendErrors: 0 });
  });

  it('expires entries after a short real TTL', async () => {
    const cache = newCache();
    await cache.set('short', answer('s'), 80);
    expect(await cache.get('short')).toBeDefined();
    await sleep(150);
    expect(await cache.get('short')).toBeUndefined();
  });

  it('treats unparsable stored values as misses', async () => {
    const cache = newCache();
    await admin.set('claude-chat:cache:bad', '{not json');
    await admin.set('claude-chat:cache:wrong-shape', '{"a":1}');
    expect(await cache.get('bad')).toBeUndefined();
    expect(await cache.get('wrong-shape')).toBeUndefined();
    expect(cache.stats().backendErrors).toBe(0);
  });

  it('clear removes only prefixed keys (SCAN + UNLINK)', async () => {
    const cache = newCache();
    await admin.set('unrelated:key', 'keep me');
    await admin.set('claude-chat:cachex', 'not under the prefix either');
    for (let i = 0; i < 1200; i++) await cache.set(`k${i}`, answer(`v${i}`), 60_000); // > one SCAN page
    await cache.refreshStats();
    expect(cache.stats().entries).toBe(1200);
    expect(cache.stats().bytes).toBeGreaterThan(0);

    expect(await cache.clear()).toBe(1200);
    expect(await admin.get('unrelated:key')).toBe('keep me');
    expect(await admin.get('claude-chat:cachex')).toBe('not under the prefix either');
    expect(await admin.dbsize()).toBe(2);
    expect(await cache.get('k1')).toBeUndefined();
    expect(cache.stats()).toMatchObject({ entries: 0, bytes: 0 });
  });

  it('escapes glob characters of the prefix in clear', async () => {
    const cache = newCache('weird*[x]:');
    await admin.set('weird-and-x:1', 'keep'); // an unescaped 'weird*[x]:*' would match it
    await cache.set('a', answer('a'), 60_000);
    expect(await cache.clear()).toBe(1);
    expect(await admin.get('weird-and-x:1')).toBe('keep');
  });

  it('two instances on the same server share entries', async () => {
    const a = newCache();
    const b = newCache();
    await a.set('shared', answer('from a'), 60_000);
    expect((await b.get('shared'))?.text).toBe('from a');
    await b.clear();
    expect(await a.get('shared')).toBeUndefined();
  });

  it('fails fast against a dead port and never throws', async () => {
    const dead = new RedisResponseCache({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 200, commandTimeoutMs: 200 });
    caches.push(dead);
    const started = Date.now();
    expect(await dead.get('k')).toBeUndefined();
    await dead.set('k', answer('x'), 1000);
    expect(await dead.clear()).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000); // fails fast instead of hanging (bound kept loose for slow machines)
    expect(dead.stats().backendErrors).toBe(3);
    await expect(dead.getOrThrow('k')).rejects.toThrow();
  });

  it('resolves after close without touching Redis', async () => {
    const cache = newCache();
    await cache.set('k', answer('x'), 60_000);
    await cache.close();
    await cache.close(); // idempotent
    expect(await cache.get('k')).toBeUndefined();
    await cache.set('k2', answer('y'), 60_000);
    expect(await admin.exists('claude-chat:cache:k2')).toBe(0);
  });
});
