import { afterEach, describe, expect, it } from 'vitest';
import { chat, textOf } from '../support/sse-client.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

let server: TestServer | undefined;

afterEach(async () => {
  await server?.destroy();
  server = undefined;
});

/** Makes the real SQLite connection refuse writes, as a full or read-only disk would. */
function setDatabaseWritable(s: TestServer, writable: boolean): void {
  s.app.database.database.pragma(`query_only = ${writable ? 'OFF' : 'ON'}`);
}

describe('session creation when the database refuses writes', () => {
  it('hands out a real, usable session that is moved to the database once it recovers', async () => {
    server = await startTestServer({ env: { PROVISIONAL_RECONCILE_INTERVAL_MS: '50' } });
    setDatabaseWritable(server, false);

    const created = await fetch(`${server.url}/api/session-with-config`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ system_prompt: 'Be brief.' }),
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('x-fallback-strategy')).toBe('mock_response');
    const body = (await created.json()) as { session_id: string; provisional: boolean };
    expect(body.provisional).toBe(true);
    const id = body.session_id;

    // Usable at once: readable, and a chat on it is answered and stored.
    expect((await fetch(`${server.url}/api/session/${id}`)).status).toBe(200);
    const { frames } = await chat(server.url, { message: 'still there?', session_id: id });
    expect(frames.at(-2)).toMatchObject({ type: 'result', mode: 'simulated' });
    expect(textOf(frames)).toContain('still there?');
    expect(server.app.store.provisionalCount()).toBe(1);
    expect(server.logs.some((l) => l.event === 'fallback_used' && l.operation === 'session_creation' && l.strategy === 'mock_response')).toBe(true);

    setDatabaseWritable(server, true);
    await expect.poll(() => server!.app.store.provisionalCount(), { timeout: 5000 }).toBe(0);
    expect(server.app.database.getSession(id)?.config).toEqual({ system_prompt: 'Be brief.' });
    const history = (await (await fetch(`${server.url}/api/session-history/${id}`)).json()) as { messages: { role: string; content: string }[] };
    expect(history.messages.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(history.messages[0]?.content).toBe('still there?');
    expect(server.logs.some((l) => l.event === 'provisional_sessions_reconciled' && l.moved === 1)).toBe(true);

    // It survives a restart like any other session.
    const dbPath = server.dbPath;
    await server.stop();
    const restarted = await startTestServer({ dbPath });
    try {
      expect((await fetch(`${restarted.url}/api/session/${id}`)).status).toBe(200);
    } finally {
      await restarted.stop();
    }
  });

  it('answers 500 when session fallbacks are off', async () => {
    server = await startTestServer({ env: { SESSION_FALLBACKS: 'none' } });
    setDatabaseWritable(server, false);
    const res = await fetch(`${server.url}/api/new-session`, { method: 'POST' });
    expect(res.status).toBe(500);
    expect(await res.json()).toMatchObject({ error: { type: 'internal_error' } });
  });
});
