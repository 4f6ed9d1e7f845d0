import { describe, expect, it } from 'vitest';
import { useFakeAnthropic } from '../support/fake-anthropic-suite.js';
import { chat, textOf, type ChatFrame } from '../support/sse-client.js';
import { fakeTarget, writeRoutingFile } from '../support/routing-file.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const PRIMARY = 'claude-sonnet-4-6';
const FALLBACK = 'claude-haiku-4-5';

let server: TestServer;
const upstream = useFakeAnthropic(() => server, 'chat-routing-');

async function start(): Promise<void> {
  const file = writeRoutingFile(upstream.dir, {
    defaults: { retries: 2, breaker: { failure_threshold: 3, timeout_seconds: 0.3 } },
    routes: {
      '*': {
        targets: [
          fakeTarget(upstream.fake.url, 'primary', { apiKey: 'upstream-key-1' }),
          fakeTarget(upstream.fake.url, 'fallback', { apiKey: 'upstream-key-2', model: FALLBACK }),
        ],
      },
    },
  });
  // No ANTHROPIC_API_KEY: the routing file alone makes chat use the gateway.
  server = await startTestServer({
    env: { CONFIG_FILE: file, CLAUDE_MODEL: PRIMARY, CHAT_FALLBACKS: 'none', RETRY_DELAYS_MS: '20,40', UPSTREAM_IDLE_TIMEOUT_MS: '300' },
  });
}

const result = (frames: ChatFrame[]) => frames.find((f) => f.type === 'result');

async function stored(sessionId: string) {
  const res = await fetch(`${server.url}/api/session-history/${sessionId}`);
  return ((await res.json()) as { messages: { role: string; status: string; content: string; model: string | null }[] }).messages;
}

describe('/api/chat through the gateway routing', () => {
  it('retries a 500 on the same model and answers in full (S03 via chat)', async () => {
    await start();
    upstream.fake.setModelBehavior(PRIMARY, { faults: [{ kind: 'status', status: 500 }] });
    const { frames } = await chat(server.url, { message: 'route me' });
    expect(result(frames)).toMatchObject({ mode: 'live', model: PRIMARY });
    expect(textOf(frames)).toBe('Echo: route me');
    expect(upstream.fake.requestsFor(PRIMARY)).toHaveLength(2);
  });

  it('fails over to the fallback model and names it in the result and the stored message', async () => {
    await start();
    upstream.fake.setModelBehavior(PRIMARY, { then: { kind: 'status', status: 503 } });
    const { frames } = await chat(server.url, { message: 'fail over' });
    expect(result(frames)).toMatchObject({ model: FALLBACK });
    expect(textOf(frames)).toBe('Echo: fail over');
    const messages = await stored(frames[0]!.session_id);
    expect(messages[1]).toMatchObject({ role: 'assistant', status: 'complete', model: FALLBACK });
  });

  it('ends a stream cut after content with an error frame and stores it incomplete (S08 via chat)', async () => {
    await start();
    upstream.fake.setModelBehavior(PRIMARY, { reply: 'one two three four five', faults: [{ kind: 'cut_mid_stream', afterChunks: 2 }] });
    const { frames } = await chat(server.url, { message: 'cut' });
    expect(frames.map((f) => f.type)).not.toContain('result');
    expect(frames.at(-2)).toMatchObject({ type: 'error', recoverable: true });
    expect(textOf(frames)).toBe('one two ');
    const messages = await stored(frames[0]!.session_id);
    expect(messages[1]).toMatchObject({ status: 'incomplete', content: 'one two ' });
  });

  it('ends a stalled stream with the idle timer and keeps serving (S09 via chat)', async () => {
    await start();
    upstream.fake.setModelBehavior(PRIMARY, { reply: 'one two three four', faults: [{ kind: 'stall_mid_stream', afterChunks: 2 }] });
    const { frames } = await chat(server.url, { message: 'stall' });
    expect(frames.at(-2)).toMatchObject({ type: 'error', error_type: 'idle_timeout' });
    // The stall was a one-off: the next turn on the same model is answered in full.
    const next = await chat(server.url, { message: 'fine' });
    expect(result(next.frames)).toMatchObject({ stop_reason: 'end_turn' });
    expect(textOf(next.frames)).toBe('one two three four');
  });

  it('honours retry-after on the primary and answers in full (S01 via chat)', async () => {
    await start();
    upstream.fake.setModelBehavior(PRIMARY, { faults: [{ kind: 'status', status: 429, retryAfterSeconds: 2 }] });
    const { frames } = await chat(server.url, { message: 'patience' });
    expect(result(frames)).toMatchObject({ model: PRIMARY });
    const [first, second] = upstream.fake.requestsFor(PRIMARY);
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(1800);
  });

  it('serves from the fallback while the primary is down, then returns to it after recovery (S15 via chat)', async () => {
    await start();
    upstream.fake.setModelBehavior(PRIMARY, { then: { kind: 'status', status: 503 }, untilMs: 800 });
    const models: string[] = [];
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline) {
      const { frames } = await chat(server.url, { message: `tick ${models.length}` });
      models.push(String(result(frames)?.model));
      if (models.length >= 3 && models.slice(-2).every((m) => m === PRIMARY) && models.includes(FALLBACK)) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(models).toContain(FALLBACK); // the outage was covered by the fallback
    expect(server.logs.some((l) => l.event === 'circuit_breaker_opened' && l.circuit_name === 'gateway:*/primary')).toBe(true);
    expect(models.slice(-2)).toEqual([PRIMARY, PRIMARY]); // and traffic came back to the primary
    const state = server.app.resilience.registry.get('gateway:*/primary')?.stats().state;
    expect(state).toBe('closed');
  });
});
