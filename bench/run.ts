/**
 * `npm run bench`: what the gateway costs, measured in one run on one machine (README "Benchmarks").
 *
 * Builds the server, starts the fake upstream (fixed latency), a zero-latency one (soak), the bare
 * pass-through proxy and the built server, each in its own process; then measures open streams (on the
 * fresh server), the grid, time to first delta, the soak and stored sessions; prints a markdown table
 * and writes bench/results/<date>.json (and latest.json).
 *
 * Options (`npm run bench -- --seconds=3 --soak=100000`): --seconds per cell (5), --latency of the
 * upstream in ms (1), --streams (1000), --sessions (100000), --soak requests (1000000), --no-build,
 * --cpu-prof (profile the server into bench/results/profiles/), --root=<checkout> (measure another copy).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runGrid, type GridTarget } from './phases/grid.js';
import { openStreams } from './phases/open-streams.js';
import { storedSessions } from './phases/sessions.js';
import { soak } from './phases/soak.js';
import { measureTtfb } from './phases/ttfb.js';
import { startScript, type Child } from './lib/processes.js';
import { checkTargets, markdown, type BenchResults } from './lib/report.js';
import { startServer } from './lib/server.js';
import { chat, messages, soak as soakTarget } from './lib/targets.js';

const here = dirname(fileURLToPath(import.meta.url));

function option(name: string, fallback: number): number {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  return arg ? Number(arg.slice(name.length + 3)) : fallback;
}
const flag = (name: string) => process.argv.includes(`--${name}`);
/** The checkout whose server is measured (default this one): compare a change against a clean copy. */
const root = resolve(process.argv.find((a) => a.startsWith('--root='))?.slice(7) ?? join(here, '..'));

const settings = {
  upstreamLatencyMs: option('latency', 1),
  cellSeconds: option('seconds', 5),
  connections: [1, 16, 64],
  streams: option('streams', 1000),
  sessions: option('sessions', 100_000),
  soakRequests: option('soak', 1_000_000),
};
const HOLD_MS = 12_000;

const started = performance.now();
const elapsed = () => `${Math.round((performance.now() - started) / 1000)}s`.padStart(5);
const progress = (line: string) => process.stderr.write(`[bench ${elapsed()}] ${line}\n`);

async function main(): Promise<void> {
  if (!flag('no-build')) {
    progress('npm run build');
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const work = mkdtempSync(join(tmpdir(), 'claude-chat-bench-'));
  const children: Child[] = [];
  try {
    const fake = await startScript(join(here, 'upstream/fake-upstream.ts'), [String(settings.upstreamLatencyMs), String(HOLD_MS)]);
    children.push(fake);
    const instant = await startScript(join(here, 'upstream/fake-upstream.ts'), ['0']);
    children.push(instant);
    const proxy = await startScript(join(here, 'upstream/passthrough-proxy.ts'), [fake.url]);
    children.push(proxy);
    const profileDir = join(here, 'results/profiles');
    if (flag('cpu-prof')) mkdirSync(profileDir, { recursive: true });
    const server = await startServer(root, work, fake.url, instant.url, flag('cpu-prof') ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []);
    children.push(server);
    progress(`upstream ${fake.url} (${settings.upstreamLatencyMs} ms), floor ${proxy.url}, server ${server.url} (log ${server.logFile})`);

    // First, on the fresh server: what open streams cost, not what the load tests left in the heap.
    progress(`${settings.streams} open streams`);
    const open = await openStreams(messages('hold', server.url, 'stream', 'hold-model'), server.pid, settings.streams, 60_000);
    progress(`${open.opened} open together, peak RSS ${open.peakRssMb.toFixed(0)} MB`);

    const targets: GridTarget[] = [
      { target: messages('direct (JSON)', fake.url, 'json'), side: 'direct', kind: 'json', pid: fake.pid },
      { target: messages('floor proxy (JSON)', proxy.url, 'json'), side: 'floor', kind: 'json', pid: proxy.pid },
      { target: messages('server /v1/messages (JSON)', server.url, 'json'), side: 'server', kind: 'json', pid: server.pid },
      { target: messages('direct (stream)', fake.url, 'stream'), side: 'direct', kind: 'stream', pid: fake.pid },
      { target: messages('floor proxy (stream)', proxy.url, 'stream'), side: 'floor', kind: 'stream', pid: proxy.pid },
      { target: messages('server /v1/messages (stream)', server.url, 'stream'), side: 'server', kind: 'stream', pid: server.pid },
    ];
    // Chat turns in a pass of their own: each costs ~1.3 ms of CPU and leaves garbage that V8 would
    // otherwise collect during the /v1/messages rounds that follow, billing them for it.
    const chatTargets: GridTarget[] = [{ target: chat(server.url), side: 'server', kind: 'chat', pid: server.pid }];
    const grid = [
      ...(await runGrid(targets, settings.connections, settings.cellSeconds, 3, server, progress)),
      ...(await runGrid(chatTargets, settings.connections, settings.cellSeconds, 3, server, progress)),
    ];

    progress('time to first delta');
    const ttfb = await measureTtfb(
      [
        { target: messages('direct (stream)', fake.url, 'stream'), marker: 'content_block_delta' },
        { target: messages('floor proxy (stream)', proxy.url, 'stream'), marker: 'content_block_delta' },
        { target: messages('server /v1/messages (stream)', server.url, 'stream'), marker: 'content_block_delta' },
        { target: chat(server.url), marker: '"text_chunk"' },
      ],
      10,
      100,
    );

    progress(`soak: ${settings.soakRequests.toLocaleString('en')} requests`);
    const soaked = await soak(soakTarget(server.url), server.pid, settings.soakRequests, 64, progress);

    progress(`${settings.sessions.toLocaleString('en')} stored sessions`);
    const sessions = await storedSessions(server.url, server.pid, settings.sessions, 3);

    const date = new Date().toISOString();
    const cpuList = cpus();
    const partial = {
      date,
      machine: { cpus: cpuList.length, cpuModel: cpuList[0]?.model.trim() ?? 'unknown', memoryGb: Math.round(totalmem() / 2 ** 30), node: process.versions.node, platform: `${process.platform} ${process.arch}` },
      settings,
      grid,
      ttfb,
      openStreams: open,
      sessions,
      soak: soaked,
    };
    const results: BenchResults = { ...partial, targets: checkTargets(partial), durationSeconds: (performance.now() - started) / 1000 };
    const dir = join(here, 'results');
    mkdirSync(dir, { recursive: true });
    const json = `${JSON.stringify(results, null, 2)}\n`;
    const file = join(dir, `${date.slice(0, 19).replace(/:/g, '-')}.json`);
    writeFileSync(file, json);
    writeFileSync(join(dir, 'latest.json'), json);
    process.stdout.write(`\n${markdown(results)}\n\nWritten to ${file}\n`);
  } finally {
    for (const child of children.reverse()) await child.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  progress(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
});
