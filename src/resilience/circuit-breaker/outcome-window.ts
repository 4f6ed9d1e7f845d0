import type { SlidingWindowConfig } from './types.js';
import { CountWindow } from './count-window.js';
import { TimeWindow } from './time-window.js';

/** What a window holds right now. Filled in place by `read` so the hot path allocates nothing. */
export interface WindowCounts {
  calls: number;
  failures: number;
  slow: number;
}

/** The recent call outcomes a sliding-window breaker judges by. */
export interface OutcomeWindow {
  record(nowMs: number, failed: boolean, slow: boolean): void;
  /** Counts of the calls still inside the window at `nowMs`. Pure: reading never changes the window. */
  read(nowMs: number, into: WindowCounts): WindowCounts;
  clear(): void;
}

export function createOutcomeWindow(config: SlidingWindowConfig): OutcomeWindow {
  return config.type === 'count' ? new CountWindow(config.size) : new TimeWindow(config.size * 1000);
}

export function emptyCounts(): WindowCounts {
  return { calls: 0, failures: 0, slow: 0 };
}
