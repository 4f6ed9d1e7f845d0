import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { request } from 'undici';
import { startFakeAnthropic } from '../../../test/support/fake-anthropic.js';
import type { FakeAnthropic } from '../../../test/support/fake-anthropic.js';
import { SseScanError, SseScanner } from './sse-scanner.js';
import type { ScannedEvent } from './sse-scanner.js';

/** Event fields without `raw`, for comparing scans of differently split input. */
function fields(events: ScannedEvent[]): { event: string | null; data: string; hasData: boolean }[] {
  return events.map(({ event, data, hasData }) => ({ event, data, hasData }));
}

/** Scans `bytes` cut at the given offsets (sorted, within range). */
function scanSplit(bytes: Buffer, cuts: number[]): ScannedEvent[] {
  const scanner = new SseScanner();
  const events: ScannedEvent[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    events.push(...scanner.push(bytes.subarray(from, cut)));
    from = cut;
  }
  events.push(...scanner.end());
  return events;
}

function scanWhole(text: string | Buffer): ScannedEvent[] {
  return scanSplit(typeof text === 'string' ? Buffer.from(text) : text, []);
}

function rawConcat(events: ScannedEvent[]): Buffer {
  return Buffer.concat(events.map((e) => e.raw));
}

describe('SseScanner on a real Anthropic stream', () => {
  let fake: FakeAnthropic;
  let stream: Buffer;

  beforeAll(async () => {
    // Multi-byte characters (2, 3 and 4 bytes in UTF-8) so that some cuts land inside a character.
    fake = await startFakeAnthropic({ reply: 'héllo 🌍 世界 ok', toolUse: { name: 'lookup', input: { q: 'ü' } } });
    const response = await request(`${fake.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': 'test-key', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'claude-test', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    stream = Buffer.from(await response.body.arrayBuffer());
  });

  afterAll(async () => {
    await fake.close();
  });

  it('finds every event, parses its data and ends at message_stop', () => {
    const events = scanWhole(stream);
    expect(events.length).toBeGreaterThan(10);
    expect(events.every((e) => e.hasData && e.event !== null)).toBe(true);
    for (const e of events) expect((JSON.parse(e.data) as { type: string }).type).toBe(e.event);
    expect(events[0]?.event).toBe('message_start');
    expect(events.at(-1)?.event).toBe('message_stop');
    const text = events
      .filter((e) => e.event === 'content_block_delta')
      .map((e) => (JSON.parse(e.data) as { delta: { text?: string } }).delta.text ?? '')
      .join('');
    expect(text).toBe('héllo 🌍 世界 ok');
    expect(rawConcat(events).equals(stream)).toBe(true);
  });

  it('gives the same events and raw bytes when the stream is cut at any single byte offset', () => {
    const expected = fields(scanWhole(stream));
    for (let cut = 0; cut <= stream.length; cut++) {
      const events = scanSplit(stream, [cut]);
      expect(fields(events), `cut at ${cut}`).toEqual(expected);
      expect(rawConcat(events).equals(stream), `raw at cut ${cut}`).toBe(true);
    }
  });

  it('gives the same events when fed one byte at a time', () => {
    const cuts = Array.from({ length: stream.length - 1 }, (_, i) => i + 1);
    const events = scanSplit(stream, cuts);
    expect(fields(events)).toEqual(fields(scanWhole(stream)));
    expect(rawConcat(events).equals(stream)).toBe(true);
  });

  it('gives the same events for random multi-way splits (property)', () => {
    const expected = fields(scanWhole(stream));
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 40 }), (cuts) => {
        const events = scanSplit(stream, [...cuts].sort((a, b) => a - b));
        expect(fields(events)).toEqual(expected);
        expect(rawConcat(events).equals(stream)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('handles the same stream with CRLF and with lone CR line endings, at any cut', () => {
    const expected = fields(scanWhole(stream));
    for (const eol of ['\r\n', '\r']) {
      const converted = Buffer.from(stream.toString('utf8').replaceAll('\n', eol));
      for (let cut = 0; cut <= converted.length; cut++) {
        const events = scanSplit(converted, [cut]);
        expect(fields(events), `${JSON.stringify(eol)} cut at ${cut}`).toEqual(expected);
        expect(rawConcat(events).equals(converted)).toBe(true);
      }
    }
  });
});

describe('SseScanner details', () => {
  it('splits on \\n\\n and \\r\\n\\r\\n with exact raw bytes per event', () => {
    const input = 'event: a\ndata: 1\n\nevent: b\r\ndata: 2\r\n\r\n';
    const events = scanWhole(input);
    expect(fields(events)).toEqual([
      { event: 'a', data: '1', hasData: true },
      { event: 'b', data: '2', hasData: true },
    ]);
    expect(events.map((e) => e.raw.toString())).toEqual(['event: a\ndata: 1\n\n', 'event: b\r\ndata: 2\r\n\r\n']);
  });

  it('waits for the \\n after a blank-line \\r before completing the event', () => {
    const scanner = new SseScanner();
    expect(scanner.push(Buffer.from('data: x\r\n\r'))).toEqual([]);
    const [event] = scanner.push(Buffer.from('\ndata: y'));
    expect(event?.raw.toString()).toBe('data: x\r\n\r\n');
    expect(scanner.push(Buffer.from('\n\n')).map((e) => e.data)).toEqual(['y']);
    expect(scanner.end()).toEqual([]);
  });

  it('completes an event ended by a lone \\r at end()', () => {
    const scanner = new SseScanner();
    expect(scanner.push(Buffer.from('data: x\r\r'))).toEqual([]);
    expect(fields(scanner.end())).toEqual([{ event: null, data: 'x', hasData: true }]);
  });

  it('joins multiple data lines with \\n and reads field forms per the spec', () => {
    const events = scanWhole('event: multi\ndata: line 1\ndata:line 2\ndata\ndata:  two spaces\nid: 7\nretry: 10\n\n');
    expect(fields(events)).toEqual([{ event: 'multi', data: 'line 1\nline 2\n\n two spaces', hasData: true }]);
  });

  it('ignores comment lines, and returns comment-only blocks without data', () => {
    const input = ': keep-alive\n\nevent: x\n: a comment inside\ndata: {"a":1}\n\n';
    const events = scanWhole(input);
    expect(fields(events)).toEqual([
      { event: null, data: '', hasData: false },
      { event: 'x', data: '{"a":1}', hasData: true },
    ]);
    expect(rawConcat(events).toString()).toBe(input);
  });

  it('returns stray blank lines as data-less blocks so the raw bytes still add up', () => {
    const input = '\ndata: a\n\n\n\ndata: b\n\n';
    const events = scanWhole(input);
    expect(events.filter((e) => e.hasData).map((e) => e.data)).toEqual(['a', 'b']);
    expect(rawConcat(events).toString()).toBe(input);
  });

  it('decodes a UTF-8 character split across chunks at every position', () => {
    const bytes = Buffer.from('event: delta\ndata: {"text":"a€b😀c"}\n\n');
    const euro = bytes.indexOf(Buffer.from('€'));
    const emoji = bytes.indexOf(Buffer.from('😀'));
    for (const cut of [euro + 1, euro + 2, emoji + 1, emoji + 2, emoji + 3]) {
      const scanner = new SseScanner();
      expect(scanner.push(bytes.subarray(0, cut))).toEqual([]);
      const events = scanner.push(bytes.subarray(cut));
      expect(events.map((e) => e.data)).toEqual(['{"text":"a€b😀c"}']);
      expect(events[0]?.raw.equals(bytes)).toBe(true);
    }
  });

  it('strips a leading BOM from the first event only, keeping it in raw', () => {
    const input = Buffer.from('\uFEFFevent: a\ndata: 1\n\n');
    const [event] = scanWhole(input);
    expect(event?.event).toBe('a');
    expect(event?.raw.equals(input)).toBe(true);
  });

  it('returns views of the pushed chunk, not copies, for events inside one chunk', () => {
    const chunk = Buffer.from('data: 1\n\ndata: 2\n\n');
    const events = new SseScanner().push(chunk);
    expect(events).toHaveLength(2);
    for (const e of events) expect(e.raw.buffer).toBe(chunk.buffer);
  });

  it('throws incomplete_event with the leftover bytes when the stream ends inside an event', () => {
    const scanner = new SseScanner();
    expect(fields(scanner.push(Buffer.from('data: done\n\ndata: {"trunc')))).toEqual([
      { event: null, data: 'done', hasData: true },
    ]);
    expect(scanner.pendingBytes).toBe('data: {"trunc'.length);
    let caught: unknown;
    try {
      scanner.end();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(SseScanError);
    expect((caught as SseScanError).code).toBe('incomplete_event');
    expect((caught as SseScanError).raw.toString()).toBe('data: {"trunc');
    // A single trailing newline is not the end of an event either.
    const other = new SseScanner();
    other.push(Buffer.from('data: x\n'));
    expect(() => other.end()).toThrow(SseScanError);
    // end() resets the scanner.
    expect(other.end()).toEqual([]);
  });

  it('throws event_too_large when an unfinished event outgrows maxEventBytes', () => {
    const scanner = new SseScanner({ maxEventBytes: 16 });
    expect(scanner.push(Buffer.from('data: 0123456'))).toEqual([]);
    expect(() => scanner.push(Buffer.from('789abcdef'))).toThrow(expect.objectContaining({ code: 'event_too_large' }));
    expect(scanner.pendingBytes).toBe(0);
  });

  it('ignores empty chunks', () => {
    const scanner = new SseScanner();
    expect(scanner.push(Buffer.alloc(0))).toEqual([]);
    expect(scanner.end()).toEqual([]);
  });

  it('reads the fields off the bytes: the data is a range of raw, decoded when read', () => {
    const input = 'event: content_block_delta\ndata: {"text":"é:😀"}\n\n: comment\nid: 7\nevent: custom\ndata:x\n\n';
    const [first, second] = new SseScanner().push(Buffer.from(input));
    expect(first?.raw.subarray(first.dataStart, first.dataEnd).toString()).toBe('{"text":"é:😀"}');
    expect(first?.data).toBe('{"text":"é:😀"}');
    expect(second).toMatchObject({ event: 'custom', data: 'x', hasData: true });
    // Several data lines are joined at once; the range no longer applies.
    const [joined] = new SseScanner().push(Buffer.from('data: a\r\ndata: b\r\n\r\n'));
    expect(joined).toMatchObject({ data: 'a\nb', dataStart: -1 });
  });
});
