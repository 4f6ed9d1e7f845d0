import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { startRedisServer } from '../support/redis-server.js';
import { collectFrames } from '../support/sse-client.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const ALICE = 'alice-key-0123456789';
const BOB = 'bob-key-0123456789';
const servers: TestServer[] = [];

async function start(env: Record<string, string>): Promise<TestServer> {
  const server = await startTestServer({ env: { API_KEYS: `alice:${ALICE},bob:${BOB}`, ...env } });
  servers.push(server);
  return server;
}

afterEach(async () => {
  for (const server of servers.splice(0)) await server.destroy();
});

async function chatOnce(server: TestServer, key: string): Promise<Response> {
  const res = await fetch(`${server.url}/api/chat`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ message: 'hi' }),
  });
  if (res.status === 200) await collectFrames(res);
  return res;
}

const get = (server: TestServer, path: string, key = ALICE) => fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${key}` } });

describe('rate limits', () => {
  it('refuses the 31st chat in a minute with 429, Retry-After and RateLimit headers', async () => {
    const server = await start({ RATE_LIMIT_CHAT: '30' });
    for (let i = 0; i < 30; i++) {
      const res = await chatOnce(server, ALICE);
      expect(res.status).toBe(200);
      expect(res.headers.get('ratelimit-limit')).toBe('30');
      expect(res.headers.get('ratelimit-remaining')).toBe(String(29 - i));
    }
    const refused = await chatOnce(server, ALICE);
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    // A full window slides out gradually: the next request fits once 1/30 of the next minute has
    // passed too, so up to 60 + 2 s (when the 30 calls fell at the very start of an aligned minute).
    expect(retryAfter).toBeLessThanOrEqual(62);
    expect(refused.headers.get('ratelimit-remaining')).toBe('0');
    expect(await refused.json()).toMatchObject({ error: { type: 'rate_limit_exceeded', details: { group: 'chat', limit: 30 } } });
    // Limits are per key, and per group: nothing else is blocked.
    expect((await chatOnce(server, BOB)).status).toBe(200);
    expect((await get(server, '/api/sessions')).status).toBe(200);
    expect((await get(server, '/livez')).status).toBe(200);
    const metrics = await (await fetch(`${server.url}/metrics`, { headers: { accept: 'text/plain' } })).text();
    expect(metrics).toMatch(/rate_limit_rejections_total\{group="chat"\} 1/);
  });

  it('counts a route template, so varying the session id does not evade the limit', async () => {
    const server = await start({ RATE_LIMIT_SESSION: '5' });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await get(server, `/api/session/${randomUUID()}`)).status);
    expect(statuses).toEqual([404, 404, 404, 404, 404, 429]);
  });

  it('counts failed key guesses against the address, so keys cannot be brute-forced at full speed', async () => {
    const server = await start({ RATE_LIMIT_ANALYTICS: '3' });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await get(server, '/api/sessions', `guess-${i}-0123456789abcdef`)).status);
    expect(statuses).toEqual([401, 401, 401, 429]);
  });

  it('limits unauthenticated callers by address', async () => {
    const server = await start({ RATE_LIMIT_DEFAULT: '2' });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await fetch(`${server.url}/heartbeat`)).status);
    expect(statuses).toEqual([200, 200, 429]);
  });

  it('shares the limit between two instances on one Redis, and survives Redis going away', async () => {
    const redis = await startRedisServer();
    try {
      const env = { RATE_LIMIT_CHAT: '4', REDIS_URL: redis.url, HEALTH_CHECK_INTERVAL_MS: '100' };
      const a = await start(env);
      const b = await start(env);
      expect((await chatOnce(a, ALICE)).status).toBe(200);
      expect((await chatOnce(b, ALICE)).status).toBe(200);
      expect((await chatOnce(a, ALICE)).status).toBe(200);
      expect((await chatOnce(b, ALICE)).status).toBe(200);
      expect((await chatOnce(a, ALICE)).status).toBe(429);
      expect((await chatOnce(b, ALICE)).status).toBe(429);

      const rateLimitCheck = async (server: TestServer) => {
        const health = (await (await fetch(`${server.url}/health`)).json()) as { checks: Record<string, { status: string }[]> };
        return health.checks['rate_limit:backend']?.[0]?.status;
      };
      expect(await rateLimitCheck(b)).toBe('pass');
      await redis.stop();
      expect((await chatOnce(b, BOB)).status).toBe(200);
      await expect.poll(() => rateLimitCheck(b), { timeout: 5000 }).toBe('warn');
      await redis.restart();
      await expect.poll(() => rateLimitCheck(b), { timeout: 8000 }).toBe('pass');
      expect((await chatOnce(b, BOB)).status).toBeLessThan(500);
    } finally {
      await redis.stop().catch(() => undefined);
    }
  });
});
