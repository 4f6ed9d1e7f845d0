import { afterEach, describe, it, expect, vi } from 'vitest';
import { ProviderError } from './errors.js';
import { SIMULATED_MODEL, SimulatedProvider, chunkText, simulatedReply } from './simulated.js';
import type { ProviderEvent, ProviderRequest } from './types.js';

afterEach(() => {
  vi.useRealTimers();
});

function request(overrides: Partial<ProviderRequest> = {}): ProviderRequest {
  return {
    model: 'claude-sonnet-4-5',
    system: 'Be brief.',
    maxTokens: 256,
    messages: [
      { role: 'user', content: 'Hello there' },
      { role: 'assistant', content: 'Hi! How can I help?' },
      { role: 'user', content: 'Tell me   about\n\ntides.' },
    ],
    ...overrides,
  };
}

async function collect(stream: AsyncIterable<ProviderEvent>): Promise<ProviderEvent[]> {
  const events: ProviderEvent[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

function textOf(events: ProviderEvent[]): string {
  return events.map((e) => (e.type === 'text' ? e.text : '')).join('');
}

async function catchError(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

describe('simulatedReply', () => {
  it('says it is simulated and quotes the last user message with whitespace collapsed', () => {
    const reply = simulatedReply(request());
    expect(reply).toMatch(/simulated/i);
    expect(reply).toContain('ANTHROPIC_API_KEY');
    expect(reply).toContain('"Tell me about tides."');
    expect(reply).toContain('Turn 2');
  });

  it('truncates very long user messages', () => {
    const long = 'x'.repeat(500);
    const reply = simulatedReply(request({ messages: [{ role: 'user', content: long }] }));
    expect(reply).toContain(`"${'x'.repeat(200)}…"`);
    expect(reply).not.toContain('x'.repeat(201));
  });

  it('is a pure function of the request', () => {
    expect(simulatedReply(request())).toBe(simulatedReply(request()));
    expect(simulatedReply(request())).not.toBe(
      simulatedReply(request({ messages: [{ role: 'user', content: 'something else' }] })),
    );
  });
});

describe('chunkText', () => {
  it('splits into word chunks that join back to the text', () => {
    const text = 'one two  three\nfour ';
    const chunks = chunkText(text);
    expect(chunks).toEqual(['one ', 'two  ', 'three\n', 'four ']);
    expect(chunks.join('')).toBe(text);
  });
});

describe('SimulatedProvider', () => {
  it('is labelled simulated', () => {
    const provider = new SimulatedProvider(0);
    expect(provider.name).toBe('simulated');
    expect(provider.simulated).toBe(true);
  });

  it('streams start, text…, usage, stop in that order', async () => {
    const events = await collect(new SimulatedProvider(0).stream(request(), new AbortController().signal));
    const types = events.map((e) => e.type);
    expect(types[0]).toBe('start');
    expect(types.slice(-2)).toEqual(['usage', 'stop']);
    const middle = types.slice(1, -2);
    expect(middle.length).toBeGreaterThan(1);
    expect(middle.every((t) => t === 'text')).toBe(true);

    expect(events[0]).toEqual({ type: 'start', model: SIMULATED_MODEL });
    expect(events.at(-1)).toEqual({ type: 'stop', stopReason: 'end_turn', model: SIMULATED_MODEL });
  });

  it('streams text that joins to simulatedReply(request)', async () => {
    const req = request();
    const events = await collect(new SimulatedProvider(0).stream(req, new AbortController().signal));
    expect(textOf(events)).toBe(simulatedReply(req));
    expect(textOf(events)).toMatch(/simulated/i);
  });

  it('reports plausible usage: positive and growing with the input', async () => {
    const provider = new SimulatedProvider(0);
    const usageOf = async (req: ProviderRequest) => {
      const events = await collect(provider.stream(req, new AbortController().signal));
      const usage = events.find((e) => e.type === 'usage');
      if (usage?.type !== 'usage') throw new Error('no usage event');
      return usage.usage;
    };
    const small = await usageOf(request({ messages: [{ role: 'user', content: 'hi' }], system: undefined }));
    const big = await usageOf(request({ messages: [{ role: 'user', content: 'word '.repeat(400) }] }));
    expect(small.inputTokens).toBeGreaterThanOrEqual(1);
    expect(small.outputTokens).toBeGreaterThanOrEqual(1);
    expect(big.inputTokens).toBeGreaterThan(small.inputTokens);
  });

  it('is deterministic: the same request gives the same events', async () => {
    const provider = new SimulatedProvider(0);
    const first = await collect(provider.stream(request(), new AbortController().signal));
    const second = await collect(new SimulatedProvider(0).stream(request(), new AbortController().signal));
    expect(second).toEqual(first);
  });

  it('paces chunks by chunkDelayMs', async () => {
    vi.useFakeTimers();
    const provider = new SimulatedProvider(20);
    const iterator = provider.stream(request(), new AbortController().signal)[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toEqual({ type: 'start', model: SIMULATED_MODEL });

    let settled = false;
    const next = iterator.next().then((r) => {
      settled = true;
      return r;
    });
    await vi.advanceTimersByTimeAsync(19);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(settled).toBe(true);
    expect((await next).value).toMatchObject({ type: 'text' });
    await iterator.return?.();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('throws an aborted ProviderError before starting when the signal is already aborted', async () => {
    const reason = new Error('gone');
    const events: ProviderEvent[] = [];
    const error = await catchError(
      (async () => {
        for await (const event of new SimulatedProvider(0).stream(request(), AbortSignal.abort(reason))) events.push(event);
      })(),
    );
    expect(error).toBeInstanceOf(ProviderError);
    expect((error as ProviderError).failureClass).toBe('aborted');
    expect((error as ProviderError).cause).toBe(reason);
    expect(events).toEqual([]);
  });

  it('throws an aborted ProviderError mid-stream and leaves no timer behind', async () => {
    vi.useFakeTimers();
    const controller = new AbortController();
    const provider = new SimulatedProvider(20);
    const events: ProviderEvent[] = [];
    const run = (async () => {
      for await (const event of provider.stream(request(), controller.signal)) {
        events.push(event);
        if (event.type === 'text') controller.abort(new Error('user pressed stop'));
      }
    })();
    const outcome = catchError(run);
    await vi.advanceTimersByTimeAsync(20);
    const error = await outcome;

    expect(error).toBeInstanceOf(ProviderError);
    expect((error as ProviderError).failureClass).toBe('aborted');
    expect((error as ProviderError).errorType).toBe('aborted');
    expect(events.map((e) => e.type)).toEqual(['start', 'text']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('aborts mid-stream with real timers too', async () => {
    const controller = new AbortController();
    const events: ProviderEvent[] = [];
    const started = Date.now();
    const error = await catchError(
      (async () => {
        for await (const event of new SimulatedProvider(20).stream(request(), controller.signal)) {
          events.push(event);
          if (event.type === 'text') setTimeout(() => controller.abort(), 5);
        }
      })(),
    );
    expect(error).toBeInstanceOf(ProviderError);
    expect((error as ProviderError).failureClass).toBe('aborted');
    expect(events.filter((e) => e.type === 'text')).toHaveLength(1);
    // It stopped well before the whole reply (dozens of 20 ms chunks) could have streamed.
    expect(Date.now() - started).toBeLessThan(500);
  });
});
