import type { ServerResponse } from 'node:http';
import type { Frame, FrameSink } from '../chat/frames.js';

/**
 * Writes frames as `id: <n>` + `data: <json>` SSE events on a raw response. Honors backpressure
 * (waits for drain) so a slow client cannot make the server buffer a whole reply, and drops frames
 * silently once the client is gone.
 */
export class SseWriter implements FrameSink {
  private nextId = 1;
  private gone = false;
  private fallbackStrategy: string | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly sessionId: string,
  ) {
    res.once('close', () => {
      this.gone = true;
    });
  }

  open(headers: Record<string, string>): void {
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
      // Whether a fallback answers is only known later, so it travels as a trailer (and as `mode` in frames).
      trailer: 'x-fallback-strategy',
      ...headers,
    });
    this.res.flushHeaders();
  }

  get closed(): boolean {
    return this.gone || this.res.destroyed || this.res.writableEnded;
  }

  async send(frame: Frame): Promise<void> {
    if (this.closed) return;
    const { type, ...fields } = frame;
    const data = JSON.stringify({ type, session_id: this.sessionId, ...fields });
    const ok = this.res.write(`id: ${this.nextId++}\ndata: ${data}\n\n`);
    if (!ok && !this.closed) {
      await drainedOrClosed(this.res);
    }
  }

  setFallbackStrategy(strategy: string): void {
    this.fallbackStrategy = strategy;
  }

  end(): void {
    if (this.closed) return;
    if (this.fallbackStrategy) this.res.addTrailers({ 'x-fallback-strategy': this.fallbackStrategy });
    this.res.end();
  }
}

/** Resolves on whichever comes first and removes both listeners, so long streams do not pile them up. */
function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
