/**
 * The soak: a million /v1/messages calls through the whole gateway path (zero-latency upstream, 64
 * connections) with the server's RSS sampled as it goes. Start is taken after the first 10 % (warm,
 * caches and pools filled). RSS rises and falls by 40–60 MB between collections, so a single sample
 * says little: flat means the lowest sample of the second half is within max(10 MB, 10 %) of the lowest
 * of the first half — a leak raises the troughs, the sawtooth of collections does not.
 */
import { load, type Target } from '../lib/load.js';
import { rssMb } from '../lib/rss.js';

export interface SoakResult {
  requests: number;
  failures: number;
  seconds: number;
  rps: number;
  rssBeforeMb: number;
  rssStartMb: number;
  rssEndMb: number;
  /** RSS every 10 % of the requests, in MB. */
  series: number[];
  /** The lowest sample of the first and of the second half of the series. */
  troughsMb: [number, number];
  flat: boolean;
}

export async function soak(target: Target, serverPid: number, amount: number, connections: number, progress: (line: string) => void): Promise<SoakResult> {
  const rssBeforeMb = rssMb(serverPid);
  const step = Math.max(1000, Math.round(amount / 10 / 1000) * 1000);
  const series: number[] = [];
  let next = step;
  const r = await load(target, {
    connections,
    amount,
    record: false,
    onProgress: (done) => {
      if (done >= next) {
        next += step;
        series.push(Math.round(rssMb(serverPid) * 10) / 10);
        progress(`soak ${done.toLocaleString('en')} / ${amount.toLocaleString('en')}, RSS ${series.at(-1)} MB`);
      }
    },
  });
  const rssEndMb = rssMb(serverPid);
  const rssStartMb = series[0] ?? rssBeforeMb;
  const half = Math.max(1, Math.floor(series.length / 2));
  const firstTrough = Math.min(...series.slice(0, half), rssStartMb);
  const lastTrough = series.length > half ? Math.min(...series.slice(half)) : rssEndMb;
  return {
    requests: r.requests,
    failures: r.failures,
    seconds: r.durationS,
    rps: r.rps,
    rssBeforeMb,
    rssStartMb,
    rssEndMb,
    series,
    troughsMb: [firstTrough, lastTrough],
    flat: lastTrough - firstTrough <= Math.max(10, firstTrough * 0.1),
  };
}
