import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { migrations } from './migrations.js';
import { describe, it, expect, beforeEach, afterEach, vi } from 'vitest';
import type { SessionRecord } from '../types.js';
import type { SqliteSessionStore } from './sqlite-store.js';
import { openSqliteStore } from './sqlite-store.js';
import {
  allPages,
  describeSessionStoreContract,
  finished,
  message,
} from '../../../test/support/session-store-contract.js';

let tmpDir: string;
let dbPath: string;
let store: SqliteSessionStore;

/** A fresh store on a temporary file, one per test. */
function openTempStore(): SqliteSessionStore {
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-store-'));
  dbPath = path.join(tmpDir, 'chat.db');
  store = openSqliteStore(dbPath);
  return store;
}

function removeTempStore(): void {
  fs.rmSync(tmpDir, { recursive: true, force: true });
}

/** Opens a temporary store before each test of the enclosing describe and removes it after. */
function useTempStore(): void {
  beforeEach(() => {
    openTempStore();
  });

  afterEach(() => {
    vi.useRealTimers();
    store.close();
    removeTempStore();
  });
}

/** A second, raw connection to inspect what actually reached the file. */
function withRawDb<T>(fn: (db: Database.Database) => T): T {
  const db = new Database(dbPath);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

const byCreatedDescIdDesc = (a: SessionRecord, b: SessionRecord): number =>
  a.createdAt === b.createdAt ? (a.id < b.id ? 1 : -1) : a.createdAt < b.createdAt ? 1 : -1;

describeSessionStoreContract('SqliteSessionStore', openTempStore, removeTempStore);

describe('SqliteSessionStore sessions', () => {
  useTempStore();

  it('deletes a session and cascades to its messages', () => {
    store.createSession({ id: 's1', owner: null, config: {} });
    store.appendMessage(message('s1', 'm1'));
    store.appendMessage(message('s1', 'm2'));

    expect(store.deleteSession('s1')).toBe(true);
    expect(withRawDb((db) => db.prepare('SELECT COUNT(*) AS n FROM messages').get())).toEqual({ n: 0 });
  });
});

describe('SqliteSessionStore messages', () => {
  useTempStore();

  it('inserts no row for an unknown session', () => {
    store.createSession({ id: 's1', owner: null, config: {} });
    expect(store.appendMessage(message('missing', 'm1'))).toBeNull();
    expect(withRawDb((db) => db.prepare('SELECT COUNT(*) AS n FROM messages').get())).toEqual({ n: 0 });
  });
});

describe('SqliteSessionStore listSessions', () => {
  useTempStore();

  it('breaks createdAt ties by id DESC without skipping or repeating', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2024-01-01T00:00:00.000Z'));
    const created = ['s3', 's1', 's7', 's5', 's2', 's6', 's4'].map((id) =>
      store.createSession({ id, owner: null, config: {} }),
    );

    const listed = allPages(store, undefined, 3).flat();

    expect(listed.map((s) => s.id)).toEqual([...created].sort(byCreatedDescIdDesc).map((s) => s.id));
    expect(new Set(listed.map((s) => s.id)).size).toBe(7);
  });
});

describe('SqliteSessionStore file handling', () => {
  useTempStore();

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
  useTempStore();

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
    expect(migrations.find((m) => m.version === 5)).toMatchObject({ name: 'message_in_progress' });
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

describe('SqliteSessionStore session counts (migration 6)', () => {
  useTempStore();

  it('counts from totals the triggers keep, and a database from before them is backfilled', () => {
    store.createSession({ id: 'a', owner: 'k1', config: {} });
    store.createSession({ id: 'b', owner: 'k1', config: {} });
    store.createSession({ id: 'c', owner: null, config: {} });
    store.close();
    // Back to the schema before migration 6, with one more session written then.
    withRawDb((db) => {
      db.exec(`DROP TRIGGER sessions_counted_insert; DROP TRIGGER sessions_counted_delete; DROP TABLE session_counts;
               DELETE FROM schema_migrations WHERE version = 6;`);
      db.prepare("INSERT INTO sessions (id, owner, config, created_at, updated_at) VALUES ('d', 'k2', '{}', 'now', 'now')").run();
    });
    store = openSqliteStore(dbPath);
    expect([store.countSessions(), store.countSessions('k1'), store.countSessions('k2'), store.countSessions(null), store.countSessions('nobody')]).toEqual([4, 2, 1, 1, 0]);
    store.deleteSession('a');
    store.createSession({ id: 'e', owner: 'k3', config: {} });
    expect([store.countSessions(), store.countSessions('k1'), store.countSessions('k3')]).toEqual([4, 1, 1]);
    expect(withRawDb((db) => db.prepare('SELECT COUNT(*) AS n FROM sessions').get())).toEqual({ n: 4 });
  });
});
