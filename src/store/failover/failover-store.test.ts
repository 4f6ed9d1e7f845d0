import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SessionRecord, SessionStore } from '../types.js';
import type { SqliteSessionStore } from '../sqlite/sqlite-store.js';
import { InvalidCursorError, openSqliteStore } from '../sqlite/sqlite-store.js';
import { MemorySessionStore } from '../memory/memory-store.js';
import { FailoverSessionStore } from './failover-store.js';
import { allPages, finished, message } from '../../../test/support/session-store-contract.js';

type Method = Exclude<keyof SessionStore, 'kind'>;

/** The real SQLite store, with methods that throw on demand (optionally after N successful calls). */
interface Flaky {
  store: SessionStore;
  /** Method -> number of calls still allowed before it starts throwing. */
  failing: Map<Method, number>;
  calls: Method[];
}

function flaky(real: SqliteSessionStore): Flaky {
  const failing = new Map<Method, number>();
  const calls: Method[] = [];
  const store = new Proxy(real, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const method = prop as Method;
        calls.push(method);
        const allowed = failing.get(method);
        if (allowed !== undefined) {
          if (allowed <= 0) throw new Error(`SQLITE_BUSY: ${method} unavailable`);
          failing.set(method, allowed - 1);
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as SessionStore;
  return { store, failing, calls };
}

let tmpDir: string;
let sqlite: SqliteSessionStore;
let primary: Flaky;
let memory: MemorySessionStore;
let store: FailoverSessionStore;

beforeEach(() => {
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-failover-'));
  sqlite = openSqliteStore(path.join(tmpDir, 'chat.db'));
  primary = flaky(sqlite);
  memory = new MemorySessionStore();
  store = new FailoverSessionStore(primary.store, memory);
});

afterEach(() => {
  sqlite.close();
  fs.rmSync(tmpDir, { recursive: true, force: true });
});

/** A provisional session with a varied conversation, as the chat route would build it. */
function provisionalConversation(id = 'p1'): void {
  store.createProvisional({ id, owner: 'key1', config: { model: 'm', system_prompt: 'be brief' } });
  store.appendMessage(message(id, `${id}-u1`, { inputTokens: 0 }));
  store.appendMessage(
    message(id, `${id}-a1`, {
      role: 'assistant',
      content: 'cached answer',
      inputTokens: 10,
      outputTokens: 20,
      costUsd: 0.01,
      model: 'claude-x',
      stopReason: 'end_turn',
      mode: 'cached',
      toolEvents: [{ type: 'tool_use', name: 'Read', input: { path: '/a' } }],
    }),
  );
  store.appendMessage(message(id, `${id}-u2`, { content: 'again' }));
  store.appendMessage(
    message(id, `${id}-a2`, {
      role: 'assistant',
      content: 'partial',
      status: 'incomplete',
      inputTokens: 5,
      outputTokens: 7,
      costUsd: 0.002,
      error: 'overloaded_error',
      mode: 'degraded',
    }),
  );
}

const essentials = (s: SessionStore, id: string) =>
  s.allMessages(id).map((m) => ({
    id: m.id,
    sessionId: m.sessionId,
    role: m.role,
    content: m.content,
    status: m.status,
    inputTokens: m.inputTokens,
    outputTokens: m.outputTokens,
    costUsd: m.costUsd,
    model: m.model,
    stopReason: m.stopReason,
    error: m.error,
    toolEvents: m.toolEvents,
    mode: m.mode,
  }));

describe('FailoverSessionStore routing', () => {
  it('takes the primary kind and ping, and creates sessions in the primary', () => {
    expect(store.kind).toBe('sqlite');
    expect(store.ping()).toBe(true);
    const created = store.createSession({ id: 's1', owner: null, config: { model: 'm' } });
    expect(sqlite.getSession('s1')).toEqual(created);
    expect(store.provisionalCount()).toBe(0);
    expect(store.isProvisional('s1')).toBe(false);
  });

  it('throws when the primary cannot create a session (the caller decides about fallbacks)', () => {
    primary.failing.set('createSession', 0);
    expect(() => store.createSession({ id: 's1', owner: null, config: {} })).toThrow(/SQLITE_BUSY/);
    expect(store.getSession('s1')).toBeNull();
    expect(store.provisionalCount()).toBe(0);
  });

  it('serves a provisional session from memory: create, append, read, update, clear', () => {
    primary.failing.set('createSession', 0);
    const created = store.createProvisional({ id: 'p1', owner: 'key1', config: { model: 'm' } });
    expect(created).toMatchObject({ id: 'p1', owner: 'key1', messageCount: 0 });
    expect(store.isProvisional('p1')).toBe(true);
    expect(store.provisionalCount()).toBe(1);

    const user = store.appendMessage(message('p1', 'u1'));
    const assistant = store.appendMessage(message('p1', 'a1', { role: 'assistant', outputTokens: 4, mode: 'mock' }));
    expect([user?.seq, assistant?.seq]).toEqual([1, 2]);
    expect(store.getSession('p1')).toMatchObject({ messageCount: 2, totalOutputTokens: 4 });
    expect(store.listMessages('p1', { limit: 10, afterSeq: 1 }).map((m) => m.id)).toEqual(['a1']);
    expect(store.allMessages('p1').map((m) => m.mode)).toEqual(['live', 'mock']);
    expect(store.updateSessionConfig('p1', { temperature: 0.2 })?.config).toEqual({ model: 'm', temperature: 0.2 });
    expect(store.clearMessages('p1')).toEqual({ deleted: 2 });
    expect(store.appendMessage(message('p1', 'u2'))?.seq).toBe(3);

    // Nothing reached the database.
    expect(sqlite.getSession('p1')).toBeNull();
    expect(primary.calls).not.toContain('appendMessage');
  });

  it('sends operations on non-provisional ids to the primary', () => {
    store.createSession({ id: 's1', owner: null, config: {} });
    store.createProvisional({ id: 'p1', owner: null, config: {} });
    primary.calls.length = 0;

    store.appendMessage(message('s1', 'm1'));
    store.updateSessionConfig('s1', { model: 'x' });
    store.listMessages('s1', { limit: 5 });
    store.allMessages('s1');
    store.getSession('s1');
    expect(primary.calls).toEqual(['appendMessage', 'updateSessionConfig', 'listMessages', 'allMessages', 'getSession']);
    expect(sqlite.allMessages('s1').map((m) => m.id)).toEqual(['m1']);
    expect(memory.allMessages('p1')).toEqual([]);

    expect(store.clearMessages('s1')).toEqual({ deleted: 1 });
    expect(store.deleteSession('s1')).toBe(true);
    expect(sqlite.getSession('s1')).toBeNull();
    expect(store.getSession('missing')).toBeNull();
    expect(store.deleteSession('missing')).toBe(false);
    expect(store.appendMessage(message('missing', 'x'))).toBeNull();
  });

  it('deletes a provisional session from memory only', () => {
    store.createProvisional({ id: 'p1', owner: null, config: {} });
    primary.calls.length = 0;
    expect(store.deleteSession('p1')).toBe(true);
    expect(primary.calls).toEqual([]);
    expect(store.provisionalCount()).toBe(0);
    expect(store.getSession('p1')).toBeNull();
    expect(store.reconcile()).toEqual({ moved: 0, failed: 0 });
  });

  it('refuses to create in the primary an id held in memory', () => {
    store.createProvisional({ id: 'p1', owner: null, config: {} });
    expect(() => store.createSession({ id: 'p1', owner: null, config: {} })).toThrow();
    expect(sqlite.getSession('p1')).toBeNull();
  });
});

describe('FailoverSessionStore reconcile', () => {
  it('moves sessions and messages to the primary, preserving ids, content and modes', () => {
    provisionalConversation('p1');
    provisionalConversation('p2');
    const before = essentials(store, 'p1');
    const sessionBefore = store.getSession('p1')!;
    expect(sqlite.getSession('p1')).toBeNull();

    expect(store.reconcile()).toEqual({ moved: 2, failed: 0 });
    expect(store.provisionalCount()).toBe(0);
    expect(memory.ids()).toEqual([]);

    // Now read from the primary, through the failover store and directly.
    expect(essentials(sqlite, 'p1')).toEqual(before);
    expect(essentials(store, 'p1')).toEqual(before);
    expect(sqlite.allMessages('p1').map((m) => m.seq)).toEqual([1, 2, 3, 4]);
    expect(sqlite.allMessages('p1').map((m) => m.mode)).toEqual(['live', 'cached', 'live', 'degraded']);
    expect(sqlite.allMessages('p1').map((m) => m.status)).toEqual(['complete', 'complete', 'complete', 'incomplete']);

    const moved = sqlite.getSession('p1')!;
    expect(moved).toMatchObject({
      id: 'p1',
      owner: 'key1',
      config: sessionBefore.config,
      messageCount: 4,
      totalInputTokens: 15,
      totalOutputTokens: 27,
    });
    expect(moved.totalCostUsd).toBeCloseTo(0.012);
    expect(store.getSession('p1')).toEqual(moved);

    // Later writes go to the primary and continue its seq.
    expect(store.appendMessage(message('p1', 'p1-u3'))?.seq).toBe(5);
    expect(sqlite.getSession('p1')?.messageCount).toBe(5);
    expect(store.reconcile()).toEqual({ moved: 0, failed: 0 });
  });

  it('moves the messages left after a clear, with seq renumbered from 1', () => {
    store.createProvisional({ id: 'p1', owner: null, config: {} });
    store.appendMessage(message('p1', 'old', { inputTokens: 100 }));
    store.clearMessages('p1');
    store.appendMessage(message('p1', 'u1', { inputTokens: 3 }));
    store.appendMessage(message('p1', 'a1', { role: 'assistant', outputTokens: 4 }));
    expect(store.allMessages('p1').map((m) => m.seq)).toEqual([2, 3]);

    expect(store.reconcile()).toEqual({ moved: 1, failed: 0 });
    expect(sqlite.allMessages('p1').map((m) => [m.id, m.seq])).toEqual([
      ['u1', 1],
      ['a1', 2],
    ]);
    expect(sqlite.getSession('p1')).toMatchObject({ messageCount: 2, totalInputTokens: 3, totalOutputTokens: 4 });
  });

  it('never loses a session or answers 404 while the primary is down, and moves it when it recovers', () => {
    provisionalConversation('p1');
    const before = essentials(store, 'p1');
    primary.failing.set('createSession', 0);

    expect(store.reconcile()).toEqual({ moved: 0, failed: 1 });
    expect(store.reconcile()).toEqual({ moved: 0, failed: 1 });
    expect(store.provisionalCount()).toBe(1);
    expect(store.getSession('p1')).toMatchObject({ id: 'p1', messageCount: 4 });
    expect(essentials(store, 'p1')).toEqual(before);
    expect(sqlite.getSession('p1')).toBeNull();

    // Still usable while waiting.
    store.appendMessage(message('p1', 'p1-u3'));

    primary.failing.delete('createSession');
    expect(store.reconcile()).toEqual({ moved: 1, failed: 0 });
    expect(store.isProvisional('p1')).toBe(false);
    expect(essentials(sqlite, 'p1').map((m) => m.id)).toEqual(['p1-u1', 'p1-a1', 'p1-u2', 'p1-a2', 'p1-u3']);
    expect(store.getSession('p1')).toMatchObject({ messageCount: 5 });
  });

  it('cleans up a partial copy in the primary when an append fails, then succeeds later', () => {
    provisionalConversation('p1');
    primary.failing.set('appendMessage', 2);

    expect(store.reconcile()).toEqual({ moved: 0, failed: 1 });
    expect(sqlite.getSession('p1')).toBeNull();
    expect(sqlite.allMessages('p1')).toEqual([]);
    expect(store.getSession('p1')).toMatchObject({ messageCount: 4 });
    expect(store.allMessages('p1')).toHaveLength(4);

    primary.failing.delete('appendMessage');
    expect(store.reconcile()).toEqual({ moved: 1, failed: 0 });
    expect(sqlite.allMessages('p1').map((m) => m.id)).toEqual(['p1-u1', 'p1-a1', 'p1-u2', 'p1-a2']);
    expect(sqlite.getSession('p1')?.messageCount).toBe(4);
  });

  it('retries the cleanup before the next attempt when deleting the partial copy also fails', () => {
    provisionalConversation('p1');
    primary.failing.set('appendMessage', 1);
    primary.failing.set('deleteSession', 0);

    expect(store.reconcile()).toEqual({ moved: 0, failed: 1 });
    expect(sqlite.getSession('p1')).not.toBeNull(); // the partial copy is stuck for now
    expect(store.getSession('p1')).toMatchObject({ messageCount: 4 }); // but reads still come from memory

    primary.failing.clear();
    expect(store.reconcile()).toEqual({ moved: 1, failed: 0 });
    expect(sqlite.allMessages('p1').map((m) => m.id)).toEqual(['p1-u1', 'p1-a1', 'p1-u2', 'p1-a2']);
    expect(sqlite.getSession('p1')?.messageCount).toBe(4);
  });

  it('moves what it can: one failure does not block the others', () => {
    store.createProvisional({ id: 'p1', owner: null, config: {} });
    store.createProvisional({ id: 'p2', owner: null, config: {} });
    sqlite.createSession({ id: 'p1', owner: null, config: {} }); // id clash: p1 cannot be created
    expect(store.reconcile()).toEqual({ moved: 1, failed: 1 });
    expect(memory.ids()).toEqual(['p1']);
    expect(sqlite.getSession('p2')).not.toBeNull();
  });

  it('never throws, even when the primary is closed', () => {
    provisionalConversation('p1');
    sqlite.close();
    expect(store.ping()).toBe(false);
    expect(store.reconcile()).toEqual({ moved: 0, failed: 1 });
    expect(store.getSession('p1')).toMatchObject({ messageCount: 4 });
  });
});

describe('FailoverSessionStore listing and counting', () => {
  const pages = (owner: string | null | undefined, limit: number): SessionRecord[][] => allPages(store, owner, limit);

  beforeEach(() => {
    for (const id of ['s1', 's2', 's3']) store.createSession({ id, owner: id === 's3' ? 'key2' : 'key1', config: {} });
    for (const id of ['p1', 'p2']) store.createProvisional({ id, owner: 'key1', config: {} });
  });

  it('lists provisional sessions first, then the primary, across pages without repeats', () => {
    const first = store.listSessions({ limit: 10 });
    expect(first.items.map((s) => s.id)).toEqual(['p2', 'p1', 's3', 's2', 's1']);
    expect(first.nextCursor).toBeNull();

    for (const limit of [1, 2, 3, 4, 5]) {
      const all = pages(undefined, limit);
      expect(all.flat().map((s) => s.id)).toEqual(['p2', 'p1', 's3', 's2', 's1']);
      expect(all.every((p) => p.length <= limit)).toBe(true);
      expect(all.at(-1)?.length).toBeGreaterThan(0);
    }
    expect(pages('key1', 2).flat().map((s) => s.id)).toEqual(['p2', 'p1', 's2', 's1']);
    expect(pages('key2', 1).flat().map((s) => s.id)).toEqual(['s3']);
    expect(pages(null, 2).flat()).toEqual([]);
  });

  it('passes primary cursors through unchanged when nothing is provisional', () => {
    store.reconcile();
    const page = store.listSessions({ limit: 2 });
    expect(page).toEqual(sqlite.listSessions({ limit: 2 }));
  });

  it('ends without a cursor when a full page of provisional sessions exhausts everything', () => {
    const fresh = new FailoverSessionStore(primary.store);
    fresh.createProvisional({ id: 'only', owner: 'nobody-else', config: {} });
    expect(fresh.listSessions({ owner: 'nobody-else', limit: 1 })).toEqual({
      items: [expect.objectContaining({ id: 'only' })],
      nextCursor: null,
    });
  });

  it('throws InvalidCursorError for malformed cursors', () => {
    for (const cursor of ['~junk', '~m.', '~m.not base64!', 'not base64!', '']) {
      expect(() => store.listSessions({ limit: 1, cursor })).toThrow(InvalidCursorError);
    }
  });

  it('adds provisional sessions to the counts', () => {
    expect(store.countSessions()).toBe(5);
    expect(store.countSessions('key1')).toBe(4);
    expect(store.countSessions('key2')).toBe(1);
    expect(store.countSessions(null)).toBe(0);
    store.reconcile();
    expect(store.countSessions()).toBe(5);
    expect(store.countSessions('key1')).toBe(4);
  });
});

describe('FailoverSessionStore close', () => {
  it('writes provisional sessions to the primary before closing both stores', () => {
    const file = path.join(tmpDir, 'close.db');
    const own = new FailoverSessionStore(openSqliteStore(file));
    own.createProvisional({ id: 'p1', owner: null, config: {} });
    own.appendMessage(message('p1', 'm1'));
    own.close();
    expect(own.ping()).toBe(false);

    const reopened = openSqliteStore(file);
    try {
      expect(reopened.allMessages('p1').map((m) => m.id)).toEqual(['m1']);
    } finally {
      reopened.close();
    }
  });
});

describe('FailoverSessionStore in-progress messages', () => {
  const start = (sessionId: string, id: string) =>
    store.appendMessage(message(sessionId, id, { role: 'assistant', content: '', inProgress: true }));

  it('checkpoints and finishes a provisional session in memory, never touching the primary', () => {
    store.createProvisional({ id: 'p1', owner: null, config: {} });
    start('p1', 'a1');
    primary.calls.length = 0;

    expect(store.checkpointMessage('p1', 'a1', 'partial', [])).toBe(true);
    expect(memory.allMessages('p1')[0]).toMatchObject({ content: 'partial', inProgress: true });
    expect(store.finishMessage('p1', 'a1', finished())).toMatchObject({ content: 'final answer', inProgress: false });
    expect(store.getSession('p1')).toMatchObject({ totalInputTokens: 10, totalOutputTokens: 5, totalCostUsd: 0.25 });
    expect(store.checkpointMessage('p1', 'a1', 'late', [])).toBe(false);
    expect(primary.calls).toEqual([]);
  });

  it('sends checkpoint and finish for non-provisional sessions to the primary', () => {
    store.createSession({ id: 's1', owner: null, config: {} });
    start('s1', 'a1');
    primary.calls.length = 0;

    expect(store.checkpointMessage('s1', 'a1', 'partial', [])).toBe(true);
    expect(store.finishMessage('s1', 'a1', finished())).toMatchObject({ inProgress: false });
    expect(primary.calls).toEqual(['checkpointMessage', 'finishMessage']);
    expect(sqlite.allMessages('s1')[0]).toMatchObject({ content: 'final answer', inProgress: false });
    expect(store.finishMessage('missing', 'a1', finished())).toBeNull();
  });

  it('keeps a message in progress when reconcile moves it, so the turn can finish it in the primary', () => {
    store.createProvisional({ id: 'p1', owner: null, config: {} });
    start('p1', 'a1');
    store.checkpointMessage('p1', 'a1', 'partial', []);

    expect(store.reconcile()).toEqual({ moved: 1, failed: 0 });
    expect(sqlite.allMessages('p1')[0]).toMatchObject({ content: 'partial', inProgress: true });
    expect(store.checkpointMessage('p1', 'a1', 'more', [])).toBe(true);
    expect(store.finishMessage('p1', 'a1', finished())).toMatchObject({ content: 'final answer', inProgress: false });
    expect(sqlite.getSession('p1')).toMatchObject({ totalInputTokens: 10, totalOutputTokens: 5, totalCostUsd: 0.25 });
  });

  it('recovers in-progress messages in both the primary and memory', () => {
    store.createSession({ id: 's1', owner: null, config: {} });
    start('s1', 'a1');
    store.createProvisional({ id: 'p1', owner: null, config: {} });
    start('p1', 'b1');
    store.checkpointMessage('p1', 'b1', 'partial', []);

    expect(store.recoverInProgressMessages()).toBe(2);
    expect(sqlite.allMessages('s1')[0]).toMatchObject({ status: 'error', error: 'server_restarted', inProgress: false });
    expect(memory.allMessages('p1')[0]).toMatchObject({
      status: 'incomplete',
      error: 'server_restarted',
      inProgress: false,
    });
    expect(store.recoverInProgressMessages()).toBe(0);
  });
});
