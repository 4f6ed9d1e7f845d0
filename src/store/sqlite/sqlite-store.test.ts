import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { migrations } from './migrations.js';
import { describe, it, expect, beforeEach, afterEach, vi } from 'vitest';
import type { FinishMessageFields, NewMessage, SessionRecord } from '../types.js';
import type { SqliteSessionStore} from './sqlite-store.js';
import { InvalidCursorError, openSqliteStore } from './sqlite-store.js';

let tmpDir: string;
let dbPath: string;
let store: SqliteSessionStore;

beforeEach(() => {
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-store-'));
  dbPath = path.join(tmpDir, 'chat.db');
  store = openSqliteStore(dbPath);
});

afterEach(() => {
  vi.useRealTimers();
  store.close();
  fs.rmSync(tmpDir, { recursive: true, force: true });
});

/** A second, raw connection to inspect what actually reached the file. */
function withRawDb<T>(fn: (db: Database.Database) => T): T {
  const db = new Database(dbPath);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

function message(sessionId: string, id: string, extra: Partial<NewMessage> = {}): NewMessage {
  return { id, sessionId, role: 'user', content: `content of ${id}`, status: 'complete', ...extra };
}

/** Follows nextCursor until the end and returns every page. */
function allPages(owner: string | null | undefined, limit: number): SessionRecord[][] {
  const pages: SessionRecord[][] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = store.listSessions({ owner, limit, cursor });
    pages.push(page.items);
    if (page.nextCursor === null) return pages;
    cursor = page.nextCursor;
  }
}

const byCreatedDescIdDesc = (a: SessionRecord, b: SessionRecord): number =>
  a.createdAt === b.createdAt ? (a.id < b.id ? 1 : -1) : a.createdAt < b.createdAt ? 1 : -1;

describe('SqliteSessionStore sessions', () => {
  it('creates and gets a session', () => {
    const created = store.createSession({ id: 's1', owner: 'k1', config: { model: 'm', max_tokens: 100 } });
    expect(created).toMatchObject({
      id: 's1',
      owner: 'k1',
      config: { model: 'm', max_tokens: 100 },
      messageCount: 0,
      totalInputTokens: 0,
      totalOutputTokens: 0,
      totalCostUsd: 0,
    });
    expect(created.createdAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(store.getSession('s1')).toEqual(created);
    expect(store.getSession('missing')).toBeNull();
  });

  it('shallow-merges config updates, ignoring undefined values, and bumps updatedAt', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2024-01-01T00:00:00.000Z'));
    store.createSession({ id: 's1', owner: null, config: { model: 'm', temperature: 0.5, allowed_tools: ['a'] } });
    vi.setSystemTime(new Date('2024-01-01T00:00:01.000Z'));

    const updated = store.updateSessionConfig('s1', { temperature: 1, model: undefined, allowed_tools: ['b', 'c'] });

    expect(updated?.config).toEqual({ model: 'm', temperature: 1, allowed_tools: ['b', 'c'] });
    expect(updated?.updatedAt).toBe('2024-01-01T00:00:01.000Z');
    expect(updated?.createdAt).toBe('2024-01-01T00:00:00.000Z');
    expect(store.getSession('s1')).toEqual(updated);
    expect(store.updateSessionConfig('missing', { model: 'x' })).toBeNull();
  });

  it('deletes a session and cascades to its messages', () => {
    store.createSession({ id: 's1', owner: null, config: {} });
    store.appendMessage(message('s1', 'm1'));
    store.appendMessage(message('s1', 'm2'));

    expect(store.deleteSession('s1')).toBe(true);
    expect(store.getSession('s1')).toBeNull();
    expect(store.deleteSession('s1')).toBe(false);
    expect(withRawDb((db) => db.prepare('SELECT COUNT(*) AS n FROM messages').get())).toEqual({ n: 0 });
  });

  it('clears messages, resets counters and keeps seq increasing', () => {
    store.createSession({ id: 's1', owner: null, config: {} });
    store.appendMessage(message('s1', 'm1', { inputTokens: 10, outputTokens: 5, costUsd: 0.01 }));
    store.appendMessage(message('s1', 'm2', { inputTokens: 10, outputTokens: 5, costUsd: 0.01 }));

    expect(store.clearMessages('s1')).toEqual({ deleted: 2 });
    expect(store.getSession('s1')).toMatchObject({
      messageCount: 0,
      totalInputTokens: 0,
      totalOutputTokens: 0,
      totalCostUsd: 0,
    });
    expect(store.allMessages('s1')).toEqual([]);
    expect(store.appendMessage(message('s1', 'm3'))?.seq).toBe(3);
    expect(store.clearMessages('missing')).toBeNull();
  });
});

describe('SqliteSessionStore messages', () => {
  beforeEach(() => {
    store.createSession({ id: 's1', owner: null, config: {} });
  });

  it('appends with increasing seq and updates the session counters', () => {
    const first = store.appendMessage(message('s1', 'm1', { inputTokens: 10, outputTokens: 0, costUsd: 0.25 }));
    const second = store.appendMessage(
      message('s1', 'm2', { role: 'assistant', inputTokens: 20, outputTokens: 7, costUsd: 0.5, model: 'm' }),
    );
    const third = store.appendMessage(message('s1', 'm3', { status: 'error', error: 'overloaded' }));

    expect([first?.seq, second?.seq, third?.seq]).toEqual([1, 2, 3]);
    expect(second).toMatchObject({ role: 'assistant', model: 'm', stopReason: null, error: null, toolEvents: [] });
    expect(third).toMatchObject({ status: 'error', error: 'overloaded', inputTokens: 0, costUsd: 0 });
    expect(store.getSession('s1')).toMatchObject({
      messageCount: 3,
      totalInputTokens: 30,
      totalOutputTokens: 7,
      totalCostUsd: 0.75,
    });
    expect(store.allMessages('s1')).toEqual([first, second, third]);
  });

  it('returns null and inserts nothing for an unknown session', () => {
    expect(store.appendMessage(message('missing', 'm1'))).toBeNull();
    expect(withRawDb((db) => db.prepare('SELECT COUNT(*) AS n FROM messages').get())).toEqual({ n: 0 });
    expect(store.getSession('s1')?.messageCount).toBe(0);
  });

  it('paginates messages with afterSeq', () => {
    for (let i = 1; i <= 5; i++) store.appendMessage(message('s1', `m${i}`));

    const seqs = (afterSeq: number | undefined, limit: number): number[] =>
      store.listMessages('s1', { limit, afterSeq }).map((m) => m.seq);
    expect(seqs(undefined, 2)).toEqual([1, 2]);
    expect(seqs(2, 2)).toEqual([3, 4]);
    expect(seqs(4, 2)).toEqual([5]);
    expect(seqs(5, 2)).toEqual([]);
    expect(store.listMessages('other', { limit: 10 })).toEqual([]);
  });

  it('round-trips tool events', () => {
    const toolEvents = [
      { type: 'tool_use' as const, id: 't1', name: 'search', input: { q: 'x', nested: [1, 2] } },
      { type: 'tool_result' as const, tool_use_id: 't1', content: 'found', is_error: false },
    ];
    const appended = store.appendMessage(message('s1', 'm1', { role: 'assistant', toolEvents }));

    expect(appended?.toolEvents).toEqual(toolEvents);
    expect(store.allMessages('s1')[0]?.toolEvents).toEqual(toolEvents);
  });
});

describe('SqliteSessionStore listSessions', () => {
  it('pages through sessions with distinct createdAt in createdAt DESC order', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const ids = ['c', 'a', 'g', 'e', 'b', 'f', 'd'];
    ids.forEach((id, i) => {
      vi.setSystemTime(new Date(Date.UTC(2024, 0, 1, 0, 0, i)));
      store.createSession({ id, owner: null, config: {} });
    });

    const pages = allPages(undefined, 3);

    expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
    expect(pages.flat().map((s) => s.id)).toEqual([...ids].reverse());
  });

  it('breaks createdAt ties by id DESC without skipping or repeating', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2024-01-01T00:00:00.000Z'));
    const created = ['s3', 's1', 's7', 's5', 's2', 's6', 's4'].map((id) =>
      store.createSession({ id, owner: null, config: {} }),
    );

    const listed = allPages(undefined, 3).flat();

    expect(listed.map((s) => s.id)).toEqual([...created].sort(byCreatedDescIdDesc).map((s) => s.id));
    expect(new Set(listed.map((s) => s.id)).size).toBe(7);
  });

  it('returns a null cursor when the last page is exactly full', () => {
    for (let i = 0; i < 3; i++) store.createSession({ id: `s${i}`, owner: null, config: {} });
    const page = store.listSessions({ limit: 3 });
    expect(page.items).toHaveLength(3);
    expect(page.nextCursor).toBeNull();
  });

  it('filters by owner: undefined = all, null = no owner, string = that owner', () => {
    const owners: (string | null)[] = ['k1', null, 'k2', 'k1', null, 'k1'];
    owners.forEach((owner, i) => store.createSession({ id: `s${i}`, owner, config: {} }));

    const idsOf = (owner: string | null | undefined): string[] =>
      allPages(owner, 2)
        .flat()
        .map((s) => s.id)
        .sort();
    expect(idsOf(undefined)).toEqual(['s0', 's1', 's2', 's3', 's4', 's5']);
    expect(idsOf(null)).toEqual(['s1', 's4']);
    expect(idsOf('k1')).toEqual(['s0', 's3', 's5']);
    expect(idsOf('nobody')).toEqual([]);

    expect(store.countSessions()).toBe(6);
    expect(store.countSessions(undefined)).toBe(6);
    expect(store.countSessions(null)).toBe(2);
    expect(store.countSessions('k1')).toBe(3);
    expect(store.countSessions('nobody')).toBe(0);
  });

  it('throws InvalidCursorError for malformed cursors', () => {
    store.createSession({ id: 's1', owner: null, config: {} });
    const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
    const bad = ['not base64!', '', '%%%', encode({ a: 1 }), encode(['only-one']), encode([1, 2]), 'bm90IGpzb24'];

    for (const cursor of bad) {
      expect(() => store.listSessions({ limit: 10, cursor }), `cursor ${JSON.stringify(cursor)}`).toThrow(
        InvalidCursorError,
      );
    }
    expect(new InvalidCursorError()).toBeInstanceOf(Error);
    expect(new InvalidCursorError().message).toMatch(/cursor/i);
  });
});

describe('SqliteSessionStore file handling', () => {
  it('persists data across close and reopen, applying migrations once', () => {
    store.createSession({ id: 's1', owner: 'k1', config: { model: 'm' } });
    store.appendMessage(message('s1', 'm1', { toolEvents: [{ type: 'tool_use', name: 'x' }] }));
    store.close();

    store = openSqliteStore(dbPath);

    expect(store.getSession('s1')).toMatchObject({ owner: 'k1', config: { model: 'm' }, messageCount: 1 });
    expect(store.allMessages('s1').map((m) => m.id)).toEqual(['m1']);
    expect(store.appendMessage(message('s1', 'm2'))?.seq).toBe(2);
    const versions = withRawDb((db) =>
      db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all(),
    );
    // Every migration applied exactly once, in order, after a reopen.
    expect(versions).toEqual(migrations.map((m) => ({ version: m.version, name: m.name })));
  });

  it('uses WAL journal mode', () => {
    expect(withRawDb((db) => db.pragma('journal_mode', { simple: true }))).toBe('wal');
  });

  it('creates a missing parent directory', () => {
    const nested = path.join(tmpDir, 'nested', 'deeper', 'chat.db');
    const other = openSqliteStore(nested);
    try {
      expect(fs.existsSync(nested)).toBe(true);
      expect(other.ping()).toBe(true);
    } finally {
      other.close();
    }
  });

  it('pings true while open and false after close; close is idempotent', () => {
    expect(store.ping()).toBe(true);
    store.close();
    expect(store.ping()).toBe(false);
    expect(() => store.close()).not.toThrow();
  });

  it('works in memory', () => {
    const memory = openSqliteStore(':memory:');
    try {
      memory.createSession({ id: 's1', owner: null, config: {} });
      expect(memory.kind).toBe('sqlite');
      expect(memory.countSessions()).toBe(1);
    } finally {
      memory.close();
    }
  });
});

describe('SqliteSessionStore in-progress messages', () => {
  const finished = (extra: Partial<FinishMessageFields> = {}): FinishMessageFields => ({
    content: 'final answer',
    status: 'complete',
    inputTokens: 10,
    outputTokens: 5,
    costUsd: 0.25,
    model: 'claude-x',
    stopReason: 'end_turn',
    error: null,
    toolEvents: [],
    mode: 'live',
    ...extra,
  });

  beforeEach(() => {
    store.createSession({ id: 's1', owner: null, config: {} });
    store.appendMessage(message('s1', 'u1', { inputTokens: 3, costUsd: 0.5 }));
  });

  function start(id = 'a1', sessionId = 's1') {
    return store.appendMessage(message(sessionId, id, { role: 'assistant', content: '', inProgress: true }));
  }

  it('migration 5 adds the in_progress column and its partial index', () => {
    const columns = withRawDb((db) => db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('messages')").all());
    expect(columns.map((c) => c.name)).toContain('in_progress');
    const index = withRawDb((db) =>
      db.prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'messages_in_progress_idx'").get(),
    );
    expect(index).toMatchObject({ sql: expect.stringMatching(/WHERE in_progress = 1/) });
    expect(migrations.at(-1)).toMatchObject({ version: 5, name: 'message_in_progress' });
  });

  it('appends messages not in progress by default, and in progress on request', () => {
    expect(store.allMessages('s1')[0]?.inProgress).toBe(false);
    expect(start()).toMatchObject({ inProgress: true, status: 'complete', content: '', seq: 2 });
    expect(store.allMessages('s1').map((m) => m.inProgress)).toEqual([false, true]);
  });

  it('checkpoints content and tool events only while in progress, in the right session', () => {
    start();
    const toolEvents = [{ type: 'tool_use' as const, id: 't1', name: 'Read' }];
    expect(store.checkpointMessage('s1', 'a1', 'partial', toolEvents)).toBe(true);
    expect(store.allMessages('s1')[1]).toMatchObject({ content: 'partial', toolEvents, inProgress: true });

    expect(store.checkpointMessage('other', 'a1', 'x', [])).toBe(false);
    expect(store.checkpointMessage('s1', 'missing', 'x', [])).toBe(false);
    expect(store.checkpointMessage('s1', 'u1', 'x', [])).toBe(false); // not in progress
    expect(store.allMessages('s1')[0]?.content).toBe('content of u1');

    expect(store.finishMessage('s1', 'a1', finished())).not.toBeNull();
    expect(store.checkpointMessage('s1', 'a1', 'late', [])).toBe(false);
    expect(store.allMessages('s1')[1]?.content).toBe('final answer');
  });

  it('finishes a message once, adding the token and cost differences to the session totals', () => {
    start();
    store.checkpointMessage('s1', 'a1', 'partial', []);
    const events = [{ type: 'tool_result' as const, tool_use_id: 't1', content: 'ok' }];

    const done = store.finishMessage('s1', 'a1', finished({ toolEvents: events, mode: 'cached' }));

    expect(done).toMatchObject({
      id: 'a1',
      seq: 2,
      content: 'final answer',
      status: 'complete',
      inputTokens: 10,
      outputTokens: 5,
      costUsd: 0.25,
      model: 'claude-x',
      stopReason: 'end_turn',
      error: null,
      toolEvents: events,
      mode: 'cached',
      inProgress: false,
    });
    expect(store.allMessages('s1')[1]).toEqual(done);
    expect(store.getSession('s1')).toMatchObject({
      messageCount: 2,
      totalInputTokens: 13,
      totalOutputTokens: 5,
      totalCostUsd: 0.75,
    });

    // Only while in progress: a second finish changes nothing.
    expect(store.finishMessage('s1', 'a1', finished({ inputTokens: 99, content: 'other' }))).toBeNull();
    expect(store.allMessages('s1')[1]).toEqual(done);
    expect(store.getSession('s1')).toMatchObject({ totalInputTokens: 13, totalOutputTokens: 5, totalCostUsd: 0.75 });
  });

  it('adds only the difference when the message started with tokens', () => {
    store.appendMessage(
      message('s1', 'a1', { role: 'assistant', inProgress: true, inputTokens: 4, outputTokens: 1, costUsd: 0.125 }),
    );
    expect(store.getSession('s1')).toMatchObject({ totalInputTokens: 7, totalOutputTokens: 1, totalCostUsd: 0.625 });
    store.finishMessage('s1', 'a1', finished({ inputTokens: 10, outputTokens: 5, costUsd: 0.25 }));
    expect(store.getSession('s1')).toMatchObject({ totalInputTokens: 13, totalOutputTokens: 5, totalCostUsd: 0.75 });
  });

  it('returns null from finish for an unknown message or session, or after the session is gone', () => {
    start();
    expect(store.finishMessage('s1', 'missing', finished())).toBeNull();
    expect(store.finishMessage('other', 'a1', finished())).toBeNull();
    expect(store.getSession('s1')).toMatchObject({ totalInputTokens: 3, totalOutputTokens: 0 });
    store.deleteSession('s1');
    expect(store.finishMessage('s1', 'a1', finished())).toBeNull();
  });

  it('recovers messages left in progress by a crash after reopening the file', () => {
    start('a1');
    store.checkpointMessage('s1', 'a1', 'half an answer', []);
    start('a2');
    store.createSession({ id: 's2', owner: null, config: {} });
    store.appendMessage(message('s2', 'b1', { role: 'assistant', content: '', inProgress: true }));
    store.checkpointMessage('s2', 'b1', '', [{ type: 'tool_use', name: 'Bash' }]);
    store.appendMessage(message('s2', 'b2', { role: 'assistant', content: '', inProgress: true, error: 'overloaded' }));
    store.close(); // crash: nothing finished

    store = openSqliteStore(dbPath);
    expect(store.recoverInProgressMessages()).toBe(4);

    expect(store.allMessages('s1').map((m) => [m.id, m.status, m.error, m.content, m.inProgress])).toEqual([
      ['u1', 'complete', null, 'content of u1', false],
      ['a1', 'incomplete', 'server_restarted', 'half an answer', false],
      ['a2', 'error', 'server_restarted', '', false],
    ]);
    expect(store.allMessages('s2').map((m) => [m.id, m.status, m.error])).toEqual([
      ['b1', 'incomplete', 'server_restarted'],
      ['b2', 'error', 'overloaded'],
    ]);
    expect(store.recoverInProgressMessages()).toBe(0);
    expect(store.checkpointMessage('s1', 'a1', 'late', [])).toBe(false);
    expect(store.finishMessage('s1', 'a1', finished())).toBeNull();
    expect(withRawDb((db) => db.prepare('SELECT COUNT(*) AS n FROM messages WHERE in_progress = 1').get())).toEqual({
      n: 0,
    });
  });
});
