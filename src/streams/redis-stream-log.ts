import type { Redis } from 'ioredis';
import { errorMessage, type RedisBackendSwitch } from '../coordination/redis/backend-switch.js';
import type { FrameBatch, FrameSource, LoggedFrame, ResumePosition } from './frame-source.js';
import type { StreamMirror } from './turn-stream.js';

export const DEFAULT_STREAM_PREFIX = 'claude-chat:stream:';

export interface RedisStreamLogOptions {
  client: Redis;
  backend: RedisBackendSwitch;
  prefix?: string;
  maxFrames: number;
  retentionMs: number;
  /** How often a reader on another instance looks for new frames. Default 50 ms. */
  pollIntervalMs?: number;
  /** A running turn's keys live this long unless its writer refreshes them (so a dead writer's log expires). */
  liveTtlMs?: number;
}

/** Releases a session's writer lock only if this turn still holds it. */
const RELEASE_WRITER = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
/** Keeps (or, after it lapsed during a Redis outage, takes back) a running turn's writer lock. */
const REFRESH_WRITER = `local v = redis.call('GET', KEYS[1])
if v == ARGV[1] or not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0`;

export type RemoteStop = 'idle' | 'stopped' | 'busy';

/** Asks whichever instance runs a turn on a session to interrupt it (clear, config change, delete, interrupt). */
export type AbortRequestHandler = (sessionId: string, kind: string) => void;

/**
 * The shared copy of the stream logs in Redis, so a client can resume on any instance. Per turn: a
 * Redis stream of frames (entry id `0-<seq>`, trimmed to about `maxFrames`) and a meta hash
 * (session, last seq, ended); per session: the latest turn and the writer lock (one running turn per
 * session across instances). Writes are fire-and-forget and never slow the turn; a failed write
 * degrades the backend (logged once) and the local log keeps serving this instance's clients.
 */
export class RedisStreamLog implements StreamMirror {
  private readonly client: Redis;
  private readonly backend: RedisBackendSwitch;
  private readonly prefix: string;
  private readonly maxFrames: number;
  private readonly retentionMs: number;
  private readonly pollIntervalMs: number;
  private readonly liveTtlMs: number;
  /** Running turns written here → their session, for the keep-alive refresh. */
  private readonly live = new Map<string, string>();
  /** Turns whose copy broke (a write failed): not written any more, readers elsewhere see it expire. */
  private readonly broken = new Set<string>();
  private readonly heartbeat: NodeJS.Timeout;
  private subscriber: Redis | undefined;

  constructor(options: RedisStreamLogOptions) {
    this.client = options.client;
    this.backend = options.backend;
    this.prefix = options.prefix ?? DEFAULT_STREAM_PREFIX;
    this.maxFrames = options.maxFrames;
    this.retentionMs = options.retentionMs;
    this.pollIntervalMs = options.pollIntervalMs ?? 50;
    this.liveTtlMs = options.liveTtlMs ?? 30_000;
    this.heartbeat = setInterval(() => this.refreshLive(), Math.max(1000, Math.floor(this.liveTtlMs / 3)));
    this.heartbeat.unref();
  }

  private framesKey(turnId: string): string {
    return `${this.prefix}turn:${turnId}`;
  }

  private metaKey(turnId: string): string {
    return `${this.prefix}turn:${turnId}:meta`;
  }

  private latestKey(sessionId: string): string {
    return `${this.prefix}session:${sessionId}:latest`;
  }

  private writerKey(sessionId: string): string {
    return `${this.prefix}session:${sessionId}:writer`;
  }

  /**
   * Takes the session's writer lock for this turn. False when another instance runs a turn on the
   * session; true when Redis cannot tell (the local one-turn rule still holds).
   */
  async acquireWriter(sessionId: string, turnId: string): Promise<boolean> {
    if (!this.backend.shouldUseRedis()) return true;
    try {
      const set = await this.client.set(this.writerKey(sessionId), turnId, 'PX', this.liveTtlMs, 'NX');
      this.backend.recover('probe_succeeded');
      return set === 'OK';
    } catch (error) {
      this.failed('acquire_writer', error);
      return true;
    }
  }

  /** Gives the writer lock back if this turn holds it (a turn that never started). */
  releaseWriter(sessionId: string, turnId: string): void {
    if (!this.backend.shouldUseRedis()) return;
    this.client.eval(RELEASE_WRITER, 1, this.writerKey(sessionId), turnId).catch((error: unknown) => this.failed('release_writer', error));
  }

  begin(turnId: string, sessionId: string): void {
    this.live.set(turnId, sessionId);
    if (!this.backend.shouldUseRedis()) {
      this.broken.add(turnId);
      return;
    }
    this.client
      .multi()
      .hset(this.metaKey(turnId), 'session', sessionId, 'last', '0')
      .pexpire(this.metaKey(turnId), this.liveTtlMs)
      .set(this.latestKey(sessionId), turnId, 'PX', this.liveTtlMs)
      .exec()
      .catch((error: unknown) => this.breakTurn(turnId, 'begin', error));
  }

  append(turnId: string, seq: number, data: string, last: boolean): void {
    if (this.broken.has(turnId)) return;
    const key = this.framesKey(turnId);
    const batch = this.client.multi().xadd(key, 'MAXLEN', '~', String(this.maxFrames), `0-${seq}`, 'd', data);
    batch.hset(this.metaKey(turnId), 'last', String(seq), ...(last ? ['ended', '1'] : []));
    // Every key gets a TTL with its first write, whatever happened to `begin`.
    if (seq === 1) batch.pexpire(key, this.liveTtlMs).pexpire(this.metaKey(turnId), this.liveTtlMs);
    batch.exec().catch((error: unknown) => this.breakTurn(turnId, 'append', error));
  }

  end(turnId: string): void {
    const sessionId = this.live.get(turnId);
    this.live.delete(turnId);
    const wasBroken = this.broken.delete(turnId);
    if (sessionId === undefined) return;
    const batch = this.client.multi();
    if (!wasBroken) {
      batch.pexpire(this.framesKey(turnId), this.retentionMs).pexpire(this.metaKey(turnId), this.retentionMs);
      batch.pexpire(this.latestKey(sessionId), this.retentionMs);
    }
    batch.eval(RELEASE_WRITER, 1, this.writerKey(sessionId), turnId);
    batch.exec().catch((error: unknown) => this.failed('end', error));
  }

  /** The session's latest turn known to Redis, or null. */
  async latestTurn(sessionId: string): Promise<string | null> {
    if (!this.backend.shouldUseRedis()) return null;
    try {
      return await this.client.get(this.latestKey(sessionId));
    } catch (error) {
      this.failed('latest_turn', error);
      return null;
    }
  }

  /**
   * Interrupts a turn another instance runs on the session: publishes the request, then waits until
   * the session's writer lock is gone (the turn stored its answer and ended): `idle` when no instance
   * ran one (or Redis cannot tell), `stopped` when it ended, `busy` when it still runs after `timeoutMs`.
   */
  async stopElsewhere(sessionId: string, kind: string, timeoutMs: number): Promise<RemoteStop> {
    if (!this.backend.shouldUseRedis()) return 'idle';
    const key = this.writerKey(sessionId);
    try {
      if ((await this.client.exists(key)) === 0) return 'idle';
      await this.client.publish(this.controlChannel, JSON.stringify({ session_id: sessionId, kind }));
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 25));
        if ((await this.client.exists(key)) === 0) return 'stopped';
      }
      return 'busy';
    } catch (error) {
      this.failed('stop_elsewhere', error);
      return 'idle';
    }
  }

  /** Listens for interrupt requests from other instances (one subscriber connection). */
  listenForAborts(handler: AbortRequestHandler): void {
    const subscriber = this.client.duplicate();
    this.subscriber = subscriber;
    subscriber.on('error', () => undefined); // reconnects by itself; the main client's switch reports outages
    subscriber.on('message', (_channel: string, text: string) => {
      try {
        const request = JSON.parse(text) as { session_id?: unknown; kind?: unknown };
        if (typeof request.session_id === 'string' && typeof request.kind === 'string') handler(request.session_id, request.kind);
      } catch {
        // not ours
      }
    });
    subscriber.once('ready', () => {
      subscriber.subscribe(this.controlChannel).catch((error: unknown) => this.failed('subscribe', error));
    });
    subscriber.connect().catch(() => undefined);
  }

  private get controlChannel(): string {
    return `${this.prefix}control`;
  }

  /** A reader of a turn written (possibly) by another instance; null when Redis does not have it. */
  async reader(turnId: string): Promise<FrameSource | null> {
    if (!this.backend.shouldUseRedis()) return null;
    try {
      const sessionId = await this.client.hget(this.metaKey(turnId), 'session');
      return sessionId === null ? null : new RemoteReader(this, turnId, sessionId);
    } catch (error) {
      this.failed('reader', error);
      return null;
    }
  }

  /** Where `afterSeq` stands in the shared copy (the first kept entry and the last seq written). */
  async position(turnId: string, afterSeq: number): Promise<ResumePosition> {
    const [first, last] = await Promise.all([this.client.xrange(this.framesKey(turnId), '-', '+', 'COUNT', 1), this.client.hget(this.metaKey(turnId), 'last')]);
    const lastSeq = Number(last ?? 0);
    if (afterSeq > lastSeq) return 'ahead';
    const firstSeq = first[0] ? Number(first[0][0].slice(2)) : lastSeq + 1;
    return afterSeq < firstSeq - 1 ? 'gap' : 'ok';
  }

  /** One poll: the frames after `afterSeq`, or whether the turn has ended / vanished. */
  async poll(turnId: string, afterSeq: number): Promise<FrameBatch | null> {
    const entries = await this.client.xrange(this.framesKey(turnId), `(0-${afterSeq}`, '+', 'COUNT', 512);
    if (entries.length > 0) {
      const frames: LoggedFrame[] = entries.map(([id, fields]) => ({ seq: Number(id.slice(2)), data: fields[1] ?? '' }));
      const meta = await this.client.hmget(this.metaKey(turnId), 'last', 'ended');
      const ended = meta[1] === '1' && frames[frames.length - 1]!.seq >= Number(meta[0]);
      return { frames, ended, gap: frames[0]!.seq !== afterSeq + 1, lost: false };
    }
    const [last, ended] = await this.client.hmget(this.metaKey(turnId), 'last', 'ended');
    if (last === null) return { frames: [], ended: true, gap: false, lost: true };
    if (ended === '1' && afterSeq >= Number(last)) return { frames: [], ended: true, gap: false, lost: false };
    return null;
  }

  get pollMs(): number {
    return this.pollIntervalMs;
  }

  close(): void {
    clearInterval(this.heartbeat);
    this.subscriber?.disconnect();
  }

  private refreshLive(): void {
    if (this.live.size === 0 || !this.backend.shouldUseRedis()) return;
    const batch = this.client.multi();
    for (const [turnId, sessionId] of this.live) {
      // The writer lock is kept even when the copy broke: one writer per session matters more.
      batch.eval(REFRESH_WRITER, 1, this.writerKey(sessionId), turnId, String(this.liveTtlMs));
      if (this.broken.has(turnId)) continue;
      for (const key of [this.framesKey(turnId), this.metaKey(turnId), this.latestKey(sessionId)]) {
        batch.pexpire(key, this.liveTtlMs);
      }
    }
    batch.exec().catch((error: unknown) => this.failed('refresh', error));
  }

  private breakTurn(turnId: string, operation: string, error: unknown): void {
    // A late failure of a turn that already ended must not stay in `broken` for ever.
    if (this.live.has(turnId)) this.broken.add(turnId);
    this.failed(operation, error);
  }

  failed(operation: string, error: unknown): void {
    this.backend.operationFailed({ operation, error: errorMessage(error) });
  }
}

/** Reads a turn from Redis by polling; pulls only when its connection wants more, so it holds no backlog. */
class RemoteReader implements FrameSource {
  readonly fallbackStrategy = undefined;

  constructor(
    private readonly log: RedisStreamLog,
    readonly turnId: string,
    readonly sessionId: string,
  ) {}

  async position(afterSeq: number): Promise<ResumePosition> {
    try {
      return await this.log.position(this.turnId, afterSeq);
    } catch (error) {
      this.log.failed('position', error);
      return 'ok';
    }
  }

  async read(afterSeq: number, signal: AbortSignal): Promise<FrameBatch> {
    while (!signal.aborted) {
      let batch: FrameBatch | null;
      try {
        batch = await this.log.poll(this.turnId, afterSeq);
      } catch (error) {
        this.log.failed('read', error);
        return { frames: [], ended: true, gap: false, lost: true };
      }
      if (batch) return batch;
      await sleep(this.log.pollMs, signal);
    }
    return { frames: [], ended: false, gap: false, lost: false };
  }

  backlogBytes(): number {
    return 0;
  }

  onAppend(): () => void {
    return () => undefined;
  }

  release(): void {}
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
