/**
 * The store at scale: 100,000 sessions created through the API (one owner), then the server's RSS and
 * the time of the reads a client makes — list a page (with its total), read one session, read a
 * history — at one connection.
 */
import { request } from 'undici';
import { load, type LoadResult, type Target } from '../lib/load.js';
import { rssMb, RssSampler } from '../lib/rss.js';
import { SEED_KEY } from '../lib/server.js';

export interface SessionsResult {
  sessions: number;
  createPerSecond: number;
  createFailures: number;
  rssBeforeMb: number;
  rssAfterMb: number;
  peakRssMb: number;
  queries: { name: string; p50: number; p99: number; rps: number; failures: number }[];
}

const AUTH = { authorization: `Bearer ${SEED_KEY}` };

function get(name: string, url: string): Target {
  return { name, url, method: 'GET', headers: AUTH };
}

export async function storedSessions(base: string, serverPid: number, count: number, querySeconds: number): Promise<SessionsResult> {
  const rssBeforeMb = rssMb(serverPid);
  const sampler = new RssSampler(serverPid, 250);
  sampler.reset();
  const created: LoadResult = await load(
    { name: 'create', url: `${base}/api/new-session`, method: 'POST', headers: AUTH },
    { connections: 16, amount: count, record: false },
  );
  const listing = await request(`${base}/api/sessions?limit=50`, { headers: AUTH });
  const page = (await listing.body.json()) as { sessions: { session_id: string }[]; total: number };
  const id = page.sessions[0]?.session_id;
  if (!id) throw new Error('no session listed after seeding');
  const targets = [
    get('list 50 (+ total)', `${base}/api/sessions?limit=50`),
    get('read one', `${base}/api/session/${id}`),
    get('history', `${base}/api/session-history/${id}?limit=100`),
  ];
  const queries = [];
  for (const target of targets) {
    const r = await load(target, { connections: 1, durationS: querySeconds });
    queries.push({ name: target.name, p50: r.p50, p99: r.p99, rps: r.rps, failures: r.failures });
  }
  const peakRssMb = sampler.peakMb;
  sampler.stop();
  return {
    sessions: page.total,
    createPerSecond: created.rps,
    createFailures: created.failures,
    rssBeforeMb,
    rssAfterMb: rssMb(serverPid),
    peakRssMb,
    queries,
  };
}
