import type { EventFeed } from './event-feed.js';
import type { ScannedEvent } from './sse-scanner.js';

/**
 * An EventFeed read by pulling, for consumers that await (chat sessions translate each event): batches
 * wait here until asked for, and the upstream pauses while more than one waits.
 */
export class BatchQueue {
  private readonly waiting: ScannedEvent[][] = [];
  private outcome: { error?: unknown } | null = null;
  private wake: (() => void) | null = null;
  private listening = false;

  constructor(private readonly feed: EventFeed) {}

  /** The next batch, or null at the end; rejects with the feed's failure. */
  async next(): Promise<readonly ScannedEvent[] | null> {
    if (!this.listening) this.start();
    if (this.waiting.length === 0 && !this.outcome) {
      this.feed.resume();
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    const batch = this.waiting.shift();
    if (batch) return batch;
    const outcome = this.outcome as { error?: unknown };
    if ('error' in outcome) throw outcome.error;
    return null;
  }

  private start(): void {
    this.listening = true;
    this.feed.listen({
      events: (batch) => {
        this.waiting.push(batch);
        if (this.waiting.length > 1) this.feed.pause();
        this.notify();
      },
      end: () => {
        this.outcome = {};
        this.notify();
      },
      fail: (error) => {
        this.outcome = { error };
        this.notify();
      },
    });
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}
