/** Resident memory of another process, read from /proc (Linux) or `ps` elsewhere. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const MB = 1024 * 1024;

/** Current RSS of `pid` in MB. */
export function rssMb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1];
    if (kb) return (Number(kb) * 1024) / MB;
  } catch {
    // not Linux: ask ps
  }
  return (Number(execFileSync('ps', ['-o', 'rss=', '-p', String(pid)]).toString().trim()) * 1024) / MB;
}

/** Samples a process's RSS on an interval and keeps the peak since the last `reset()`. */
export class RssSampler {
  private peak = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    intervalMs = 100,
  ) {
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  sample(): number {
    const now = rssMb(this.pid);
    if (now > this.peak) this.peak = now;
    return now;
  }

  /** Starts a new peak window (at the current RSS). */
  reset(): void {
    this.peak = 0;
    this.sample();
  }

  /** The highest RSS seen since `reset()`, in MB. */
  get peakMb(): number {
    this.sample();
    return this.peak;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
