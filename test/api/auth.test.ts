import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectFrames } from '../support/sse-client.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const ALICE = 'alice-key-0123456789';
const BOB = 'bob-key-0123456789';
const ADMIN = 'admin-key-0123456789';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({
    env: { API_KEYS: `alice:${ALICE},bob:${BOB}`, ADMIN_API_KEY: ADMIN, CORS_ORIGINS: 'https://app.example.com' },
  });
});
afterAll(async () => {
  await server.destroy();
});

function call(method: string, path: string, key?: string, body?: unknown, headers: Record<string, string> = {}) {
  return fetch(`${server.url}${path}`, {
    method,
    headers: {
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function newSession(key: string): Promise<string> {
  const res = await call('POST', '/api/new-session', key);
  expect(res.status).toBe(201);
  return ((await res.json()) as { session_id: string }).session_id;
}

describe('API keys', () => {
  it('answers 401 without a key, or with a wrong one, and says how to authenticate', async () => {
    for (const res of [await call('POST', '/api/new-session'), await call('GET', '/api/sessions', 'wrong-key-0123456789')]) {
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(await res.json()).toMatchObject({ error: { type: 'authentication_error' } });
    }
  });

  it('accepts the key as Authorization: Bearer or x-api-key', async () => {
    expect((await call('GET', '/api/sessions', ALICE)).status).toBe(200);
    expect((await call('GET', '/api/sessions', undefined, undefined, { 'x-api-key': ALICE })).status).toBe(200);
  });

  it('leaves probes and the scraper open', async () => {
    for (const path of ['/livez', '/readyz', '/health', '/metrics', '/heartbeat']) expect((await call('GET', path)).status, path).toBe(200);
  });

  it('keeps management routes for the admin key: a client key gets 403', async () => {
    const asClient = await call('POST', '/health/circuit-breaker/claude_sdk/reset', ALICE);
    expect(asClient.status).toBe(403);
    expect(await asClient.json()).toMatchObject({ error: { type: 'permission_error' } });
    expect((await call('POST', '/health/fallback-cache/clear', BOB)).status).toBe(403);
    expect((await call('POST', '/health/circuit-breaker/claude_sdk/reset')).status).toBe(401);
    expect((await call('POST', '/health/circuit-breaker/claude_sdk/reset', ADMIN)).status).toBe(200);
    expect((await call('POST', '/health/fallback-cache/clear', ADMIN)).status).toBe(200);
  });
});

describe('session isolation', () => {
  it("answers 404 for another key's session on every route, exactly as for a missing one", async () => {
    const id = await newSession(ALICE);
    const attempts = [
      call('GET', `/api/session/${id}`, BOB),
      call('GET', `/api/session-history/${id}`, BOB),
      call('PUT', `/api/session/${id}/config`, BOB, { max_tokens: 10 }),
      call('DELETE', `/api/session/${id}`, BOB),
      call('POST', '/api/interrupt', BOB, { session_id: id }),
      call('POST', '/api/clear', BOB, { session_id: id }),
      call('POST', '/api/chat', BOB, { message: 'let me in', session_id: id }),
    ];
    for (const res of await Promise.all(attempts)) {
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ error: { type: 'not_found', message: `Session ${id} not found` } });
    }
    expect((await call('GET', `/api/session/${id}`, ALICE)).status).toBe(200);
    expect((await call('GET', `/api/session/${id}`, ADMIN)).status).toBe(200);
  });

  it('lists only your own sessions; the admin sees them all', async () => {
    const mine = await newSession(ALICE);
    const theirs = await newSession(BOB);
    const list = async (key: string) => ((await (await call('GET', '/api/sessions?limit=1000', key)).json()) as { sessions: { session_id: string }[]; total: number });
    const alice = await list(ALICE);
    expect(alice.sessions.map((s) => s.session_id)).toContain(mine);
    expect(alice.sessions.map((s) => s.session_id)).not.toContain(theirs);
    expect(alice.total).toBe(alice.sessions.length);
    const admin = await list(ADMIN);
    expect(admin.sessions.map((s) => s.session_id)).toEqual(expect.arrayContaining([mine, theirs]));
  });

  it('gives a chat without a session id a new session owned by the caller', async () => {
    const res = await call('POST', '/api/chat', ALICE, { message: 'hello' });
    await collectFrames(res);
    const id = res.headers.get('x-session-id') as string;
    expect((await call('GET', `/api/session/${id}`, ALICE)).status).toBe(200);
    expect((await call('GET', `/api/session/${id}`, BOB)).status).toBe(404);
  });

  it('shows session ids in /health/detailed to the admin only', async () => {
    const detailed = async (key?: string) => ((await (await call('GET', '/health/detailed', key)).json()) as { sessions: { session_configs: Record<string, unknown> } });
    expect((await detailed()).sessions.session_configs).not.toHaveProperty('ids');
    expect((await detailed(ALICE)).sessions.session_configs).not.toHaveProperty('ids');
    expect((await detailed(ADMIN)).sessions.session_configs).toHaveProperty('ids');
  });
});

describe('HTTP hardening', () => {
  it('sends API security headers', async () => {
    const res = await call('GET', '/heartbeat');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(res.headers.get('x-frame-options')).toBeTruthy();
  });

  it('allows the configured browser origin only and exposes X-Session-ID', async () => {
    const allowed = await call('OPTIONS', '/api/chat', undefined, undefined, { origin: 'https://app.example.com', 'access-control-request-method': 'POST' });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    const simple = await call('GET', '/heartbeat', undefined, undefined, { origin: 'https://app.example.com' });
    expect(simple.headers.get('access-control-expose-headers')).toContain('x-session-id');
    const other = await call('GET', '/heartbeat', undefined, undefined, { origin: 'https://evil.example.com' });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('refuses an oversized header block with 431', async () => {
    const res = await call('GET', '/heartbeat', undefined, undefined, { 'x-padding': 'a'.repeat(20_000) });
    expect(res.status).toBe(431);
  });
});
