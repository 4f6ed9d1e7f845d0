import { describe, expect, it } from 'vitest';
import type { ProviderError } from '../../providers/errors.js';
import { BatchQueue } from './batch-queue.js';
import { ChunkFeed, type FlowControl } from './chunk-feed.js';
import { EventFeed } from './event-feed.js';
import type { ScannedEvent } from './sse-scanner.js';

/** The upstream's flow control, as undici's controller: paused or not. */
function flow(): FlowControl & { paused: boolean } {
  const control = {
    paused: false,
    pause: () => void (control.paused = true),
    resume: () => void (control.paused = false),
  };
  return control;
}

const sse = (event: string, data: string) => `event: ${event}\ndata: ${data}\n\n`;
const delta = (text: string) => sse('content_block_delta', JSON.stringify({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }));
const bytes = (text: string) => Buffer.from(text);
const names = (batch: readonly ScannedEvent[]) => batch.map((event) => event.event);

/** Records what a listener was given, in order. */
function recorder() {
  const seen: string[] = [];
  return {
    seen,
    chunks: { data: (chunk: Buffer) => seen.push(`data ${chunk.toString()}`), end: () => seen.push('end'), fail: (error: unknown) => seen.push(`fail ${(error as Error).message}`) },
    events: { events: (batch: ScannedEvent[]) => seen.push(names(batch).join(',')), end: () => seen.push('end'), fail: (error: unknown) => seen.push(`fail ${(error as ProviderError).errorType ?? (error as Error).message}`) },
  };
}

describe('ChunkFeed', () => {
  it('keeps chunks and pauses the upstream until listened to, then delivers them in order, then the end', () => {
    const control = flow();
    const feed = new ChunkFeed(control);
    expect(feed.push(bytes('a'))).toBe(false);
    expect(feed.push(bytes('b'))).toBe(false);
    control.paused = true; // as the dispatch handler does on false
    feed.finish({ kind: 'end' });
    const { seen, chunks } = recorder();
    feed.listen(chunks);
    expect(seen).toEqual(['data a', 'data b', 'end']);
  });

  it('delivers live chunks at once and resumes a paused upstream when listened to', () => {
    const control = flow();
    const feed = new ChunkFeed(control);
    feed.push(bytes('early'));
    control.paused = true;
    const { seen, chunks } = recorder();
    feed.listen(chunks);
    expect(control.paused).toBe(false);
    expect(feed.push(bytes('live'))).toBe(true);
    feed.finish({ kind: 'fail', error: new Error('reset') });
    feed.finish({ kind: 'end' });
    expect(seen).toEqual(['data early', 'data live', 'fail reset']);
  });

  it('leaves a finished upstream alone on resume', () => {
    const control = flow();
    const feed = new ChunkFeed(control);
    feed.listen(recorder().chunks);
    feed.finish({ kind: 'end' });
    control.paused = true;
    feed.resume();
    expect(control.paused).toBe(true);
  });

  it('reads a whole body as text, or rejects with its failure', async () => {
    const whole = new ChunkFeed(flow());
    whole.push(bytes('{"type":'));
    const text = whole.text();
    whole.push(bytes('"error"}'));
    whole.finish({ kind: 'end' });
    await expect(text).resolves.toBe('{"type":"error"}');

    const cut = new ChunkFeed(flow());
    const failed = cut.text();
    cut.finish({ kind: 'fail', error: new Error('socket hang up') });
    await expect(failed).rejects.toThrow('socket hang up');
  });
});

describe('EventFeed', () => {
  it('pushes one batch per chunk, an event split across chunks whole, then the end', () => {
    const chunks = new ChunkFeed(flow());
    const feed = new EventFeed(chunks);
    const { seen, events } = recorder();
    feed.listen(events);
    const two = delta('a') + delta('b');
    chunks.push(bytes(sse('message_start', '{"type":"message_start"}') + two.slice(0, 30)));
    chunks.push(bytes(two.slice(30)));
    chunks.finish({ kind: 'end' });
    expect(seen).toEqual(['message_start', 'content_block_delta,content_block_delta', 'end']);
  });

  it('fails with malformed_event after the events before an unreadable one, and reads nothing more', () => {
    const chunks = new ChunkFeed(flow());
    const feed = new EventFeed(chunks);
    const { seen, events } = recorder();
    feed.listen(events);
    chunks.push(bytes(delta('fine') + sse('content_block_delta', '{"type": broken') + delta('after')));
    chunks.push(bytes(delta('later')));
    chunks.finish({ kind: 'end' });
    expect(seen).toEqual(['content_block_delta', 'fail malformed_event']);
  });

  it('keeps what comes while detached, pausing the upstream, and hands it to the next listener first', () => {
    const control = flow();
    const chunks = new ChunkFeed(control);
    const feed = new EventFeed(chunks);
    expect(control.paused).toBe(true); // nothing is read before anyone listens
    const first = recorder();
    feed.listen({
      ...first.events,
      events: (batch) => {
        first.seen.push(names(batch).join(','));
        feed.detach(); // as priming does once it saw content
      },
    });
    expect(control.paused).toBe(false);
    chunks.push(bytes(delta('one')));
    expect(control.paused).toBe(true);
    chunks.push(bytes(delta('in flight')));
    chunks.push(bytes(sse('message_stop', '{"type":"message_stop"}')));
    chunks.finish({ kind: 'end' });
    const second = recorder();
    feed.listen(second.events);
    expect(first.seen).toEqual(['content_block_delta']);
    expect(second.seen).toEqual(['content_block_delta', 'message_stop', 'end']);
  });

  it('turns a transport failure into a failure after the events before it', () => {
    const chunks = new ChunkFeed(flow());
    const feed = new EventFeed(chunks);
    const { seen, events } = recorder();
    chunks.push(bytes(delta('x')));
    chunks.finish({ kind: 'fail', error: new Error('other side closed') });
    feed.listen(events);
    expect(seen).toEqual(['content_block_delta', 'fail other side closed']);
  });
});

describe('BatchQueue', () => {
  it('hands out batches in order, then null at the end, pausing the upstream while two wait', async () => {
    const control = flow();
    const chunks = new ChunkFeed(control);
    const queue = new BatchQueue(new EventFeed(chunks));
    const first = queue.next();
    chunks.push(bytes(delta('a')));
    chunks.push(bytes(delta('b')));
    expect(control.paused).toBe(true);
    chunks.push(bytes(sse('message_stop', '{"type":"message_stop"}')));
    chunks.finish({ kind: 'end' });
    expect(names((await first) ?? [])).toEqual(['content_block_delta']);
    expect(names((await queue.next()) ?? [])).toEqual(['content_block_delta']);
    expect(names((await queue.next()) ?? [])).toEqual(['message_stop']);
    await expect(queue.next()).resolves.toBeNull();
  });

  it('rejects with the failure once the batches before it are taken', async () => {
    const chunks = new ChunkFeed(flow());
    const queue = new BatchQueue(new EventFeed(chunks));
    chunks.push(bytes(delta('a')));
    chunks.finish({ kind: 'fail', error: new Error('reset') });
    expect(names((await queue.next()) ?? [])).toEqual(['content_block_delta']);
    await expect(queue.next()).rejects.toThrow('reset');
  });
});
