import { UpstreamTimeoutError, type TimerKind } from '../errors.js';
import { defaultTicker, type DeadlineTicker, type Watched } from './deadline-ticker.js';

/** Limits in ms for one upstream call; 0 turns a timer off. */
export interface CallTimerLimits {
  /** Until upstream answers at all (headers / first event). */
  connectMs: number;
  /** From that answer until the first piece of content. */
  firstTokenMs: number;
  /** Longest silence between events once content flows. */
  idleMs: number;
  /** The whole call, start to end. */
  totalMs: number;
}

type Phase = 'connect' | 'first_token' | 'streaming' | 'stopped';

/**
 * The four timers of one upstream call. Events only record timestamps; the shared ticker asks the call
 * to check its deadlines, so the success path arms no timer and aborts nothing. The callback receives
 * a typed error and is called at most once.
 */
export class CallTimers implements Watched {
  private phase: Phase = 'stopped';
  private startedAt = 0;
  private phaseStartedAt = 0;
  private lastActivityAt = 0;

  constructor(
    private readonly limits: CallTimerLimits,
    private readonly onTimeout: (error: UpstreamTimeoutError) => void,
    private readonly ticker: DeadlineTicker = defaultTicker,
  ) {}

  start(): void {
    this.startedAt = this.phaseStartedAt = this.lastActivityAt = this.ticker.clock.now();
    this.phase = 'connect';
    this.ticker.watch(this);
  }

  /** Upstream answered; the first-token timer starts. */
  connected(): void {
    if (this.phase !== 'connect') return;
    this.phase = 'first_token';
    this.phaseStartedAt = this.lastActivityAt = this.ticker.clock.now();
  }

  /** Content arrived: from now on silence is measured by the idle timer. */
  content(): void {
    this.lastActivityAt = this.ticker.clock.now();
    if (this.phase === 'connect' || this.phase === 'first_token') this.phase = 'streaming';
  }

  /** Any sign of life that is not content (keeps the idle timer from firing). */
  activity(): void {
    this.lastActivityAt = this.ticker.clock.now();
  }

  stop(): void {
    this.phase = 'stopped';
    this.ticker.unwatch(this);
  }

  check(now: number): void {
    const expired = this.expired(now);
    if (!expired) return;
    this.stop();
    this.onTimeout(new UpstreamTimeoutError(expired, this.limitOf(expired)));
  }

  /** The timer whose deadline has passed, total first (it bounds everything). */
  private expired(now: number): TimerKind | undefined {
    const { connectMs, firstTokenMs, idleMs, totalMs } = this.limits;
    if (totalMs > 0 && now - this.startedAt >= totalMs) return 'total';
    switch (this.phase) {
      case 'connect':
        return connectMs > 0 && now - this.phaseStartedAt >= connectMs ? 'connect' : undefined;
      case 'first_token':
        return firstTokenMs > 0 && now - this.phaseStartedAt >= firstTokenMs ? 'first_token' : undefined;
      case 'streaming':
        return idleMs > 0 && now - this.lastActivityAt >= idleMs ? 'idle' : undefined;
      default:
        return undefined;
    }
  }

  private limitOf(kind: TimerKind): number {
    const { connectMs, firstTokenMs, idleMs, totalMs } = this.limits;
    return { connect: connectMs, first_token: firstTokenMs, idle: idleMs, total: totalMs }[kind];
  }
}
