import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError } from '../../providers/errors.js';
import { DEFAULT_MODELS, startFakeAnthropic } from '../../../test/support/fake-anthropic.js';
import type { FakeAnthropic } from '../../../test/support/fake-anthropic.js';
import { Cancellation } from '../cancellation.js';
import { AnthropicUpstream, upstreamErrorFrom } from './anthropic-upstream.js';
import type { UpstreamResponse } from './anthropic-upstream.js';
import { SseScanner } from './sse-scanner.js';
import type { ScannedEvent } from './sse-scanner.js';

const API_KEY = 'sk-ant-test-key';

function messagesBody(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ model: 'claude-test', max_tokens: 100, messages: [{ role: 'user', content: 'hello' }], ...extra });
}

async function rejection(promise: Promise<unknown>): Promise<ProviderError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ProviderError);
    return error as ProviderError;
  }
  throw new Error('expected a rejection');
}

async function scanAll(response: UpstreamResponse): Promise<ScannedEvent[]> {
  const scanner = new SseScanner();
  const events: ScannedEvent[] = [];
  for await (const chunk of response.body) events.push(...scanner.push(chunk));
  events.push(...scanner.end());
  return events;
}

function tcpSocketCount(): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'TCPSocketWrap').length;
}

async function steadySocketCount(): Promise<number> {
  let last = tcpSocketCount();
  for (let steady = 0; steady < 5; ) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    const now = tcpSocketCount();
    steady = now === last ? steady + 1 : 0;
    last = now;
  }
  return last;
}

async function eventually(check: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('AnthropicUpstream against the fake Messages API', () => {
  let fake: FakeAnthropic;
  let upstream: AnthropicUpstream;

  beforeAll(async () => {
    fake = await startFakeAnthropic({ reply: 'Hello there, friend' });
    upstream = new AnthropicUpstream({ baseUrl: fake.url, apiKey: API_KEY });
  });

  afterEach(() => {
    fake.reset();
  });

  afterAll(async () => {
    await upstream.close();
    await fake.close();
  });

  it('returns a non-streaming JSON answer and sends x-api-key and anthropic-version', async () => {
    const response = await upstream.send('/v1/messages', messagesBody(), { signal: AbortSignal.timeout(5000) });
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toContain('application/json');
    const message = JSON.parse(await response.body.text()) as { content: { text: string }[]; usage: unknown };
    expect(message.content[0]?.text).toBe('Hello there, friend');
    expect(message.usage).toBeDefined();

    const [recorded] = fake.requests;
    expect(recorded?.method).toBe('POST');
    expect(recorded?.path).toBe('/v1/messages');
    expect(recorded?.headers['x-api-key']).toBe(API_KEY);
    expect(recorded?.headers['anthropic-version']).toBe('2023-06-01');
    expect(recorded?.headers['content-type']).toBe('application/json');
    expect(recorded?.authVia).toBe('x-api-key');
  });

  it('passes client headers through, lower-cased, but never lets them replace the key', async () => {
    const response = await upstream.send('/v1/messages', Buffer.from(messagesBody()), {
      signal: AbortSignal.timeout(5000),
      headers: {
        'Anthropic-Version': '2024-01-01',
        'anthropic-beta': 'prompt-caching-2024-07-31',
        'x-api-key': 'client-key',
        authorization: 'Bearer client-key',
        'content-length': '1',
        host: 'evil.example',
      },
    });
    await response.body.dump();
    const headers = fake.requests[0]?.headers ?? {};
    expect(headers['anthropic-version']).toBe('2024-01-01');
    expect(headers['anthropic-beta']).toBe('prompt-caching-2024-07-31');
    expect(headers['x-api-key']).toBe(API_KEY);
    expect(headers.authorization).toBeUndefined();
    expect(headers.host).not.toBe('evil.example');
    expect(fake.requests[0]?.completed).toBe(true);
  });

  it('streams an answer whose raw events scan through to message_stop', async () => {
    fake.setChunkDelayMs(2);
    const response = await upstream.send('/v1/messages', messagesBody({ stream: true }), { signal: AbortSignal.timeout(5000) });
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toContain('text/event-stream');
    const events = await scanAll(response);
    expect(events[0]?.event).toBe('message_start');
    expect(events.at(-1)?.event).toBe('message_stop');
    const text = events
      .filter((e) => e.event === 'content_block_delta')
      .map((e) => (JSON.parse(e.data) as { delta: { text: string } }).delta.text)
      .join('');
    expect(text).toBe('Hello there, friend');
  });

  it('classifies a 429 with retry-after as a retryable rate_limit_error with retryAfterMs', async () => {
    fake.enqueueFault({ kind: 'status', status: 429, retryAfterSeconds: 2 });
    const response = await upstream.send('/v1/messages', messagesBody(), { signal: AbortSignal.timeout(5000) });
    expect(response.status).toBe(429);
    const error = await upstream.errorFromResponse(response);
    expect(error.errorType).toBe('rate_limit_error');
    expect(error.failureClass).toBe('retryable');
    expect(error.retryable).toBe(true);
    expect(error.status).toBe(429);
    expect(error.retryAfterMs).toBe(2000);
  });

  it('prefers retry-after-ms and classifies 529 as a retryable overloaded_error', async () => {
    fake.enqueueFault({ kind: 'status', status: 529, retryAfterMs: 250, retryAfterSeconds: 9 });
    const response = await upstream.send('/v1/messages', messagesBody(), { signal: AbortSignal.timeout(5000) });
    const error = upstream.errorFrom(response.status, response.headers, await response.body.text());
    expect(error.errorType).toBe('overloaded_error');
    expect(error.failureClass).toBe('retryable');
    expect(error.retryAfterMs).toBe(250);
  });

  it('classifies a 400 as a non-retryable invalid_request_error carrying the upstream message', async () => {
    const response = await upstream.send('/v1/messages', JSON.stringify({ model: 'claude-test', messages: [] }), {
      signal: AbortSignal.timeout(5000),
    });
    expect(response.status).toBe(400);
    const error = await upstream.errorFromResponse(response);
    expect(error.errorType).toBe('invalid_request_error');
    expect(error.failureClass).toBe('non_retryable');
    expect(error.message).toMatch(/messages/);
    expect(error.retryAfterMs).toBeUndefined();
  });

  it('classifies a 400 saying the prompt is too long as context_too_long', async () => {
    fake.enqueueFault({ kind: 'status', status: 400, message: 'prompt is too long: 210000 tokens > 200000 maximum' });
    const response = await upstream.send('/v1/messages', messagesBody(), { signal: AbortSignal.timeout(5000) });
    const error = await upstream.errorFromResponse(response);
    expect(error.errorType).toBe('context_too_long');
    expect(error.failureClass).toBe('non_retryable');
    expect(error.message).toContain('prompt is too long');
  });

  it('maps a reset before the headers to a retryable connection_error', async () => {
    fake.enqueueFault({ kind: 'reset_before_headers' });
    const error = await rejection(upstream.send('/v1/messages', messagesBody(), { signal: AbortSignal.timeout(5000) }));
    expect(error.errorType).toBe('connection_error');
    expect(error.failureClass).toBe('retryable');
    // The pool recovers: the next call succeeds.
    const response = await upstream.send('/v1/messages', messagesBody(), { signal: AbortSignal.timeout(5000) });
    expect(response.status).toBe(200);
    await response.body.dump();
  });

  it('maps a silent upstream to a retryable timeout when the headers timer fires', async () => {
    fake.enqueueFault({ kind: 'no_response' });
    const started = Date.now();
    const error = await rejection(
      upstream.send('/v1/messages', messagesBody(), { signal: AbortSignal.timeout(5000), headersTimeoutMs: 150 }),
    );
    expect(error.errorType).toBe('timeout');
    expect(error.failureClass).toBe('retryable');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('maps an abort before the headers to aborted, and the fake sees the client go', async () => {
    fake.enqueueFault({ kind: 'no_response' });
    const controller = new AbortController();
    const pending = upstream.send('/v1/messages', messagesBody(), { signal: controller.signal });
    await fake.waitFor((f) => f.requests.length === 1);
    controller.abort();
    const error = await rejection(pending);
    expect(error.errorType).toBe('aborted');
    expect(error.failureClass).toBe('aborted');
    await fake.waitFor((f) => f.requests[0]?.clientClosed === true);
  });

  it('maps an abort mid-stream to aborted, and the fake sees clientClosed', async () => {
    fake.setChunkDelayMs(100);
    const controller = new AbortController();
    const response = await upstream.send('/v1/messages', messagesBody({ stream: true }), { signal: controller.signal });
    expect(response.status).toBe(200);
    let caught: unknown;
    try {
      for await (const chunk of response.body) {
        expect(chunk.length).toBeGreaterThan(0);
        controller.abort();
      }
    } catch (error) {
      caught = error;
    }
    const error = upstream.errorFromTransport(caught, controller.signal);
    expect(error.errorType).toBe('aborted');
    expect(error.failureClass).toBe('aborted');
    await fake.waitFor((f) => f.requests[0]?.clientClosed === true);
  });

  it('rejects at once with aborted when the signal has already fired', async () => {
    const error = await rejection(upstream.send('/v1/messages', messagesBody(), { signal: AbortSignal.abort() }));
    expect(error.failureClass).toBe('aborted');
    expect(fake.requests).toHaveLength(0);
  });

  it('maps a stream cut mid-body to a retryable stream_cut', async () => {
    fake.enqueueFault({ kind: 'cut_mid_stream', afterChunks: 2 });
    const signal = AbortSignal.timeout(5000);
    const response = await upstream.send('/v1/messages', messagesBody({ stream: true }), { signal });
    let caught: unknown;
    const events: ScannedEvent[] = [];
    try {
      events.push(...(await scanAll(response)));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeDefined();
    const error = upstream.errorFromTransport(caught, signal);
    expect(error.errorType).toBe('stream_cut');
    expect(error.failureClass).toBe('retryable');
  });

  it('sendBuffered reads a whole JSON answer into one Buffer, with status and headers', async () => {
    const response = await upstream.sendBuffered('/v1/messages', messagesBody(), { signal: AbortSignal.timeout(5000) });
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toContain('application/json');
    const message = JSON.parse(response.body.toString('utf8')) as { type: string; stop_reason: string };
    expect(message).toMatchObject({ type: 'message', stop_reason: 'end_turn' });
    expect(fake.requests[0]?.headers['x-api-key']).toBe(API_KEY);
  });

  it('sendBuffered resolves an error status with its body, for classification', async () => {
    fake.enqueueFault({ kind: 'status', status: 429, retryAfterSeconds: 3 });
    const response = await upstream.sendBuffered('/v1/messages', messagesBody(), { signal: AbortSignal.timeout(5000) });
    expect(response.status).toBe(429);
    const error = upstream.errorFrom(response.status, response.headers, response.body.toString('utf8'));
    expect(error).toMatchObject({ errorType: 'rate_limit_error', failureClass: 'retryable', retryAfterMs: 3000 });
  });

  it('sendBuffered maps a body cut short to stream_cut, a reset to connection_error, a silent upstream to timeout', async () => {
    fake.enqueueFault({ kind: 'cut_mid_stream', afterChunks: 1 });
    const cut = await rejection(upstream.sendBuffered('/v1/messages', messagesBody(), { signal: AbortSignal.timeout(5000) }));
    expect(cut).toMatchObject({ errorType: 'stream_cut', failureClass: 'retryable' });
    fake.enqueueFault({ kind: 'reset_before_headers' });
    const reset = await rejection(upstream.sendBuffered('/v1/messages', messagesBody(), { signal: AbortSignal.timeout(5000) }));
    expect(reset).toMatchObject({ errorType: 'connection_error', failureClass: 'retryable' });
    fake.enqueueFault({ kind: 'no_response' });
    const silent = await rejection(
      upstream.sendBuffered('/v1/messages', messagesBody(), { signal: AbortSignal.timeout(5000), headersTimeoutMs: 150 }),
    );
    expect(silent).toMatchObject({ errorType: 'timeout', failureClass: 'retryable' });
  });

  it('sendBuffered maps a cancel, before or after the request went out, to aborted', async () => {
    const early = new Cancellation();
    early.abort(new Error('gone'));
    expect(await rejection(upstream.sendBuffered('/v1/messages', messagesBody(), { signal: early }))).toMatchObject({ failureClass: 'aborted' });
    expect(fake.requests).toHaveLength(0);
    fake.enqueueFault({ kind: 'no_response' });
    const late = new Cancellation();
    const pending = upstream.sendBuffered('/v1/messages', messagesBody(), { signal: late });
    await fake.waitFor((f) => f.requests.length === 1);
    late.abort(new Error('gone'));
    expect(await rejection(pending)).toMatchObject({ errorType: 'aborted', failureClass: 'aborted' });
    await fake.waitFor((f) => f.requests[0]?.clientClosed === true);
  });

  it('sendStreaming hands the body over chunk by chunk, to message_stop, and an error answer as text', async () => {
    const streamed = await upstream.sendStreaming('/v1/messages', messagesBody({ stream: true }), { signal: new Cancellation() });
    expect(streamed.status).toBe(200);
    const scanner = new SseScanner();
    const events: ScannedEvent[] = [];
    await new Promise<void>((resolve, reject) =>
      streamed.body.listen({ data: (chunk) => events.push(...scanner.push(chunk)), end: resolve, fail: reject }),
    );
    expect(events.at(-1)?.event).toBe('message_stop');

    fake.enqueueFault({ kind: 'status', status: 529 });
    const refused = await upstream.sendStreaming('/v1/messages', messagesBody({ stream: true }), { signal: new Cancellation() });
    expect(refused.status).toBe(529);
    expect(upstream.errorFrom(refused.status, refused.headers, await refused.body.text()).errorType).toBe('overloaded_error');
  });

  it('sendStreaming: a cancel mid-body reaches the listener as a failure and the fake sees the client go', async () => {
    fake.setChunkDelayMs(100);
    const cancel = new Cancellation();
    const streamed = await upstream.sendStreaming('/v1/messages', messagesBody({ stream: true }), { signal: cancel });
    const failure = await new Promise<unknown>((resolve) =>
      streamed.body.listen({ data: () => cancel.abort(new Error('client went away')), end: () => resolve(undefined), fail: resolve }),
    );
    expect(upstream.errorFromTransport(failure, cancel).errorType).toBe('aborted');
    await fake.waitFor((f) => f.requests[0]?.clientClosed === true);
  });

  it('sendStreaming rejects before the headers like send: a reset is a connection_error', async () => {
    fake.enqueueFault({ kind: 'reset_before_headers' });
    const error = await rejection(upstream.sendStreaming('/v1/messages', messagesBody({ stream: true }), { signal: new Cancellation() }));
    expect(error.errorType).toBe('connection_error');
  });

  it('passes POST /v1/messages/count_tokens through', async () => {
    const body = JSON.stringify({ model: 'claude-test', messages: [{ role: 'user', content: 'twelve chars' }] });
    const response = await upstream.send('/v1/messages/count_tokens', body, { signal: AbortSignal.timeout(5000) });
    expect(response.status).toBe(200);
    expect(JSON.parse(await response.body.text())).toEqual({ input_tokens: 3 });
    expect(fake.requests[0]?.path).toBe('/v1/messages/count_tokens');
    expect(fake.requests[0]?.headers['x-api-key']).toBe(API_KEY);
  });

  it('passes GET /v1/models and /v1/models/{id} through', async () => {
    const list = await upstream.get('/v1/models', AbortSignal.timeout(5000));
    expect(list.status).toBe(200);
    const parsed = (await list.body.json()) as { data: { id: string }[] };
    expect(parsed.data.map((m) => m.id)).toEqual(DEFAULT_MODELS.map((m) => m.id));
    expect(fake.requests[0]?.method).toBe('GET');
    expect(fake.requests[0]?.headers['x-api-key']).toBe(API_KEY);
    expect(fake.requests[0]?.headers['anthropic-version']).toBe('2023-06-01');
    expect(fake.requests[0]?.headers['content-type']).toBeUndefined();

    const id = DEFAULT_MODELS[0]?.id ?? '';
    const one = await upstream.get(`/v1/models/${id}`, AbortSignal.timeout(5000), { 'anthropic-beta': 'x' });
    expect(((await one.body.json()) as { id: string }).id).toBe(id);
    expect(fake.requests[1]?.headers['anthropic-beta']).toBe('x');

    const missing = await upstream.get('/v1/models/nope', AbortSignal.timeout(5000));
    expect(missing.status).toBe(404);
    const error = await upstream.errorFromResponse(missing);
    expect(error.errorType).toBe('not_found_error');
    expect(error.failureClass).toBe('non_retryable');
  });
});

describe('AnthropicUpstream lifecycle and base URLs', () => {
  it('keeps a base URL path prefix', async () => {
    const fake = await startFakeAnthropic();
    const upstream = new AnthropicUpstream({ baseUrl: `${fake.url}/proxy/`, apiKey: API_KEY });
    try {
      const response = await upstream.get('/v1/models', AbortSignal.timeout(5000));
      expect(response.status).toBe(404);
      await response.body.dump();
      expect(fake.requests[0]?.path).toBe('/proxy/v1/models');
    } finally {
      await upstream.close();
      await fake.close();
    }
  });

  it('maps a refused connection to a retryable connection_error', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const upstream = new AnthropicUpstream({ baseUrl: `http://127.0.0.1:${port}`, apiKey: API_KEY });
    try {
      const error = await rejection(upstream.send('/v1/messages', messagesBody(), { signal: AbortSignal.timeout(5000) }));
      expect(error.errorType).toBe('connection_error');
      expect(error.failureClass).toBe('retryable');
    } finally {
      await upstream.close();
    }
  });

  it('closes idempotently and leaves no open sockets', async () => {
    const fake = await startFakeAnthropic();
    // Sockets of earlier tests may still be closing: count once the number is steady.
    const baseline = await steadySocketCount();
    const upstream = new AnthropicUpstream({ baseUrl: fake.url, apiKey: API_KEY, connections: 4 });
    try {
      const responses = await Promise.all(
        [1, 2, 3].map(() => upstream.send('/v1/messages', messagesBody(), { signal: AbortSignal.timeout(5000) })),
      );
      await Promise.all(responses.map((r) => r.body.text()));
      expect(upstream.stats.connected).toBeGreaterThan(0);
      expect(tcpSocketCount()).toBeGreaterThan(baseline);

      const first = upstream.close();
      const second = upstream.close();
      expect(second).toBe(first);
      await Promise.all([first, second, upstream.close()]);
      expect(upstream.closed).toBe(true);
      expect(upstream.stats.connected).toBe(0);
      // Client sockets are gone at once; the fake's server-side ends follow as the FINs arrive.
      await eventually(() => tcpSocketCount() === baseline);

      const error = await rejection(upstream.send('/v1/messages', messagesBody(), { signal: AbortSignal.timeout(5000) }));
      expect(error.errorType).toBe('connection_error');
      expect(fake.requests).toHaveLength(3);
      await upstream.destroy();
    } finally {
      await fake.close();
    }
  });

  it('destroy() ends a stuck stream so shutdown cannot hang', async () => {
    const fake = await startFakeAnthropic();
    const upstream = new AnthropicUpstream({ baseUrl: fake.url, apiKey: API_KEY });
    try {
      fake.enqueueFault({ kind: 'stall_mid_stream', afterChunks: 1 });
      const signal = AbortSignal.timeout(5000);
      const response = await upstream.send('/v1/messages', messagesBody({ stream: true }), { signal });
      const reading = scanAll(response).then(
        () => null,
        (error: unknown) => upstream.errorFromTransport(error, signal),
      );
      await fake.waitFor((f) => f.requests.length === 1);
      const closing = upstream.close();
      await upstream.destroy();
      await closing;
      const error = await reading;
      expect(error?.errorType).toBe('stream_cut');
      expect(upstream.stats.connected).toBe(0);
      await upstream.destroy();
    } finally {
      await fake.close();
    }
  });
});

describe('upstreamErrorFrom', () => {
  it('falls back to the status when the body is not an Anthropic error', () => {
    const error = upstreamErrorFrom(502, {}, '<html>Bad gateway</html>');
    expect(error.errorType).toBe('api_error');
    expect(error.failureClass).toBe('retryable');
    expect(error.message).toBe('<html>Bad gateway</html>');
    expect(upstreamErrorFrom(503, {}, '').message).toBe('The upstream answered HTTP 503');
  });

  it('reads retry-after as seconds or an HTTP date, from a string or an array', () => {
    expect(upstreamErrorFrom(429, { 'retry-after': ['3'] }, '').retryAfterMs).toBe(3000);
    const date = new Date(Date.now() + 10_000).toUTCString();
    const ms = upstreamErrorFrom(503, { 'retry-after': date }, '').retryAfterMs ?? 0;
    expect(ms).toBeGreaterThan(8000);
    expect(ms).toBeLessThanOrEqual(10_000);
  });

  it('keeps context_too_long to 400s', () => {
    const body = JSON.stringify({ type: 'error', error: { type: 'api_error', message: 'prompt is too long' } });
    expect(upstreamErrorFrom(500, {}, body).errorType).toBe('api_error');
    const bad = JSON.stringify({ type: 'error', error: { type: 'invalid_request_error', message: 'context length exceeded' } });
    expect(upstreamErrorFrom(400, {}, bad).errorType).toBe('context_too_long');
  });
});
