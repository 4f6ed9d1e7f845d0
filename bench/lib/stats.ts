/** Exact percentiles of recorded samples (autocannon's own histogram keeps whole milliseconds only). */

export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] as number;
}

/** Collects samples in a growable typed array (no boxing, so millions cost little). */
export class Samples {
  private data = new Float64Array(4096);
  private count = 0;

  push(value: number): void {
    if (this.count === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.count++] = value;
  }

  get length(): number {
    return this.count;
  }

  /** p50 and p99 in the samples' unit. */
  summary(): { p50: number; p99: number; mean: number } {
    const sorted = this.data.slice(0, this.count).sort();
    let sum = 0;
    for (const value of sorted) sum += value;
    return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), mean: this.count > 0 ? sum / this.count : Number.NaN };
  }
}

export const round = (value: number, digits = 2): number => Math.round(value * 10 ** digits) / 10 ** digits;
