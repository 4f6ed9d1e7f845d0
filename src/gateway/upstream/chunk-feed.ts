/**
 * A response body handed over chunk by chunk to one listener, straight from undici's dispatch
 * callbacks: no Readable, no async iterator, no promise per chunk (each costs microseconds, and a
 * stream of a few dozen chunks paid them on every one).
 *
 * Until a listener is attached chunks are kept and the upstream socket is paused, so nothing is lost
 * and nothing piles up unbounded. The end or a failure is delivered once, after every chunk before it.
 */
export interface ChunkListener {
  data(chunk: Buffer): void;
  end(): void;
  /** The transport failed mid-body (undici's error, unclassified: the caller knows why it cancelled). */
  fail(error: unknown): void;
}

/** What the feed needs of the upstream call: undici's controller, behind the dispatch. */
export interface FlowControl {
  pause(): void;
  resume(): void;
}

type Outcome = { kind: 'end' } | { kind: 'fail'; error: unknown };

export class ChunkFeed {
  private listener: ChunkListener | null = null;
  private kept: Buffer[] = [];
  private outcome: Outcome | null = null;
  private delivered = false;

  constructor(private readonly flow: FlowControl) {}

  /** Called by the dispatch handler. Returns false when the upstream should pause. */
  push(chunk: Buffer): boolean {
    if (this.listener) {
      this.listener.data(chunk);
      return true;
    }
    this.kept.push(chunk);
    return false;
  }

  finish(outcome: Outcome): void {
    if (this.outcome) return;
    this.outcome = outcome;
    if (this.listener) this.settle(this.listener);
  }

  /** Starts (or resumes) delivery: kept chunks first, then the end if it already came. */
  listen(listener: ChunkListener): void {
    this.listener = listener;
    for (const chunk of this.kept.splice(0)) listener.data(chunk);
    if (this.outcome) this.settle(listener);
    else this.flow.resume();
  }

  /** Backpressure from the listener's side (a slow reader). */
  pause(): void {
    this.flow.pause();
  }

  resume(): void {
    if (this.listener && !this.outcome) this.flow.resume();
  }

  /** The whole body as text (an error answer's), or the failure. */
  text(): Promise<string> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      this.listen({
        data: (chunk) => chunks.push(chunk),
        end: () => resolve(Buffer.concat(chunks).toString('utf8')),
        fail: reject,
      });
    });
  }

  private settle(listener: ChunkListener): void {
    if (this.delivered) return;
    this.delivered = true;
    const outcome = this.outcome as Outcome;
    if (outcome.kind === 'end') listener.end();
    else listener.fail(outcome.error);
  }
}
