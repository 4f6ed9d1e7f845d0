/** One load cell: autocannon against one URL, with exact latency percentiles from its response events. */
import autocannon from 'autocannon';
import { Samples } from './stats.js';

export interface Target {
  /** Row label in the report. */
  name: string;
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
}

export interface LoadOptions {
  connections: number;
  /** Seconds; ignored when `amount` is given. */
  durationS?: number;
  amount?: number;
  /** Keep every latency for exact percentiles (off for the soak: a million samples are not needed). */
  record?: boolean;
  /** Where to keep them (to pool several runs); default a fresh set. */
  samples?: Samples;
  /** Called with the number of completed responses so far (for progress and soak sampling). */
  onProgress?: (completed: number) => void;
}

export interface LoadResult {
  requests: number;
  rps: number;
  /** ms */
  p50: number;
  p99: number;
  mean: number;
  /** Non-2xx responses plus errors and timeouts: any of them makes a cell suspect. */
  failures: number;
  durationS: number;
}

export async function load(target: Target, options: LoadOptions): Promise<LoadResult> {
  const samples = options.samples ?? new Samples();
  let completed = 0;
  // Without a callback autocannon returns its event emitter made thenable (the types show only one side).
  const instance = autocannon({
    url: target.url,
    method: target.method,
    headers: target.headers,
    ...(target.body !== undefined ? { body: target.body } : {}),
    connections: options.connections,
    ...(options.amount !== undefined ? { amount: options.amount } : { duration: options.durationS ?? 5 }),
    timeout: 30,
  }) as unknown as autocannon.Instance & Promise<autocannon.Result>;
  instance.on('response', (_client, statusCode, _bytes, responseTime) => {
    completed++;
    if (options.record !== false && statusCode < 300) samples.push(responseTime);
    if (options.onProgress && completed % 1000 === 0) options.onProgress(completed);
  });
  const result = await instance;
  const exact = samples.length > 0 ? samples.summary() : { p50: result.latency.p50, p99: result.latency.p99, mean: result.latency.mean };
  const seconds = result.duration;
  return {
    requests: result['2xx'],
    rps: result['2xx'] / seconds,
    p50: exact.p50,
    p99: exact.p99,
    mean: exact.mean,
    failures: result.non2xx + result.errors + result.timeouts,
    durationS: seconds,
  };
}
