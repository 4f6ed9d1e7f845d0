import { ProviderError } from '../../providers/errors.js';
import type { ChunkFeed } from './chunk-feed.js';
import { isJsonBytes } from './json-bytes.js';
import { SseScanner, type ScannedEvent, type SseEvent } from './sse-scanner.js';

/** Whether an event's data is JSON: checked on its bytes (several data lines, rare, are parsed). */
function dataIsJson(event: SseEvent): boolean {
  if (event.dataStart >= 0) return isJsonBytes(event.raw, event.dataStart, event.dataEnd);
  try {
    JSON.parse(event.data);
    return true;
  } catch {
    return false;
  }
}

export interface EventListener {
  /** The events of one upstream chunk (never empty), with their exact bytes. */
  events(batch: ScannedEvent[]): void;
  end(): void;
  /** A transport failure (undici's error, or the scanner's) or `malformed_event`: nothing follows. */
  fail(error: unknown): void;
}

/**
 * An upstream SSE body as batches of events, one per chunk, pushed to one listener at a time. An event
 * whose data is not JSON fails the feed (after the events before it, as if they had come one by one).
 * Like the ChunkFeed under it, it keeps what comes while nobody listens and pauses the upstream.
 */
export class EventFeed {
  private readonly scanner = new SseScanner();
  private listener: EventListener | null = null;
  private kept: ScannedEvent[][] = [];
  private outcome: { error?: unknown } | null = null;
  private delivered = false;

  /** Nothing is delivered until `listen`; the upstream stays paused till then. */
  constructor(private readonly chunks: ChunkFeed) {
    chunks.listen({ data: (chunk) => this.scan(chunk), end: () => this.finish({}), fail: (error) => this.finish({ error }) });
    chunks.pause();
  }

  listen(listener: EventListener): void {
    this.listener = listener;
    while (this.kept.length > 0 && this.listener === listener) listener.events(this.kept.shift() as ScannedEvent[]);
    if (this.listener !== listener) return;
    if (this.outcome) this.settle(listener);
    else this.chunks.resume();
  }

  /** Stops delivery until the next `listen`; the upstream pauses. */
  detach(): void {
    this.listener = null;
    this.chunks.pause();
  }

  /** Backpressure: the listener cannot take more for now. */
  pause(): void {
    this.chunks.pause();
  }

  resume(): void {
    this.chunks.resume();
  }

  private scan(chunk: Buffer): void {
    if (this.outcome) return;
    let events: SseEvent[];
    try {
      events = this.scanner.push(chunk);
    } catch (error) {
      this.finish({ error });
      return;
    }
    if (events.length === 0) return;
    for (let i = 0; i < events.length; i++) {
      const event = events[i] as SseEvent;
      if (event.hasData && event.event !== 'ping' && !dataIsJson(event)) {
        if (i > 0) this.deliver(events.slice(0, i));
        this.finish({ error: new ProviderError('malformed_event', 'The upstream sent an unreadable stream event', 'retryable') });
        return;
      }
    }
    this.deliver(events);
  }

  private deliver(batch: ScannedEvent[]): void {
    if (this.listener) this.listener.events(batch);
    else this.kept.push(batch);
  }

  private finish(outcome: { error?: unknown }): void {
    if (this.outcome) return;
    if (!('error' in outcome)) {
      let last: ScannedEvent[];
      try {
        last = this.scanner.end();
      } catch (error) {
        outcome = { error };
        last = [];
      }
      if (last.length > 0) this.deliver(last);
    }
    this.outcome = outcome;
    if (this.listener && this.kept.length === 0) this.settle(this.listener);
  }

  private settle(listener: EventListener): void {
    if (this.delivered) return;
    this.delivered = true;
    const { outcome } = this;
    if (outcome && 'error' in outcome) listener.fail(outcome.error);
    else listener.end();
  }
}
