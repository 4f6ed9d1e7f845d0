/**
 * Time to first content on streams: one connection, requests one after another, the clock stopped at
 * the first byte of the first text delta (`content_block_delta`, or a chat `text_chunk` frame). The
 * gateway holds a stream back until its first delta, so this — not the first byte — is what it adds.
 */
import { Client } from 'undici';
import type { Target } from '../lib/load.js';
import { Samples } from '../lib/stats.js';

export interface TtfbResult {
  name: string;
  samples: number;
  p50: number;
  p99: number;
}

async function once(client: Client, target: Target, marker: string): Promise<number> {
  const started = performance.now();
  const response = await client.request({ method: 'POST', path: new URL(target.url).pathname, headers: target.headers, body: target.body ?? null });
  let first = Number.NaN;
  let tail = '';
  for await (const chunk of response.body) {
    if (Number.isNaN(first)) {
      // A marker may straddle two chunks: keep the end of the previous one.
      const text = tail + (chunk as Buffer).toString('latin1');
      if (text.includes(marker)) first = performance.now() - started;
      else tail = text.slice(-marker.length);
    }
  }
  if (response.statusCode !== 200 || Number.isNaN(first)) throw new Error(`${target.name}: status ${response.statusCode}, no ${marker}`);
  return first;
}

/** Runs `rounds` rounds; each sends `perRound` requests to every target in turn, so drift hits all alike. */
export async function measureTtfb(targets: { target: Target; marker: string }[], rounds: number, perRound: number): Promise<TtfbResult[]> {
  const clients = targets.map(({ target }) => new Client(new URL(target.url).origin, { pipelining: 1 }));
  const samples = targets.map(() => new Samples());
  try {
    for (let i = 0; i < targets.length; i++) for (let w = 0; w < 20; w++) await once(clients[i]!, targets[i]!.target, targets[i]!.marker);
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < targets.length; i++) {
        for (let n = 0; n < perRound; n++) samples[i]!.push(await once(clients[i]!, targets[i]!.target, targets[i]!.marker));
      }
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
  return targets.map(({ target }, i) => ({ name: target.name, samples: samples[i]!.length, ...samples[i]!.summary() }));
}
