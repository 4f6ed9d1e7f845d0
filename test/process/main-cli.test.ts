import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, it, expect } from 'vitest';
import { SETTINGS } from '../../src/config.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TIMEOUT = 20_000;

/** The test process's environment without any ANTHROPIC_* variable (and without config the tests set). */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  const configVars = new Set(SETTINGS.map((s) => s.env));
  for (const [name, value] of Object.entries(process.env)) {
    if (name.startsWith('ANTHROPIC_') || configVars.has(name)) continue;
    env[name] = value;
  }
  return { ...env, ...extra };
}

interface Running {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children: ChildProcess[] = [];
const tempDirs: string[] = [];

afterEach(() => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function startMain(args: string[], env: NodeJS.ProcessEnv): Running {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Resolves with the exit, or rejects after ms. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}


/** JSON log lines on stdout; other lines are ignored. */
function logLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((line) => line.trim().startsWith('{'))
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

async function waitUntilReady(url: string, running: Running, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (running.child.exitCode !== null) {
      throw new Error(`the server exited early with ${running.child.exitCode}; stderr: ${running.stderr()}`);
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (response.status === 200) return;
      last = `status ${response.status}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} was not ready within ${timeoutMs} ms (${last}); stderr: ${running.stderr()}`);
}

describe('main entry point', () => {
  it(
    '--help exits 0 and lists every configuration variable',
    async () => {
      const running = startMain(['--help'], cleanEnv());
      const { code } = await within(running.exited, 15_000, '--help exit');
      expect(code).toBe(0);
      for (const setting of SETTINGS) expect(running.stdout()).toContain(setting.env);
      expect(running.stderr()).toBe('');
    },
    TIMEOUT,
  );

  it(
    'a bad PORT exits with code 2 and names PORT on stderr',
    async () => {
      const running = startMain([], cleanEnv({ PORT: 'notaport' }));
      const { code } = await within(running.exited, 15_000, 'config error exit');
      expect(code).toBe(2);
      expect(running.stderr()).toContain('PORT');
      expect(running.stderr()).toContain('notaport');
      expect(running.stderr()).toContain('--help');
    },
    TIMEOUT,
  );

  it(
    'exits at once on a second signal, without waiting out the drain delay',
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'main-cli-'));
      tempDirs.push(dir);
      const running = startMain(
        [],
        cleanEnv({ HOST: '127.0.0.1', PORT: '0', DATABASE_PATH: path.join(dir, 'chat.db'), SHUTDOWN_DRAIN_DELAY_MS: '10000' }),
      );
      await expect.poll(() => logLines(running.stdout()).some((line) => line.event === 'server_started'), { timeout: 15_000, interval: 50 }).toBe(true);
      running.child.kill('SIGTERM');
      await expect.poll(() => logLines(running.stdout()).some((line) => line.event === 'app_shutdown_start'), { timeout: 5000, interval: 20 }).toBe(true);
      const signalledAt = Date.now();
      running.child.kill('SIGTERM');
      const { code } = await within(running.exited, 5000, 'exit after the second signal');
      expect(code).toBe(1);
      expect(Date.now() - signalledAt).toBeLessThan(5000); // long before the 10 s drain delay
    },
    TIMEOUT,
  );

  it(
    'refuses to start on 0.0.0.0 without API keys (exit 2, naming HOST)',
    async () => {
      const running = startMain([], cleanEnv({ HOST: '0.0.0.0', PORT: '0' }));
      const { code } = await within(running.exited, 15_000, 'refusal exit');
      expect(code).toBe(2);
      expect(running.stderr()).toContain('HOST="0.0.0.0"');
      expect(running.stderr()).toContain('API_KEYS');
    },
    TIMEOUT,
  );

  it(
    'starts, answers /readyz, logs server_started, and stops cleanly on SIGTERM',
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'main-cli-'));
      tempDirs.push(dir);
      const databasePath = path.join(dir, 'db', 'chat.db');
      // PORT=0: the server picks a free port and logs it, so no other test can take it in between.
      const running = startMain(
        [],
        cleanEnv({ HOST: '127.0.0.1', PORT: '0', DATABASE_PATH: databasePath, LOG_LEVEL: 'info', SHUTDOWN_DRAIN_DELAY_MS: '0' }),
      );
      await expect
        .poll(() => {
          if (running.child.exitCode !== null) throw new Error(`the server exited early; stderr: ${running.stderr()}`);
          return logLines(running.stdout()).some((line) => line.event === 'server_started');
        }, { timeout: 15_000, interval: 50 })
        .toBe(true);
      const started = logLines(running.stdout()).find((line) => line.event === 'server_started');
      const port = Number(started?.port);
      expect(port).toBeGreaterThan(0);
      await waitUntilReady(`http://127.0.0.1:${port}/readyz`, running, 10_000);

      expect(started, `stdout: ${running.stdout()}`).toMatchObject({
        event: 'server_started',
        host: '127.0.0.1',
        port,
        provider: 'simulated',
        database: databasePath,
      });
      expect(fs.existsSync(databasePath)).toBe(true);

      expect(running.child.kill('SIGTERM')).toBe(true);
      const { code, signal } = await within(running.exited, 5000, 'exit after SIGTERM');
      expect(signal).toBeNull();
      expect(code).toBe(0);

      const lines = logLines(running.stdout());
      expect(lines.find((line) => line.event === 'app_shutdown_start')).toMatchObject({ signal: 'SIGTERM' });
      const events = lines.map((line) => line.event);
      expect(events).toEqual(expect.arrayContaining(['app_shutdown_start', 'sessions_cleanup', 'stability_cleanup', 'app_shutdown_complete']));
      expect(events).toContain('server_stopped');
      expect(events.indexOf('app_shutdown_start'), events.join(', ')).toBeLessThan(events.indexOf('server_stopped'));
    },
    TIMEOUT,
  );
});
