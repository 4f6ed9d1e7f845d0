/**
 * Issue 9: resumable streams, idempotent sends and one writer per session, through the real HTTP API
 * against the Anthropic upstream.fake.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { useFakeAnthropic } from '../support/fake-anthropic-suite.js';
import { collectFrames, postChat, readFrames, textOf, type ChatFrame } from '../support/sse-client.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

let server: TestServer;
const upstream = useFakeAnthropic(() => server);

const env = (extra: Record<string, string> = {}) => ({
  ANTHROPIC_API_KEY: 'sk-test-key',
  ANTHROPIC_BASE_URL: upstream.fake.url,
  RETRY_MAX_RETRIES: '0',
  CHAT_FALLBACKS: 'none',
  ...extra,
});

const REPLY = Array.from({ length: 24 }, (_, i) => `word${i}`).join(' ');


function upstreamCalls(): number {
  return upstream.fake.requests.filter((r) => r.path === '/v1/messages').length;
}

async function newSession(base = server.url, headers: Record<string, string> = {}): Promise<string> {
  const res = await fetch(`${base}/api/new-session`, { method: 'POST', headers });
  expect(res.status).toBe(201);
  return ((await res.json()) as { session_id: string }).session_id;
}

function chatWithKey(body: unknown, key: string, extra: Record<string, string> = {}, base = server.url): Promise<Response> {
  return fetch(`${base}/api/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': key, ...extra },
    body: JSON.stringify(body),
  });
}

function resume(sessionId: string, lastEventId?: string, base = server.url): Promise<Response> {
  return fetch(`${base}/api/session/${sessionId}/stream`, { headers: lastEventId ? { 'last-event-id': lastEventId } : {} });
}

/** Reads `count` frames, then drops the connection. */
async function readThenDisconnect(response: Response, count: number, controller: AbortController): Promise<ChatFrame[]> {
  const frames: ChatFrame[] = [];
  for await (const frame of readFrames(response)) {
    frames.push(frame);
    if (frames.length === count) break;
  }
  controller.abort();
  return frames;
}

/** What a history shows of an answer, without ids and timestamps. */
async function storedTurns(sessionId: string, base = server.url) {
  const res = await fetch(`${base}/api/session-history/${sessionId}`);
  expect(res.status).toBe(200);
  const body = (await res.json()) as { messages: Record<string, unknown>[] };
  return body.messages.map((m) => ({ role: m.role, content: m.content, status: m.status, error: m.error, output_tokens: m.output_tokens, tool_events: m.tool_events }));
}

function expectContiguous(frames: ChatFrame[], from: number): void {
  expect(frames.map((f) => f.seq)).toEqual(frames.map((_, i) => from + i));
}

describe('resuming a stream with Last-Event-ID', () => {
  it('after a disconnect at frame 5, the resumed stream carries exactly the remaining frames and the history equals an uninterrupted run', async () => {
    server = await startTestServer({ env: env() });
    upstream.fake.setReply(REPLY);
    upstream.fake.setChunkDelayMs(15);

    // The reference: the same message answered without interruption.
    const reference = await newSession();
    const whole = await collectFrames(await postChat(server.url, { session_id: reference, message: 'tell me' }));
    expect(whole.at(-1)?.type).toBe('done');

    const sessionId = await newSession();
    const controller = new AbortController();
    const first = await readThenDisconnect(await postChat(server.url, { session_id: sessionId, message: 'tell me' }, controller.signal), 5, controller);
    expectContiguous(first, 1);
    const last = first.at(-1)!;
    expect(last.id).toBe(`${first[0]!.message_id as string}:5`);

    const resumed = await resume(sessionId, last.id);
    expect(resumed.status).toBe(200);
    expect(resumed.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const rest = await collectFrames(resumed);
    expectContiguous(rest, 6);
    expect(rest.every((f) => f.turnId === last.turnId)).toBe(true);
    const all = [...first, ...rest];
    expect(all.filter((f) => f.type === 'done')).toHaveLength(1);
    expect(all.map((f) => f.type)).toEqual(whole.map((f) => f.type));
    expect(textOf(all)).toBe(REPLY);

    expect(await storedTurns(sessionId)).toEqual(await storedTurns(reference));
    expect(upstreamCalls()).toBe(2);
    const metrics = await (await fetch(`${server.url}/metrics`, { headers: { accept: 'text/plain;version=0.0.4' } })).text();
    expect(metrics).toContain('chat_stream_events_total{event="resumed"} 1');
    expect(metrics).toContain('chat_stream_events_total{event="client_disconnected"} 1');
  });

  it('without Last-Event-ID, the stream route replays the latest answer from its first frame; a finished one can be replayed again', async () => {
    server = await startTestServer({ env: env() });
    upstream.fake.setReply('short answer here');
    const sessionId = await newSession();
    const original = await collectFrames(await postChat(server.url, { session_id: sessionId, message: 'hi' }));
    for (let i = 0; i < 2; i++) {
      const res = await resume(sessionId);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-turn-id')).toBe(original[0]!.turnId);
      const again = await collectFrames(res);
      expect(again.map((f) => [f.id, f.type, f.content])).toEqual(original.map((f) => [f.id, f.type, f.content]));
    }
    // Resuming after the last frame: nothing more to send, the stream just ends.
    expect(await collectFrames(await resume(sessionId, original.at(-1)!.id))).toEqual([]);
  });

  it('refuses bad resumes with clear errors: malformed id (400), another session (404), nothing to resume (404), expired (410)', async () => {
    server = await startTestServer({ env: env({ STREAM_RETENTION_SECONDS: '0.2' }) });
    upstream.fake.setReply('soon expired');
    const idle = await newSession();
    const idleRes = await resume(idle);
    expect(idleRes.status).toBe(404);
    expect(await idleRes.json()).toMatchObject({ error: { type: 'no_stream' } });

    const sessionId = await newSession();
    const frames = await collectFrames(await postChat(server.url, { session_id: sessionId, message: 'x' }));
    const bad = await resume(sessionId, 'not-an-id');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { type: 'invalid_last_event_id' } });
    const ahead = await resume(sessionId, `${frames[0]!.turnId}:999`);
    expect(ahead.status).toBe(400);
    const elsewhere = await resume(idle, frames[1]!.id);
    expect(elsewhere.status).toBe(404);

    await new Promise((resolve) => setTimeout(resolve, 400));
    const gone = await resume(sessionId, frames[1]!.id);
    expect(gone.status).toBe(410);
    expect(((await gone.json()) as { error: { type: string; message: string } }).error).toMatchObject({
      type: 'stream_expired',
      message: expect.stringContaining(`/api/session-history/${sessionId}`),
    });
  });
});

describe('Idempotency-Key', () => {
  it('the same key sent twice concurrently makes one upstream request and both clients receive the same answer', async () => {
    server = await startTestServer({ env: env() });
    upstream.fake.setReply(REPLY);
    upstream.fake.setChunkDelayMs(5);
    const sessionId = await newSession();
    const body = { session_id: sessionId, message: 'once please' };
    const [a, b] = await Promise.all([chatWithKey(body, 'key-123'), chatWithKey(body, 'key-123')]);
    expect([a.status, b.status]).toEqual([200, 200]);
    const [framesA, framesB] = await Promise.all([collectFrames(a), collectFrames(b)]);
    expect(upstreamCalls()).toBe(1);
    expect(textOf(framesA)).toBe(REPLY);
    expect(framesB.map((f) => [f.id, f.type, f.content])).toEqual(framesA.map((f) => [f.id, f.type, f.content]));
    expect(await storedTurns(sessionId)).toHaveLength(2);
    expect(server.logs.some((l) => l.event === 'idempotent_replay')).toBe(true);
  });

  it('a repeat long after the stream log expired replays the stored answer instead of asking Claude again', async () => {
    server = await startTestServer({ env: env({ STREAM_RETENTION_SECONDS: '0.1' }) });
    upstream.fake.setReply('the stored answer');
    const body = { message: 'no session yet' };
    const first = await collectFrames(await chatWithKey(body, 'later'));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const repeat = await chatWithKey(body, 'later');
    expect(repeat.status).toBe(200);
    const again = await collectFrames(repeat);
    expect(upstreamCalls()).toBe(1);
    expect(again[0]).toMatchObject({ type: 'processing', session_id: first[0]!.session_id, message_id: first[0]!.message_id });
    expect(textOf(again)).toBe('the stored answer');
    expect(again.map((f) => f.type).slice(-2)).toEqual(['result', 'done']);
    expect(again.at(-2)).toMatchObject({ message_id: first.at(-2)!.message_id, output_tokens: first.at(-2)!.output_tokens });
  });

  it('the same key with a different body is a 422, and a malformed key a 400; nothing is stored or sent upstream', async () => {
    server = await startTestServer({ env: env() });
    upstream.fake.setReply('ok');
    const sessionId = await newSession();
    await collectFrames(await chatWithKey({ session_id: sessionId, message: 'first' }, 'k-1'));
    const reused = await chatWithKey({ session_id: sessionId, message: 'second' }, 'k-1');
    expect(reused.status).toBe(422);
    expect(await reused.json()).toMatchObject({ error: { type: 'idempotency_key_reused' } });
    const malformed = await chatWithKey({ session_id: sessionId, message: 'third' }, 'bad key with spaces');
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ error: { type: 'invalid_idempotency_key' } });
    expect(upstreamCalls()).toBe(1);
    expect(await storedTurns(sessionId)).toHaveLength(2);
  });

  it('a request refused before its turn started (busy session) does not burn its key', async () => {
    server = await startTestServer({ env: env() });
    upstream.fake.setReply(REPLY);
    upstream.fake.setChunkDelayMs(20);
    const sessionId = await newSession();
    const running = await postChat(server.url, { session_id: sessionId, message: 'long one' });
    const refused = await chatWithKey({ session_id: sessionId, message: 'next' }, 'retry-me');
    expect(refused.status).toBe(409);
    await collectFrames(running);
    const retried = await chatWithKey({ session_id: sessionId, message: 'next' }, 'retry-me');
    expect(retried.status).toBe(200);
    expect((await collectFrames(retried)).at(-2)?.type).toBe('result');
  });

  it('creates one session per key: a repeat gets the same session, a different body a 422', async () => {
    server = await startTestServer({ env: env() });
    const create = (route: string, key: string, body?: unknown) =>
      fetch(`${server.url}${route}`, {
        method: 'POST',
        headers: { 'idempotency-key': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const [one, two] = await Promise.all([create('/api/new-session', 's-1'), create('/api/new-session', 's-1')]);
    expect([one.status, two.status]).toEqual([201, 201]);
    const [a, b] = (await Promise.all([one.json(), two.json()])) as { session_id: string }[];
    expect(a!.session_id).toBe(b!.session_id);
    expect([one.headers.get('idempotent-replayed'), two.headers.get('idempotent-replayed')]).toContain('true');
    expect(server.app.store.countSessions()).toBe(1);

    const configured = await create('/api/session-with-config', 's-2', { system_prompt: 'Be brief.' });
    const repeat = await create('/api/session-with-config', 's-2', { system_prompt: 'Be brief.' });
    expect(await repeat.json()).toEqual(await configured.json());
    const different = await create('/api/session-with-config', 's-2', { system_prompt: 'Be long.' });
    expect(different.status).toBe(422);
    expect(server.app.store.countSessions()).toBe(2);
  });

  it('keys are per API key: the same key from another caller is a different request', async () => {
    server = await startTestServer({ env: env({ API_KEYS: 'alice:alice-key-0123456789,bob:bob-key-0123456789' }) });
    const as = (key: string) => ({ authorization: `Bearer ${key}` });
    const alice = await fetch(`${server.url}/api/new-session`, { method: 'POST', headers: { ...as('alice-key-0123456789'), 'idempotency-key': 'same' } });
    const bob = await fetch(`${server.url}/api/new-session`, { method: 'POST', headers: { ...as('bob-key-0123456789'), 'idempotency-key': 'same' } });
    const [a, b] = (await Promise.all([alice.json(), bob.json()])) as { session_id: string }[];
    expect(a!.session_id).not.toBe(b!.session_id);
    expect(bob.headers.get('idempotent-replayed')).toBeNull();
  });
});

describe('STREAM_ON_DISCONNECT=abort', () => {
  it('stops the answer only when the last client reading it has gone', async () => {
    server = await startTestServer({ env: env({ STREAM_ON_DISCONNECT: 'abort' }) });
    upstream.fake.setReply(REPLY);
    upstream.fake.setChunkDelayMs(30);
    const body = { message: 'two readers' };
    const first = new AbortController();
    const second = new AbortController();
    const one = await chatWithKey(body, 'two-readers', {}, server.url);
    await upstream.fake.waitFor((f) => f.requests.some((r) => r.path === '/v1/messages'));
    const two = await fetch(`${server.url}/api/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'two-readers' },
      body: JSON.stringify(body),
      signal: second.signal,
    });
    const firstFrames = await readThenDisconnect(one, 3, first);
    // One reader left: the answer goes on.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(upstream.fake.requests.find((r) => r.path === '/v1/messages')).toMatchObject({ clientClosed: false });
    await readThenDisconnect(two, 3, second);
    await upstream.fake.waitFor((f) => f.requests.some((r) => r.path === '/v1/messages' && r.clientClosed));
    const sessionId = firstFrames[0]!.session_id;
    await expect.poll(async () => (await storedTurns(sessionId))[1]?.error).toBe('client_disconnected');
    expect(server.logs.filter((l) => l.event === 'client_disconnected').map((l) => l.generation)).toEqual(['continues', 'aborted']);
  });
});

describe('clearing a session', () => {
  it('its earlier answers are not served again: resume and a repeated key get 410', async () => {
    server = await startTestServer({ env: env() });
    upstream.fake.setReply('secret answer before clear');
    const body = { message: 'remember this' };
    const frames = await collectFrames(await chatWithKey(body, 'before-clear'));
    const sessionId = frames[0]!.session_id;
    const cleared = await fetch(`${server.url}/api/clear`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ session_id: sessionId }) });
    expect(cleared.status).toBe(200);
    const resumed = await resume(sessionId);
    expect(resumed.status).toBe(410);
    expect(await resumed.text()).not.toContain('secret');
    const repeat = await chatWithKey(body, 'before-clear');
    expect(repeat.status).toBe(410);
    expect(upstreamCalls()).toBe(1);
  });
});

describe('one writer per session', () => {
  it('two concurrent chats on one session: one is served, the other gets 409 and is not stored', async () => {
    server = await startTestServer({ env: env() });
    upstream.fake.setReply(REPLY);
    upstream.fake.setChunkDelayMs(5);
    const sessionId = await newSession();
    const responses = await Promise.all([
      postChat(server.url, { session_id: sessionId, message: 'one' }),
      postChat(server.url, { session_id: sessionId, message: 'two' }),
    ]);
    expect(responses.map((r) => r.status).sort()).toEqual([200, 409]);
    const refused = responses.find((r) => r.status === 409)!;
    expect(await refused.json()).toMatchObject({ error: { type: 'turn_in_progress', message: expect.stringContaining('already answering') } });
    await collectFrames(responses.find((r) => r.status === 200)!);
    expect(await storedTurns(sessionId)).toHaveLength(2);
    expect(upstreamCalls()).toBe(1);
  });
});

describe('slow clients', () => {
  it('a client that never reads does not slow the upstream: the answer completes into history, the client is cut off and can resume', async () => {
    server = await startTestServer({ env: env({ STREAM_CLIENT_MAX_BACKLOG_BYTES: '65536', STREAM_CLIENT_STALL_MS: '0' }) });
    const big = 'x'.repeat(7_999) + ' ';
    const reply = big.repeat(2_000).trimEnd(); // 16 MB, far past the socket buffers
    upstream.fake.setReply(reply);
    upstream.fake.setChunking({ chunkSize: 8_000 });
    const sessionId = await newSession();
    const { port } = new URL(server.url);
    const socket = net.connect(Number(port), '127.0.0.1');
    const body = JSON.stringify({ session_id: sessionId, message: 'a lot please' });
    socket.write(`POST /api/chat HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    // Never read: no 'data' listener, so the socket stops pulling once its small buffer is full.
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);

    await upstream.fake.waitFor((f) => f.requests.some((r) => r.path === '/v1/messages' && r.completed), 20_000);
    expect(upstream.fake.requests.find((r) => r.path === '/v1/messages')).toMatchObject({ clientClosed: false, completed: true });
    await expect.poll(async () => (await storedTurns(sessionId))[1]?.status, { timeout: 10_000 }).toBe('complete');
    expect((await storedTurns(sessionId))[1]?.content).toBe(reply);
    await expect.poll(() => server.logs.some((l) => l.event === 'stream_client_cut_off' && l.reason === 'slow_client'), { timeout: 10_000 }).toBe(true);
    socket.resume();
    await closed;

    const resumed = await collectFrames(await resume(sessionId));
    expect(textOf(resumed)).toBe(reply);
    expect(resumed.at(-1)?.type).toBe('done');
  });
});
