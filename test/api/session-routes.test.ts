import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/test-server.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.destroy();
});

const UNKNOWN = '123e4567-e89b-42d3-a456-426614174000';

function inject(method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown, headers: Record<string, string> = {}) {
  return server.app.http.inject({
    method,
    url,
    ...(body === undefined ? {} : { payload: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } }),
  });
}

async function newSession(config?: unknown): Promise<string> {
  const res = config === undefined ? await inject('POST', '/api/new-session') : await inject('POST', '/api/session-with-config', config);
  expect(res.statusCode).toBe(201);
  return res.json<{ session_id: string }>().session_id;
}

function expectError(res: { statusCode: number; json: <T>() => T; headers: Record<string, unknown> }, status: number, type: string) {
  expect(res.statusCode).toBe(status);
  const body = res.json<{ error: { type: string; message: string }; request_id: string }>();
  expect(body.error.type).toBe(type);
  expect(body.error.message.length).toBeGreaterThan(0);
  expect(body.request_id).toBe(res.headers['x-request-id']);
}

describe('session creation', () => {
  it('creates a session from a body-less POST without Content-Type', async () => {
    const res = await server.app.http.inject({ method: 'POST', url: '/api/new-session' });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toEqual({ session_id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
  });

  it('accepts Content-Type: application/json with an empty body', async () => {
    const res = await server.app.http.inject({ method: 'POST', url: '/api/new-session', headers: { 'content-type': 'application/json' }, payload: '' });
    expect(res.statusCode).toBe(201);
  });

  it('creates distinct sessions every time', async () => {
    const ids = new Set([await newSession(), await newSession(), await newSession()]);
    expect(ids.size).toBe(3);
  });

  it('stores the config given to session-with-config', async () => {
    const id = await newSession({ system_prompt: 'You are terse.', model: 'claude-haiku-4-5', max_tokens: 100, temperature: 0.5, allowed_tools: ['Read'], max_turns: 3, permission_mode: 'plan', cwd: 'project-a' });
    const res = await inject('GET', `/api/session/${id}`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      session_id: id,
      active: false,
      config: {
        system_prompt: 'You are terse.',
        model: 'claude-haiku-4-5',
        max_tokens: 100,
        temperature: 0.5,
        allowed_tools: ['Read'],
        max_turns: 3,
        permission_mode: 'plan',
        cwd: expect.stringMatching(/workspaces\/project-a$/),
        created_at: expect.any(String),
        updated_at: expect.any(String),
      },
      history: { message_count: 0, total_tokens: 0, input_tokens: 0, output_tokens: 0, total_cost: 0 },
    });
  });

  it.each([
    ['temperature 3', { temperature: 3 }],
    ['max_tokens 0', { max_tokens: 0 }],
    ['non-numeric max_tokens', { max_tokens: 'many' }],
    ['an empty model', { model: '' }],
    ['an unknown permission_mode', { permission_mode: 'everything' }],
    ['an unknown field', { unknown_field: true }],
    ['a system prompt over 10,000 characters', { system_prompt: 'x'.repeat(10_001) }],
    ['an unknown tool', { allowed_tools: ['Read', 'rm -rf'] }],
    ['a cwd escaping the root', { cwd: '../../etc' }],
    ['an absolute cwd outside the root', { cwd: '/etc' }],
    ['a JSON array', []],
  ])('rejects a config with %s with 422 and creates nothing', async (_label, config) => {
    const before = server.app.store.countSessions();
    const res = await inject('POST', '/api/session-with-config', config);
    expectError(res, 422, 'validation_error');
    expect(server.app.store.countSessions()).toBe(before);
  });
});

describe('session routes', () => {
  it('updates the config by merging the given fields', async () => {
    const id = await newSession({ system_prompt: 'first', max_tokens: 50 });
    const res = await inject('PUT', `/api/session/${id}/config`, { max_tokens: 75, temperature: 0 });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'updated', session_id: id, config: { system_prompt: 'first', max_tokens: 75, temperature: 0 } });
    const bad = await inject('PUT', `/api/session/${id}/config`, { temperature: -1 });
    expectError(bad, 422, 'validation_error');
  });

  it('lists sessions with pagination', async () => {
    const res = await inject('GET', '/api/sessions?limit=2');
    expect(res.statusCode).toBe(200);
    const page = res.json<{ sessions: { session_id: string }[]; total: number; next_cursor: string | null }>();
    expect(page.sessions).toHaveLength(2);
    expect(page.total).toBe(server.app.store.countSessions());
    const seen = new Set(page.sessions.map((s) => s.session_id));
    let cursor = page.next_cursor;
    while (cursor) {
      const next = (await inject('GET', `/api/sessions?limit=2&cursor=${encodeURIComponent(cursor)}`)).json<typeof page>();
      for (const s of next.sessions) seen.add(s.session_id);
      cursor = next.next_cursor;
    }
    expect(seen.size).toBe(page.total);
    expectError(await inject('GET', '/api/sessions?cursor=%%%bad'), 422, 'validation_error');
    expectError(await inject('GET', '/api/sessions?limit=0'), 422, 'validation_error');
  });

  it('returns an empty history for a new session and paginates a longer one', async () => {
    const id = await newSession();
    const empty = await inject('GET', `/api/session-history/${id}`);
    expect(empty.json()).toEqual({ session_id: id, messages: [], total_messages: 0, next_cursor: null });
    for (let i = 1; i <= 5; i++) {
      server.app.store.appendMessage({ id: crypto.randomUUID(), sessionId: id, role: i % 2 ? 'user' : 'assistant', content: `m${i}`, status: 'complete' });
    }
    const first = (await inject('GET', `/api/session-history/${id}?limit=2`)).json<{ messages: { content: string }[]; next_cursor: string; total_messages: number }>();
    expect(first.messages.map((m) => m.content)).toEqual(['m1', 'm2']);
    expect(first.total_messages).toBe(5);
    const rest = (await inject('GET', `/api/session-history/${id}?limit=10&after=${first.next_cursor}`)).json<typeof first>();
    expect(rest.messages.map((m) => m.content)).toEqual(['m3', 'm4', 'm5']);
    expect(rest.next_cursor).toBeNull();
  });

  it('clears a session: messages gone, session kept', async () => {
    const id = await newSession();
    server.app.store.appendMessage({ id: crypto.randomUUID(), sessionId: id, role: 'user', content: 'hello', status: 'complete' });
    const res = await inject('POST', '/api/clear', { session_id: id });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'cleared', session_id: id, deleted_messages: 1 });
    expect((await inject('GET', `/api/session/${id}`)).json<{ history: { message_count: number } }>().history.message_count).toBe(0);
  });

  it('interrupts nothing on an idle session', async () => {
    const id = await newSession();
    const res = await inject('POST', '/api/interrupt', { session_id: id });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'idle', session_id: id, interrupted: false });
  });

  it('deletes a session, after which it is unknown', async () => {
    const id = await newSession();
    const res = await inject('DELETE', `/api/session/${id}`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'deleted', session_id: id });
    expectError(await inject('GET', `/api/session/${id}`), 404, 'not_found');
    expectError(await inject('DELETE', `/api/session/${id}`), 404, 'not_found');
  });
});

describe('unknown sessions and invalid ids', () => {
  it.each([
    ['GET', `/api/session/${UNKNOWN}`, undefined],
    ['PUT', `/api/session/${UNKNOWN}/config`, { max_tokens: 10 }],
    ['DELETE', `/api/session/${UNKNOWN}`, undefined],
    ['GET', `/api/session-history/${UNKNOWN}`, undefined],
    ['POST', '/api/interrupt', { session_id: UNKNOWN }],
    ['POST', '/api/clear', { session_id: UNKNOWN }],
    ['POST', '/api/chat', { message: 'hi', session_id: UNKNOWN }],
  ] as const)('%s %s → 404', async (method, url, body) => {
    expectError(await inject(method, url, body), 404, 'not_found');
  });

  it.each([
    ['GET', '/api/session/not-a-uuid', undefined],
    ['PUT', '/api/session/not-a-uuid/config', { max_tokens: 10 }],
    ['DELETE', '/api/session/123', undefined],
    ['GET', '/api/session-history/zzz', undefined],
    ['POST', '/api/interrupt', { session_id: 'nope' }],
    ['POST', '/api/clear', { session_id: 42 }],
    ['POST', '/api/interrupt', {}],
    ['POST', '/api/chat', { message: 'hi', session_id: 'not-a-uuid' }],
  ] as const)('%s %s with an invalid id → 422', async (method, url, body) => {
    expectError(await inject(method, url, body), 422, 'validation_error');
  });

  it('answers unknown routes with a JSON 404', async () => {
    expectError(await inject('GET', '/api/nothing-here'), 404, 'not_found');
  });
});

describe('chat input validation', () => {
  it.each([
    ['an empty message', { message: '' }],
    ['a whitespace-only message', { message: ' \n\t ' }],
    ['a message over 50,000 characters', { message: 'a'.repeat(50_001) }],
    ['a missing message', {}],
    ['a non-string message', { message: 42 }],
    ['an unknown field', { message: 'hi', extra: 1 }],
  ])('rejects %s with 422', async (_label, body) => {
    const before = server.app.store.countSessions();
    expectError(await inject('POST', '/api/chat', body), 422, 'validation_error');
    expect(server.app.store.countSessions()).toBe(before);
  });

  it('counts characters, not UTF-16 units: 50,000 emoji are accepted by validation', async () => {
    const res = await inject('POST', '/api/chat', { message: '😀'.repeat(50_000), session_id: UNKNOWN });
    // Validation passed; the unknown session is what stops it.
    expectError(res, 404, 'not_found');
  });

  it('rejects malformed JSON with 400', async () => {
    expectError(await inject('POST', '/api/chat', '{"message": "hi"'), 400, 'invalid_json');
  });

  it('rejects an oversize body with 413', async () => {
    const res = await inject('POST', '/api/chat', { message: 'x'.repeat(1_100_000) });
    expectError(res, 413, 'payload_too_large');
  });

  it('rejects a body that is not JSON with 415', async () => {
    const res = await server.app.http.inject({ method: 'POST', url: '/api/chat', headers: { 'content-type': 'text/plain' }, payload: 'hi' });
    expectError(res, 415, 'unsupported_media_type');
  });
});
