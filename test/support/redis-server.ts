import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';

export interface RedisServerHandle {
  url: string;
  port: number;
  /** Stops the server (SIGTERM, then SIGKILL after a timeout) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts the server again on the same port (stopping it first if it is running). */
  restart(): Promise<void>;
}

const READY_TIMEOUT_MS = 5_000;
const STOP_TIMEOUT_MS = 3_000;

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Resolves the redis-server binary from REDIS_SERVER_BIN or PATH; throws a clear error when missing. */
export function resolveRedisServerBin(): string {
  const configured = process.env.REDIS_SERVER_BIN;
  const name = configured !== undefined && configured !== '' ? configured : 'redis-server';
  const candidates = name.includes('/')
    ? [name]
    : (process.env.PATH ?? '')
        .split(delimiter)
        .filter((dir) => dir !== '')
        .map((dir) => join(dir, name));
  for (const candidate of candidates) {
    if (isExecutable(candidate)) return candidate;
  }
  const where = configured ? `REDIS_SERVER_BIN=${configured} is not an executable file` : 'redis-server is not on PATH';
  const hint = process.env.CI
    ? 'CI must run the Redis-backed cache tests: install redis-server in the CI image (e.g. apt-get install redis-server).'
    : 'Install redis-server (e.g. apt-get install redis-server) or set REDIS_SERVER_BIN; these tests are not skipped.';
  throw new Error(`Cannot start Redis for tests: ${where}. ${hint}`);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('could not allocate a port'))));
    });
  });
}

/** One PING over a raw socket; resolves true on +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let buffer = '';
    const done = (ok: boolean) => {
      socket.removeAllListeners();
      socket.on('error', () => undefined);
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      if (buffer.includes('\r\n')) done(buffer.startsWith('+PONG'));
    });
  });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Spawns a throw-away redis-server on a free 127.0.0.1 port (no persistence, temp working dir) and
 * waits until it answers PING. Throws when the binary is missing — these tests must not be skipped.
 */
export async function startRedisServer(): Promise<RedisServerHandle> {
  const bin = resolveRedisServerBin();
  const port = await freePort();
  let child: ChildProcess | undefined;
  let exited: Promise<void> | undefined;
  let dir: string | undefined;
  const killOnExit = () => child?.kill('SIGKILL');

  async function launch(): Promise<void> {
    dir = await mkdtemp(join(tmpdir(), 'redis-test-'));
    const proc = spawn(
      bin,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', dir],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = proc;
    let output = '';
    const collect = (chunk: Buffer) => {
      if (output.length < 20_000) output += chunk.toString('utf8');
    };
    proc.stdout?.on('data', collect);
    proc.stderr?.on('data', collect);
    let exitInfo: string | undefined;
    exited = new Promise<void>((resolve) => {
      proc.once('exit', (code, signal) => {
        exitInfo = `code=${code} signal=${signal}`;
        resolve();
      });
      proc.once('error', (error) => {
        exitInfo = `spawn error: ${error.message}`;
        resolve();
      });
    });
    process.once('exit', killOnExit);

    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (exitInfo !== undefined) {
        throw new Error(`redis-server exited before accepting connections (${exitInfo}):\n${output}`);
      }
      if (await ping(port)) return;
      if (Date.now() > deadline) {
        await shutdown();
        throw new Error(`redis-server did not accept connections on port ${port} within ${READY_TIMEOUT_MS} ms:\n${output}`);
      }
      await sleep(25);
    }
  }

  async function shutdown(): Promise<void> {
    const proc = child;
    const done = exited;
    child = undefined;
    exited = undefined;
    process.removeListener('exit', killOnExit);
    if (proc !== undefined && done !== undefined) {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const timedOut = await Promise.race([
          done.then(() => false),
          new Promise<boolean>((resolve) => {
            timer = setTimeout(() => resolve(true), STOP_TIMEOUT_MS);
          }),
        ]);
        clearTimeout(timer);
        if (timedOut) {
          proc.kill('SIGKILL');
          await done;
        }
      }
      await done;
    }
    if (dir !== undefined) {
      const path = dir;
      dir = undefined;
      await rm(path, { recursive: true, force: true });
    }
  }

  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: shutdown,
    async restart() {
      await shutdown();
      await launch();
    },
  };
}

/**
 * A plain client for a test to look into Redis directly (never through the code under test).
 * Errors are swallowed: tests stop and restart the server under it.
 */
export async function connectAdminClient(
  url: string,
  options: RedisOptions = { maxRetriesPerRequest: 1, enableOfflineQueue: false },
): Promise<Redis> {
  const admin = new Redis(url, { lazyConnect: true, ...options });
  admin.on('error', () => undefined);
  await admin.connect();
  return admin;
}
