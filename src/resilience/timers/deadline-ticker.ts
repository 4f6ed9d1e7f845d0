import { monotonicClock, type Clock } from '../clock.js';

/** Something with deadlines that the ticker asks to check itself. */
export interface Watched {
  check(now: number): void;
}

/**
 * One shared, coarse ticker for all upstream-call timers instead of a setTimeout per call: on the
 * success path a call costs a Set insert and delete, not a timer-heap insert and removal. The ticker
 * runs only while something is watched (it stops itself on the first empty tick) and never keeps the
 * process alive. A deadline is therefore noticed between 0 and `resolutionMs` late.
 */
export class DeadlineTicker {
  private readonly watched = new Set<Watched>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly resolutionMs = 25,
    readonly clock: Clock = monotonicClock,
  ) {}

  watch(item: Watched): void {
    this.watched.add(item);
    if (!this.timer) this.arm();
  }

  unwatch(item: Watched): void {
    this.watched.delete(item);
  }

  get size(): number {
    return this.watched.size;
  }

  private arm(): void {
    this.timer = setTimeout(this.tick, this.resolutionMs);
    this.timer.unref();
  }

  private readonly tick = (): void => {
    this.timer = undefined;
    if (this.watched.size === 0) return;
    const now = this.clock.now();
    for (const item of this.watched) item.check(now);
    if (this.watched.size > 0) this.arm();
  };
}

export const defaultTicker = new DeadlineTicker();
