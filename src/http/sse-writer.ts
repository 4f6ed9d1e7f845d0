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
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
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

  end(): void {
    if (!this.closed) this.res.end();
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
