/**
 * The grid: every target at 1, 16 and 64 connections — the upstream directly, the bare pass-through
 * proxy (the floor), and the server's /v1/messages (JSON and stream) and /api/chat. At each connection
 * count the targets take turns in short rounds, so that drift and noise on a shared machine hit them
 * alike; a cell pools its rounds. Per cell: req/s, exact p50/p99, CPU per request of the process under
 * test, and for the server its peak RSS and log lines per request.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { cpuSeconds } from '../lib/cpu.js';
import { load, type Target } from '../lib/load.js';
import { takeLogLines } from '../lib/log-lines.js';
import { RssSampler } from '../lib/rss.js';
import { Samples } from '../lib/stats.js';

export type Side = 'direct' | 'floor' | 'server';

export interface GridRow {
  target: string;
  side: Side;
  kind: 'json' | 'stream' | 'chat';
  connections: number;
  rps: number;
  p50: number;
  p99: number;
  failures: number;
  /** CPU time of the process under test per request (µs): the cost, whatever else competes. */
  cpuUsPerRequest: number;
  /** Server rows only. */
  peakRssMb?: number;
  logLinesPerRequest?: number;
}

export interface GridTarget {
  target: Target;
  side: Side;
  kind: GridRow['kind'];
  /** The process that serves it (the fake, the proxy or the server). */
  pid: number;
}

interface Cell {
  samples: Samples;
  requests: number;
  seconds: number;
  failures: number;
  cpuSeconds: number;
  peakRssMb: number;
  logLines: number;
}

export async function runGrid(
  targets: GridTarget[],
  connections: number[],
  seconds: number,
  rounds: number,
  server: { pid: number; logFile: string },
  progress: (line: string) => void,
): Promise<GridRow[]> {
  const rows: GridRow[] = [];
  const rss = new RssSampler(server.pid, 100);
  try {
    for (const { target } of targets) await load(target, { connections: 16, durationS: 2, record: false }); // warm-up: JIT, pools
    for (const c of connections) {
      const cells: Cell[] = targets.map(() => ({ samples: new Samples(), requests: 0, seconds: 0, failures: 0, cpuSeconds: 0, peakRssMb: 0, logLines: 0 }));
      for (let round = 0; round < rounds; round++) {
        for (let i = 0; i < targets.length; i++) {
          const { target, side, pid } = targets[i] as GridTarget;
          const cell = cells[i] as Cell;
          if (side === 'server') await takeLogLines(server.logFile);
          rss.reset();
          const cpuBefore = cpuSeconds(pid);
          const r = await load(target, { connections: c, durationS: seconds / rounds, samples: cell.samples });
          cell.cpuSeconds += cpuSeconds(pid) - cpuBefore;
          cell.requests += r.requests;
          cell.seconds += r.durationS;
          cell.failures += r.failures;
          if (side === 'server') {
            cell.peakRssMb = Math.max(cell.peakRssMb, rss.peakMb);
            await sleep(200); // let the logger flush the round's last lines
            cell.logLines += (await takeLogLines(server.logFile)).lines;
          }
        }
      }
      targets.forEach(({ target, side, kind }, i) => {
        const cell = cells[i] as Cell;
        const { p50, p99 } = cell.samples.summary();
        const row: GridRow = {
          target: target.name,
          side,
          kind,
          connections: c,
          rps: cell.requests / cell.seconds,
          p50,
          p99,
          failures: cell.failures,
          cpuUsPerRequest: (cell.cpuSeconds / Math.max(1, cell.requests)) * 1e6,
        };
        if (side === 'server') {
          row.peakRssMb = cell.peakRssMb;
          row.logLinesPerRequest = cell.logLines / Math.max(1, cell.requests);
        }
        rows.push(row);
        progress(`${target.name} c=${c}: ${Math.round(row.rps)} req/s, p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms${cell.failures ? `, ${cell.failures} failed` : ''}`);
      });
    }
  } finally {
    rss.stop();
  }
  const order = (row: GridRow) => targets.findIndex((t) => t.target.name === row.target);
  return rows.sort((a, b) => order(a) - order(b) || a.connections - b.connections);
}
