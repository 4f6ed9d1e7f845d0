import type { OutcomeWindow, WindowCounts } from './outcome-window.js';

/** Long windows get wider buckets so a read never sums more than this many. */
const MAX_BUCKETS = 120;

/**
 * The outcomes of the last `spanMs`, in buckets of (at least) one second keyed by their period number.
 * Every read sums only the buckets whose period is still inside the window, and a bucket is reused only
 * after checking which period it holds — so old outcomes expire as the clock moves, with no timer and
 * no stale totals. An outcome leaves the window between `spanMs − bucketMs` and `spanMs` after it
 * happened.
 */
export class TimeWindow implements OutcomeWindow {
  private readonly bucketMs: number;
  private readonly count: number;
  private readonly periods: Float64Array;
  private readonly calls: Uint32Array;
  private readonly failures: Uint32Array;
  private readonly slow: Uint32Array;

  constructor(spanMs: number) {
    this.bucketMs = Math.max(1000, Math.ceil(spanMs / MAX_BUCKETS));
    this.count = Math.max(1, Math.ceil(spanMs / this.bucketMs));
    this.periods = new Float64Array(this.count).fill(-Infinity);
    this.calls = new Uint32Array(this.count);
    this.failures = new Uint32Array(this.count);
    this.slow = new Uint32Array(this.count);
  }

  record(nowMs: number, failed: boolean, slow: boolean): void {
    const period = Math.floor(nowMs / this.bucketMs);
    const i = this.indexOf(period);
    if (this.periods[i] !== period) {
      // The slot still holds an expired period: start it afresh.
      this.periods[i] = period;
      this.calls[i] = 0;
      this.failures[i] = 0;
      this.slow[i] = 0;
    }
    this.calls[i]!++;
    if (failed) this.failures[i]!++;
    else if (slow) this.slow[i]!++;
  }

  read(nowMs: number, into: WindowCounts): WindowCounts {
    const newest = Math.floor(nowMs / this.bucketMs);
    const oldest = newest - this.count + 1;
    let calls = 0;
    let failures = 0;
    let slow = 0;
    for (let i = 0; i < this.count; i++) {
      const period = this.periods[i]!;
      if (period < oldest || period > newest) continue;
      calls += this.calls[i]!;
      failures += this.failures[i]!;
      slow += this.slow[i]!;
    }
    into.calls = calls;
    into.failures = failures;
    into.slow = slow;
    return into;
  }

  clear(): void {
    this.periods.fill(-Infinity);
  }

  private indexOf(period: number): number {
    const i = period % this.count;
    return i < 0 ? i + this.count : i;
  }
}
