/** The bench's verdicts against the issue's targets, and its markdown report. */
import type { GridRow } from '../phases/grid.js';
import type { OpenStreamsResult } from '../phases/open-streams.js';
import type { SessionsResult } from '../phases/sessions.js';
import type { SoakResult } from '../phases/soak.js';
import type { TtfbResult } from '../phases/ttfb.js';

export interface BenchResults {
  date: string;
  machine: { cpus: number; cpuModel: string; memoryGb: number; node: string; platform: string };
  settings: { upstreamLatencyMs: number; cellSeconds: number; connections: number[]; streams: number; sessions: number; soakRequests: number };
  grid: GridRow[];
  ttfb: TtfbResult[];
  openStreams: OpenStreamsResult;
  sessions: SessionsResult;
  soak: SoakResult;
  targets: TargetCheck[];
  durationSeconds: number;
}

export interface TargetCheck {
  target: string;
  measured: string;
  holds: boolean;
}

const f = (n: number | undefined, digits = 2) => (n === undefined || Number.isNaN(n) ? '—' : n.toFixed(digits));
const int = (n: number) => Math.round(n).toLocaleString('en');

function find(grid: GridRow[], side: GridRow['side'], kind: GridRow['kind'], connections: number): GridRow | undefined {
  return grid.find((r) => r.side === side && r.kind === kind && r.connections === connections);
}

/** The direct row a row is compared with (a chat turn is a stream upstream). */
function directOf(grid: GridRow[], row: GridRow): GridRow | undefined {
  return find(grid, 'direct', row.kind === 'chat' ? 'stream' : row.kind, row.connections);
}

function floorShare(grid: GridRow[], row: GridRow): number | undefined {
  if (row.side === 'direct' || row.kind === 'chat') return undefined;
  const floor = find(grid, 'floor', row.kind, row.connections);
  return floor ? row.rps / floor.rps : undefined;
}

export function checkTargets(r: Omit<BenchResults, 'targets' | 'durationSeconds'>): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const server1 = find(r.grid, 'server', 'json', 1);
  const direct1 = find(r.grid, 'direct', 'json', 1);
  if (server1 && direct1) {
    const p50 = server1.p50 - direct1.p50;
    const p99 = server1.p99 - direct1.p99;
    checks.push({ target: 'added p50 ≤ 0.3 ms (1 connection, /v1/messages JSON)', measured: `${f(p50)} ms`, holds: p50 <= 0.3 });
    checks.push({ target: 'added p99 ≤ 1 ms (1 connection, /v1/messages JSON)', measured: `${f(p99)} ms`, holds: p99 <= 1 });
  }
  for (const kind of ['json', 'stream'] as const) {
    const server = find(r.grid, 'server', kind, 64);
    const share = server ? floorShare(r.grid, server) : undefined;
    if (share !== undefined) {
      checks.push({ target: `≥ 85 % of the pass-through's req/s at 64 connections (/v1/messages ${kind === 'json' ? 'JSON' : 'stream'})`, measured: `${f(share * 100, 0)} %`, holds: share >= 0.85 });
    }
  }
  const ttfbDirect = r.ttfb.find((t) => t.name.startsWith('direct'));
  const ttfbServer = r.ttfb.find((t) => t.name.includes('/v1/messages'));
  if (ttfbDirect && ttfbServer) {
    const added = ttfbServer.p50 - ttfbDirect.p50;
    checks.push({ target: 'added time to first delta ≤ 0.3 ms (streams, p50)', measured: `${f(added)} ms`, holds: added <= 0.3 });
  }
  const streamsOpen = r.openStreams.opened === r.openStreams.wanted;
  checks.push({
    target: `RSS < 150 MB with ${int(r.openStreams.wanted)} open streams`,
    measured: `${f(r.openStreams.peakRssMb, 0)} MB (${int(r.openStreams.opened)} open)`,
    holds: streamsOpen && r.openStreams.peakRssMb < 150,
  });
  checks.push({
    target: `flat RSS over the soak (${int(r.soak.requests)} requests)`,
    measured: `${f(r.soak.rssStartMb, 0)} → ${f(r.soak.rssEndMb, 0)} MB (lowest ${f(r.soak.troughsMb[0], 0)} → ${f(r.soak.troughsMb[1], 0)} MB)`,
    holds: r.soak.flat && r.soak.requests >= r.settings.soakRequests && r.soak.failures === 0,
  });
  const streamLines = r.grid.filter((g) => g.side === 'server' && g.kind === 'stream').map((g) => g.logLinesPerRequest ?? 0);
  const worst = Math.max(...streamLines);
  checks.push({ target: 'nothing logged per chunk at info (log lines per streamed request)', measured: f(worst), holds: worst < 1.5 });
  return checks;
}

export function markdown(r: BenchResults): string {
  const out: string[] = [];
  const m = r.machine;
  out.push(`Measured ${r.date.slice(0, 10)} on ${m.cpus} × ${m.cpuModel}, ${m.memoryGb} GB, Node ${m.node}; upstream latency ${r.settings.upstreamLatencyMs} ms; ${r.settings.cellSeconds} s per cell; whole run ${int(r.durationSeconds)} s.`);
  out.push('');
  out.push('| Path | Conns | req/s | p50 ms | p99 ms | added p50 | added p99 | % of floor | CPU µs/req | peak RSS MB |');
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const row of r.grid) {
    const direct = row.side === 'direct' ? undefined : directOf(r.grid, row);
    const share = floorShare(r.grid, row);
    out.push(
      `| ${row.target} | ${row.connections} | ${int(row.rps)} | ${f(row.p50)} | ${f(row.p99)} | ${direct ? f(row.p50 - direct.p50) : '—'} | ${direct ? f(row.p99 - direct.p99) : '—'} | ${share === undefined ? '—' : `${f(share * 100, 0)} %`} | ${f(row.cpuUsPerRequest, 0)} | ${row.peakRssMb === undefined ? '—' : f(row.peakRssMb, 0)} |`,
    );
  }
  out.push('');
  out.push('| Time to first delta (1 connection) | p50 ms | p99 ms | added p50 |');
  out.push('|---|---:|---:|---:|');
  const ttfbDirect = r.ttfb.find((t) => t.name.startsWith('direct'));
  for (const t of r.ttfb) out.push(`| ${t.name} | ${f(t.p50)} | ${f(t.p99)} | ${ttfbDirect && t !== ttfbDirect ? f(t.p50 - ttfbDirect.p50) : '—'} |`);
  out.push('');
  const s = r.openStreams;
  out.push(`**${int(s.wanted)} open streams**: ${int(s.opened)} open after ${f(s.openSeconds, 1)} s; server RSS ${f(s.rssBeforeMb, 0)} MB before, peak ${f(s.peakRssMb, 0)} MB (${f(s.perStreamKb, 0)} KB per stream)${s.failures ? `; ${s.failures} failed` : ''}.`);
  out.push('');
  const q = r.sessions;
  out.push(`**${int(q.sessions)} stored sessions** (created at ${int(q.createPerSecond)}/s): server RSS ${f(q.rssBeforeMb, 0)} MB before, ${f(q.rssAfterMb, 0)} MB after (peak ${f(q.peakRssMb, 0)} MB).`);
  out.push('');
  out.push('| Query (1 connection) | p50 ms | p99 ms | req/s |');
  out.push('|---|---:|---:|---:|');
  for (const query of q.queries) out.push(`| ${query.name} | ${f(query.p50)} | ${f(query.p99)} | ${int(query.rps)} |`);
  out.push('');
  const k = r.soak;
  out.push(`**Soak**: ${int(k.requests)} /v1/messages calls in ${int(k.seconds)} s (${int(k.rps)} req/s, ${k.failures} failed); RSS ${f(k.rssStartMb, 0)} MB at 10 % → ${f(k.rssEndMb, 0)} MB at the end (every 10 %: ${k.series.map((v) => f(v, 0)).join(', ')}).`);
  out.push('');
  out.push('| Target | Measured | Holds |');
  out.push('|---|---:|:---:|');
  for (const t of r.targets) out.push(`| ${t.target} | ${t.measured} | ${t.holds ? 'yes' : '**no**'} |`);
  return out.join('\n');
}

