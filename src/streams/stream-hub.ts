import type { FrameSource } from './frame-source.js';
import type { RedisStreamLog, RemoteStop } from './redis-stream-log.js';
import { TurnStream } from './turn-stream.js';
import type { WriterLock } from '../chat/turn-runner.js';
import type { RemoteTurns } from '../chat/session-service.js';
import { isTurnAbortKind, type TurnAbortKind } from '../chat/turn-abort.js';

export interface StreamHubOptions {
  /** How long a turn's frames stay resumable after it ends. */
  retentionMs: number;
  /** Most frames kept per turn (older ones are trimmed). */
  maxFrames: number;
  /** Most bytes of finished turns kept for resuming; past it the oldest finished turns are dropped first. */
  maxRetainedBytes: number;
  /** The shared copy for resuming on another instance (REDIS_URL); null = this instance only. */
  shared: RedisStreamLog | null;
}

/**
 * The stream logs of this instance's turns, kept until `retentionMs` after each turn ends, and the
 * way to find any turn's frames: here first, then in the shared copy.
 */
export class StreamHub implements WriterLock, RemoteTurns {
  private readonly streams = new Map<string, TurnStream>();
  private readonly latest = new Map<string, string>();
  private readonly expiries = new Map<string, NodeJS.Timeout>();
  /** Finished turns still held, oldest first, and their bytes. */
  private readonly finished = new Map<string, TurnStream>();
  private finishedBytes = 0;

  constructor(private readonly options: StreamHubOptions) {}

  /** The writer lock across instances (WriterLock): false when another instance runs a turn on the session. */
  async claim(sessionId: string, turnId: string): Promise<boolean> {
    return this.options.shared ? this.options.shared.acquireWriter(sessionId, turnId) : true;
  }

  release(sessionId: string, turnId: string): void {
    this.options.shared?.releaseWriter(sessionId, turnId);
  }

  open(turnId: string, sessionId: string): TurnStream {
    const stream = new TurnStream(turnId, sessionId, this.options.maxFrames, this.options.shared ?? undefined, (ended) => this.expireLater(ended));
    this.streams.set(turnId, stream);
    this.latest.set(sessionId, turnId);
    this.options.shared?.begin(turnId, sessionId);
    return stream;
  }

  /** The local log of a turn, if this instance has it. */
  local(turnId: string): TurnStream | undefined {
    return this.streams.get(turnId);
  }

  /**
   * The session's latest turn still resumable (running, or ended within the retention). The shared
   * copy knows the latest of all instances, so it is asked first; this instance's own is the fallback.
   */
  async latestTurn(sessionId: string): Promise<string | null> {
    return (await this.options.shared?.latestTurn(sessionId)) ?? this.latest.get(sessionId) ?? null;
  }

  /** Interrupts a turn another instance runs on the session (RemoteTurns; see RedisStreamLog.stopElsewhere). */
  async stopElsewhere(sessionId: string, kind: TurnAbortKind, timeoutMs: number): Promise<RemoteStop> {
    return this.options.shared ? this.options.shared.stopElsewhere(sessionId, kind, timeoutMs) : 'idle';
  }

  /** Lets other instances interrupt this instance's turns. */
  listenForAborts(abort: (sessionId: string, kind: TurnAbortKind) => void): void {
    this.options.shared?.listenForAborts((sessionId, kind) => {
      if (isTurnAbortKind(kind)) abort(sessionId, kind);
    });
  }

  /** A reader of the turn's frames, or null when neither this instance nor Redis still has them. */
  async reader(turnId: string): Promise<FrameSource | null> {
    const local = this.streams.get(turnId);
    if (local) return local.reader();
    return (await this.options.shared?.reader(turnId)) ?? null;
  }

  /** Turns whose frames are held here (running or retained), and the bytes of the finished ones. */
  stats(): { turns: number; finishedTurns: number; finishedBytes: number } {
    return { turns: this.streams.size, finishedTurns: this.finished.size, finishedBytes: this.finishedBytes };
  }

  close(): void {
    for (const timer of this.expiries.values()) clearTimeout(timer);
    this.expiries.clear();
    this.options.shared?.close();
  }

  private expireLater(stream: TurnStream): void {
    const timer = setTimeout(() => this.drop(stream), this.options.retentionMs);
    timer.unref();
    this.expiries.set(stream.turnId, timer);
    this.finished.set(stream.turnId, stream);
    this.finishedBytes += stream.byteSize;
    // Memory stays bounded whatever the turn rate: the oldest finished turns go first.
    for (const oldest of this.finished.values()) {
      if (this.finishedBytes <= this.options.maxRetainedBytes || oldest === stream) break;
      this.drop(oldest);
    }
  }

  private drop(stream: TurnStream): void {
    clearTimeout(this.expiries.get(stream.turnId));
    this.expiries.delete(stream.turnId);
    if (this.finished.delete(stream.turnId)) this.finishedBytes -= stream.byteSize;
    this.streams.delete(stream.turnId);
    if (this.latest.get(stream.sessionId) === stream.turnId) this.latest.delete(stream.sessionId);
  }
}
