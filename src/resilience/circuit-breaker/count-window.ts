import type { OutcomeWindow, WindowCounts } from './outcome-window.js';

const OK = 1;
const FAILED = 2;
const SLOW = 3;

/**
 * The last `size` outcomes in a ring buffer. Running totals are adjusted as each slot is overwritten,
 * so recording and reading are O(1); time plays no part.
 */
export class CountWindow implements OutcomeWindow {
  private readonly slots: Uint8Array;
  private next = 0;
  private calls = 0;
  private failures = 0;
  private slow = 0;

  constructor(private readonly size: number) {
    this.slots = new Uint8Array(size);
  }

  record(_nowMs: number, failed: boolean, slow: boolean): void {
    const evicted = this.slots[this.next] ?? 0;
    if (evicted === 0) this.calls++; // the window is still filling up
    else if (evicted === FAILED) this.failures--;
    else if (evicted === SLOW) this.slow--;
    const code = failed ? FAILED : slow ? SLOW : OK;
    if (code === FAILED) this.failures++;
    else if (code === SLOW) this.slow++;
    this.slots[this.next] = code;
    this.next = this.next + 1 === this.size ? 0 : this.next + 1;
  }

  read(_nowMs: number, into: WindowCounts): WindowCounts {
    into.calls = this.calls;
    into.failures = this.failures;
    into.slow = this.slow;
    return into;
  }

  clear(): void {
    this.slots.fill(0);
    this.next = 0;
    this.calls = 0;
    this.failures = 0;
    this.slow = 0;
  }
}
