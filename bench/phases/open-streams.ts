/**
 * Memory with many streams open at once: N streaming /v1/messages calls whose upstream sends its first
 * delta at once and then one a second (the fake's `hold` models), all held open together while the
 * server's RSS is sampled. A stream counts as open once its first delta reached the client.
 */
import { Pool } from 'undici';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Target } from '../lib/load.js';
import { rssMb, RssSampler } from '../lib/rss.js';

export interface OpenStreamsResult {
  wanted: number;
  /** Most streams open at the same time (first delta received, end not yet). */
  opened: number;
  /** Seconds until that many were open. */
  openSeconds: number;
  rssBeforeMb: number;
  peakRssMb: number;
  /** (peak − before) / opened, in KB. */
  perStreamKb: number;
  failures: number;
}

export async function openStreams(target: Target, serverPid: number, count: number, timeoutMs: number): Promise<OpenStreamsResult> {
  const url = new URL(target.url);
  const pool = new Pool(url.origin, { connections: count, pipelining: 1 });
  const rssBeforeMb = rssMb(serverPid);
  const sampler = new RssSampler(serverPid, 100);
  sampler.reset();
  const started = performance.now();
  let openNow = 0;
  let opened = 0;
  let failures = 0;
  let lastOpenAt = 0;
  const streams = Array.from({ length: count }, async () => {
    try {
      const response = await pool.request({ method: 'POST', path: url.pathname, headers: target.headers, body: target.body ?? null });
      let open = false;
      for await (const chunk of response.body) {
        if (!open && (chunk as Buffer).includes('content_block_delta')) {
          open = true;
          openNow++;
          if (openNow > opened) {
            opened = openNow;
            lastOpenAt = performance.now();
          }
        }
      }
      if (open) openNow--;
      if (response.statusCode !== 200 || !open) failures++;
    } catch {
      failures++;
    }
  });
  const deadline = started + timeoutMs;
  while (opened + failures < count && performance.now() < deadline) await sleep(100);
  const openSeconds = (lastOpenAt - started) / 1000;
  // Held open together for a while, so the peak includes whatever the streams cost over time.
  await sleep(3000);
  const peakRssMb = sampler.peakMb;
  sampler.stop();
  await Promise.race([Promise.all(streams), sleep(timeoutMs)]);
  await pool.destroy();
  return {
    wanted: count,
    opened,
    openSeconds,
    rssBeforeMb,
    peakRssMb,
    perStreamKb: opened > 0 ? ((peakRssMb - rssBeforeMb) * 1024) / opened : Number.NaN,
    failures,
  };
}
