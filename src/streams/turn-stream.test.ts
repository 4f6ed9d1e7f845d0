import { describe, expect, it, vi } from 'vitest';
import type { Frame } from '../chat/frames.js';
import type { FrameBatch } from './frame-source.js';
import { TurnStream, type StreamMirror } from './turn-stream.js';
import { track } from '../../test/support/track-promise.js';

const text = (content: string): Frame => ({ type: 'text_chunk', content });

/** What a frame serializes to in a stream of session `s1`. */
const serialized = (content: string) => JSON.stringify({ type: 'text_chunk', session_id: 's1', content });

function streamWith(count: number, maxFrames = 1000): TurnStream {
  const stream = new TurnStream('t1', 's1', maxFrames);
  for (let i = 1; i <= count; i++) void stream.send(text(`c${i}`));
  return stream;
}

/** The private array of held frames (to check that trimmed frames are really freed). */
const heldArrayLength = (stream: TurnStream) => (stream as unknown as { frames: string[] }).frames.length;
const listenerCount = (stream: TurnStream) => (stream as unknown as { listeners: Set<unknown> }).listeners.size;

/** Lets pending promise callbacks and I/O callbacks run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('TurnStream send and serialization', () => {
  it('serializes each frame as JSON with type first, then session_id, then the frame fields', async () => {
    const stream = new TurnStream('t1', 's1', 100);
    expect(stream.lastSeq).toBe(0);
    expect(stream.closed).toBe(false);
    await stream.send({ type: 'processing', message_id: 't1', mode: 'live' });
    await stream.send({ type: 'tool_use', tool_use_id: 'tu1', name: 'search', input: { q: 'x' } });
    await stream.send({ type: 'done', mode: 'live' });

    const { frames } = stream.framesAfter(0);
    expect(frames.map((f) => f.data)).toEqual([
      '{"type":"processing","session_id":"s1","message_id":"t1","mode":"live"}',
      '{"type":"tool_use","session_id":"s1","tool_use_id":"tu1","name":"search","input":{"q":"x"}}',
      '{"type":"done","session_id":"s1","mode":"live"}',
    ]);
    expect(stream.closed).toBe(false);
  });

  it('numbers frames from 1 and lastSeq follows the appends', () => {
    const stream = streamWith(5);
    expect(stream.lastSeq).toBe(5);
    expect(stream.framesAfter(0).frames.map((f) => f.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(stream.framesAfter(3)).toEqual({
      frames: [
        { seq: 4, data: serialized('c4') },
        { seq: 5, data: serialized('c5') },
      ],
      ended: false,
      gap: false,
      lost: false,
    });
  });

  it('framesAfter reports nothing new (not a gap) at or past the last frame', () => {
    const stream = streamWith(2);
    expect(stream.framesAfter(2)).toEqual({ frames: [], ended: false, gap: false, lost: false });
    expect(stream.framesAfter(9)).toEqual({ frames: [], ended: false, gap: false, lost: false });
  });

  it('after end, framesAfter carries ended with the last frames, and ended with none once everything was read', () => {
    const stream = streamWith(3);
    stream.end();
    expect(stream.ended).toBe(true);
    const batch = stream.framesAfter(1);
    expect(batch.frames.map((f) => f.seq)).toEqual([2, 3]);
    expect(batch.ended).toBe(true);
    expect(batch.gap).toBe(false);
    expect(stream.framesAfter(3)).toEqual({ frames: [], ended: true, gap: false, lost: false });
  });

  it('drops frames sent after the end', async () => {
    const stream = streamWith(2);
    stream.end();
    await stream.send(text('late'));
    expect(stream.lastSeq).toBe(2);
    expect(stream.framesAfter(0).frames.map((f) => f.data)).toEqual([serialized('c1'), serialized('c2')]);
  });

  it('keeps the fallback strategy', () => {
    const stream = streamWith(0);
    expect(stream.fallbackStrategy).toBeUndefined();
    stream.setFallbackStrategy('cached');
    expect(stream.fallbackStrategy).toBe('cached');
  });
});

describe('TurnStream trimming', () => {
  it('keeps at most maxFrames, trimming the oldest; seqs keep counting', () => {
    const stream = streamWith(5, 3);
    expect(stream.lastSeq).toBe(5);
    expect(stream.framesAfter(2).frames).toEqual([
      { seq: 3, data: serialized('c3') },
      { seq: 4, data: serialized('c4') },
      { seq: 5, data: serialized('c5') },
    ]);
    expect(stream.framesAfter(1)).toEqual({ frames: [], ended: false, gap: true, lost: false });
    expect(stream.framesAfter(0).gap).toBe(true);
  });

  it('canResumeAfter is true exactly from the last trimmed seq up to the last frame', () => {
    const stream = streamWith(5, 3);
    expect([0, 1, 2, 3, 4, 5, 6].map((seq) => stream.canResumeAfter(seq))).toEqual([false, false, true, true, true, true, false]);
    const fresh = streamWith(0, 3);
    expect(fresh.canResumeAfter(0)).toBe(true);
    expect(fresh.canResumeAfter(1)).toBe(false);
  });

  it('a gap is reported even after the end (never ended without the missing frames)', () => {
    const stream = streamWith(5, 3);
    stream.end();
    expect(stream.framesAfter(0)).toEqual({ frames: [], ended: false, gap: true, lost: false });
  });

  it('stays exact across compactions (after 1024 trims) and frees the trimmed frames', () => {
    const maxFrames = 4;
    const stream = new TurnStream('t1', 's1', maxFrames);
    const lengths: number[] = [];
    let maxHeld = 0;
    for (let seq = 1; seq <= 3000; seq++) {
      const data = serialized(`c${seq}`);
      void stream.send(text(`c${seq}`));
      lengths.push(data.length);
      maxHeld = Math.max(maxHeld, heldArrayLength(stream));
      // Around each compaction point (the array is compacted when 1024 frames were trimmed), check everything.
      if (seq < 20 || (seq >= 1020 && seq <= 1040) || (seq >= 2045 && seq <= 2060) || seq === 3000) {
        const first = Math.max(1, seq - maxFrames + 1);
        const held = lengths.slice(first - 1);
        expect(stream.lastSeq).toBe(seq);
        expect(stream.byteSize).toBe(held.reduce((a, b) => a + b, 0));
        expect(stream.framesAfter(first - 1).frames).toEqual(held.map((_, i) => ({ seq: first + i, data: serialized(`c${first + i}`) })));
        expect(stream.canResumeAfter(first - 1)).toBe(true);
        if (first > 1) {
          expect(stream.canResumeAfter(first - 2)).toBe(false);
          expect(stream.framesAfter(first - 2).gap).toBe(true);
        }
        for (let after = first - 1; after <= seq; after++) {
          expect(stream.backlogBytes(after)).toBe(lengths.slice(after).reduce((a, b) => a + b, 0));
        }
      }
    }
    // Trimmed frames are released: the array never grows much beyond 1024 + maxFrames entries.
    expect(maxHeld).toBeLessThanOrEqual(1024 + maxFrames);
    expect(heldArrayLength(stream)).toBeLessThan(1024 + maxFrames);
  });

  it('compacts a log whose maxFrames exceeds 1024 without losing frames', () => {
    const maxFrames = 1500;
    const stream = streamWith(5000, maxFrames);
    expect(stream.lastSeq).toBe(5000);
    const batch = stream.framesAfter(3500);
    expect(batch.gap).toBe(false);
    expect(batch.frames).toHaveLength(maxFrames);
    expect(batch.frames[0]).toEqual({ seq: 3501, data: serialized('c3501') });
    expect(batch.frames.at(-1)).toEqual({ seq: 5000, data: serialized('c5000') });
    expect(stream.framesAfter(3499).gap).toBe(true);
    expect(heldArrayLength(stream)).toBeLessThanOrEqual(2 * maxFrames);
  });
});

describe('TurnStream byte accounting', () => {
  it('byteSize is the total length of the held frames, 0 when empty', () => {
    expect(streamWith(0).byteSize).toBe(0);
    const stream = streamWith(3);
    expect(stream.byteSize).toBe(serialized('c1').length + serialized('c2').length + serialized('c3').length);
  });

  it('byteSize counts only the frames still held after trimming', () => {
    const stream = streamWith(6, 2);
    expect(stream.byteSize).toBe(serialized('c5').length + serialized('c6').length);
  });

  it('backlogBytes is what follows afterSeq, 0 at or past the last frame', () => {
    const stream = streamWith(3);
    const [a, b, c] = [serialized('c1').length, serialized('c2').length, serialized('c3').length];
    expect(stream.backlogBytes(0)).toBe(a + b + c);
    expect(stream.backlogBytes(1)).toBe(b + c);
    expect(stream.backlogBytes(2)).toBe(c);
    expect(stream.backlogBytes(3)).toBe(0);
    expect(stream.backlogBytes(10)).toBe(0);
    expect(streamWith(0).backlogBytes(0)).toBe(0);
  });

  it('backlogBytes after trimming counts from the reader position', () => {
    const stream = streamWith(10, 4);
    const len = (seq: number) => serialized(`c${seq}`).length;
    expect(stream.backlogBytes(6)).toBe(len(7) + len(8) + len(9) + len(10));
    expect(stream.backlogBytes(8)).toBe(len(9) + len(10));
  });

  // The log's limits are in bytes (STREAM_CLIENT_MAX_BACKLOG_BYTES, STREAM_RETAINED_MAX_BYTES), and the
  // frames go out as UTF-8; string length counts UTF-16 code units instead.
  it('counts non-ASCII frames in bytes (UTF-8), as sent on the wire', () => {
    const stream = new TurnStream('t1', 's1', 100);
    void stream.send(text('日本語のテキスト€€€'));
    const data = stream.framesAfter(0).frames[0]!.data;
    expect(stream.byteSize).toBe(Buffer.byteLength(data, 'utf8'));
    expect(stream.backlogBytes(0)).toBe(Buffer.byteLength(data, 'utf8'));
  });
});

describe('TurnStream read', () => {
  it('returns at once when frames are already there', async () => {
    const stream = streamWith(2);
    const batch = await stream.read(0, new AbortController().signal);
    expect(batch.frames.map((f) => f.seq)).toEqual([1, 2]);
  });

  it('waits for the next append, then returns the new frames', async () => {
    const stream = streamWith(1);
    const read = track(stream.read(1, new AbortController().signal));
    await settle();
    expect(read.settled()).toBe(false);
    void stream.send(text('c2'));
    const batch = await read.promise;
    expect(batch.frames).toEqual([{ seq: 2, data: serialized('c2') }]);
    expect(batch.ended).toBe(false);
    expect(listenerCount(stream)).toBe(0);
  });

  it('wakes every waiting reader on an append', async () => {
    const stream = streamWith(0);
    const reads = [stream.read(0, new AbortController().signal), stream.read(0, new AbortController().signal)];
    await settle();
    void stream.send(text('c1'));
    const batches = await Promise.all(reads);
    expect(batches.map((b) => b.frames.map((f) => f.seq))).toEqual([[1], [1]]);
  });

  it('returns ended when the turn ends while waiting', async () => {
    const stream = streamWith(1);
    const read = track(stream.read(1, new AbortController().signal));
    await settle();
    expect(read.settled()).toBe(false);
    stream.end();
    expect(await read.promise).toEqual({ frames: [], ended: true, gap: false, lost: false });
  });

  it('returns an empty batch when the signal aborts while waiting, and leaves no listener behind', async () => {
    const stream = streamWith(1);
    const controller = new AbortController();
    const read = track(stream.read(1, controller.signal));
    await settle();
    expect(read.settled()).toBe(false);
    expect(listenerCount(stream)).toBe(1);
    controller.abort();
    const batch: FrameBatch = await read.promise;
    expect(batch).toEqual({ frames: [], ended: false, gap: false, lost: false });
    expect(listenerCount(stream)).toBe(0);
  });

  it('returns at once for an already aborted signal', async () => {
    const stream = streamWith(1);
    const controller = new AbortController();
    controller.abort();
    expect(await stream.read(1, controller.signal)).toEqual({ frames: [], ended: false, gap: false, lost: false });
    expect(listenerCount(stream)).toBe(0);
  });

  it('returns a gap at once when the frames after afterSeq were trimmed', async () => {
    const stream = streamWith(5, 2);
    expect((await stream.read(1, new AbortController().signal)).gap).toBe(true);
  });

  it('onAppend listeners are called per append until unsubscribed', () => {
    const stream = streamWith(0);
    const listener = vi.fn();
    const unsubscribe = stream.onAppend(listener);
    void stream.send(text('c1'));
    void stream.send(text('c2'));
    expect(listener).toHaveBeenCalledTimes(2);
    unsubscribe();
    void stream.send(text('c3'));
    expect(listener).toHaveBeenCalledTimes(2);
  });
});

describe('TurnStream readers', () => {
  it('counts readers; release is idempotent', () => {
    const stream = streamWith(1);
    expect(stream.readerCount).toBe(0);
    const a = stream.reader();
    const b = stream.reader();
    expect(stream.readerCount).toBe(2);
    a.release();
    a.release();
    expect(stream.readerCount).toBe(1);
    b.release();
    expect(stream.readerCount).toBe(0);
  });

  it('a reader reads the stream it came from', async () => {
    const stream = streamWith(3);
    stream.setFallbackStrategy('mock');
    const reader = stream.reader();
    expect(reader.turnId).toBe('t1');
    expect(reader.sessionId).toBe('s1');
    expect(reader.fallbackStrategy).toBe('mock');
    expect(reader.backlogBytes(2)).toBe(stream.backlogBytes(2));
    expect((await reader.read(1, new AbortController().signal)).frames.map((f) => f.seq)).toEqual([2, 3]);
    const listener = vi.fn();
    const unsubscribe = reader.onAppend(listener);
    void stream.send(text('c4'));
    unsubscribe();
    void stream.send(text('c5'));
    expect(listener).toHaveBeenCalledTimes(1);
    reader.release();
  });
});

describe('TurnStream mirror and end', () => {
  function mirror(): StreamMirror & { append: ReturnType<typeof vi.fn>; end: ReturnType<typeof vi.fn> } {
    return { append: vi.fn(), end: vi.fn() };
  }

  it('mirrors every frame with its seq, and last=true only for the done frame', async () => {
    const shared = mirror();
    const stream = new TurnStream('t1', 's1', 2, shared);
    await stream.send({ type: 'processing', message_id: 't1', mode: 'live' });
    await stream.send(text('hello'));
    await stream.send({ type: 'result', message_id: 'a1', input_tokens: 1, output_tokens: 2, cost_usd: 0, model: 'm', mode: 'live', stop_reason: 'end_turn' });
    await stream.send({ type: 'done', mode: 'live' });
    expect(shared.append.mock.calls.map(([turnId, seq, , last]) => [turnId, seq, last])).toEqual([
      ['t1', 1, false],
      ['t1', 2, false],
      ['t1', 3, false],
      ['t1', 4, true],
    ]);
    expect(shared.append.mock.calls[1]![2]).toBe(serialized('hello'));
    expect(shared.end).not.toHaveBeenCalled();
  });

  it('an error frame is not the last one; only done is', async () => {
    const shared = mirror();
    const stream = new TurnStream('t1', 's1', 10, shared);
    await stream.send({ type: 'error', error: 'x', error_type: 'timeout', recoverable: true });
    await stream.send({ type: 'done' });
    expect(shared.append.mock.calls.map((call) => call[3])).toEqual([false, true]);
  });

  it('end is idempotent: marks the end once, mirrors it once and calls onEnd once', () => {
    const shared = mirror();
    const onEnd = vi.fn();
    const stream = new TurnStream('t1', 's1', 10, shared, onEnd);
    void stream.send(text('a'));
    expect(stream.endedAt).toBeUndefined();
    const before = Date.now();
    stream.end();
    const endedAt = stream.endedAt;
    stream.end();
    expect(stream.ended).toBe(true);
    expect(endedAt).toBeGreaterThanOrEqual(before);
    expect(endedAt).toBeLessThanOrEqual(Date.now());
    expect(stream.endedAt).toBe(endedAt);
    expect(shared.end).toHaveBeenCalledTimes(1);
    expect(shared.end).toHaveBeenCalledWith('t1');
    expect(onEnd).toHaveBeenCalledTimes(1);
    expect(onEnd).toHaveBeenCalledWith(stream);
    void stream.send(text('after'));
    expect(shared.append).toHaveBeenCalledTimes(1);
  });

  it('end wakes the onAppend listeners', () => {
    const stream = streamWith(0);
    const listener = vi.fn();
    stream.onAppend(listener);
    stream.end();
    stream.end();
    expect(listener).toHaveBeenCalledTimes(1);
  });
});
