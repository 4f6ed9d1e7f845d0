import http from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeAnthropic, type FakeAnthropic } from '../support/fake-anthropic.js';
import { startRedisServer } from '../support/redis-server.js';
import { chat, textOf, type ChatFrame } from '../support/sse-client.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

let fake: FakeAnthropic;
let backup: FakeAnthropic;
const servers: TestServer[] = [];

function env(overrides: Record<string, string> = {}) {
  return {
    ANTHROPIC_API_KEY: 'sk-test-key',
    ANTHROPIC_BASE_URL: fake.url,
    CLAUDE_MODEL: 'claude-sonnet-4-6',
    RETRY_MAX_RETRIES: '0',
    CHAT_FALLBACKS: 'cached_response,mock_response',
    FALLBACK_MOCK_TEXT: 'Automatic reply: Claude is unavailable.',
    ...overrides,
  };
}

async function start(overrides: Record<string, string> = {}, dbPath?: string): Promise<TestServer> {
  const server = await startTestServer({ env: env(overrides), ...(dbPath ? { dbPath } : {}) });
  servers.push(server);
  return server;
}

const result = (frames: ChatFrame[]) => frames.find((f) => f.type === 'result');
const upstreamCalls = (f: FakeAnthropic) => f.requests.filter((r) => r.path === '/v1/messages');

async function stability(server: TestServer) {
  return (await (await fetch(`${server.url}/health/stability`)).json()) as {
    fallback_statistics: { operations: Record<string, { cache_hits: number; cache_misses: number; fallback_used: number; total_failures: number; strategies: Record<string, number> }>; cache: { backend: string } };
    circuit_breakers: Record<string, { state: string }>;
  };
}

async function history(server: TestServer, sessionId: string) {
  const res = await fetch(`${server.url}/api/session-history/${sessionId}`);
  return ((await res.json()) as { messages: { role: string; content: string; status: string; mode: string }[] }).messages;
}

/** The trailer is only visible to a raw HTTP client. */
function chatTrailers(server: TestServer, message: string): Promise<Record<string, string | undefined>> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${server.url}/api/chat`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.trailers));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ message }));
  });
}

beforeAll(async () => {
  fake = await startFakeAnthropic();
  backup = await startFakeAnthropic({ reply: 'Backup says hi' });
});
afterAll(async () => {
  await Promise.all([fake.close(), backup.close()]);
});
afterEach(async () => {
  for (const server of servers.splice(0)) await server.destroy();
  fake.reset();
  backup.reset();
});

describe('cached_response and mock_response', () => {
  it('answers a conversation seen before from the cache, anything else with the mock, and counts both', async () => {
    const server = await start();
    const live = await chat(server.url, { message: 'What is the capital of France?' });
    expect(result(live.frames)).toMatchObject({ mode: 'live' });

    fake.setDefaultFault({ kind: 'status', status: 503 });
    const cached = await chat(server.url, { message: 'What is the capital of France?' });
    expect(result(cached.frames)).toMatchObject({ mode: 'cached', cost_usd: 0 });
    expect(cached.frames.at(-1)).toMatchObject({ type: 'done', mode: 'cached' });
    expect(textOf(cached.frames)).toBe('Echo: What is the capital of France?');

    const mocked = await chat(server.url, { message: 'Something never asked' });
    expect(result(mocked.frames)).toMatchObject({ mode: 'mock' });
    expect(textOf(mocked.frames)).toBe('Automatic reply: Claude is unavailable.');
    const stored = await history(server, mocked.frames[0]!.session_id);
    expect(stored[1]).toMatchObject({ role: 'assistant', mode: 'mock', status: 'complete' });

    const stats = (await stability(server)).fallback_statistics.operations.chat!;
    expect(stats).toMatchObject({ cache_hits: 1, cache_misses: 1, fallback_used: 2, strategies: { cached_response: 1, mock_response: 1 } });
    expect(server.logs.filter((l) => l.event === 'fallback_used').map((l) => [l.strategy, l.reason])).toEqual([
      ['cached_response', 'api_error'],
      ['mock_response', 'api_error'],
    ]);
    expect(server.logs.some((l) => l.event === 'cache_hit')).toBe(true);
    expect(await chatTrailers(server, 'Trailer please')).toMatchObject({ 'x-fallback-strategy': 'mock_response' });
  });

  it('never answers a client error from the cache or the mock', async () => {
    const server = await start();
    await chat(server.url, { message: 'Cached question' });
    fake.enqueueFault({ kind: 'status', status: 400 });
    const { frames } = await chat(server.url, { message: 'Cached question' });
    expect(frames.map((f) => f.type)).toEqual(['processing', 'error', 'done']);
    expect(frames[1]).toMatchObject({ error_type: 'invalid_request_error' });
    expect((await stability(server)).fallback_statistics.operations.chat).toMatchObject({ fallback_used: 0, total_failures: 1 });
  });

  it('does not let a mock reply into the conversation sent to Claude later', async () => {
    const server = await start();
    fake.enqueueFault({ kind: 'status', status: 503 });
    const first = await chat(server.url, { message: 'first' });
    expect(result(first.frames)).toMatchObject({ mode: 'mock' });
    await chat(server.url, { message: 'second', session_id: first.frames[0]!.session_id });
    const last = upstreamCalls(fake).at(-1)?.body as { messages: { role: string; content: string }[] };
    expect(last.messages).toEqual([{ role: 'user', content: 'first\n\nsecond' }]);
  });

  it('clears the cache on request', async () => {
    const server = await start();
    await chat(server.url, { message: 'to be forgotten' });
    const cleared = await fetch(`${server.url}/health/fallback-cache/clear`, { method: 'POST' });
    expect(await cleared.json()).toEqual({ status: 'cleared', items_cleared: 1 });
    fake.setDefaultFault({ kind: 'status', status: 503 });
    const { frames } = await chat(server.url, { message: 'to be forgotten' });
    expect(result(frames)).toMatchObject({ mode: 'mock' });
  });
});

describe('alternative_provider', () => {
  it('answers from the alternative while the primary fails, opens the primary breaker, and returns to the primary after recovery', async () => {
    const server = await start({
      CHAT_FALLBACKS: 'alternative_provider,mock_response',
      CLAUDE_BREAKER_TIMEOUT_SECONDS: '0.3',
      ALTERNATIVE_PROVIDERS: JSON.stringify([{ name: 'backup', base_url: backup.url, api_key: 'backup-key', model: 'claude-haiku-4-5' }]),
    });
    fake.setDefaultFault({ kind: 'status', status: 503 });
    for (let i = 0; i < 4; i++) {
      const { frames } = await chat(server.url, { message: `question ${i}` });
      expect(result(frames)).toMatchObject({ mode: 'alternative', provider: 'backup', model: 'claude-haiku-4-5' });
      expect(textOf(frames)).toBe('Backup says hi');
    }
    expect(upstreamCalls(fake)).toHaveLength(3); // the 4th never reached the open primary
    expect(upstreamCalls(backup)).toHaveLength(4);
    expect(upstreamCalls(backup)[0]?.headers.authorization).toBe('Bearer backup-key');
    expect((await stability(server)).circuit_breakers.claude_sdk?.state).toBe('open');

    fake.setDefaultFault(null);
    await new Promise((resolve) => setTimeout(resolve, 350));
    for (let i = 0; i < 2; i++) {
      const { frames } = await chat(server.url, { message: `after recovery ${i}` });
      expect(result(frames)).toMatchObject({ mode: 'live', model: 'claude-sonnet-4-6' });
    }
    expect((await stability(server)).circuit_breakers.claude_sdk?.state).toBe('closed');
    expect(upstreamCalls(backup)).toHaveLength(4);
  });
});

describe('degraded_service', () => {
  it('answers with the smaller model and a lower max_tokens when the primary model fails', async () => {
    const server = await start({ CHAT_FALLBACKS: 'degraded_service,mock_response', DEGRADED_MODEL: 'claude-haiku-4-5', DEGRADED_MAX_TOKENS: '256' });
    fake.enqueueFault({ kind: 'status', status: 529 });
    const { frames } = await chat(server.url, { message: 'quick answer' });
    expect(result(frames)).toMatchObject({ mode: 'degraded', model: 'claude-haiku-4-5' });
    expect(textOf(frames)).toBe('Echo: quick answer');
    const [primary, degraded] = upstreamCalls(fake).map((r) => r.body as { model: string; max_tokens: number });
    expect(primary).toMatchObject({ model: 'claude-sonnet-4-6', max_tokens: 4096 });
    expect(degraded).toMatchObject({ model: 'claude-haiku-4-5', max_tokens: 256 });
    expect(Number(result(frames)?.cost_usd)).toBeGreaterThan(0);
  });
});

describe('queue_for_retry', () => {
  it('accepts the turn as a durable job that survives a restart and answers once Claude is back', async () => {
    const first = await start({ CHAT_FALLBACKS: 'queue_for_retry', RETRY_DELAYS_MS: '100,200' });
    fake.setDefaultFault({ kind: 'status', status: 503 });
    const { frames } = await chat(first.url, { message: 'answer me later' });
    const queued = result(frames);
    expect(queued).toMatchObject({ mode: 'queued', message_id: null });
    const jobId = String(queued?.job_id);
    const sessionId = frames[0]!.session_id;
    expect(await (await fetch(`${first.url}/api/jobs/${jobId}`)).json()).toMatchObject({ job_id: jobId, session_id: sessionId, status: 'queued' });

    const dbPath = first.dbPath;
    await first.stop();
    servers.splice(servers.indexOf(first), 1);
    fake.setDefaultFault(null);
    const second = await start({ CHAT_FALLBACKS: 'queue_for_retry', RETRY_DELAYS_MS: '100,200' }, dbPath);
    await expect
      .poll(async () => ((await (await fetch(`${second.url}/api/jobs/${jobId}`)).json()) as { status: string }).status, { timeout: 10_000, interval: 100 })
      .toBe('done');
    const stored = await history(second, sessionId);
    expect(stored.map((m) => [m.role, m.content, m.mode])).toEqual([
      ['user', 'answer me later', 'live'],
      ['assistant', 'Echo: answer me later', 'queued'],
    ]);
    expect((await fetch(`${second.url}/api/jobs/123e4567-e89b-42d3-a456-426614174000`)).status).toBe(404);
    await first.destroy(); // removes the temp folder; the app was already stopped
  });
});

describe('Redis-backed cache', () => {
  it('is shared by two instances, and when Redis stops requests are still answered and health says degraded', async () => {
    const redis = await startRedisServer();
    try {
      const a = await start({ REDIS_URL: redis.url });
      const b = await start({ REDIS_URL: redis.url });
      await chat(a.url, { message: 'shared question' });
      fake.setDefaultFault({ kind: 'status', status: 503 });
      const fromB = await chat(b.url, { message: 'shared question' });
      expect(result(fromB.frames)).toMatchObject({ mode: 'cached' });
      expect((await stability(b)).fallback_statistics.cache.backend).toBe('redis');

      await redis.stop();
      const during = await chat(b.url, { message: 'shared question' });
      expect(['cached', 'mock']).toContain(result(during.frames)?.mode);
      await expect.poll(async () => (await stability(b)).fallback_statistics.cache.backend, { timeout: 5000 }).toBe('redis_degraded');
      const health = (await (await fetch(`${b.url}/health`)).json()) as { status: string; checks: Record<string, { status: string }[]> };
      expect(health.checks['cache:backend']?.[0]?.status).toBe('warn');
    } finally {
      await redis.stop().catch(() => undefined);
    }
  });
});
