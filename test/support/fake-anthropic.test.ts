import { afterEach, describe, expect, it } from 'vitest';
import Anthropic from '@anthropic-ai/sdk';
import {
  OUTPUT_BLOCKED_FAULT,
  PREFILL_REJECTED_MESSAGE,
  countInputTokens,
  splitReply,
  startFakeAnthropic,
} from './fake-anthropic.js';
import type { FakeAnthropic, FakeAnthropicOptions, RecordedRequest } from './fake-anthropic.js';

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const started: FakeAnthropic[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map((fake) => fake.close()));
});

async function start(options?: FakeAnthropicOptions): Promise<FakeAnthropic> {
  const fake = await startFakeAnthropic(options);
  started.push(fake);
  return fake;
}

const MODEL = 'claude-sonnet-4-20250514';
const AUTH = { 'x-api-key': 'test-key' };

function messagesBody(text = 'hello there world', extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: MODEL, max_tokens: 256, messages: [{ role: 'user', content: text }], ...extra };
}

function post(
  fake: FakeAnthropic,
  body: unknown,
  init: { headers?: Record<string, string>; signal?: AbortSignal; path?: string } = {},
): Promise<Response> {
  return fetch(`${fake.url}${init.path ?? '/v1/messages'}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...(init.headers ?? AUTH) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...(init.signal ? { signal: init.signal } : {}),
  });
}

interface SseEvent {
  event: string;
  data: string;
}

/** Parses complete `event:`/`data:` frames; a trailing partial frame is ignored. */
function parseSse(text: string): SseEvent[] {
  const frames = text.split('\n\n').slice(0, -1);
  return frames.map((frame) => {
    let event = '';
    const data: string[] = [];
    for (const line of frame.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice('event: '.length);
      else if (line.startsWith('data: ')) data.push(line.slice('data: '.length));
    }
    return { event, data: data.join('\n') };
  });
}

function dataOf(event: SseEvent): Record<string, unknown> {
  return JSON.parse(event.data) as Record<string, unknown>;
}

function textDeltas(events: SseEvent[]): string[] {
  return events
    .filter((e) => e.event === 'content_block_delta')
    .map((e) => dataOf(e).delta as { type: string; text?: string })
    .filter((d) => d.type === 'text_delta')
    .map((d) => d.text ?? '');
}

/** Reads a response body until it ends or errors, reporting which. */
function drain(res: Response): Promise<{ text: string; error: unknown }> {
  return drainReader(res.body!.getReader());
}

async function drainReader(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<{ text: string; error: unknown }> {
  const decoder = new TextDecoder();
  let text = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { text, error: undefined };
      text += decoder.decode(value, { stream: true });
    }
  } catch (error) {
    return { text, error };
  }
}

/** Reads until `predicate(textSoFar)` holds; returns the text and when it held. */
async function readUntil(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  predicate: (text: string) => boolean,
): Promise<{ text: string; at: number }> {
  const decoder = new TextDecoder();
  let text = '';
  while (!predicate(text)) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`stream ended before the condition held; got: ${text}`);
    text += decoder.decode(value, { stream: true });
  }
  return { text, at: Date.now() };
}

function deltaCount(text: string): number {
  return text.split('event: content_block_delta').length - 1;
}

function only(fake: FakeAnthropic): RecordedRequest {
  expect(fake.requests).toHaveLength(1);
  return fake.requests[0]!;
}

function sdk(fake: FakeAnthropic, maxRetries = 0): Anthropic {
  return new Anthropic({ apiKey: 'test-key', baseURL: fake.url, maxRetries, logLevel: 'off' });
}

// ---------------------------------------------------------------------------
// Normal service
// ---------------------------------------------------------------------------

describe('POST /v1/messages (JSON)', () => {
  it('answers with an Anthropic-shaped message echoing the last user message', async () => {
    const fake = await start();
    const body = {
      model: MODEL,
      max_tokens: 100,
      system: 'be brief',
      messages: [
        { role: 'user', content: 'first question' },
        { role: 'assistant', content: 'first answer' },
        { role: 'user', content: [{ type: 'text', text: 'second ' }, { type: 'text', text: 'question' }] },
      ],
    };
    const res = await post(fake, body);

    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('request-id')).toMatch(/^req_/);
    const message = (await res.json()) as Record<string, unknown>;
    const text = 'Echo: second question';
    expect(message).toEqual({
      id: expect.stringMatching(/^msg_/),
      type: 'message',
      role: 'assistant',
      model: MODEL,
      content: [{ type: 'text', text }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: countInputTokens(body as never), output_tokens: splitReply(text).length },
    });
    // ceil((8 + 14 + 12 + 15) / 4)
    expect(countInputTokens(body as never)).toBe(13);
  });

  it('uses a fixed reply, a reply function, and returns to echo after setReply(null)', async () => {
    const fake = await start({ reply: 'Fixed answer.' });
    const first = (await (await post(fake, messagesBody('a'))).json()) as { content: Array<{ text: string }> };
    expect(first.content[0]!.text).toBe('Fixed answer.');

    fake.setReply((body) => `model=${body.model} n=${body.messages.length}`);
    const second = (await (await post(fake, messagesBody('b'))).json()) as { content: Array<{ text: string }> };
    expect(second.content[0]!.text).toBe(`model=${MODEL} n=1`);

    fake.setReply(null);
    const third = (await (await post(fake, messagesBody('c'))).json()) as { content: Array<{ text: string }> };
    expect(third.content[0]!.text).toBe('Echo: c');
  });

  it('truncates at max_tokens (one token per chunk) with stop_reason max_tokens', async () => {
    const fake = await start({ reply: 'one two three four five' });
    const message = (await (await post(fake, messagesBody('x', { max_tokens: 2 }))).json()) as Record<string, unknown>;
    expect(message.content).toEqual([{ type: 'text', text: 'one two ' }]);
    expect(message.stop_reason).toBe('max_tokens');
    expect(message.usage).toEqual({ input_tokens: 1, output_tokens: 2 });
  });

  it('returns a non-streaming tool_use block with stop_reason tool_use', async () => {
    const fake = await start({ reply: 'Let me check.' });
    fake.setToolUse({ name: 'get_weather', input: { city: 'Paris' }, id: 'toolu_fixed' });
    const message = (await (await post(fake, messagesBody())).json()) as Record<string, unknown>;
    expect(message.content).toEqual([
      { type: 'text', text: 'Let me check.' },
      { type: 'tool_use', id: 'toolu_fixed', name: 'get_weather', input: { city: 'Paris' } },
    ]);
    expect(message.stop_reason).toBe('tool_use');
  });

  it.each([
    ['invalid JSON', '{"model": '],
    ['missing model', { max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }],
    ['missing messages', { model: MODEL, max_tokens: 10 }],
    ['missing max_tokens', { model: MODEL, messages: [{ role: 'user', content: 'hi' }] }],
    ['a bad role', { model: MODEL, max_tokens: 10, messages: [{ role: 'system', content: 'hi' }] }],
  ])('rejects %s with 400 invalid_request_error', async (_name, body) => {
    const fake = await start();
    const res = await post(fake, body);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
    expect(only(fake).completed).toBe(true);
  });
});

describe('POST /v1/messages (stream: true)', () => {
  it('streams events in Anthropic order whose deltas join to the reply', async () => {
    const fake = await start({ reply: 'The quick brown fox jumps.' });
    const res = await post(fake, messagesBody('hi', { stream: true }));

    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(res.headers.get('request-id')).toMatch(/^req_/);
    const raw = await res.text();
    const events = parseSse(raw);
    // Every frame is exactly `event: <name>\ndata: <json>\n\n`.
    expect(raw).toBe(events.map((e) => `event: ${e.event}\ndata: ${e.data}\n\n`).join(''));
    const deltas = textDeltas(events);
    expect(deltas).toEqual(['The ', 'quick ', 'brown ', 'fox ', 'jumps.']);
    expect(events.map((e) => e.event)).toEqual([
      'message_start',
      'content_block_start',
      'ping',
      ...deltas.map(() => 'content_block_delta'),
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    for (const event of events) expect(dataOf(event).type).toBe(event.event);

    const start0 = dataOf(events[0]!).message as Record<string, unknown>;
    expect(start0).toMatchObject({ type: 'message', role: 'assistant', model: MODEL, content: [], stop_reason: null });
    expect(start0.usage).toEqual({ input_tokens: 1, output_tokens: 1 });
    expect(dataOf(events[1]!)).toEqual({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
    expect(dataOf(events[3]!)).toEqual({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'The ' } });
    expect(dataOf(events.at(-2)!)).toEqual({
      type: 'message_delta',
      delta: { stop_reason: 'end_turn', stop_sequence: null },
      usage: { output_tokens: 5 },
    });
    expect(only(fake)).toMatchObject({ completed: true, clientClosed: false });
  });

  it('honours chunkCount and chunkSize', async () => {
    const byCount = await start({ reply: 'a b c d e f', chunkCount: 2 });
    const countDeltas = textDeltas(parseSse(await (await post(byCount, messagesBody('x', { stream: true }))).text()));
    expect(countDeltas).toEqual(['a b c ', 'd e f']);

    const bySize = await start({ reply: 'abcdefgh' });
    bySize.setChunking({ chunkSize: 3 });
    const sizeDeltas = textDeltas(parseSse(await (await post(bySize, messagesBody('x', { stream: true }))).text()));
    expect(sizeDeltas).toEqual(['abc', 'def', 'gh']);
  });

  it.each(['after', 'before'] as const)('streams a tool_use block %s the text block', async (position) => {
    const fake = await start({ reply: 'Checking.' });
    const input = { city: 'Paris', days: 3 };
    fake.setToolUse({ name: 'get_weather', input, position });
    const events = parseSse(await (await post(fake, messagesBody('x', { stream: true }))).text());

    const starts = events.filter((e) => e.event === 'content_block_start').map(dataOf);
    const toolIndex = position === 'after' ? 1 : 0;
    expect(starts.map((s) => (s.content_block as { type: string }).type)).toEqual(
      position === 'after' ? ['text', 'tool_use'] : ['tool_use', 'text'],
    );
    const toolStart = starts[toolIndex]!;
    expect(toolStart).toMatchObject({ index: toolIndex, content_block: { type: 'tool_use', name: 'get_weather', input: {} } });
    expect((toolStart.content_block as { id: string }).id).toMatch(/^toolu_/);

    const jsonDeltas = events
      .filter((e) => e.event === 'content_block_delta')
      .map(dataOf)
      .filter((d) => (d.delta as { type: string }).type === 'input_json_delta');
    expect(jsonDeltas.length).toBeGreaterThan(1);
    expect(jsonDeltas.every((d) => d.index === toolIndex)).toBe(true);
    expect(JSON.parse(jsonDeltas.map((d) => (d.delta as { partial_json: string }).partial_json).join(''))).toEqual(input);

    expect(events.filter((e) => e.event === 'content_block_stop').map((e) => dataOf(e).index)).toEqual([0, 1]);
    const messageDelta = dataOf(events.find((e) => e.event === 'message_delta')!);
    expect(messageDelta.delta).toEqual({ stop_reason: 'tool_use', stop_sequence: null });
    expect(events.at(-1)!.event).toBe('message_stop');
  });
});

// ---------------------------------------------------------------------------
// Auth, other routes
// ---------------------------------------------------------------------------

describe('authentication', () => {
  it('accepts x-api-key and Authorization: Bearer, and records which was used', async () => {
    const fake = await start();
    expect((await post(fake, messagesBody(), { headers: { 'x-api-key': 'k1' } })).status).toBe(200);
    expect((await post(fake, messagesBody(), { headers: { authorization: 'Bearer t1' } })).status).toBe(200);
    expect(fake.requests.map((r) => r.authVia)).toEqual(['x-api-key', 'bearer']);
    expect(fake.requests[1]!.headers.authorization).toBe('Bearer t1');
  });

  it.each([
    ['no auth header', {}],
    ['an empty x-api-key', { 'x-api-key': '' }],
    ['an empty bearer token', { authorization: 'Bearer ' }],
  ])('answers 401 authentication_error for %s, and logs it', async (_name, headers) => {
    const fake = await start();
    const res = await post(fake, messagesBody(), { headers });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ type: 'error', error: { type: 'authentication_error', message: expect.any(String) } });
    expect(only(fake)).toMatchObject({ authVia: null, completed: true, path: '/v1/messages' });
  });

  it('can require anthropic-version like the real API', async () => {
    const fake = await start({ requireAnthropicVersion: true });
    const res = await fetch(`${fake.url}/v1/messages`, { method: 'POST', headers: AUTH, body: JSON.stringify(messagesBody()) });
    expect(res.status).toBe(400);
    expect((await post(fake, messagesBody())).status).toBe(200);
  });
});

describe('other routes', () => {
  it('lists models in Anthropic shape and serves one by id', async () => {
    const fake = await start();
    const list = (await (await fetch(`${fake.url}/v1/models`, { headers: AUTH })).json()) as {
      data: Array<Record<string, unknown>>;
      has_more: boolean;
      first_id: string;
      last_id: string;
    };
    expect(list.data.length).toBeGreaterThan(0);
    for (const model of list.data) {
      expect(model).toEqual({
        type: 'model',
        id: expect.any(String),
        display_name: expect.any(String),
        created_at: expect.any(String),
      });
    }
    expect(list.has_more).toBe(false);
    expect(list.first_id).toBe(list.data[0]!.id);
    expect(list.last_id).toBe(list.data.at(-1)!.id);

    const one = await fetch(`${fake.url}/v1/models/${String(list.data[0]!.id)}`, { headers: AUTH });
    expect(await one.json()).toEqual(list.data[0]);
    expect((await fetch(`${fake.url}/v1/models/nope`, { headers: AUTH })).status).toBe(404);
  });

  it('counts tokens deterministically', async () => {
    const fake = await start();
    const body = { model: MODEL, messages: [{ role: 'user' as const, content: 'x'.repeat(41) }] };
    const res = await post(fake, body, { path: '/v1/messages/count_tokens' });
    expect(await res.json()).toEqual({ input_tokens: 11 });
  });

  it('answers unknown routes with 404 not_found_error', async () => {
    const fake = await start();
    const res = await fetch(`${fake.url}/v1/unknown`, { headers: AUTH });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ type: 'error', error: { type: 'not_found_error' } });
  });
});

// ---------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------

describe('faults', () => {
  it('status: sends the status, Anthropic error JSON and retry headers', async () => {
    const fake = await start();
    fake.enqueueFault({ kind: 'status', status: 429, retryAfterSeconds: 7, retryAfterMs: 7000 });
    const res = await post(fake, messagesBody());
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(res.headers.get('retry-after-ms')).toBe('7000');
    expect(await res.json()).toMatchObject({ type: 'error', error: { type: 'rate_limit_error', message: expect.any(String) } });
    expect(only(fake)).toMatchObject({ fault: 'status', completed: true });
  });

  it.each([
    [400, 'invalid_request_error'],
    [401, 'authentication_error'],
    [403, 'permission_error'],
    [404, 'not_found_error'],
    [413, 'request_too_large'],
    [500, 'api_error'],
    [502, 'api_error'],
    [503, 'api_error'],
    [529, 'overloaded_error'],
  ])('status %i defaults to %s without retry headers', async (status, errorType) => {
    const fake = await start();
    fake.enqueueFault({ kind: 'status', status });
    const res = await post(fake, messagesBody());
    expect(res.status).toBe(status);
    expect(res.headers.get('retry-after')).toBeNull();
    expect(await res.json()).toMatchObject({ error: { type: errorType } });
  });

  it('status: honours a custom errorType and message', async () => {
    const fake = await start();
    fake.enqueueFault({ kind: 'status', status: 500, errorType: 'overloaded_error', message: 'busy', shouldRetry: false });
    const res = await post(fake, messagesBody());
    expect(res.headers.get('x-should-retry')).toBe('false');
    expect(await res.json()).toMatchObject({ type: 'error', error: { type: 'overloaded_error', message: 'busy' } });
  });

  it('reset_before_headers: the fetch rejects', async () => {
    const fake = await start();
    fake.enqueueFault({ kind: 'reset_before_headers' });
    await expect(post(fake, messagesBody())).rejects.toThrow();
    // The fake dropped the connection itself, so that is not a client close.
    expect(only(fake)).toMatchObject({ fault: 'reset_before_headers', completed: false, clientClosed: false });
  });

  it('no_response: holds the request until the client gives up, then records clientClosed', async () => {
    const fake = await start();
    fake.enqueueFault({ kind: 'no_response' });
    const began = Date.now();
    await expect(post(fake, messagesBody(), { signal: AbortSignal.timeout(100) })).rejects.toThrow();
    expect(Date.now() - began).toBeGreaterThanOrEqual(90);
    await fake.waitFor((f) => f.requests[0]?.clientClosed === true);
    expect(only(fake)).toMatchObject({ fault: 'no_response', completed: false });
  });

  it('slow_first_token: message_start arrives at once, the first delta after the delay', async () => {
    const fake = await start({ reply: 'slow but steady' });
    fake.enqueueFault({ kind: 'slow_first_token', delayMs: 150 });
    const res = await post(fake, messagesBody('x', { stream: true }));
    const reader = res.body!.getReader();
    const first = await readUntil(reader, (t) => t.includes('event: message_start'));
    expect(deltaCount(first.text)).toBe(0);
    const delta = await readUntil(reader, (t) => deltaCount(first.text + t) > 0);
    // Loose bound: only "clearly delayed" is asserted, not exact timing.
    expect(delta.at - first.at).toBeGreaterThanOrEqual(110);

    const rest = await drainReader(reader);
    expect(rest.error).toBeUndefined();
    const events = parseSse(first.text + delta.text + rest.text);
    expect(textDeltas(events).join('')).toBe('slow but steady');
    expect(events.at(-1)!.event).toBe('message_stop');
    expect(only(fake)).toMatchObject({ fault: 'slow_first_token', completed: true });
  });

  it('slow_first_token: delays a non-streaming reply', async () => {
    const fake = await start();
    fake.enqueueFault({ kind: 'slow_first_token', delayMs: 120 });
    const began = Date.now();
    const res = await post(fake, messagesBody());
    expect(res.status).toBe(200);
    expect(Date.now() - began).toBeGreaterThanOrEqual(100);
  });

  it('cut_mid_stream: the body errors after N deltas, with no message_stop', async () => {
    const fake = await start({ reply: 'one two three four five' });
    fake.enqueueFault({ kind: 'cut_mid_stream', afterChunks: 2 });
    const res = await post(fake, messagesBody('x', { stream: true }));
    expect(res.status).toBe(200);
    const { text, error } = await drain(res);
    expect(error).toBeDefined();
    expect(textDeltas(parseSse(text))).toEqual(['one ', 'two ']);
    expect(text).not.toContain('message_stop');
    expect(only(fake)).toMatchObject({ fault: 'cut_mid_stream', completed: false, clientClosed: false });
  });

  it('cut_mid_stream: a non-streaming body is truncated', async () => {
    const fake = await start();
    fake.enqueueFault({ kind: 'cut_mid_stream', afterChunks: 0 });
    const res = await post(fake, messagesBody());
    await expect(res.json()).rejects.toThrow();
  });

  it('stall_mid_stream: goes silent after N deltas until the client closes', async () => {
    const fake = await start({ reply: 'one two three four' });
    fake.enqueueFault({ kind: 'stall_mid_stream', afterChunks: 1 });
    const controller = new AbortController();
    const res = await post(fake, messagesBody('x', { stream: true }), { signal: controller.signal });
    const reader = res.body!.getReader();
    const got = await readUntil(reader, (t) => deltaCount(t) === 1);

    const next = reader.read();
    const outcome = await Promise.race([next.then(() => 'data'), new Promise((r) => setTimeout(() => r('silent'), 100))]);
    expect(outcome).toBe('silent');
    expect(got.text).not.toContain('message_stop');

    controller.abort();
    await next.catch(() => undefined);
    await fake.waitFor((f) => f.requests[0]?.clientClosed === true);
    expect(only(fake)).toMatchObject({ fault: 'stall_mid_stream', completed: false });
  });

  it('malformed_event: sends a broken data line after N deltas and ends the response', async () => {
    const fake = await start({ reply: 'one two three' });
    fake.enqueueFault({ kind: 'malformed_event', afterChunks: 1 });
    const text = await (await post(fake, messagesBody('x', { stream: true }))).text();
    expect(text.endsWith('event: content_block_delta\ndata: {not json\n\n')).toBe(true);
    const events = parseSse(text);
    expect(textDeltas(events.slice(0, -1))).toEqual(['one ']);
    expect(() => dataOf(events.at(-1)!)).toThrow();
    expect(text).not.toContain('message_stop');
    expect(only(fake)).toMatchObject({ fault: 'malformed_event', completed: true });
  });

  it('error_event: sends an SSE error event after N deltas and ends the response', async () => {
    const fake = await start({ reply: 'one two three' });
    fake.enqueueFault({ kind: 'error_event', afterChunks: 2 });
    const events = parseSse(await (await post(fake, messagesBody('x', { stream: true }))).text());
    expect(textDeltas(events)).toEqual(['one ', 'two ']);
    const last = events.at(-1)!;
    expect(last.event).toBe('error');
    expect(dataOf(last)).toMatchObject({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
    expect(events.some((e) => e.event === 'message_stop')).toBe(false);
    expect(only(fake)).toMatchObject({ fault: 'error_event', completed: true });
  });

  it('error_event: a custom type and message; on a non-streaming request it becomes a status', async () => {
    const fake = await start();
    fake.enqueueFault(
      { kind: 'error_event', afterChunks: 0, errorType: 'api_error', message: 'boom' },
      { kind: 'error_event', afterChunks: 0 },
    );
    const events = parseSse(await (await post(fake, messagesBody('x', { stream: true }))).text());
    expect(textDeltas(events)).toEqual([]);
    expect(dataOf(events.at(-1)!)).toMatchObject({ error: { type: 'api_error', message: 'boom' } });

    const res = await post(fake, messagesBody());
    expect(res.status).toBe(529);
    expect(await res.json()).toMatchObject({ error: { type: 'overloaded_error' } });
  });

  it('afterChunks beyond the reply length fires once the text is done', async () => {
    const fake = await start({ reply: 'a b' });
    fake.enqueueFault({ kind: 'error_event', afterChunks: 99 });
    const events = parseSse(await (await post(fake, messagesBody('x', { stream: true }))).text());
    expect(textDeltas(events)).toEqual(['a ', 'b']);
    expect(events.at(-1)!.event).toBe('error');
  });

  it('consumes queued faults in FIFO order, then serves normally', async () => {
    const fake = await start();
    fake.enqueueFault({ kind: 'status', status: 529 }, { kind: 'status', status: 500 });
    fake.enqueueFault({ kind: 'status', status: 429 });
    expect(fake.pendingFaults.map((f) => f.kind)).toEqual(['status', 'status', 'status']);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i += 1) statuses.push((await post(fake, messagesBody())).status);
    expect(statuses).toEqual([529, 500, 429, 200]);
    expect(fake.requests.map((r) => r.fault)).toEqual(['status', 'status', 'status', undefined]);
    expect(fake.pendingFaults).toEqual([]);
  });

  it('applies the default fault to every request while set, after the queue', async () => {
    const fake = await start();
    fake.setDefaultFault({ kind: 'status', status: 503 });
    fake.enqueueFault({ kind: 'status', status: 429 });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i += 1) statuses.push((await post(fake, messagesBody())).status);
    expect(statuses).toEqual([429, 503, 503]);
    fake.setDefaultFault(null);
    expect((await post(fake, messagesBody())).status).toBe(200);
  });

  it('leaves queued faults for /v1/messages when other routes are called', async () => {
    const fake = await start();
    fake.enqueueFault({ kind: 'status', status: 529 });
    expect((await fetch(`${fake.url}/v1/models`, { headers: AUTH })).status).toBe(200);
    expect((await post(fake, messagesBody(), { headers: {} })).status).toBe(401);
    expect((await post(fake, messagesBody())).status).toBe(529);
  });

  it('reset() clears the log, the queue, the default fault and scripted replies', async () => {
    const fake = await start();
    const log = fake.requests;
    fake.setReply('scripted');
    fake.enqueueFault({ kind: 'status', status: 500 });
    fake.setDefaultFault({ kind: 'status', status: 503 });
    await post(fake, messagesBody());
    fake.reset();
    expect(log).toHaveLength(0);
    expect(fake.pendingFaults).toEqual([]);
    const message = (await (await post(fake, messagesBody('again'))).json()) as { content: Array<{ text: string }> };
    expect(message.content[0]!.text).toBe('Echo: again');
    expect(log).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------
// Faults for the failover scenarios
// ---------------------------------------------------------------------------

describe('scenario faults', () => {
  it('no_message_stop: sends N deltas, then ends cleanly without message_delta or message_stop', async () => {
    const fake = await start({ reply: 'one two three four' });
    fake.enqueueFault({ kind: 'no_message_stop', afterChunks: 2 });
    const res = await post(fake, messagesBody('x', { stream: true }));
    expect(res.status).toBe(200);
    const { text, error } = await drain(res);
    expect(error).toBeUndefined();
    const events = parseSse(text);
    expect(textDeltas(events)).toEqual(['one ', 'two ']);
    expect(events.at(-1)!.event).toBe('content_block_delta');
    expect(events.some((e) => e.event === 'message_delta' || e.event === 'message_stop')).toBe(false);
    expect(only(fake)).toMatchObject({ fault: 'no_message_stop', completed: true, clientClosed: false });
  });

  it('no_message_stop: with afterChunks past the reply, every delta arrives and still no message_stop', async () => {
    const fake = await start({ reply: 'a b c' });
    fake.enqueueFault({ kind: 'no_message_stop', afterChunks: 99 });
    const events = parseSse(await (await post(fake, messagesBody('x', { stream: true }))).text());
    expect(textDeltas(events).join('')).toBe('a b c');
    expect(events.map((e) => e.event)).not.toContain('message_stop');
    expect(events.map((e) => e.event)).not.toContain('message_delta');
  });

  it('no_message_stop: a non-streaming reply is cut and has stop_reason null', async () => {
    const fake = await start({ reply: 'one two three four' });
    fake.enqueueFault({ kind: 'no_message_stop', afterChunks: 1 });
    const res = await post(fake, messagesBody());
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ content: [{ type: 'text', text: 'one ' }], stop_reason: null });
  });

  it('prefill_rejected: a 400 when the last message is an assistant prefill, streaming or not', async () => {
    const fake = await start();
    const prefill = [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'Sure, ' },
    ];
    fake.setDefaultFault({ kind: 'prefill_rejected' });
    for (const stream of [false, true]) {
      const res = await post(fake, messagesBody('x', { messages: prefill, stream }));
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({
        type: 'error',
        error: { type: 'invalid_request_error', message: PREFILL_REJECTED_MESSAGE },
      });
    }
    expect(PREFILL_REJECTED_MESSAGE).toMatch(/prefill/);
    expect(fake.requests.map((r) => r.fault)).toEqual(['prefill_rejected', 'prefill_rejected']);
  });

  it('prefill_rejected: a request ending with a user message is served normally', async () => {
    const fake = await start({ reply: 'fine' });
    fake.enqueueFault({ kind: 'prefill_rejected', message: 'no prefill here' }, { kind: 'prefill_rejected', message: 'no prefill here' });
    const json = await post(fake, messagesBody());
    expect(json.status).toBe(200);
    expect(await json.json()).toMatchObject({ content: [{ text: 'fine' }], stop_reason: 'end_turn' });
    const events = parseSse(await (await post(fake, messagesBody('x', { stream: true }))).text());
    expect(textDeltas(events)).toEqual(['fine']);
    expect(events.at(-1)!.event).toBe('message_stop');

    fake.enqueueFault({ kind: 'prefill_rejected', message: 'no prefill here' });
    const rejected = await post(fake, messagesBody('x', { messages: [{ role: 'assistant', content: 'A' }] }));
    expect(await rejected.json()).toMatchObject({ error: { message: 'no prefill here' } });
  });

  it('refusal: a 200 stream whose message_delta has stop_reason refusal', async () => {
    const fake = await start({ reply: 'one two three' });
    fake.enqueueFault({ kind: 'refusal' }, { kind: 'refusal', afterChunks: 2 });
    for (const expected of [[], ['one ', 'two ']]) {
      const res = await post(fake, messagesBody('x', { stream: true }));
      expect(res.status).toBe(200);
      const events = parseSse(await res.text());
      expect(textDeltas(events)).toEqual(expected);
      const messageDelta = dataOf(events.find((e) => e.event === 'message_delta')!);
      expect(messageDelta.delta).toEqual({ stop_reason: 'refusal', stop_sequence: null });
      expect(events.at(-1)!.event).toBe('message_stop');
    }
    expect(fake.requests.map((r) => r.fault)).toEqual(['refusal', 'refusal']);
  });

  it('refusal: a non-streaming 200 with stop_reason refusal, also through the SDK', async () => {
    const fake = await start({ reply: 'one two three' });
    fake.enqueueFault({ kind: 'refusal', afterChunks: 1 });
    const message = await sdk(fake).messages.create({
      model: MODEL,
      max_tokens: 64,
      messages: [{ role: 'user', content: 'x' }],
    });
    expect(message.stop_reason).toBe('refusal');
    expect(message.content).toEqual([{ type: 'text', text: 'one ' }]);
  });

  it('OUTPUT_BLOCKED_FAULT: the 400 form of a content-filter refusal', async () => {
    const fake = await start();
    fake.enqueueFault(OUTPUT_BLOCKED_FAULT);
    const res = await post(fake, messagesBody('x', { stream: true }));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      error: { type: 'invalid_request_error', message: 'Output blocked by content filtering policy' },
    });
  });
});

// ---------------------------------------------------------------------------
// Per-model behaviour
// ---------------------------------------------------------------------------

const PRIMARY = 'claude-primary';
const FALLBACK = 'claude-fallback';

function forModel(model: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return messagesBody('hi', { model, ...extra });
}

async function statusesFor(fake: FakeAnthropic, model: string, n: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < n; i += 1) {
    const res = await post(fake, forModel(model));
    await res.arrayBuffer();
    statuses.push(res.status);
  }
  return statuses;
}

describe('setModelBehavior', () => {
  it('consumes the model faults in order, then serves ok by default', async () => {
    const fake = await start();
    fake.setModelBehavior(PRIMARY, {
      faults: [
        { kind: 'status', status: 429, retryAfterSeconds: 2 },
        { kind: 'status', status: 500 },
        { kind: 'status', status: 503 },
      ],
    });
    expect(await statusesFor(fake, PRIMARY, 5)).toEqual([429, 500, 503, 200, 200]);
    expect(fake.requestsFor(PRIMARY).map((r) => r.fault ?? 'ok')).toEqual(['status', 'status', 'status', 'ok', 'ok']);
  });

  it('applies `then` after the faults, for every later request', async () => {
    const fake = await start();
    fake.setModelBehavior(PRIMARY, { faults: [{ kind: 'status', status: 500 }], then: { kind: 'status', status: 503 } });
    expect(await statusesFor(fake, PRIMARY, 4)).toEqual([500, 503, 503, 503]);
    fake.setModelBehavior(PRIMARY, { then: 'ok' });
    expect(await statusesFor(fake, PRIMARY, 1)).toEqual([200]);
  });

  it('does not mutate the caller\'s faults array, and setting again restarts the script', async () => {
    const fake = await start();
    const behavior = { faults: [{ kind: 'status', status: 500 } as const] };
    fake.setModelBehavior(PRIMARY, behavior);
    expect(await statusesFor(fake, PRIMARY, 2)).toEqual([500, 200]);
    expect(behavior.faults).toHaveLength(1);
    fake.setModelBehavior(PRIMARY, behavior);
    expect(await statusesFor(fake, PRIMARY, 2)).toEqual([500, 200]);
  });

  it('untilMs: `then` applies only until that long after the behaviour was set', async () => {
    const fake = await start();
    // A wide window, so a loaded machine cannot push the first two requests past it.
    fake.setModelBehavior(PRIMARY, { then: { kind: 'status', status: 503 }, untilMs: 1000 });
    const setAt = Date.now();
    expect(await statusesFor(fake, PRIMARY, 2)).toEqual([503, 503]);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 1050 - (Date.now() - setAt))));
    expect(await statusesFor(fake, PRIMARY, 2)).toEqual([200, 200]);
    const log = fake.requestsFor(PRIMARY);
    expect(log.map((r) => r.fault ?? 'ok')).toEqual(['status', 'status', 'ok', 'ok']);
    expect(log[1]!.at - setAt).toBeLessThan(1000);
    expect(log[2]!.at - setAt).toBeGreaterThanOrEqual(1000);
  });

  it('untilMs does not cut the explicit faults short', async () => {
    const fake = await start();
    fake.setModelBehavior(PRIMARY, { faults: [{ kind: 'status', status: 429 }], then: { kind: 'status', status: 503 }, untilMs: 0 });
    expect(await statusesFor(fake, PRIMARY, 2)).toEqual([429, 200]);
  });

  it('isolates models: others keep the global queue and default fault, untouched by the model script', async () => {
    const fake = await start();
    fake.setModelBehavior(PRIMARY, { then: { kind: 'status', status: 503 } });
    fake.enqueueFault({ kind: 'status', status: 429 });
    expect(await statusesFor(fake, PRIMARY, 2)).toEqual([503, 503]);
    expect(fake.pendingFaults).toHaveLength(1); // the primary did not take the global fault
    expect(await statusesFor(fake, FALLBACK, 2)).toEqual([429, 200]);

    fake.setDefaultFault({ kind: 'status', status: 500 });
    fake.setModelBehavior(FALLBACK, { faults: [{ kind: 'status', status: 529 }] });
    expect(await statusesFor(fake, FALLBACK, 2)).toEqual([529, 200]);
    expect(await statusesFor(fake, MODEL, 1)).toEqual([500]);

    expect(fake.requestsFor(PRIMARY)).toHaveLength(2);
    expect(fake.requestsFor(FALLBACK).map((r) => r.model)).toEqual([FALLBACK, FALLBACK, FALLBACK, FALLBACK]);
    expect(fake.requestsFor('nobody')).toEqual([]);
  });

  it('null removes a model behaviour, handing the model back to the global faults', async () => {
    const fake = await start();
    fake.setModelBehavior(PRIMARY, { then: { kind: 'status', status: 503 } });
    fake.setModelBehavior(PRIMARY, null);
    fake.enqueueFault({ kind: 'status', status: 429 });
    expect(await statusesFor(fake, PRIMARY, 2)).toEqual([429, 200]);
  });

  it('per-model reply, chunking and pacing, while other models keep the global ones', async () => {
    const fake = await start({ reply: 'global reply text' });
    fake.setModelBehavior(FALLBACK, { reply: (body) => `from ${body.model} a b c d`, chunkCount: 2, chunkDelayMs: 40 });
    const began = Date.now();
    const events = parseSse(await (await post(fake, forModel(FALLBACK, { stream: true }))).text());
    expect(Date.now() - began).toBeGreaterThanOrEqual(30);
    expect(textDeltas(events)).toEqual(['from claude-fallback a ', 'b c d']);
    const message = (await (await post(fake, forModel(FALLBACK))).json()) as Record<string, unknown>;
    expect(message).toMatchObject({ model: FALLBACK, content: [{ text: `from ${FALLBACK} a b c d` }] });

    const other = parseSse(await (await post(fake, forModel(PRIMARY, { stream: true }))).text());
    expect(textDeltas(other)).toEqual(['global ', 'reply ', 'text']);
  });

  it('drives streaming faults per model, e.g. a cut primary and a healthy fallback', async () => {
    const fake = await start({ reply: 'one two three four' });
    fake.setModelBehavior(PRIMARY, { then: { kind: 'cut_mid_stream', afterChunks: 2 } });
    const cut = await drain(await post(fake, forModel(PRIMARY, { stream: true })));
    expect(cut.error).toBeDefined();
    expect(textDeltas(parseSse(cut.text))).toEqual(['one ', 'two ']);
    const whole = await drain(await post(fake, forModel(FALLBACK, { stream: true })));
    expect(whole.error).toBeUndefined();
    expect(parseSse(whole.text).at(-1)!.event).toBe('message_stop');
    expect(fake.requestsFor(PRIMARY)[0]).toMatchObject({ fault: 'cut_mid_stream', completed: false });
  });

  it('requestsFor lists only POST /v1/messages for that model, as a snapshot', async () => {
    const fake = await start();
    await post(fake, forModel(PRIMARY), { path: '/v1/messages/count_tokens' });
    await post(fake, forModel(PRIMARY));
    await post(fake, forModel(FALLBACK));
    const list = fake.requestsFor(PRIMARY);
    expect(list.map((r) => r.path)).toEqual(['/v1/messages']);
    await post(fake, forModel(PRIMARY));
    expect(list).toHaveLength(1);
    expect(fake.requestsFor(PRIMARY)).toHaveLength(2);
  });

  it('reset() clears model behaviours', async () => {
    const fake = await start();
    fake.setModelBehavior(PRIMARY, { faults: [{ kind: 'status', status: 500 }], then: { kind: 'status', status: 503 }, reply: 'scripted' });
    await statusesFor(fake, PRIMARY, 1);
    fake.reset();
    expect(fake.requestsFor(PRIMARY)).toEqual([]);
    const res = await post(fake, forModel(PRIMARY));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ content: [{ text: 'Echo: hi' }] });
  });
});

// ---------------------------------------------------------------------------
// Request log, waitFor, close
// ---------------------------------------------------------------------------

describe('request log and lifecycle', () => {
  it('records method, path, model, parsed body, lower-cased headers and timing', async () => {
    const fake = await start();
    const before = Date.now();
    const body = messagesBody('log me', { temperature: 0.5 });
    await post(fake, body, { headers: { 'X-Api-Key': 'k', 'X-Custom': 'yes' } });
    await post(fake, 'not json at all');
    const [first, second] = fake.requests;
    expect(first).toMatchObject({
      method: 'POST',
      path: '/v1/messages',
      model: MODEL,
      body,
      authVia: 'x-api-key',
      clientClosed: false,
      completed: true,
    });
    expect(first!.headers['x-custom']).toBe('yes');
    expect(first!.headers['content-type']).toBe('application/json');
    expect(first!.at).toBeGreaterThanOrEqual(before);
    expect(first!.fault).toBeUndefined();
    expect(second).toMatchObject({ body: 'not json at all', completed: true });
    expect(second!.model).toBeUndefined();
  });

  it('waitFor rejects with a clear message on timeout', async () => {
    const fake = await start();
    await post(fake, messagesBody());
    await expect(fake.waitFor((f) => f.requests.length > 5, 50)).rejects.toThrow(/timed out after 50 ms.*POST \/v1\/messages/);
  });

  it('close() resolves promptly with stalled and held requests open', async () => {
    const fake = await startFakeAnthropic({ chunkDelayMs: 1000 });
    fake.enqueueFault({ kind: 'no_response' }, { kind: 'stall_mid_stream', afterChunks: 0 });
    const held = post(fake, messagesBody());
    const stalled = await post(fake, messagesBody('x', { stream: true }));
    const slow = await post(fake, messagesBody('x', { stream: true }));
    await fake.waitFor((f) => f.requests.length === 3);

    const began = Date.now();
    await fake.close();
    expect(Date.now() - began).toBeLessThan(500);
    await expect(held).rejects.toThrow();
    expect((await drain(stalled)).error).toBeDefined();
    expect((await drain(slow)).error).toBeDefined();
    // Closing the fake is not the client closing.
    expect(fake.requests.every((r) => !r.clientClosed)).toBe(true);
    await fake.close(); // idempotent
  });
});

// ---------------------------------------------------------------------------
// The official SDK against the fake
// ---------------------------------------------------------------------------

describe('official SDK', () => {
  it('streams raw events', async () => {
    const fake = await start({ reply: 'Hello from the fake.' });
    const stream = await sdk(fake).messages.create({
      model: MODEL,
      max_tokens: 64,
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
    });
    const types: string[] = [];
    let text = '';
    let stopReason: string | null = null;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
      if (event.type === 'message_delta') stopReason = event.delta.stop_reason;
    }
    expect(text).toBe('Hello from the fake.');
    expect(stopReason).toBe('end_turn');
    expect(types[0]).toBe('message_start');
    expect(types.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
    const request = only(fake);
    expect(request.authVia).not.toBeNull();
    expect(request.body).toMatchObject({ model: MODEL, stream: true });
    expect(request.completed).toBe(true);
  });

  it('makes a non-streaming call', async () => {
    const fake = await start();
    const message = await sdk(fake).messages.create({
      model: MODEL,
      max_tokens: 64,
      system: 'sys',
      messages: [{ role: 'user', content: 'ping me' }],
    });
    expect(message.content).toEqual([{ type: 'text', text: 'Echo: ping me' }]);
    expect(message.stop_reason).toBe('end_turn');
    expect(message.usage.input_tokens).toBe(3);
    expect(message._request_id).toMatch(/^req_/);
    expect(only(fake).body).toMatchObject({ system: 'sys', max_tokens: 64 });
  });

  it('surfaces status faults as APIError and retries on retry-after-ms', async () => {
    const fake = await start();
    fake.enqueueFault({ kind: 'status', status: 529 });
    const params = { model: MODEL, max_tokens: 16, messages: [{ role: 'user' as const, content: 'x' }] };
    const error = await sdk(fake).messages.create(params).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect((error as InstanceType<typeof Anthropic.APIError>).status).toBe(529);
    expect((error as InstanceType<typeof Anthropic.APIError>).type).toBe('overloaded_error');

    fake.enqueueFault({ kind: 'status', status: 429, retryAfterMs: 10 });
    const message = await sdk(fake, 1).messages.create(params);
    expect(message.content[0]).toMatchObject({ text: 'Echo: x' });
    expect(fake.requests.slice(1).map((r) => r.fault ?? 'ok')).toEqual(['status', 'ok']);
  });

  it('an SDK call aborted mid-stream shows up as clientClosed', async () => {
    const fake = await start({ reply: 'one two three four five six', chunkDelayMs: 30 });
    const controller = new AbortController();
    const stream = await sdk(fake).messages.create(
      { model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: 'x' }], stream: true },
      { signal: controller.signal },
    );
    const seen: string[] = [];
    try {
      for await (const event of stream) {
        if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') {
          seen.push(event.delta.text);
          controller.abort();
        }
      }
    } catch (error) {
      expect(error).toBeInstanceOf(Anthropic.APIUserAbortError);
    }
    expect(seen).toEqual(['one ']);
    await fake.waitFor((f) => f.requests[0]?.clientClosed === true);
    expect(only(fake).completed).toBe(false);
  });
});
