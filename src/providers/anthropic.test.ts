import { afterAll, afterEach, beforeAll, describe, it, expect } from 'vitest';
import { startFakeAnthropic } from '../../test/support/fake-anthropic.js';
import type { FakeAnthropic, Fault } from '../../test/support/fake-anthropic.js';
import { AnthropicProvider } from './anthropic.js';
import { ProviderError } from './errors.js';
import type { ProviderEvent, ProviderRequest } from './types.js';

let fake: FakeAnthropic;
let provider: AnthropicProvider;

beforeAll(async () => {
  fake = await startFakeAnthropic();
  provider = new AnthropicProvider({ apiKey: 'test-key', baseUrl: fake.url });
});

afterEach(() => {
  fake.reset();
});

afterAll(async () => {
  await fake.close();
});

// Not on the SDK's deprecated list, so the SDK prints no deprecation warning.
const MODEL = 'claude-sonnet-4-20250514';

function request(overrides: Partial<ProviderRequest> = {}): ProviderRequest {
  return {
    model: MODEL,
    maxTokens: 256,
    messages: [{ role: 'user', content: 'Hello, how are you today?' }],
    ...overrides,
  };
}

interface Outcome {
  events: ProviderEvent[];
  error: unknown;
}

/** Runs one stream to its end, keeping the events yielded before any error. */
async function run(req: ProviderRequest = request(), signal: AbortSignal = new AbortController().signal): Promise<Outcome> {
  const events: ProviderEvent[] = [];
  try {
    for await (const event of provider.stream(req, signal)) events.push(event);
  } catch (error) {
    return { events, error };
  }
  return { events, error: undefined };
}

function textOf(events: ProviderEvent[]): string {
  return events.map((e) => (e.type === 'text' ? e.text : '')).join('');
}

function expectProviderError(error: unknown): ProviderError {
  expect(error).toBeInstanceOf(ProviderError);
  return error as ProviderError;
}

async function runWithFault(fault: Fault): Promise<Outcome & { providerError: ProviderError }> {
  fake.enqueueFault(fault);
  const outcome = await run();
  expect(fake.requests).toHaveLength(1);
  expect(fake.requests[0]?.fault).toBe(fault.kind);
  return { ...outcome, providerError: expectProviderError(outcome.error) };
}

describe('AnthropicProvider success', () => {
  it('is labelled as the real provider', () => {
    expect(provider.name).toBe('anthropic');
    expect(provider.simulated).toBe(false);
  });

  it('streams start, text deltas, usage and stop', async () => {
    const reply = 'The quick brown fox jumps over the lazy dog.';
    fake.setReply(reply);
    const { events, error } = await run();
    expect(error).toBeUndefined();

    const types = events.map((e) => e.type);
    expect(types[0]).toBe('start');
    expect(types.slice(-2)).toEqual(['usage', 'stop']);
    expect(types.slice(1, -2).every((t) => t === 'text')).toBe(true);
    expect(types.filter((t) => t === 'text').length).toBeGreaterThan(1);

    expect(events[0]).toEqual({ type: 'start', model: MODEL });
    expect(textOf(events)).toBe(reply);
    expect(events.at(-1)).toEqual({ type: 'stop', stopReason: 'end_turn', model: MODEL });
  });

  it('reports input and output tokens from the upstream usage', async () => {
    const reply = 'one two three four five';
    fake.setReply(reply);
    const req = request({ system: 'Be terse.' });
    const { events } = await run(req);
    const usage = events.find((e) => e.type === 'usage');
    // The fake counts ceil(chars / 4) input tokens over system + messages and one output token per chunk.
    const chars = 'Be terse.'.length + 'Hello, how are you today?'.length;
    expect(usage).toEqual({
      type: 'usage',
      usage: expect.objectContaining({ inputTokens: Math.ceil(chars / 4), outputTokens: 5 }),
    });
  });

  it('sends the request fields upstream, with the API key, exactly once', async () => {
    await run(request({ system: 'Be terse.', temperature: 0.2, maxTokens: 99 }));
    expect(fake.requests).toHaveLength(1);
    const recorded = fake.requests[0];
    expect(recorded?.path).toBe('/v1/messages');
    // This SDK version sends the key as a bearer token; either way the configured key must reach upstream.
    expect(recorded?.authVia).not.toBeNull();
    const credential = recorded?.headers['x-api-key'] ?? recorded?.headers.authorization;
    expect(credential).toMatch(/(^|Bearer )test-key$/);
    expect(recorded?.body).toMatchObject({
      model: MODEL,
      max_tokens: 99,
      system: 'Be terse.',
      temperature: 0.2,
      stream: true,
      messages: [{ role: 'user', content: 'Hello, how are you today?' }],
    });
  });

  it('omits system and temperature when the request has none', async () => {
    await run();
    const body = fake.requests[0]?.body as Record<string, unknown>;
    expect(body).not.toHaveProperty('system');
    expect(body).not.toHaveProperty('temperature');
  });

  it('emits a tool_use event with the parsed input', async () => {
    fake.setReply('Let me look that up.');
    fake.setToolUse({ id: 'toolu_test_1', name: 'get_weather', input: { city: 'Paris', units: 'metric', days: [1, 2] } });
    const { events, error } = await run();
    expect(error).toBeUndefined();
    const tool = events.find((e) => e.type === 'tool_use');
    expect(tool).toEqual({
      type: 'tool_use',
      id: 'toolu_test_1',
      name: 'get_weather',
      input: { city: 'Paris', units: 'metric', days: [1, 2] },
    });
    expect(textOf(events)).toBe('Let me look that up.');
    // The tool block comes after the text block and before the final usage/stop.
    const types = events.map((e) => e.type);
    expect(types.indexOf('tool_use')).toBeGreaterThan(types.lastIndexOf('text'));
    expect(events.at(-1)).toEqual({ type: 'stop', stopReason: 'tool_use', model: MODEL });
  });
});

describe('AnthropicProvider error classification', () => {
  it('400 → invalid_request_error, non_retryable', async () => {
    const { providerError, events } = await runWithFault({ kind: 'status', status: 400, message: 'messages: bad role' });
    expect(providerError).toMatchObject({ errorType: 'invalid_request_error', failureClass: 'non_retryable', status: 400 });
    expect(providerError.retryable).toBe(false);
    expect(events).toEqual([]);
  });

  it('400 "prompt is too long" → context_too_long, non_retryable', async () => {
    const { providerError } = await runWithFault({
      kind: 'status',
      status: 400,
      message: 'prompt is too long: 250000 tokens > 200000 maximum',
    });
    expect(providerError).toMatchObject({ errorType: 'context_too_long', failureClass: 'non_retryable', status: 400 });
  });

  it('401 → authentication_error, non_retryable', async () => {
    const { providerError } = await runWithFault({ kind: 'status', status: 401 });
    expect(providerError).toMatchObject({ errorType: 'authentication_error', failureClass: 'non_retryable', status: 401 });
  });

  it('429 with retry-after → rate_limit_error, retryable, retryAfterMs', async () => {
    const { providerError } = await runWithFault({ kind: 'status', status: 429, retryAfterSeconds: 7 });
    expect(providerError).toMatchObject({
      errorType: 'rate_limit_error',
      failureClass: 'retryable',
      status: 429,
      retryAfterMs: 7000,
    });
    expect(providerError.retryable).toBe(true);
  });

  it('429 without retry-after has no retryAfterMs', async () => {
    const { providerError } = await runWithFault({ kind: 'status', status: 429 });
    expect(providerError.retryAfterMs).toBeUndefined();
  });

  it('500 → api_error, retryable', async () => {
    const { providerError } = await runWithFault({ kind: 'status', status: 500 });
    expect(providerError).toMatchObject({ errorType: 'api_error', failureClass: 'retryable', status: 500 });
  });

  it('529 → overloaded_error, retryable', async () => {
    const { providerError } = await runWithFault({ kind: 'status', status: 529 });
    expect(providerError).toMatchObject({ errorType: 'overloaded_error', failureClass: 'retryable', status: 529 });
  });

  it('a reset before headers → connection_error, retryable', async () => {
    const { providerError, events } = await runWithFault({ kind: 'reset_before_headers' });
    expect(providerError).toMatchObject({ errorType: 'connection_error', failureClass: 'retryable' });
    expect(providerError.status).toBeUndefined();
    expect(events).toEqual([]);
  });

  it('a connection cut mid-stream → stream_cut, retryable, after the text already yielded', async () => {
    fake.setReply('alpha beta gamma delta epsilon');
    const { providerError, events } = await runWithFault({ kind: 'cut_mid_stream', afterChunks: 2 });
    expect(providerError).toMatchObject({ errorType: 'stream_cut', failureClass: 'retryable' });
    expect(events[0]).toEqual({ type: 'start', model: MODEL });
    expect(textOf(events)).toBe('alpha beta ');
    expect(events.some((e) => e.type === 'stop' || e.type === 'usage')).toBe(false);
  });

  it('an in-stream overloaded_error event → retryable, after the text already yielded', async () => {
    fake.setReply('alpha beta gamma delta');
    const { providerError, events } = await runWithFault({ kind: 'error_event', afterChunks: 1, errorType: 'overloaded_error' });
    expect(providerError).toMatchObject({ errorType: 'overloaded_error', failureClass: 'retryable' });
    expect(textOf(events)).toBe('alpha ');
    expect(events.some((e) => e.type === 'stop')).toBe(false);
  });

  it('an in-stream invalid_request_error event → non_retryable', async () => {
    const { providerError } = await runWithFault({ kind: 'error_event', afterChunks: 1, errorType: 'invalid_request_error' });
    expect(providerError).toMatchObject({ errorType: 'invalid_request_error', failureClass: 'non_retryable' });
  });

  it('a malformed event → malformed_event, retryable', async () => {
    fake.setReply('alpha beta gamma delta');
    const { providerError, events } = await runWithFault({ kind: 'malformed_event', afterChunks: 1 });
    expect(providerError).toMatchObject({ errorType: 'malformed_event', failureClass: 'retryable' });
    expect(textOf(events)).toBe('alpha ');
  });

  it('does not retry on its own: one upstream request per failed call', async () => {
    fake.enqueueFault({ kind: 'status', status: 529 }, { kind: 'status', status: 529 });
    const { error } = await run();
    expectProviderError(error);
    expect(fake.requests).toHaveLength(1);
    expect(fake.pendingFaults).toHaveLength(1);
  });
});

describe('AnthropicProvider abort', () => {
  it('an abort mid-stream → aborted, and the upstream request is closed', async () => {
    fake.setReply('one two three four five six seven eight nine ten eleven twelve');
    fake.setChunkDelayMs(30);
    const controller = new AbortController();
    const events: ProviderEvent[] = [];
    let error: unknown;
    try {
      for await (const event of provider.stream(request(), controller.signal)) {
        events.push(event);
        if (event.type === 'text') controller.abort(new Error('client went away'));
      }
    } catch (caught) {
      error = caught;
    }
    const providerError = expectProviderError(error);
    expect(providerError.failureClass).toBe('aborted');
    expect(providerError.errorType).toBe('aborted');
    expect(providerError.retryable).toBe(false);
    expect(events.filter((e) => e.type === 'text')).toHaveLength(1);
    expect(events.some((e) => e.type === 'stop')).toBe(false);

    await fake.waitFor((f) => f.requests[0]?.clientClosed === true);
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]?.completed).toBe(false);
  });

  it('an already aborted signal → aborted without a successful stream', async () => {
    const { events, error } = await run(request(), AbortSignal.abort(new Error('never mind')));
    expect(expectProviderError(error).failureClass).toBe('aborted');
    expect(events).toEqual([]);
  });
});
