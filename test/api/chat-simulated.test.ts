import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulatedReply } from '../../src/providers/simulated.js';
import { chat, textOf } from '../support/sse-client.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.destroy();
});

describe('chat with no API key (simulated provider)', () => {
  it('streams processing → text_chunk… → result → done with the new session id everywhere', async () => {
    const { response, frames } = await chat(server.url, { message: 'hi' });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const sessionId = response.headers.get('x-session-id');
    expect(sessionId).toMatch(/^[0-9a-f-]{36}$/);

    const kinds = frames.map((f) => f.type);
    expect(kinds[0]).toBe('processing');
    expect(kinds.slice(-2)).toEqual(['result', 'done']);
    expect(kinds.slice(1, -2).every((k) => k === 'text_chunk')).toBe(true);
    expect(kinds.length).toBeGreaterThan(4);
    expect(frames.every((f) => f.session_id === sessionId)).toBe(true);
    expect(frames.map((f) => f.seq)).toEqual(frames.map((_, i) => i + 1));
    // Every id names the turn: the id of the user message that started it (the processing frame's message_id).
    expect(new Set(frames.map((f) => f.turnId))).toEqual(new Set([frames[0]!.message_id]));
    expect(response.headers.get('x-turn-id')).toBe(frames[0]!.message_id);

    expect(frames[0]).toMatchObject({ mode: 'simulated' });
    expect(frames.at(-2)).toMatchObject({ mode: 'simulated', model: 'simulated', cost_usd: 0, stop_reason: 'end_turn' });
    expect(textOf(frames)).toBe(simulatedReply({ model: 'x', maxTokens: 1, messages: [{ role: 'user', content: 'hi' }] }));
    expect(textOf(frames)).toMatch(/simulated/i);
  });

  it('creates a different session for every chat without a session id', async () => {
    const a = await chat(server.url, { message: 'one' });
    const b = await chat(server.url, { message: 'two', session_id: null });
    const idA = a.response.headers.get('x-session-id');
    const idB = b.response.headers.get('x-session-id');
    expect(idA).not.toBe(idB);
    const history = await (await fetch(`${server.url}/api/session-history/${idB}`)).json() as { messages: { content: string }[] };
    expect(history.messages.map((m) => m.content)[0]).toBe('two');
  });

  it('continues an existing session and counts its turns', async () => {
    const first = await chat(server.url, { message: 'one' });
    const sessionId = first.response.headers.get('x-session-id') as string;
    const second = await chat(server.url, { message: 'two', session_id: sessionId.toUpperCase() });
    expect(second.response.headers.get('x-session-id')).toBe(sessionId);
    expect(textOf(second.frames)).toContain('Turn 2');
    const session = await (await fetch(`${server.url}/api/session/${sessionId}`)).json() as { history: { message_count: number; total_tokens: number } };
    expect(session.history.message_count).toBe(4);
    expect(session.history.total_tokens).toBeGreaterThan(0);
  });

  it('stores the text exactly as sent: no HTML escaping, no trimming, no silent deletion', async () => {
    const text = '  <script>alert("x")</script> &amp; \u0000-free, emoji 😀, tabs\tand\nnewlines  ';
    const { response } = await chat(server.url, { message: text });
    const id = response.headers.get('x-session-id');
    const history = (await (await fetch(`${server.url}/api/session-history/${id}`)).json()) as { messages: { content: string }[] };
    expect(history.messages[0]?.content).toBe(text);
  });

  it('labels itself simulated in health and logs', async () => {
    const health = await fetch(`${server.url}/health`);
    expect(health.headers.get('content-type')).toMatch(/^application\/health\+json/);
    const body = (await health.json()) as { status: string; checks: Record<string, { componentId: string; status: string }[]> };
    expect(body.status).toBe('warn');
    expect(body.checks['claude:reachability']?.[0]).toMatchObject({ componentId: 'simulated', status: 'warn', output: expect.stringMatching(/simulated/) });
    expect(server.logs.some((l) => l.event === 'provider_selected' && l.simulated === true)).toBe(true);
    expect(server.logs.some((l) => l.event === 'chat_turn_completed' && l.mode === 'simulated')).toBe(true);
  });

  it('serves the operations basics', async () => {
    expect(await (await fetch(`${server.url}/`)).json()).toMatchObject({ status: 'ok', service: 'Claude Chat API' });
    const heartbeat = (await (await fetch(`${server.url}/heartbeat`)).json()) as { alive: boolean; timestamp: string; uptime: number };
    expect(heartbeat.alive).toBe(true);
    expect(new Date(heartbeat.timestamp).toISOString()).toBe(heartbeat.timestamp);
    expect(typeof heartbeat.uptime).toBe('number');
    expect((await fetch(`${server.url}/livez`)).status).toBe(200);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    server.app.readiness.markDraining();
    try {
      expect((await fetch(`${server.url}/readyz`)).status).toBe(503);
    } finally {
      // markDraining is one-way; this server is torn down after the file anyway.
    }
  });
});
