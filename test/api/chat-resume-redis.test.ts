/**
 * Issue 9 with REDIS_URL: two server instances on one Redis (and one SQLite file) — a stream started on
 * one is resumed from the other, a repeated Idempotency-Key is recognised by the other, and a session
 * has one writer across both.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeAnthropic, type FakeAnthropic } from '../support/fake-anthropic.js';
import { startRedisServer, type RedisServerHandle } from '../support/redis-server.js';
import { collectFrames, postChat, readFrames, textOf, type ChatFrame } from '../support/sse-client.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

let fake: FakeAnthropic;
let redis: RedisServerHandle;
let dir: string;
let servers: TestServer[] = [];

const REPLY = Array.from({ length: 30 }, (_, i) => `part${i}`).join(' ');

beforeAll(async () => {
  [fake, redis] = await Promise.all([startFakeAnthropic(), startRedisServer()]);
});
afterAll(async () => {
  await Promise.all([fake.close(), redis.stop()]);
});
afterEach(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  servers = [];
  if (dir) rmSync(dir, { recursive: true, force: true });
  fake.reset();
});

/** Two instances sharing Redis and the database file, as behind a load balancer. */
async function twoInstances(): Promise<[TestServer, TestServer]> {
  dir = mkdtempSync(join(tmpdir(), 'chat-api-redis-resume-'));
  const dbPath = join(dir, 'chat.db');
  const env = { ANTHROPIC_API_KEY: 'sk-test-key', ANTHROPIC_BASE_URL: fake.url, RETRY_MAX_RETRIES: '0', CHAT_FALLBACKS: 'none', REDIS_URL: redis.url, HEALTH_CHECK_INTERVAL_MS: '100' };
  const a = await startTestServer({ env, dbPath });
  const b = await startTestServer({ env, dbPath });
  servers = [a, b];
  return [a, b];
}

async function newSession(base: string): Promise<string> {
  const res = await fetch(`${base}/api/new-session`, { method: 'POST' });
  expect(res.status).toBe(201);
  return ((await res.json()) as { session_id: string }).session_id;
}

function upstreamCalls(): number {
  return fake.requests.filter((r) => r.path === '/v1/messages').length;
}

describe('resuming across instances on one Redis', () => {
  it('a stream started on instance A is resumed from instance B with exactly the remaining frames', async () => {
    const [a, b] = await twoInstances();
    fake.setReply(REPLY);
    fake.setChunkDelayMs(15);
    const sessionId = await newSession(a.url);
    const controller = new AbortController();
    const first: ChatFrame[] = [];
    for await (const frame of readFrames(await postChat(a.url, { session_id: sessionId, message: 'go' }, controller.signal))) {
      first.push(frame);
      if (first.length === 5) break;
    }
    controller.abort();

    const resumed = await fetch(`${b.url}/api/session/${sessionId}/stream`, { headers: { 'last-event-id': first.at(-1)!.id } });
    expect(resumed.status).toBe(200);
    const rest = await collectFrames(resumed);
    expect(rest.map((f) => f.seq)).toEqual(rest.map((_, i) => 6 + i));
    expect(rest.at(-1)?.type).toBe('done');
    expect(textOf([...first, ...rest])).toBe(REPLY);
    expect(b.logs.some((l) => l.event === 'stream_resumed')).toBe(true);

    // Without Last-Event-ID, B finds the session's latest answer through Redis and replays it whole.
    const whole = await collectFrames(await fetch(`${b.url}/api/session/${sessionId}/stream`));
    expect(whole.map((f) => f.id)).toEqual([...first, ...rest].map((f) => f.id));
    const history = (await (await fetch(`${b.url}/api/session-history/${sessionId}`)).json()) as { messages: { content: string; status: string }[] };
    expect(history.messages[1]).toMatchObject({ content: REPLY, status: 'complete' });
    expect(upstreamCalls()).toBe(1);
  });

  it('a repeated Idempotency-Key on instance B attaches to the turn instance A started: one upstream request, the same answer', async () => {
    const [a, b] = await twoInstances();
    fake.setReply(REPLY);
    fake.setChunkDelayMs(10);
    const send = (base: string) =>
      fetch(`${base}/api/chat`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': 'shared-key' },
        body: JSON.stringify({ message: 'only once' }),
      });
    const first = await send(a.url);
    const firstFrames = collectFrames(first);
    await fake.waitFor((f) => f.requests.some((r) => r.path === '/v1/messages'));
    const second = await send(b.url);
    expect(second.status).toBe(200);
    const [framesA, framesB] = await Promise.all([firstFrames, collectFrames(second)]);
    expect(framesB.map((f) => [f.id, f.type, f.content])).toEqual(framesA.map((f) => [f.id, f.type, f.content]));
    expect(textOf(framesB)).toBe(REPLY);
    expect(upstreamCalls()).toBe(1);
  });

  it('one writer per session across instances: a send on B while A answers gets 409', async () => {
    const [a, b] = await twoInstances();
    fake.setReply(REPLY);
    fake.setChunkDelayMs(20);
    const sessionId = await newSession(a.url);
    const running = await postChat(a.url, { session_id: sessionId, message: 'first' });
    await fake.waitFor((f) => f.requests.some((r) => r.path === '/v1/messages'));
    const refused = await postChat(b.url, { session_id: sessionId, message: 'second' });
    expect(refused.status).toBe(409);
    expect(await refused.json()).toMatchObject({ error: { type: 'turn_in_progress' } });
    await collectFrames(running);
    // A lock taken for a turn that then failed to start is given back at once, not after its TTL.
    expect(await a.app.streams.hub.claim(sessionId, 'turn-that-never-started')).toBe(true);
    expect((await postChat(b.url, { session_id: sessionId, message: 'second' })).status).toBe(409);
    a.app.streams.hub.release(sessionId, 'turn-that-never-started');
    // Once A's turn ended (and the stray lock is released), B may write.
    await expect.poll(() => b.app.streams.hub.claim(sessionId, 'probe')).toBe(true);
    b.app.streams.hub.release(sessionId, 'probe');
    const next = await collectFrames(await postChat(b.url, { session_id: sessionId, message: 'second' }));
    expect(next.at(-2)?.type).toBe('result');
    expect(upstreamCalls()).toBe(2);
  });

  it('clear and interrupt on instance B stop a turn running on instance A first; the latest answer is found across instances', async () => {
    const [a, b] = await twoInstances();
    fake.setReply(REPLY);
    fake.setChunkDelayMs(25);
    const sessionId = await newSession(a.url);
    const running = await postChat(a.url, { session_id: sessionId, message: 'to be cleared' });
    await fake.waitFor((f) => f.requests.some((r) => r.path === '/v1/messages'));
    const cleared = await fetch(`${b.url}/api/clear`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ session_id: sessionId }),
    });
    expect(cleared.status).toBe(200);
    const frames = await collectFrames(running);
    expect(frames.at(-2)).toMatchObject({ type: 'error', error_type: 'session_cleared' });
    expect(fake.requests.find((r) => r.path === '/v1/messages')).toMatchObject({ clientClosed: true });
    // The interrupted answer was stored before the clear, so nothing of that turn is left.
    const history = (await (await fetch(`${b.url}/api/session-history/${sessionId}`)).json()) as { messages: unknown[] };
    expect(history.messages).toEqual([]);
    // Its log is not served again either.
    expect((await fetch(`${b.url}/api/session/${sessionId}/stream`)).status).toBe(410);

    // A newer answer on B is the one A resumes without Last-Event-ID.
    const second = await postChat(b.url, { session_id: sessionId, message: 'interrupt me from A' });
    await fake.waitFor((f) => f.requests.filter((r) => r.path === '/v1/messages').length === 2);
    const latest = await fetch(`${a.url}/api/session/${sessionId}/stream`);
    expect(latest.headers.get('x-turn-id')).toBe(second.headers.get('x-turn-id'));
    const interrupted = await fetch(`${a.url}/api/interrupt`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ session_id: sessionId }),
    });
    expect(await interrupted.json()).toMatchObject({ status: 'interrupted', interrupted: true });
    expect((await collectFrames(second)).at(-2)).toMatchObject({ type: 'error', error_type: 'interrupted' });
    expect((await collectFrames(latest)).at(-2)).toMatchObject({ type: 'error', error_type: 'interrupted' });
  });

  it('resuming on B before what Redis still keeps is a 410 (not a stream that breaks), and an id ahead of it a 400', async () => {
    dir = mkdtempSync(join(tmpdir(), 'chat-api-redis-resume-'));
    const dbPath = join(dir, 'chat.db');
    const env = { ANTHROPIC_API_KEY: 'sk-test-key', ANTHROPIC_BASE_URL: fake.url, RETRY_MAX_RETRIES: '0', CHAT_FALLBACKS: 'none', REDIS_URL: redis.url, STREAM_MAX_FRAMES: '200' };
    const a = await startTestServer({ env, dbPath });
    const b = await startTestServer({ env, dbPath });
    servers = [a, b];
    // Paced so the first client keeps up with a log that only keeps 200 frames.
    fake.setReply(Array.from({ length: 1000 }, (_, i) => `w${i}`).join(' '));
    fake.setChunking({ chunkCount: 1000 });
    fake.setChunkDelayMs(1);
    const sessionId = await newSession(a.url);
    const frames = await collectFrames(await postChat(a.url, { session_id: sessionId, message: 'long' }));
    const turn = frames[0]!.turnId;
    const trimmed = await fetch(`${b.url}/api/session/${sessionId}/stream`, { headers: { 'last-event-id': `${turn}:1` } });
    expect(trimmed.status).toBe(410);
    expect(await trimmed.json()).toMatchObject({ error: { type: 'stream_expired' } });
    const ahead = await fetch(`${b.url}/api/session/${sessionId}/stream`, { headers: { 'last-event-id': `${turn}:${frames.length + 5}` } });
    expect(ahead.status).toBe(400);
    // The tail is still there.
    const tail = await collectFrames(await fetch(`${b.url}/api/session/${sessionId}/stream`, { headers: { 'last-event-id': frames.at(-3)!.id } }));
    expect(tail.map((f) => f.type)).toEqual(['result', 'done']);
  });

  it('with Redis down, each instance keeps streaming and resuming its own answers from memory', async () => {
    const [a] = await twoInstances();
    fake.setReply('still here');
    const streamsCheck = async () => {
      const health = (await (await fetch(`${a.url}/health`)).json()) as { checks: Record<string, { status: string; output: string }[]> };
      return health.checks['streams:backend']?.[0];
    };
    await expect.poll(async () => (await streamsCheck())?.status).toBe('pass');
    expect((await streamsCheck())?.output).toMatch(/^redis; /);
    await redis.stop();
    try {
      const sessionId = await newSession(a.url);
      const frames = await collectFrames(await postChat(a.url, { session_id: sessionId, message: 'hello?' }));
      expect(textOf(frames)).toBe('still here');
      const again = await collectFrames(await fetch(`${a.url}/api/session/${sessionId}/stream`, { headers: { 'last-event-id': frames[1]!.id } }));
      expect(again.map((f) => f.seq)).toEqual(frames.slice(2).map((f) => f.seq));
      expect(a.logs.some((l) => l.event === 'stream_backend_degraded')).toBe(true);
      await expect.poll(async () => (await streamsCheck())?.status, { timeout: 5000 }).toBe('warn');
    } finally {
      await redis.restart();
    }
  });
});
