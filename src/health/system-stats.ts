import { readFileSync, statfsSync } from 'node:fs';
import os from 'node:os';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/** Host and process figures for /health/detailed. Cheap: no awaits, only procfs reads and syscalls. */
export interface SystemStats {
  cpu: { usage_percent: number; count: number; load_average: [number, number, number] };
  memory: { total_gb: number; available_gb: number; usage_percent: number; process_rss_mb: number; process_vms_mb: number };
  /** `usage_percent` is null when the data directory's file system cannot be read. */
  disk: { usage_percent: number | null };
}

export interface MemoryStats {
  totalBytes: number;
  availableBytes: number;
  usagePercent: number;
}

const GB = 1024 ** 3;
const MB = 1024 ** 2;

interface CpuTimes {
  idle: number;
  total: number;
}

function cpuTimes(): CpuTimes {
  let idle = 0;
  let total = 0;
  for (const cpu of os.cpus()) {
    const t = cpu.times;
    idle += t.idle;
    total += t.user + t.nice + t.sys + t.idle + t.irq;
  }
  return { idle, total };
}

/** CPU usage over the time since the previous sample (the first sample: since boot). */
export class CpuSampler {
  private previous: CpuTimes = { idle: 0, total: 0 };

  constructor(private readonly read: () => CpuTimes = cpuTimes) {}

  usagePercent(): number {
    const current = this.read();
    const total = current.total - this.previous.total;
    const idle = current.idle - this.previous.idle;
    // An unchanged total (two calls within one tick) keeps the previous sample for the next delta.
    if (total <= 0) return 0;
    this.previous = current;
    return clampPercent(((total - idle) / total) * 100);
  }
}

const defaultCpuSampler = new CpuSampler();

/** Host memory; "available" is Linux's MemAvailable when readable (reclaimable cache counts as free). */
export function memoryStats(): MemoryStats {
  const totalBytes = os.totalmem();
  const availableBytes = procMemAvailable() ?? os.freemem();
  const usagePercent = totalBytes > 0 ? clampPercent(((totalBytes - availableBytes) / totalBytes) * 100) : 0;
  return { totalBytes, availableBytes, usagePercent };
}

/** Used share of the file system holding `path` (as `df` counts it), or null when unreadable. */
export function diskUsagePercent(path: string): number | null {
  try {
    const s = statfsSync(path);
    const used = s.blocks - s.bfree;
    const usable = used + s.bavail;
    return usable > 0 ? round(clampPercent((used / usable) * 100), 1) : 0;
  } catch {
    return null;
  }
}

/** Snapshot of CPU, memory and disk; `dataDir` is the directory whose file system is reported. */
export function systemStats(dataDir: string = process.cwd(), cpu: CpuSampler = defaultCpuSampler): SystemStats {
  const memory = memoryStats();
  const rss = process.memoryUsage.rss();
  const [one = 0, five = 0, fifteen = 0] = os.loadavg();
  return {
    cpu: {
      usage_percent: round(cpu.usagePercent(), 1),
      count: os.cpus().length,
      load_average: [round(one, 2), round(five, 2), round(fifteen, 2)],
    },
    memory: {
      total_gb: round(memory.totalBytes / GB, 2),
      available_gb: round(memory.availableBytes / GB, 2),
      usage_percent: round(memory.usagePercent, 1),
      process_rss_mb: round(rss / MB, 1),
      process_vms_mb: round((procVmSizeBytes() ?? rss) / MB, 1),
    },
    disk: { usage_percent: diskUsagePercent(dataDir) },
  };
}

export interface EventLoopDelay {
  p99_ms: number;
  mean_ms: number;
  max_ms: number;
}

let histogram: IntervalHistogram | undefined;

/**
 * Event-loop delay from one process-wide `monitorEventLoopDelay` (started on first call). With `reset`,
 * the next reading covers only the time after this one (the event_loop check resets on every run).
 */
export function eventLoopDelay(options: { reset?: boolean } = {}): EventLoopDelay {
  if (!histogram) {
    histogram = monitorEventLoopDelay({ resolution: 20 });
    histogram.enable();
  }
  const nsToMs = (ns: number): number => (Number.isFinite(ns) ? round(ns / 1e6, 2) : 0);
  const reading = {
    p99_ms: histogram.count > 0 ? nsToMs(histogram.percentile(99)) : 0,
    mean_ms: histogram.count > 0 ? nsToMs(histogram.mean) : 0,
    max_ms: histogram.count > 0 ? nsToMs(histogram.max) : 0,
  };
  if (options.reset) histogram.reset();
  return reading;
}

function procMemAvailable(): number | undefined {
  const kb = procField('/proc/meminfo', 'MemAvailable');
  return kb === undefined ? undefined : kb * 1024;
}

function procVmSizeBytes(): number | undefined {
  const kb = procField('/proc/self/status', 'VmSize');
  return kb === undefined ? undefined : kb * 1024;
}

/** A `Name:   123 kB` line of a procfs file, in kB; undefined off Linux or when absent. */
function procField(file: string, field: string): number | undefined {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+)\\s*kB`, 'm').exec(readFileSync(file, 'utf8'));
    return match?.[1] !== undefined ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

function clampPercent(value: number): number {
  return Math.min(100, Math.max(0, value));
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
