import type { Frame, FrameSink } from '../chat/frames.js';
import { NO_FRAMES, type FrameBatch, type FrameSource, type LoggedFrame, type ResumePosition } from './frame-source.js';

/** Copies a turn's frames to a shared log (Redis) so other instances can serve them. Never throws. */
export interface StreamMirror {
  append(turnId: string, seq: number, data: string, last: boolean): void;
  end(turnId: string): void;
}

const RESOLVED = Promise.resolve();

/**
 * The log of one turn's frames. The turn writes into it at upstream speed (it never waits for a
 * client); connections read from it at their own pace, each from its own position, so one answer can
 * be streamed, dropped and resumed any number of times. Keeps at most `maxFrames` (oldest trimmed).
 */
export class TurnStream implements FrameSink {
  /** Serialized frames; index `head` holds seq `firstSeq`. Trimmed frames are dropped from the front. */
  private frames: string[] = [];
  /** Running byte total (UTF-8, as sent) before each frame (parallel to `frames`), for readers' backlog. */
  private byteStarts: number[] = [];
  private head = 0;
  private firstSeq = 1;
  private totalBytes = 0;
  private isEnded = false;
  private readonly listeners = new Set<() => void>();
  private readers = 0;
  fallbackStrategy: string | undefined;
  endedAt: number | undefined;
  /** Set when the turn should stop once no client reads it any more (STREAM_ON_DISCONNECT=abort). */
  abandon: (() => void) | undefined;

  constructor(
    readonly turnId: string,
    readonly sessionId: string,
    private readonly maxFrames: number,
    private readonly mirror?: StreamMirror,
    private readonly onEnd?: (stream: TurnStream) => void,
  ) {}

  /** The log always accepts: clients come and go, the turn goes on. */
  get closed(): boolean {
    return false;
  }

  get ended(): boolean {
    return this.isEnded;
  }

  get lastSeq(): number {
    return this.firstSeq + this.frames.length - this.head - 1;
  }

  /** Bytes of the frames it holds. */
  get byteSize(): number {
    return this.head < this.frames.length ? this.totalBytes - this.bytesBefore(this.head) : 0;
  }

  /** Connections reading this turn right now. */
  get readerCount(): number {
    return this.readers;
  }

  send(frame: Frame): Promise<void> {
    if (this.isEnded) return RESOLVED;
    const { type, ...fields } = frame;
    const data = JSON.stringify({ type, session_id: this.sessionId, ...fields });
    this.frames.push(data);
    this.byteStarts.push(this.totalBytes);
    this.totalBytes += Buffer.byteLength(data);
    if (this.frames.length - this.head > this.maxFrames) this.trimOne();
    this.mirror?.append(this.turnId, this.lastSeq, data, type === 'done');
    this.notify();
    return RESOLVED;
  }

  setFallbackStrategy(strategy: string): void {
    this.fallbackStrategy = strategy;
  }

  end(): void {
    if (this.isEnded) return;
    this.isEnded = true;
    this.endedAt = Date.now();
    this.mirror?.end(this.turnId);
    this.notify();
    this.onEnd?.(this);
  }

  /** Whether a reader that has everything up to `afterSeq` can continue without a gap. */
  canResumeAfter(afterSeq: number): boolean {
    return afterSeq >= this.firstSeq - 1 && afterSeq <= this.lastSeq;
  }

  positionOf(afterSeq: number): ResumePosition {
    if (afterSeq > this.lastSeq) return 'ahead';
    return afterSeq < this.firstSeq - 1 ? 'gap' : 'ok';
  }

  framesAfter(afterSeq: number): FrameBatch {
    if (afterSeq < this.firstSeq - 1) return { frames: [], ended: false, gap: true, lost: false };
    const frames: LoggedFrame[] = [];
    for (let seq = afterSeq + 1; seq <= this.lastSeq; seq++) {
      frames.push({ seq, data: this.frames[this.head + seq - this.firstSeq]! });
    }
    if (frames.length === 0 && this.isEnded) return NO_FRAMES;
    return { frames, ended: this.isEnded, gap: false, lost: false };
  }

  /** Bytes logged after `afterSeq`; Infinity once frames after it were trimmed (it can never catch up). */
  backlogBytes(afterSeq: number): number {
    if (afterSeq < this.firstSeq - 1) return Infinity;
    if (afterSeq >= this.lastSeq) return 0;
    return this.totalBytes - this.bytesBefore(this.head + afterSeq + 1 - this.firstSeq);
  }

  onAppend(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A reader for one connection. */
  reader(): FrameSource {
    this.readers++;
    return new LocalReader(this, () => this.readers--);
  }

  /** Waits until there are frames after `afterSeq`, the turn ended, or `signal` aborted. */
  async read(afterSeq: number, signal: AbortSignal): Promise<FrameBatch> {
    for (;;) {
      const batch = this.framesAfter(afterSeq);
      if (batch.frames.length > 0 || batch.ended || batch.gap || signal.aborted) return batch;
      await new Promise<void>((resolve) => {
        const done = () => {
          unsubscribe();
          signal.removeEventListener('abort', done);
          resolve();
        };
        const unsubscribe = this.onAppend(done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  /** Running byte total up to (not including) the frame at `index`. */
  private bytesBefore(index: number): number {
    return this.byteStarts[index]!;
  }

  private trimOne(): void {
    this.head++;
    this.firstSeq++;
    // Compact now and then so trimmed frames are freed without shifting the array on every append.
    if (this.head >= 1024 && this.head * 2 >= this.frames.length) {
      this.frames = this.frames.slice(this.head);
      this.byteStarts = this.byteStarts.slice(this.head);
      this.head = 0;
    }
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

class LocalReader implements FrameSource {
  private released = false;

  constructor(
    private readonly stream: TurnStream,
    private readonly onRelease: () => void,
  ) {}

  get turnId(): string {
    return this.stream.turnId;
  }

  get sessionId(): string {
    return this.stream.sessionId;
  }

  get fallbackStrategy(): string | undefined {
    return this.stream.fallbackStrategy;
  }

  read(afterSeq: number, signal: AbortSignal): Promise<FrameBatch> {
    return this.stream.read(afterSeq, signal);
  }

  async position(afterSeq: number): Promise<ResumePosition> {
    return this.stream.positionOf(afterSeq);
  }

  backlogBytes(afterSeq: number): number {
    return this.stream.backlogBytes(afterSeq);
  }

  onAppend(listener: () => void): () => void {
    return this.stream.onAppend(listener);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.onRelease();
  }
}
