/**
 * Staged shutdown and crash safety of the real server, run as a child process (`node --import tsx
 * src/main.ts`) against the fake Anthropic API: SIGTERM under 50 concurrent streams, kill -9 and a
 * restart on the same database, and a client that stops reading hitting the per-session close bound.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { SETTINGS } from '../../src/config.js';
import { contentText, startFakeAnthropic } from '../support/fake-anthropic.js';
import type { FakeAnthropic, MessagesRequestBody } from '../support/fake-anthropic.js';
import { postChat, readFrames, textOf } from '../support/sse-client.js';
import type { ChatFrame } from '../support/sse-client.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TEST_TIMEOUT = 60_000;

// ---------------------------------------------------------------------------
// Local helpers: child processes, logs, plain HTTP, streams
// ---------------------------------------------------------------------------

type LogLine = Record<string, unknown>;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface RunningServer {
  child: ChildProcess;
  port: number;
  base: string;
  stdout: () => string;
  stderr: () => string;
  logs: () => LogLine[];
  exited: Promise<Exit>;
}

const children: ChildProcess[] = [];
const tempDirs: string[] = [];
const fakes: FakeAnthropic[] = [];
const cleanups: (() => void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) cleanup();
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  await Promise.all(fakes.splice(0).map((fake) => fake.close()));
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'graceful-shutdown-'));
  tempDirs.push(dir);
  return dir;
}

async function fakeAnthropic(...args: Parameters<typeof startFakeAnthropic>): Promise<FakeAnthropic> {
  const fake = await startFakeAnthropic(...args);
  fakes.push(fake);
  return fake;
}

/** The test process's environment without ANTHROPIC_* or any server setting, plus `extra`. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  const configVars = new Set(SETTINGS.map((s) => s.env));
  for (const [name, value] of Object.entries(process.env)) {
    if (name.startsWith('ANTHROPIC_') || configVars.has(name)) continue;
    env[name] = value;
  }
  return { ...env, ...extra };
}

/** The settings every test shares: the fake upstream, no retries or fallbacks, limits out of the way. */
function serverEnv(fake: FakeAnthropic, databasePath: string, extra: Record<string, string>): NodeJS.ProcessEnv {
  return cleanEnv({
    ANTHROPIC_API_KEY: 'sk-test',
    ANTHROPIC_BASE_URL: fake.url,
    RETRY_MAX_RETRIES: '0',
    CHAT_FALLBACKS: 'none',
    DATABASE_PATH: databasePath,
    HOST: '127.0.0.1',
    PORT: '0',
    RATE_LIMIT_CHAT: '100000',
    RATE_LIMIT_SESSION: '100000',
    RATE_LIMIT_ANALYTICS: '100000',
    RATE_LIMIT_DEFAULT: '100000',
    LOG_LEVEL: 'info',
    HEALTH_CLAUDE_CHECK_INTERVAL_MS: '600000',
    ...extra,
  });
}

function parseLogLines(stdout: string): LogLine[] {
  return stdout
    .split('\n')
    .filter((line) => line.trim().startsWith('{'))
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as LogLine];
      } catch {
        return [];
      }
    });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves with the promise's value, or rejects after ms. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves once the server has logged a line matching `predicate`; rejects after ms. */
async function waitForLog(server: RunningServer, predicate: (line: LogLine) => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!server.logs().some(predicate)) {
    if (Date.now() > deadline) throw new Error(`no matching log line within ${ms} ms; events: ${server.logs().map((l) => l.event).join(', ')}`);
    await sleep(50);
  }
}

/** Spawns the server, waits for `server_started` (the port it chose) and for /readyz 200. */
async function startServer(env: NodeJS.ProcessEnv): Promise<RunningServer> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<Exit>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));

  const deadline = Date.now() + 20_000;
  let port = 0;
  while (port === 0) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the server exited early (${child.exitCode ?? child.signalCode}); stderr: ${err}; stdout: ${out}`);
    }
    if (Date.now() > deadline) throw new Error(`no server_started within 20 s; stderr: ${err}; stdout: ${out}`);
    const started = parseLogLines(out).find((line) => line.event === 'server_started');
    if (started) port = Number(started.port);
    else await sleep(50);
  }
  const base = `http://127.0.0.1:${port}`;
  const server: RunningServer = { child, port, base, stdout: () => out, stderr: () => err, logs: () => parseLogLines(out), exited };
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    try {
      const response = await httpRequest('GET', `${base}/readyz`);
      if (response.status === 200) return server;
      last = `status ${response.status}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await sleep(50);
  }
  throw new Error(`${base}/readyz was not ready (${last}); stderr: ${err}`);
}

interface PlainResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request on its own connection (no keep-alive pool to reuse a socket the server is closing). */
function httpRequest(method: string, url: string, body?: unknown, timeoutMs = 5000): Promise<PlainResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      url,
      {
        method,
        agent: false,
        headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        timeout: timeoutMs,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** A chat stream read in the background; never rejects (failures are recorded). */
interface ChatStream {
  message: string;
  status?: number;
  sessionId?: string;
  frames: ChatFrame[];
  /** Set when reading failed (the connection was cut). */
  error?: unknown;
  /** Resolves at the first text_chunk (or when the stream ends without one). */
  firstChunk: Promise<void>;
  finished: Promise<void>;
}

function openChat(base: string, message: string): ChatStream {
  let markFirst!: () => void;
  const firstChunk = new Promise<void>((resolve) => (markFirst = resolve));
  const stream: ChatStream = { message, frames: [], firstChunk, finished: Promise.resolve() };
  stream.finished = (async () => {
    try {
      const response = await postChat(base, { message });
      stream.status = response.status;
      stream.sessionId = response.headers.get('x-session-id') ?? undefined;
      if (response.status !== 200) {
        await response.text();
        return;
      }
      for await (const frame of readFrames(response)) {
        stream.frames.push(frame);
        if (frame.type === 'text_chunk') markFirst();
      }
    } catch (error) {
      stream.error = error;
    } finally {
      markFirst();
    }
  })();
  return stream;
}

/** A deterministic reply of `count` words for a tag: `<tag>-w0 <tag>-w1 ...`. */
function wordsReply(tag: string, count: number): string {
  return Array.from({ length: count }, (_, k) => `${tag}-w${k}`).join(' ');
}

function lastUserText(body: MessagesRequestBody): string {
  const lastUser = [...body.messages].reverse().find((m) => m.role === 'user');
  return contentText(lastUser?.content);
}

function wordCount(text: string): number {
  return text.split(/\s+/).filter((word) => word !== '').length;
}

interface MessageRow {
  session_id: string;
  seq: number;
  role: string;
  content: string;
  status: string;
  error: string | null;
  in_progress: number;
}

function readDatabase<T>(databasePath: string, read: (db: Database.Database) => T): T {
  const db = new Database(databasePath, { readonly: true, fileMustExist: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

/** The shape every stream must have: ids <turn>:1..n, exactly one `done`, last, right after a terminal frame. */
function expectWellTerminated(stream: ChatStream): ChatFrame {
  const { frames } = stream;
  const where = `stream ${stream.message} (session ${stream.sessionId}): ${JSON.stringify(frames.slice(-3))}`;
  expect(stream.error, where).toBeUndefined();
  expect(stream.status, where).toBe(200);
  expect(frames.map((f) => f.seq), where).toEqual(frames.map((_, i) => i + 1));
  expect(frames.filter((f) => f.type === 'done'), where).toHaveLength(1);
  expect(frames.at(-1)?.type, where).toBe('done');
  const terminal = frames.at(-2);
  expect(terminal, where).toBeDefined();
  expect(['result', 'error'], where).toContain(terminal?.type);
  if (terminal?.type === 'error') {
    expect(terminal, where).toMatchObject({ error_type: 'server_shutting_down', recoverable: true });
  }
  for (const frame of frames) expect(frame.session_id, where).toBe(stream.sessionId);
  return terminal as ChatFrame;
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

describe('graceful shutdown of the real server process', () => {
  it(
    'SIGTERM during 50 streaming chats: not ready at once, every stream terminated properly, new turns refused, exit 0, everything stored',
    async () => {
      // Every fifth chat gets a short reply (~0.6 s) that can finish within the drain + grace window;
      // the others (~3 s) are still running when the grace ends and are closed in batches.
      const fake = await fakeAnthropic({
        reply: (body) => {
          const tag = lastUserText(body);
          return wordsReply(tag, tag.startsWith('short') ? 12 : 60);
        },
        chunkDelayMs: 50,
      });
      const databasePath = path.join(tempDir(), 'data', 'chat.db');
      const server = await startServer(
        serverEnv(fake, databasePath, {
          SHUTDOWN_DRAIN_DELAY_MS: '300',
          SHUTDOWN_GRACE_MS: '500',
          SHUTDOWN_SESSION_TIMEOUT_MS: '2000',
          SHUTDOWN_BATCH_TIMEOUT_MS: '4000',
          SHUTDOWN_TIMEOUT_MS: '15000',
          SHUTDOWN_BATCH_SIZE: '10',
        }),
      );

      const streams = Array.from({ length: 50 }, (_, i) => openChat(server.base, `${i % 5 === 0 ? 'short' : 'long'}-${i}`));
      await within(Promise.all(streams.map((s) => s.firstChunk)), 20_000, 'a first text_chunk on all 50 streams');
      for (const stream of streams) {
        expect(stream.frames.some((f) => f.type === 'text_chunk'), `${stream.message}: ${String(stream.error)}`).toBe(true);
      }

      const signalledAt = Date.now();
      expect(server.child.kill('SIGTERM')).toBe(true);

      // /readyz turns 503 at once, well before the 300 ms drain delay is over.
      let notReadyAfterMs = -1;
      while (Date.now() - signalledAt < 2000) {
        const response = await httpRequest('GET', `${server.base}/readyz`);
        if (response.status === 503) {
          notReadyAfterMs = Date.now() - signalledAt;
          expect(JSON.parse(response.body)).toMatchObject({ status: 'draining' });
          break;
        }
        await sleep(10);
      }
      expect(notReadyAfterMs).toBeGreaterThanOrEqual(0);
      expect(notReadyAfterMs).toBeLessThan(300);

      // After the drain delay a new chat is refused (503 + Retry-After), or the server is already gone.
      await sleep(Math.max(0, signalledAt + 450 - Date.now()));
      try {
        const late = await httpRequest('POST', `${server.base}/api/chat`, { message: 'too late' });
        expect(late.status, late.body).toBe(503);
        expect(late.headers['retry-after']).toBeDefined();
        expect(Number(late.headers['retry-after'])).toBeGreaterThan(0);
        expect(JSON.parse(late.body)).toMatchObject({ error: { type: 'server_shutting_down' } });
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        expect(['ECONNREFUSED', 'ECONNRESET'], String(error)).toContain(code);
      }

      const exit = await within(server.exited, 20_000, 'exit after SIGTERM');
      const exitAfterMs = Date.now() - signalledAt;
      expect(exit, server.stderr()).toEqual({ code: 0, signal: null });
      expect(exitAfterMs).toBeLessThan(15_000);
      await within(Promise.all(streams.map((s) => s.finished)), 5000, 'every stream to end');

      // Every stream ended with a result or server_shutting_down error, then exactly one done.
      const terminals = streams.map((stream) => expectWellTerminated(stream));
      const shutDown = streams.filter((_, i) => terminals[i]?.type === 'error');
      const completed = streams.filter((_, i) => terminals[i]?.type === 'result');
      expect(shutDown.length + completed.length).toBe(50);
      expect(shutDown.length).toBeGreaterThan(0);

      // The logs tell the shutdown's story, in order, with batches of at most 10 sessions.
      const lines = server.logs();
      const events = lines.map((line) => line.event);
      expect(lines.find((line) => line.event === 'app_shutdown_start')).toMatchObject({ signal: 'SIGTERM' });
      const order = ['app_shutdown_start', 'shutdown_refusing_new_turns', 'sessions_cleanup', 'stability_cleanup', 'app_shutdown_complete', 'server_stopped'];
      for (const event of order) expect(events, `missing ${event}`).toContain(event);
      const positions = order.map((event) => events.indexOf(event));
      expect(positions).toEqual([...positions].sort((a, b) => a - b));
      const batches = lines.filter((line) => line.event === 'sessions_cleanup' && line.batch !== undefined);
      expect(batches.length).toBeGreaterThan(0);
      for (const batch of batches) {
        expect(batch.sessions).toBeGreaterThan(0);
        expect(batch.sessions).toBeLessThanOrEqual(10);
      }
      expect(batches.map((b) => b.batch)).toEqual(batches.map((_, i) => i + 1));
      const batchedSessions = batches.reduce((sum, b) => sum + Number(b.sessions), 0);
      const summary = lines.find((line) => line.event === 'sessions_cleanup' && line.done === true);
      expect(summary).toMatchObject({ closed: batchedSessions, timed_out: 0, batches: batches.length, done: true });
      expect(shutDown.length).toBeLessThanOrEqual(batchedSessions);
      expect(events).not.toContain('session_shutdown_timeout');
      expect(events).not.toContain('app_shutdown_timeout');

      // The database holds every user message and every answer, complete or incomplete as streamed.
      const { rows, sessions, integrity } = readDatabase(databasePath, (db) => ({
        rows: db.prepare('SELECT session_id, seq, role, content, status, error, in_progress FROM messages ORDER BY session_id, seq').all() as MessageRow[],
        sessions: db.prepare('SELECT COUNT(*) FROM sessions').pluck().get() as number,
        integrity: db.prepare('PRAGMA integrity_check').pluck().get() as string,
      }));
      expect(integrity).toBe('ok');
      expect(sessions).toBe(50); // the refused late chat created none
      for (const [i, stream] of streams.entries()) {
        const stored = rows.filter((row) => row.session_id === stream.sessionId);
        const where = `${stream.message}: ${JSON.stringify(stored)}`;
        expect(stored, where).toHaveLength(2);
        expect(stored[0], where).toMatchObject({ role: 'user', content: stream.message, status: 'complete', in_progress: 0 });
        const streamed = textOf(stream.frames);
        if (terminals[i]?.type === 'result') {
          expect(streamed, where).toBe(wordsReply(stream.message, stream.message.startsWith('short') ? 12 : 60));
          expect(stored[1], where).toMatchObject({ role: 'assistant', status: 'complete', content: streamed, in_progress: 0 });
        } else {
          expect(streamed.length, where).toBeGreaterThan(0);
          expect(stored[1], where).toMatchObject({
            role: 'assistant',
            status: 'incomplete',
            error: 'server_shutting_down',
            content: streamed,
            in_progress: 0,
          });
        }
      }
    },
    TEST_TIMEOUT,
  );

  it(
    'kill -9 during 20 chats: after a restart every user message and finished answer is there, interrupted answers are incomplete, none in progress',
    async () => {
      const fake = await fakeAnthropic({
        reply: (body) => {
          const tag = lastUserText(body);
          return wordsReply(tag, tag.startsWith('short') ? 8 : 80);
        },
        chunkDelayMs: 50,
      });
      const databasePath = path.join(tempDir(), 'chat.db');
      const env = serverEnv(fake, databasePath, { CHECKPOINT_INTERVAL_MS: '100' });
      const first = await startServer(env);

      // Five short chats finish before the crash.
      const finished = Array.from({ length: 5 }, (_, i) => openChat(first.base, `short-${i}`));
      await within(Promise.all(finished.map((s) => s.finished)), 15_000, 'the short chats to finish');
      for (const stream of finished) {
        expect(expectWellTerminated(stream).type, stream.message).toBe('result');
        expect(textOf(stream.frames)).toBe(wordsReply(stream.message, 8));
      }

      // Fifteen long ones (~4 s each) are in flight for about a second, then the process is killed.
      const inFlight = Array.from({ length: 15 }, (_, i) => openChat(first.base, `long-${i}`));
      await within(Promise.all(inFlight.map((s) => s.firstChunk)), 15_000, 'a first text_chunk on the long chats');
      for (const stream of inFlight) expect(stream.frames.some((f) => f.type === 'text_chunk'), stream.message).toBe(true);
      await sleep(1000);
      expect(first.child.kill('SIGKILL')).toBe(true);
      expect(await within(first.exited, 10_000, 'exit after SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
      await within(Promise.all(inFlight.map((s) => s.finished)), 10_000, 'the cut streams to end');
      for (const stream of inFlight) {
        expect(stream.frames.some((f) => f.type === 'result' || f.type === 'done'), stream.message).toBe(false);
      }

      // A new process on the same database recovers the answers the crash left streaming.
      const second = await startServer(env);
      expect(second.logs().find((line) => line.event === 'turns_recovered')).toMatchObject({ messages: inFlight.length });

      for (const stream of finished) {
        const history = await httpRequest('GET', `${second.base}/api/session-history/${stream.sessionId}`);
        expect(history.status, history.body).toBe(200);
        const { messages } = JSON.parse(history.body) as { messages: Record<string, unknown>[] };
        expect(messages).toHaveLength(2);
        expect(messages[0]).toMatchObject({ role: 'user', content: stream.message, status: 'complete', in_progress: false });
        expect(messages[1]).toMatchObject({ role: 'assistant', content: textOf(stream.frames), status: 'complete', in_progress: false });
      }
      for (const stream of inFlight) {
        const history = await httpRequest('GET', `${second.base}/api/session-history/${stream.sessionId}`);
        expect(history.status, history.body).toBe(200);
        const { messages } = JSON.parse(history.body) as { messages: Record<string, unknown>[] };
        const where = `${stream.message}: ${history.body}`;
        expect(messages, where).toHaveLength(2);
        expect(messages[0], where).toMatchObject({ role: 'user', content: stream.message, status: 'complete', in_progress: false });
        const answer = messages[1];
        expect(answer, where).toMatchObject({ role: 'assistant', in_progress: false });
        // Each client saw text, so the answer row existed (created at the first content) with text in it.
        expect(answer?.status, where).toBe('incomplete');
        const saved = String(answer?.content);
        const full = wordsReply(stream.message, 80);
        expect(saved.length, where).toBeGreaterThan(0);
        expect(full.startsWith(saved), where).toBe(true);
        // Checkpointed every 100 ms while 50 ms chunks arrive: the crash lost only the last few words.
        expect(wordCount(saved), where).toBeGreaterThanOrEqual(wordCount(textOf(stream.frames)) - 6);
      }

      expect(second.child.kill('SIGTERM')).toBe(true);
      expect(await within(second.exited, 15_000, 'exit of the restarted server')).toEqual({ code: 0, signal: null });

      const { rows, integrity } = readDatabase(databasePath, (db) => ({
        rows: db.prepare('SELECT session_id, seq, role, content, status, error, in_progress FROM messages').all() as MessageRow[],
        integrity: db.prepare('PRAGMA integrity_check').pluck().get() as string,
      }));
      expect(integrity).toBe('ok');
      expect(rows.filter((row) => row.in_progress !== 0)).toEqual([]);
      expect(rows.filter((row) => row.role === 'user')).toHaveLength(20);
      expect(rows.filter((row) => row.role === 'assistant' && row.status === 'complete')).toHaveLength(5);
      expect(rows.filter((row) => row.role === 'assistant' && row.status === 'incomplete')).toHaveLength(15);
    },
    TEST_TIMEOUT,
  );

  it(
    'a client that stops reading does not hold its turn: the answer completes, the client is cut off, and shutdown is prompt',
    async () => {
      // ~20 MB of text in 200 deltas: far more than the socket buffers between server and client hold.
      const fake = await fakeAnthropic({ reply: `${'x'.repeat(99)} `.repeat(200_000), chunkCount: 200, chunkDelayMs: 0 });
      const databasePath = path.join(tempDir(), 'chat.db');
      const server = await startServer(
        serverEnv(fake, databasePath, {
          SHUTDOWN_SESSION_TIMEOUT_MS: '500',
          SHUTDOWN_GRACE_MS: '0',
          SHUTDOWN_DRAIN_DELAY_MS: '0',
          SHUTDOWN_TIMEOUT_MS: '10000',
        }),
      );

      // A raw request whose response is never read: the server's writes back up.
      const payload = JSON.stringify({ message: 'a huge answer please' });
      const req = http.request(`${server.base}/api/chat`, {
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      });
      req.on('error', () => {}); // destroyed at the end on purpose
      cleanups.push(() => req.destroy());
      const response = await within(
        new Promise<http.IncomingMessage>((resolve) => {
          req.on('response', (res) => {
            res.pause();
            res.on('error', () => {});
            resolve(res);
          });
          req.end(payload);
        }),
        10_000,
        'the stream headers',
      );
      expect(response.statusCode).toBe(200);
      const sessionId = String(response.headers['x-session-id']);

      // The turn writes into its stream log at upstream speed, whatever the client does: it completes,
      // and the client that took nothing while the answer grew is disconnected (it could resume).
      await waitForLog(server, (line) => line.event === 'chat_turn_completed' && line.session_id === sessionId, 20_000);
      await waitForLog(server, (line) => line.event === 'stream_client_cut_off' && line.reason === 'slow_client', 10_000);

      const signalledAt = Date.now();
      expect(server.child.kill('SIGTERM')).toBe(true);
      const exit = await within(server.exited, 15_000, 'exit after SIGTERM');
      const exitAfterMs = Date.now() - signalledAt;
      req.destroy();

      const lines = server.logs();
      const events = lines.map((line) => line.event);
      expect(lines.find((line) => line.event === 'sessions_cleanup' && line.done === true)).toMatchObject({ closed: 0, timed_out: 0 });
      expect(exit, `stderr: ${server.stderr()}\nlogs: ${events.join(', ')}`).toEqual({ code: 0, signal: null });
      expect(exitAfterMs).toBeLessThan(10_000);
      expect(events).toContain('app_shutdown_complete');
      expect(events).not.toContain('app_shutdown_timeout');

      const integrity = readDatabase(databasePath, (db) => db.prepare('PRAGMA integrity_check').pluck().get() as string);
      expect(integrity).toBe('ok');
      const stored = readDatabase(databasePath, (db) =>
        db.prepare("SELECT status, in_progress, length(content) AS chars FROM messages WHERE session_id = ? AND role = 'assistant'").all(sessionId),
      );
      expect(stored).toEqual([{ status: 'complete', in_progress: 0, chars: 20_000_000 }]);
    },
    TEST_TIMEOUT,
  );
});
