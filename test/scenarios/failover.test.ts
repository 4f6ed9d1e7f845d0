/**
 * The 16-scenario failover suite of issue 8 (S01–S16), against `/v1/messages` and the fake Anthropic
 * upstream, where the model name selects the fault. Budget: 2 retries per target, one fallback model
 * (claude-haiku-4-5 on the same fake), timers scaled down (300 ms stands for the 15 s first-token and the
 * 30 s idle limits), backoff 100/200/400 ms with the gateway's ±20 % jitter. Every scenario asserts its
 * attempt counts and timings from the fake's request log.
 *
 * The issue also asks for S01, S03, S08, S09 and S15 through `/api/chat`: those variants live in
 * test/api/chat-routing.test.ts (chat sessions use the same routing when a CONFIG_FILE is given).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OUTPUT_BLOCKED_FAULT, PREFILL_REJECTED_MESSAGE, startFakeAnthropic, type FakeAnthropic, type RecordedRequest } from '../support/fake-anthropic.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import {
  BREAKER,
  CLIENT_KEY,
  FALLBACK,
  LONG_CONTEXT,
  NO_CONTEXT_FALLBACK,
  PRIMARY,
  RETRY_DELAYS_MS,
  SOLO,
  TIMERS,
  gatewayEnv,
  parseSse,
  sleep,
  streamedText,
  wordsReply,
  writeScenarioRouting,
} from './scenario-support.js';

let fake: FakeAnthropic;
let server: TestServer | undefined;
let dir: string;

beforeAll(async () => {
  fake = await startFakeAnthropic();
  dir = mkdtempSync(join(tmpdir(), 'failover-'));
});
afterAll(async () => {
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await server?.destroy();
  server = undefined;
  fake.reset();
});

async function start(): Promise<{ client: Anthropic; url: string }> {
  server = await startTestServer({ env: gatewayEnv(writeScenarioRouting(dir, fake.url)) });
  return { client: new Anthropic({ apiKey: CLIENT_KEY, baseURL: server.url, maxRetries: 0, logLevel: 'off' }), url: server.url };
}

const calls = (model: string): RecordedRequest[] => fake.requestsFor(model);
const allCalls = (): RecordedRequest[] => fake.requests.filter((r) => r.method === 'POST' && r.path === '/v1/messages');
const gaps = (requests: RecordedRequest[]): number[] => requests.slice(1).map((r, i) => r.at - (requests[i] as RecordedRequest).at);
const ask = (model = PRIMARY, text = 'hello gateway') => ({ model, max_tokens: 100, messages: [{ role: 'user' as const, content: text }] });
const ECHO = 'Echo: hello gateway';
/** Slack for the coarse (25 ms) timer ticker and scheduling. */
const SLACK_MS = 150;

interface RawResult {
  status: number;
  headers: Headers;
  text: string;
  elapsedMs: number;
}

/** A raw call to /v1/messages: the exact bytes (SSE or JSON) the caller got. */
async function post(body: object, stream: boolean): Promise<RawResult> {
  const started = Date.now();
  const res = await fetch(`${(server as TestServer).url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': CLIENT_KEY },
    body: JSON.stringify({ ...body, stream }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, elapsedMs: Date.now() - started };
}

/** Asserts a complete, error-free stream and returns its text. */
function expectCompleteStream(result: RawResult): string {
  expect(result.status).toBe(200);
  const events = parseSse(result.text);
  expect(events.map((e) => e.event)).not.toContain('error');
  expect(events.at(-1)?.event).toBe('message_stop');
  for (const e of events) expect(typeof e.data).toBe('object'); // no unparsable data reached the caller
  return streamedText(events);
}

/** Asserts a stream that ends with a typed Anthropic `event: error` and no message_stop. */
function expectTypedStreamError(result: RawResult): { type: string; message: string } {
  expect(result.status).toBe(200);
  const events = parseSse(result.text);
  expect(events.map((e) => e.event)).not.toContain('message_stop');
  const last = events.at(-1);
  expect(last?.event).toBe('error');
  const data = last?.data as { type?: string; error?: { type?: string; message?: string } };
  expect(data.type).toBe('error');
  expect(typeof data.error?.type).toBe('string');
  expect(data.error?.type).not.toBe('');
  return { type: data.error?.type ?? '', message: data.error?.message ?? '' };
}

describe('failover scenarios on /v1/messages (issue 8)', () => {
  // (The /api/chat variant is in test/api/chat-routing.test.ts.)
  it('S01 429 with retry-after: 2 — the retry waits ≥ 1.8 s (or fails over); ≤ 2 attempts in the first 1.5 s', async () => {
    const { client } = await start();
    fake.setModelBehavior(PRIMARY, { faults: [{ kind: 'status', status: 429, retryAfterSeconds: 2 }] });
    const { data, response } = await client.messages.create(ask()).withResponse();
    expect(data.content[0]).toMatchObject({ type: 'text' });
    const all = allCalls();
    const first = all[0] as RecordedRequest;
    expect(all.filter((r) => r.at - first.at < 1500).length).toBeLessThanOrEqual(2);
    const primary = calls(PRIMARY);
    if (response.headers.get('x-gateway-fallback-model') === null) {
      // Retried on the primary: only after the 2 s it was asked to wait.
      expect(primary).toHaveLength(2);
      expect((gaps(primary)[0] ?? 0)).toBeGreaterThanOrEqual(1800);
      expect(data.content[0]).toMatchObject({ text: ECHO });
      expect(response.headers.get('x-gateway-attempts')).toBe('2');
    } else {
      expect(primary).toHaveLength(1);
      expect(calls(FALLBACK)).toHaveLength(1);
    }
  });

  it('S02 429 always, no retry-after — jittered backoff, ≤ 4 attempts in 3 s, ≤ 6 in all, then fallback or a clean error', async () => {
    const { client, url } = await start();
    fake.setModelBehavior(PRIMARY, { then: { kind: 'status', status: 429 } });
    const { data, response } = await client.messages.create(ask()).withResponse();
    const all = allCalls();
    const first = all[0] as RecordedRequest;
    expect(all.filter((r) => r.at - first.at < 3000).length).toBeLessThanOrEqual(4);
    expect(all.length).toBeLessThanOrEqual(6);
    const primary = calls(PRIMARY);
    expect(primary).toHaveLength(3);
    // Backoff 100 then 200 ms, each ±20 %: never hammered back to back.
    const [g1, g2] = gaps(primary) as [number, number];
    expect(g1).toBeGreaterThanOrEqual(RETRY_DELAYS_MS[0] * 0.8 - 5);
    expect(g1).toBeLessThan(RETRY_DELAYS_MS[0] * 1.2 + SLACK_MS);
    expect(g2).toBeGreaterThanOrEqual(RETRY_DELAYS_MS[1] * 0.8 - 5);
    expect(g2).toBeLessThan(RETRY_DELAYS_MS[1] * 1.2 + SLACK_MS);
    // The fallback answers.
    expect(data.model).toBe(FALLBACK);
    expect(response.headers.get('x-gateway-fallback-model')).toBe(FALLBACK);
    expect(calls(FALLBACK)).toHaveLength(1);

    // Without a fallback: a clean rate-limit error after the same 3 attempts.
    fake.setModelBehavior(SOLO, { then: { kind: 'status', status: 429 } });
    const res = await fetch(`${url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': CLIENT_KEY }, body: JSON.stringify(ask(SOLO)) });
    expect(res.status).toBe(429);
    expect(await res.json()).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
    expect(calls(SOLO)).toHaveLength(3);
  });

  // (The /api/chat variant is in test/api/chat-routing.test.ts.)
  it('S03 500 once — retried on the same model, full answer', async () => {
    const { client } = await start();
    fake.setModelBehavior(PRIMARY, { faults: [{ kind: 'status', status: 500 }] });
    const { data, response } = await client.messages.create(ask()).withResponse();
    expect(data.content[0]).toMatchObject({ type: 'text', text: ECHO });
    expect(data.model).toBe(PRIMARY);
    expect(data.stop_reason).toBe('end_turn');
    expect(response.headers.get('x-gateway-attempts')).toBe('2');
    expect(response.headers.get('x-gateway-fallback-model')).toBeNull();
    const primary = calls(PRIMARY);
    expect(primary).toHaveLength(2);
    expect(gaps(primary)[0]).toBeGreaterThanOrEqual(RETRY_DELAYS_MS[0] * 0.8 - 5);
    expect(calls(FALLBACK)).toHaveLength(0);

    // Streaming: the same, and the SDK gets the complete message.
    fake.reset();
    fake.setModelBehavior(PRIMARY, { faults: [{ kind: 'status', status: 500 }] });
    const message = await client.messages.stream(ask()).finalMessage();
    expect(message.content[0]).toMatchObject({ type: 'text', text: ECHO });
    expect(message.stop_reason).toBe('end_turn');
    expect(calls(PRIMARY)).toHaveLength(2);
    expect(calls(FALLBACK)).toHaveLength(0);
  });

  it('S04 503 always — ≤ 6 attempts, the fallback answers (the original error without one)', async () => {
    const { client, url } = await start();
    fake.setModelBehavior(PRIMARY, { then: { kind: 'status', status: 503 } });
    const { data, response } = await client.messages.create(ask()).withResponse();
    expect(data.model).toBe(FALLBACK);
    expect(data.content[0]).toMatchObject({ type: 'text', text: ECHO });
    expect(allCalls().length).toBeLessThanOrEqual(6);
    expect(calls(PRIMARY)).toHaveLength(3);
    expect(calls(FALLBACK)).toHaveLength(1);
    expect(response.headers.get('x-gateway-attempts')).toBe('4');

    fake.setModelBehavior(SOLO, { then: { kind: 'status', status: 503, message: 'upstream is down' } });
    const res = await fetch(`${url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': CLIENT_KEY }, body: JSON.stringify(ask(SOLO)) });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ type: 'error', error: { type: 'api_error', message: 'upstream is down' } });
    expect(calls(SOLO)).toHaveLength(3);
  });

  it('S05 connection reset before headers — retried, full answer', async () => {
    const { client } = await start();
    fake.setModelBehavior(PRIMARY, { faults: [{ kind: 'reset_before_headers' }] });
    const streamed = await post(ask(), true);
    expect(expectCompleteStream(streamed)).toBe(ECHO);
    expect(streamed.headers.get('x-gateway-attempts')).toBe('2');
    expect(calls(PRIMARY)).toHaveLength(2);
    expect(calls(FALLBACK)).toHaveLength(0);

    fake.reset();
    fake.setModelBehavior(PRIMARY, { faults: [{ kind: 'reset_before_headers' }] });
    const data = await client.messages.create(ask());
    expect(data.content[0]).toMatchObject({ text: ECHO });
    expect(calls(PRIMARY)).toHaveLength(2);
    expect(calls(FALLBACK)).toHaveLength(0);
  });

  it('S06 no response at all — the headers timer fires and the request fails over at once, within budget', async () => {
    await start();
    fake.setModelBehavior(PRIMARY, { then: { kind: 'no_response' } });
    const result = await post(ask(), true);
    expect(expectCompleteStream(result)).toBe(ECHO);
    expect(result.headers.get('x-gateway-fallback-model')).toBe(FALLBACK);
    // Not retried on the silent route: one timeout, then the fallback.
    const primary = calls(PRIMARY);
    const fallback = calls(FALLBACK);
    expect(primary).toHaveLength(1);
    expect(fallback).toHaveLength(1);
    const waited = (fallback[0] as RecordedRequest).at - (primary[0] as RecordedRequest).at;
    expect(waited).toBeGreaterThanOrEqual(TIMERS.connectMs - 30);
    expect(waited).toBeLessThan(TIMERS.connectMs + SLACK_MS);
    expect(result.elapsedMs).toBeLessThan(TIMERS.connectMs + 2 * SLACK_MS + 200);
    // The gateway hung up on the silent upstream rather than leaving the request open.
    await fake.waitFor(() => (calls(PRIMARY)[0] as RecordedRequest).clientClosed, 1000);
  });

  it('S07 first token only after 1 s (20 s scaled) — the 300 ms first-token limit fails over; the answer arrives', async () => {
    await start();
    fake.setModelBehavior(PRIMARY, { then: { kind: 'slow_first_token', delayMs: 1000 } });
    const result = await post(ask(), true);
    expect(expectCompleteStream(result)).toBe(ECHO);
    expect(result.headers.get('x-gateway-fallback-model')).toBe(FALLBACK);
    const primary = calls(PRIMARY);
    expect(primary.length).toBeGreaterThanOrEqual(1);
    expect(primary.length).toBeLessThanOrEqual(3);
    expect(calls(FALLBACK)).toHaveLength(1);
    // Each slow attempt was given up after the first-token limit, long before its 1 s first token.
    const fallbackAt = (calls(FALLBACK)[0] as RecordedRequest).at;
    expect(fallbackAt - (primary.at(-1) as RecordedRequest).at).toBeGreaterThanOrEqual(TIMERS.firstTokenMs - 30);
    expect(fallbackAt - (primary.at(-1) as RecordedRequest).at).toBeLessThan(TIMERS.firstTokenMs + SLACK_MS);
    for (const r of primary) expect(r.completed).toBe(false);
    // Within budget: at most 3 × (limit) + backoffs, well under a single 1 s first token per attempt.
    expect(result.elapsedMs).toBeLessThan(3 * (TIMERS.firstTokenMs + 50) + RETRY_DELAYS_MS[0] * 1.2 + RETRY_DELAYS_MS[1] * 1.2 + 2 * SLACK_MS);
  });

  // (The /api/chat variant is in test/api/chat-routing.test.ts.)
  it('S08 stream cut after 40 of 60 tokens — never a successful truncated answer', async () => {
    const { client } = await start();
    const reply = wordsReply(60);
    fake.setModelBehavior(PRIMARY, { then: { kind: 'cut_mid_stream', afterChunks: 40 }, reply, chunkCount: 60 });
    fake.setModelBehavior(FALLBACK, { reply, chunkCount: 60 });
    const result = await post(ask(), true);
    const events = parseSse(result.text);
    if (events.some((e) => e.event === 'message_stop')) {
      // An invisible restart: the whole answer, from the fallback, no error.
      expect(expectCompleteStream(result)).toBe(reply);
    } else {
      // Content already reached the caller: a typed error ends the stream, not a quiet end.
      expectTypedStreamError(result);
      expect(streamedText(events)).toBe(reply.split(' ').slice(0, 40).join(' ') + ' ');
      // Nothing is replayed once content went out.
      expect(calls(PRIMARY)).toHaveLength(1);
      expect(calls(FALLBACK)).toHaveLength(0);
    }

    // The SDK never resolves a truncated stream as a complete message.
    await expect(client.messages.stream(ask()).finalMessage()).rejects.toThrow();

    // Non-streaming: the cut body is never returned as a success.
    fake.reset();
    fake.setModelBehavior(PRIMARY, { then: { kind: 'cut_mid_stream', afterChunks: 40 }, reply, chunkCount: 60 });
    fake.setModelBehavior(FALLBACK, { reply, chunkCount: 60 });
    const json = await post(ask(), false);
    if (json.status === 200) {
      const body = JSON.parse(json.text) as { model: string; stop_reason: string; content: { text: string }[] };
      expect(body.content[0]?.text).toBe(reply);
      expect(body.stop_reason).toBe('end_turn');
      expect(body.model).toBe(FALLBACK);
    } else {
      expect(JSON.parse(json.text)).toMatchObject({ type: 'error' });
    }
    expect(calls(PRIMARY).length).toBeLessThanOrEqual(3);
  });

  // (The /api/chat variant is in test/api/chat-routing.test.ts.)
  it('S09 stream goes silent (30 s scaled to a stall) — detected within the idle window; the server answers normally right after', async () => {
    await start();
    // Silent after content went out: a typed timeout error within the idle window.
    fake.setModelBehavior(PRIMARY, { then: { kind: 'stall_mid_stream', afterChunks: 2 }, reply: wordsReply(6), chunkCount: 6 });
    const stalled = await post(ask(), true);
    const error = expectTypedStreamError(stalled);
    expect(error.type).toBe('timeout_error');
    expect(stalled.elapsedMs).toBeLessThan(TIMERS.idleMs + 2 * SLACK_MS + 200);
    expect(stalled.elapsedMs).toBeGreaterThanOrEqual(TIMERS.idleMs - 30);
    expect(calls(PRIMARY)).toHaveLength(1);
    await fake.waitFor(() => (calls(PRIMARY)[0] as RecordedRequest).clientClosed, 1000);
    // Right after: a normal answer on the primary (one failure does not open its breaker).
    fake.reset();
    const next = await post(ask(), true);
    expect(expectCompleteStream(next)).toBe(ECHO);
    expect(next.headers.get('x-gateway-target')).toBe('primary');

    // Silent before any content: an invisible restart, ending on the fallback.
    fake.reset();
    fake.setModelBehavior(PRIMARY, { then: { kind: 'stall_mid_stream', afterChunks: 0 } });
    const restarted = await post(ask(), true);
    expect(expectCompleteStream(restarted)).toBe(ECHO);
    expect(restarted.headers.get('x-gateway-fallback-model')).toBe(FALLBACK);
    expect(calls(PRIMARY).length).toBeLessThanOrEqual(3);
    expect(calls(FALLBACK)).toHaveLength(1);
    expect(restarted.elapsedMs).toBeLessThan(3 * (TIMERS.firstTokenMs + 50) + RETRY_DELAYS_MS[0] * 1.2 + RETRY_DELAYS_MS[1] * 1.2 + 2 * SLACK_MS);

    // Right after: normal answers, streaming and not (the primary's breaker may be resting after three
    // silent attempts, so either target may answer).
    fake.reset();
    const normal = await post(ask(), true);
    expect(expectCompleteStream(normal)).toBe(ECHO);
    const json = await post(ask(), false);
    expect(json.status).toBe(200);
    expect(JSON.parse(json.text)).toMatchObject({ content: [{ text: ECHO }], stop_reason: 'end_turn' });
  });

  it('S10 malformed event — no garbage reaches the caller; the process stays up', async () => {
    const { client } = await start();
    // Before any content: restarted invisibly.
    fake.setModelBehavior(PRIMARY, { faults: [{ kind: 'malformed_event', afterChunks: 0 }] });
    const restarted = await post(ask(), true);
    expect(restarted.text).not.toContain('{not json');
    expect(expectCompleteStream(restarted)).toBe(ECHO);
    expect(calls(PRIMARY)).toHaveLength(2);

    // After content: a typed error instead of the garbage.
    fake.reset();
    fake.setModelBehavior(PRIMARY, { faults: [{ kind: 'malformed_event', afterChunks: 2 }], reply: wordsReply(5), chunkCount: 5 });
    const cut = await post(ask(), true);
    expect(cut.text).not.toContain('{not json');
    expectTypedStreamError(cut);
    for (const e of parseSse(cut.text)) expect(typeof e.data).toBe('object');

    // Non-streaming: a body that is not JSON is never passed on as a 200.
    fake.reset();
    fake.setModelBehavior(PRIMARY, { faults: [{ kind: 'malformed_event', afterChunks: 0 }] });
    const json = await post(ask(), false);
    expect(json.text).not.toContain('{not json');
    expect(() => JSON.parse(json.text) as unknown).not.toThrow();

    // Still up and answering.
    fake.reset();
    const data = await client.messages.create(ask());
    expect(data.content[0]).toMatchObject({ text: ECHO });
    const health = await fetch(`${(server as TestServer).url}/health`);
    expect(health.status).toBeLessThan(500);
  });

  it('S11 stream ends without message_stop — finalised with a typed error within 8 s, no hang', async () => {
    await start();
    fake.setModelBehavior(PRIMARY, { then: { kind: 'no_message_stop', afterChunks: 2 }, reply: wordsReply(5), chunkCount: 5 });
    const result = await post(ask(), true);
    expect(result.elapsedMs).toBeLessThan(8000);
    expect(result.elapsedMs).toBeLessThan(1000); // the documented choice: finalised at once
    expectTypedStreamError(result);
    expect(streamedText(parseSse(result.text))).toBe('w0 w1 ');
    expect(calls(PRIMARY)).toHaveLength(1);

    // Non-streaming, the fake's form of the same fault is a 200 whose message was cut (stop_reason null,
    // which the real API never sends): never passed on as a complete answer either.
    fake.reset();
    fake.setModelBehavior(PRIMARY, { faults: [{ kind: 'no_message_stop', afterChunks: 2 }], reply: wordsReply(5), chunkCount: 5 });
    const json = await post(ask(), false);
    expect(json.elapsedMs).toBeLessThan(8000);
    const body = JSON.parse(json.text) as { type?: string; stop_reason?: string | null; content?: { text?: string }[] };
    if (json.status === 200) {
      expect(body.stop_reason).not.toBeNull();
      expect(body.content?.[0]?.text).toBe(wordsReply(5));
    } else {
      expect(body.type).toBe('error');
    }
  });

  it('S12 context length exceeded (400) — exactly one attempt; the larger-context fallback, else a clean error', async () => {
    const { client } = await start();
    const tooLong = { kind: 'status' as const, status: 400, message: 'prompt is too long: 212345 tokens > 200000 maximum' };
    fake.setModelBehavior(PRIMARY, { then: tooLong });
    const { data, response } = await client.messages.create(ask()).withResponse();
    expect(data.model).toBe(LONG_CONTEXT);
    expect(data.content[0]).toMatchObject({ text: ECHO });
    expect(response.headers.get('x-gateway-fallback-model')).toBe(LONG_CONTEXT);
    expect(calls(PRIMARY)).toHaveLength(1);
    expect(calls(LONG_CONTEXT)).toHaveLength(1);
    expect(calls(FALLBACK)).toHaveLength(0);

    // No larger-context fallback on this route: a clean 400 after one attempt, the normal fallback untouched.
    fake.setModelBehavior(NO_CONTEXT_FALLBACK, { then: tooLong });
    await expect(client.messages.create(ask(NO_CONTEXT_FALLBACK))).rejects.toMatchObject({
      status: 400,
      error: { type: 'error', error: { type: 'invalid_request_error', message: expect.stringContaining('prompt is too long') } },
    });
    expect(calls(NO_CONTEXT_FALLBACK)).toHaveLength(1);
    expect(calls(FALLBACK)).toHaveLength(0);
  });

  it('S13 content refused (400) — exactly one attempt; the provider’s reason reaches the caller', async () => {
    const { client } = await start();
    fake.setModelBehavior(PRIMARY, { then: OUTPUT_BLOCKED_FAULT });
    await expect(client.messages.create(ask())).rejects.toMatchObject({
      status: 400,
      error: { error: { type: 'invalid_request_error', message: 'Output blocked by content filtering policy' } },
    });
    expect(calls(PRIMARY)).toHaveLength(1);
    expect(calls(FALLBACK)).toHaveLength(0);

    // Streaming request: the same 400 before any stream starts.
    const streamed = await post(ask(), true);
    expect(streamed.status).toBe(400);
    expect(JSON.parse(streamed.text)).toMatchObject({ error: { message: 'Output blocked by content filtering policy' } });
    expect(calls(PRIMARY)).toHaveLength(2);
    expect(calls(FALLBACK)).toHaveLength(0);

    // The 200 form (stop_reason "refusal"): passed on as is, one attempt, not hidden behind the fallback.
    fake.reset();
    fake.setModelBehavior(PRIMARY, { then: { kind: 'refusal' } });
    const refused = await post(ask(), true);
    const events = parseSse(refused.text);
    expect(refused.status).toBe(200);
    expect(events.find((e) => e.event === 'message_delta')?.data).toMatchObject({ delta: { stop_reason: 'refusal' } });
    expect(calls(PRIMARY)).toHaveLength(1);
    expect(calls(FALLBACK)).toHaveLength(0);
  });

  it('S14 the fallback rejects an assistant prefill — the caller never gets that rejection as the final error', async () => {
    const body = {
      model: PRIMARY,
      max_tokens: 100,
      messages: [
        { role: 'user', content: 'Answer in JSON.' },
        { role: 'assistant', content: '{' },
      ],
    };
    for (const stream of [false, true]) {
      // A fresh gateway for each form, so the primary's breaker (opened by the first) starts closed.
      await server?.destroy();
      await start();
      fake.reset();
      fake.setModelBehavior(PRIMARY, { then: { kind: 'status', status: 503 } });
      fake.setModelBehavior(FALLBACK, { then: { kind: 'prefill_rejected' } });
      const result = await post(body, stream);
      expect(result.text).not.toContain(PREFILL_REJECTED_MESSAGE);
      expect(result.text).not.toMatch(/prefill/i);
      expect(result.status).not.toBe(400);
      // The primary's own failure is what the caller sees.
      expect(result.status).toBe(503);
      expect(JSON.parse(result.text)).toMatchObject({ type: 'error', error: { type: 'api_error' } });
      expect(calls(PRIMARY)).toHaveLength(3);
      expect(calls(FALLBACK).length).toBeLessThanOrEqual(1);
    }
  });

  // (The /api/chat variant is in test/api/chat-routing.test.ts.)
  it('S15 primary 503 for 1.2 s (60 s scaled) then recovers, a request every 100 ms — breaker opens, fallback serves, traffic back within 0.6 s (30 s scaled)', async () => {
    const { url } = await start();
    const OUTAGE_MS = 1200;
    const INTERVAL_MS = 100;
    const RECOVERY_WINDOW_MS = 600;
    const REQUESTS = 26;
    const t0 = Date.now();
    fake.setModelBehavior(PRIMARY, { then: { kind: 'status', status: 503 }, untilMs: OUTAGE_MS });
    const pending: Promise<{ sentAt: number; status: number; target: string | null; fallbackModel: string | null; body: { model?: string; content?: { text?: string }[] } }>[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      const sentAt = Date.now();
      pending.push(
        fetch(`${url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': CLIENT_KEY }, body: JSON.stringify(ask()) }).then(async (res) => ({
          sentAt,
          status: res.status,
          target: res.headers.get('x-gateway-target'),
          fallbackModel: res.headers.get('x-gateway-fallback-model'),
          body: (await res.json()) as { model?: string; content?: { text?: string }[] },
        })),
      );
      await sleep(t0 + (i + 1) * INTERVAL_MS - Date.now());
    }
    const results = await Promise.all(pending);
    const recoveredAt = t0 + OUTAGE_MS;

    // Every caller got a full answer: the fallback served during the outage.
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.body.content?.[0]?.text).toBe(ECHO);
    }
    for (const r of results.filter((x) => x.sentAt < recoveredAt - 450)) {
      expect(r.fallbackModel).toBe(FALLBACK);
      expect(r.body.model).toBe(FALLBACK);
    }

    // The breaker opened: the primary was not hammered with 3 attempts per request during the outage.
    const primary = calls(PRIMARY);
    const duringOutage = primary.filter((r) => r.at < recoveredAt);
    const outageRequests = results.filter((r) => r.sentAt < recoveredAt).length;
    expect(duringOutage.length).toBeLessThanOrEqual(3 + Math.ceil(OUTAGE_MS / (BREAKER.timeout_seconds * 1000)) + 2);
    expect(duringOutage.length).toBeLessThan(outageRequests * 3);
    const opened = (server as TestServer).logs.filter((l) => l.event === 'circuit_breaker_opened' && l.circuit_name === `gateway:${PRIMARY}/primary`);
    expect(opened.length).toBeGreaterThanOrEqual(1);
    // While open, the primary saw only half-open probes, one per breaker timeout at most.
    for (const gap of gaps(duringOutage.slice(3))) expect(gap).toBeGreaterThanOrEqual(BREAKER.timeout_seconds * 1000 - 60);

    // Back on the primary within the (scaled) 30 s of recovery, via half-open probes.
    const firstRecovered = primary.find((r) => r.at >= recoveredAt);
    expect(firstRecovered).toBeDefined();
    expect((firstRecovered as RecordedRequest).at - recoveredAt).toBeLessThan(RECOVERY_WINDOW_MS);
    const late = results.filter((r) => r.sentAt >= recoveredAt + RECOVERY_WINDOW_MS);
    expect(late.length).toBeGreaterThan(0);
    for (const r of late) {
      expect(r.target).toBe('primary');
      expect(r.fallbackModel).toBeNull();
      expect(r.body.model).toBe(PRIMARY);
    }
    expect((server as TestServer).app.resilience.registry.get(`gateway:${PRIMARY}/primary`)?.state).toBe('closed');
  });

  it('S16 primary 503, fallback answers — the response names the fallback model and carries usage; failed attempts are not completions', async () => {
    const { client } = await start();
    fake.setModelBehavior(PRIMARY, { then: { kind: 'status', status: 503 } });
    const { data, response } = await client.messages.create(ask()).withResponse();
    expect(data.model).toBe(FALLBACK);
    expect(data.content[0]).toMatchObject({ text: ECHO });
    expect(response.headers.get('x-gateway-fallback-model')).toBe(FALLBACK);
    expect(response.headers.get('x-gateway-target')).toBe('fallback');
    expect(response.headers.get('x-gateway-attempts')).toBe('4');
    // Usage is that of the one answer (3 chunks = 3 output tokens on the fake), not summed over the failures.
    expect(data.usage.input_tokens).toBeGreaterThan(0);
    expect(data.usage.output_tokens).toBe(3);
    expect(calls(PRIMARY)).toHaveLength(3);
    expect(calls(FALLBACK)).toHaveLength(1);
    // Failed attempts count as failures of the primary, the answer as the fallback's only success.
    const stats = (server as TestServer).app.resilience.registry.stats();
    expect(stats[`gateway:${PRIMARY}/fallback`]).toMatchObject({ successCount: 1, failureCount: 0 });

    // Streaming, through the SDK: the message names the fallback and carries the same usage.
    fake.reset();
    fake.setModelBehavior(PRIMARY, { then: { kind: 'status', status: 503 } });
    const message = await client.messages.stream(ask()).finalMessage();
    expect(message.model).toBe(FALLBACK);
    expect(message.content[0]).toMatchObject({ type: 'text', text: ECHO });
    expect(message.stop_reason).toBe('end_turn');
    expect(message.usage.output_tokens).toBe(3);
    expect(calls(FALLBACK)).toHaveLength(1);
  });
});
