import { describe, expect, it } from 'vitest';
import { useFakeAnthropic } from '../support/fake-anthropic-suite.js';
import { chat, textOf, type ChatFrame } from '../support/sse-client.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

let server: TestServer;
const upstream = useFakeAnthropic(() => server);

/** Fast, deterministic resilience settings; each test overrides what it exercises. */
function env(overrides: Record<string, string> = {}) {
  return {
    ANTHROPIC_API_KEY: 'sk-test-key',
    ANTHROPIC_BASE_URL: upstream.fake.url,
    CLAUDE_MODEL: 'claude-sonnet-4-6',
    RETRY_DELAYS_MS: '20,40',
    RETRY_JITTER: '0',
    RETRY_MAX_RETRIES: '2',
    CHAT_FALLBACKS: 'none',
    SESSION_FALLBACKS: 'none',
    UPSTREAM_CONNECT_TIMEOUT_MS: '2000',
    UPSTREAM_FIRST_TOKEN_TIMEOUT_MS: '2000',
    UPSTREAM_IDLE_TIMEOUT_MS: '2000',
    UPSTREAM_TOTAL_TIMEOUT_MS: '10000',
    ...overrides,
  };
}

const upstreamCalls = () => upstream.fake.requests.filter((r) => r.path === '/v1/messages');
const kinds = (frames: ChatFrame[]) => frames.map((f) => f.type);
const events = (name: string) => server.logs.filter((l) => l.event === name);

async function storedAssistant(sessionId: string) {
  const res = await fetch(`${server.url}/api/session-history/${sessionId}`);
  const body = (await res.json()) as { messages: { role: string; status: string; error: string | null; content: string }[] };
  return body.messages.find((m) => m.role === 'assistant');
}


describe('retries before the first byte', () => {
  it('recovers from one 500: full answer, two upstream requests, one reconnection_attempt logged', async () => {
    server = await startTestServer({ env: env() });
    upstream.fake.enqueueFault({ kind: 'status', status: 500 });
    const { frames } = await chat(server.url, { message: 'try again' });
    expect(kinds(frames).slice(-2)).toEqual(['result', 'done']);
    expect(textOf(frames)).toBe('Echo: try again');
    expect(upstreamCalls()).toHaveLength(2);
    expect(events('reconnection_attempt')).toEqual([
      expect.objectContaining({ attempt: 1, delay_ms: 20, reason: 'api_error', circuit_name: 'claude_sdk', component: 'resilience' }),
    ]);
  });

  it('honours retry-after: the second attempt starts at least 1.8 s after the first', async () => {
    server = await startTestServer({ env: env() });
    upstream.fake.enqueueFault({ kind: 'status', status: 429, retryAfterSeconds: 2 });
    const { frames } = await chat(server.url, { message: 'rate limited' });
    expect(kinds(frames).slice(-2)).toEqual(['result', 'done']);
    const [first, second] = upstreamCalls();
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(1800);
  });

  it('gives up on a persistent 503 after the configured retries with an error frame and a retry hint', async () => {
    server = await startTestServer({ env: env() });
    upstream.fake.setDefaultFault({ kind: 'status', status: 503, retryAfterMs: 30 });
    const { frames } = await chat(server.url, { message: 'down' });
    expect(kinds(frames)).toEqual(['processing', 'error', 'done']);
    expect(frames[1]).toMatchObject({ error_type: 'api_error', recoverable: true, retry_after_ms: 30 });
    expect(upstreamCalls()).toHaveLength(3);
    expect((await storedAssistant(frames[0]!.session_id))?.status).toBe('error');
  });

  it('never retries a client error', async () => {
    server = await startTestServer({ env: env() });
    upstream.fake.enqueueFault({ kind: 'status', status: 400 });
    const { frames } = await chat(server.url, { message: 'bad' });
    expect(frames[1]).toMatchObject({ error_type: 'invalid_request_error', recoverable: false });
    expect(upstreamCalls()).toHaveLength(1);
  });

  it('retries a first-token timeout and then answers in full', async () => {
    server = await startTestServer({ env: env({ UPSTREAM_FIRST_TOKEN_TIMEOUT_MS: '150' }) });
    upstream.fake.enqueueFault({ kind: 'slow_first_token', delayMs: 1000 });
    const { frames } = await chat(server.url, { message: 'slow start' });
    expect(kinds(frames).slice(-2)).toEqual(['result', 'done']);
    expect(textOf(frames)).toBe('Echo: slow start');
    expect(upstreamCalls()).toHaveLength(2);
    expect(events('reconnection_attempt')[0]).toMatchObject({ reason: 'first_token_timeout' });
    await upstream.fake.waitFor(() => upstreamCalls()[0]?.clientClosed === true);
  });
});

describe('the four timers and broken streams', () => {
  it('ends a silent upstream with the connect timer', async () => {
    server = await startTestServer({ env: env({ RETRY_MAX_RETRIES: '0', UPSTREAM_CONNECT_TIMEOUT_MS: '150' }) });
    upstream.fake.enqueueFault({ kind: 'no_response' });
    const { frames } = await chat(server.url, { message: 'hello?' });
    expect(kinds(frames)).toEqual(['processing', 'error', 'done']);
    expect(frames[1]).toMatchObject({ error_type: 'connect_timeout', recoverable: true });
    await upstream.fake.waitFor(() => upstreamCalls()[0]?.clientClosed === true);
  });

  it('ends a stalled stream with the idle timer, stores it incomplete and does not retry after output', async () => {
    server = await startTestServer({ env: env({ UPSTREAM_IDLE_TIMEOUT_MS: '150' }) });
    upstream.fake.setReply('one two three four five');
    upstream.fake.enqueueFault({ kind: 'stall_mid_stream', afterChunks: 2 });
    const { frames } = await chat(server.url, { message: 'stall' });
    expect(kinds(frames).slice(-2)).toEqual(['error', 'done']);
    expect(kinds(frames)).not.toContain('result');
    expect(frames.at(-2)).toMatchObject({ error_type: 'idle_timeout', recoverable: true });
    expect(textOf(frames)).toBe('one two ');
    expect(upstreamCalls()).toHaveLength(1);
    expect(await storedAssistant(frames[0]!.session_id)).toMatchObject({ status: 'incomplete', content: 'one two ', error: 'idle_timeout' });
    await upstream.fake.waitFor(() => upstreamCalls()[0]?.clientClosed === true);
  });

  it('ends a cut stream with an error, never a result, and does not replay it', async () => {
    server = await startTestServer({ env: env() });
    upstream.fake.setReply('one two three four five');
    upstream.fake.enqueueFault({ kind: 'cut_mid_stream', afterChunks: 3 });
    const { frames } = await chat(server.url, { message: 'cut' });
    expect(kinds(frames)).not.toContain('result');
    expect(frames.at(-2)).toMatchObject({ type: 'error', error_type: 'stream_cut', recoverable: true });
    expect(upstreamCalls()).toHaveLength(1);
  });

  it('survives a malformed event with a clean error and keeps serving', async () => {
    server = await startTestServer({ env: env() });
    upstream.fake.enqueueFault({ kind: 'malformed_event', afterChunks: 1 });
    const broken = await chat(server.url, { message: 'garbled' });
    expect(broken.frames.at(-2)).toMatchObject({ type: 'error', error_type: 'malformed_event' });
    const next = await chat(server.url, { message: 'fine now' });
    expect(textOf(next.frames)).toBe('Echo: fine now');
  });

  it('ends a call that runs past the total timer', async () => {
    server = await startTestServer({ env: env({ RETRY_MAX_RETRIES: '0', UPSTREAM_TOTAL_TIMEOUT_MS: '200' }) });
    upstream.fake.setReply('a b c d e f g h i j k l m n o p');
    upstream.fake.setChunkDelayMs(30);
    const { frames } = await chat(server.url, { message: 'long' });
    expect(frames.at(-2)).toMatchObject({ type: 'error', error_type: 'total_timeout' });
    expect(kinds(frames)).not.toContain('result');
  });
});

describe('the claude_sdk circuit breaker', () => {
  it('opens after 3 failed chats, fails fast without calling upstream, then probes and closes after 2 successes', async () => {
    server = await startTestServer({ env: env({ RETRY_MAX_RETRIES: '0', CLAUDE_BREAKER_TIMEOUT_SECONDS: '0.3' }) });
    upstream.fake.setDefaultFault({ kind: 'status', status: 500 });
    for (let i = 0; i < 3; i++) {
      const { frames } = await chat(server.url, { message: `fail ${i}` });
      expect(frames[1]).toMatchObject({ error_type: 'api_error' });
    }
    expect(server.app.resilience.claudeBreaker.stats().state).toBe('open');
    expect(events('circuit_breaker_opened')).toEqual([
      expect.objectContaining({ circuit_name: 'claude_sdk', failure_count: 3, component: 'resilience' }),
    ]);

    const rejected = await chat(server.url, { message: 'fast fail' });
    expect(kinds(rejected.frames)).toEqual(['processing', 'error', 'done']);
    expect(rejected.frames[1]).toMatchObject({ error_type: 'circuit_open', recoverable: true });
    expect(Number(rejected.frames[1]!.retry_after_ms)).toBeGreaterThan(0);
    expect(upstreamCalls()).toHaveLength(3);

    upstream.fake.setDefaultFault(null);
    await new Promise((resolve) => setTimeout(resolve, 350));
    const probe = await chat(server.url, { message: 'probe' });
    expect(textOf(probe.frames)).toBe('Echo: probe');
    expect(server.app.resilience.claudeBreaker.stats().state).toBe('half_open');
    await chat(server.url, { message: 'second success' });
    expect(server.app.resilience.claudeBreaker.stats().state).toBe('closed');
    expect(events('circuit_breaker_half_opened')).toHaveLength(1);
    expect(events('circuit_breaker_closed')).toEqual([expect.objectContaining({ circuit_name: 'claude_sdk' })]);
    expect(upstreamCalls()).toHaveLength(5);
  });

  it('does not count client errors or interrupted calls as upstream failures', async () => {
    server = await startTestServer({ env: env({ RETRY_MAX_RETRIES: '0' }) });
    upstream.fake.setDefaultFault({ kind: 'status', status: 400 });
    for (let i = 0; i < 4; i++) await chat(server.url, { message: `bad ${i}` });
    expect(server.app.resilience.claudeBreaker.stats().state).toBe('closed');
  });
});

describe('the session_operations circuit breaker', () => {
  it('opens after 5 failed session writes and then answers 503 with Retry-After', async () => {
    server = await startTestServer({ env: env() });
    server.app.store.close(); // every write now throws, as a broken disk would
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${server.url}/api/new-session`, { method: 'POST' });
      expect(res.status).toBe(500);
    }
    const res = await fetch(`${server.url}/api/new-session`, { method: 'POST' });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('60');
    expect(await res.json()).toMatchObject({ error: { type: 'circuit_open', details: { circuit: 'session_operations' } } });
    expect(events('circuit_breaker_opened')).toEqual([expect.objectContaining({ circuit_name: 'session_operations', failure_count: 5 })]);
  });
});
