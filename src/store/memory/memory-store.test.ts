import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { FinishMessageFields, NewMessage, SessionRecord } from '../types.js';
import { InvalidCursorError } from '../sqlite/sqlite-store.js';
import { MemorySessionStore } from './memory-store.js';

let store: MemorySessionStore;

beforeEach(() => {
  store = new MemorySessionStore();
});

afterEach(() => {
  vi.useRealTimers();
});

function message(sessionId: string, id: string, extra: Partial<NewMessage> = {}): NewMessage {
  return { id, sessionId, role: 'user', content: `content of ${id}`, status: 'complete', ...extra };
}

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

describe('MemorySessionStore sessions', () => {
  it('creates and gets a session, and has kind memory', () => {
    expect(store.kind).toBe('memory');
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
    expect(() => store.createSession({ id: 's1', owner: null, config: {} })).toThrow();
  });

  it('returns copies that callers cannot mutate', () => {
    const created = store.createSession({ id: 's1', owner: null, config: { allowed_tools: ['a'] } });
    created.config.allowed_tools!.push('x');
    created.messageCount = 99;
    expect(store.getSession('s1')).toMatchObject({ config: { allowed_tools: ['a'] }, messageCount: 0 });
  });

  it('shallow-merges config updates, ignoring undefined values, and bumps updatedAt', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2024-01-01T00:00:00.000Z'));
    store.createSession({ id: 's1', owner: null, config: { model: 'm', temperature: 0.5, allowed_tools: ['a'] } });
    vi.setSystemTime(new Date('2024-01-01T00:00:01.000Z'));
    const updated = store.updateSessionConfig('s1', { temperature: 1, model: undefined, allowed_tools: ['b'] });
    expect(updated?.config).toEqual({ model: 'm', temperature: 1, allowed_tools: ['b'] });
    expect(updated?.updatedAt).toBe('2024-01-01T00:00:01.000Z');
    expect(updated?.createdAt).toBe('2024-01-01T00:00:00.000Z');
    expect(store.getSession('s1')).toEqual(updated);
    expect(store.updateSessionConfig('missing', { model: 'x' })).toBeNull();
  });

  it('deletes a session with its messages; false when it does not exist', () => {
    store.createSession({ id: 's1', owner: null, config: {} });
    store.appendMessage(message('s1', 'm1'));
    expect(store.deleteSession('s1')).toBe(true);
    expect(store.getSession('s1')).toBeNull();
    expect(store.allMessages('s1')).toEqual([]);
    expect(store.deleteSession('s1')).toBe(false);
    // The message id is free again once its session is gone.
    store.createSession({ id: 's2', owner: null, config: {} });
    expect(store.appendMessage(message('s2', 'm1'))?.seq).toBe(1);
  });

  it('clears messages, resets counters and keeps seq increasing', () => {
    store.createSession({ id: 's1', owner: null, config: {} });
    store.appendMessage(message('s1', 'm1', { inputTokens: 5, outputTokens: 7, costUsd: 0.5 }));
    store.appendMessage(message('s1', 'm2'));
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

describe('MemorySessionStore messages', () => {
  beforeEach(() => {
    store.createSession({ id: 's1', owner: null, config: {} });
  });

  it('appends with increasing seq and updates the session counters', () => {
    const first = store.appendMessage(message('s1', 'm1', { inputTokens: 10, outputTokens: 0, costUsd: 0.001 }));
    const second = store.appendMessage(
      message('s1', 'm2', {
        role: 'assistant',
        content: 'hi',
        inputTokens: 3,
        outputTokens: 20,
        costUsd: 0.002,
        model: 'claude',
        stopReason: 'end_turn',
        mode: 'cached',
      }),
    );
    expect(first).toMatchObject({
      seq: 1,
      mode: 'live',
      model: null,
      stopReason: null,
      error: null,
      toolEvents: [],
    });
    expect(second).toMatchObject({ seq: 2, role: 'assistant', model: 'claude', stopReason: 'end_turn', mode: 'cached' });
    const session = store.getSession('s1')!;
    expect(session.messageCount).toBe(2);
    expect(session.totalInputTokens).toBe(13);
    expect(session.totalOutputTokens).toBe(20);
    expect(session.totalCostUsd).toBeCloseTo(0.003);
    expect(store.allMessages('s1').map((m) => m.id)).toEqual(['m1', 'm2']);
    expect(() => store.appendMessage(message('s1', 'm1'))).toThrow();
  });

  it('returns null for an unknown session and empty lists', () => {
    expect(store.appendMessage(message('missing', 'm1'))).toBeNull();
    expect(store.listMessages('missing', { limit: 10 })).toEqual([]);
    expect(store.allMessages('missing')).toEqual([]);
  });

  it('paginates messages with afterSeq', () => {
    for (let i = 1; i <= 5; i++) store.appendMessage(message('s1', `m${i}`));
    expect(store.listMessages('s1', { limit: 2 }).map((m) => m.seq)).toEqual([1, 2]);
    expect(store.listMessages('s1', { limit: 2, afterSeq: 2 }).map((m) => m.seq)).toEqual([3, 4]);
    expect(store.listMessages('s1', { limit: 10, afterSeq: 4 }).map((m) => m.seq)).toEqual([5]);
    expect(store.listMessages('s1', { limit: 10, afterSeq: 5 })).toEqual([]);
  });

  it('round-trips tool events', () => {
    const toolEvents = [{ type: 'tool_use' as const, name: 'Read', input: { path: '/x' } }];
    store.appendMessage(message('s1', 'm1', { role: 'assistant', toolEvents }));
    expect(store.allMessages('s1')[0]?.toolEvents).toEqual(toolEvents);
  });
});

describe('MemorySessionStore listSessions', () => {
  it('pages through sessions in createdAt DESC, id DESC order without gaps or repeats', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    ids.forEach((id, i) => {
      // Pairs share a timestamp to exercise the id tie-break.
      vi.setSystemTime(new Date(Date.UTC(2024, 0, 1, 0, 0, Math.floor(i / 2))));
      store.createSession({ id, owner: null, config: {} });
    });
    const pages = allPages(undefined, 3);
    expect(pages.map((p) => p.map((s) => s.id))).toEqual([['g', 'f', 'e'], ['d', 'c', 'b'], ['a']]);
  });

  it('returns a null cursor when the last page is exactly full', () => {
    for (const id of ['a', 'b', 'c', 'd']) store.createSession({ id, owner: null, config: {} });
    const pages = allPages(undefined, 2);
    expect(pages).toHaveLength(2);
    expect(pages.flat()).toHaveLength(4);
  });

  it('filters by owner: undefined = all, null = no owner, string = that owner', () => {
    store.createSession({ id: 'n1', owner: null, config: {} });
    store.createSession({ id: 'k1', owner: 'key1', config: {} });
    store.createSession({ id: 'k2', owner: 'key1', config: {} });
    store.createSession({ id: 'j1', owner: 'key2', config: {} });
    const ids = (owner: string | null | undefined): string[] =>
      allPages(owner, 1)
        .flat()
        .map((s) => s.id)
        .sort();
    expect(ids(undefined)).toEqual(['j1', 'k1', 'k2', 'n1']);
    expect(ids(null)).toEqual(['n1']);
    expect(ids('key1')).toEqual(['k1', 'k2']);
    expect(ids('nobody')).toEqual([]);
    expect(store.countSessions()).toBe(4);
    expect(store.countSessions(null)).toBe(1);
    expect(store.countSessions('key1')).toBe(2);
    expect(store.countSessions('nobody')).toBe(0);
  });

  it('throws InvalidCursorError for malformed cursors', () => {
    store.createSession({ id: 'a', owner: null, config: {} });
    for (const cursor of ['', 'not base64!', Buffer.from('{"x":1}').toString('base64url'), 'abc']) {
      expect(() => store.listSessions({ limit: 1, cursor })).toThrow(InvalidCursorError);
    }
  });
});

describe('MemorySessionStore extras and lifecycle', () => {
  it('has, ids and takeSession', () => {
    store.createSession({ id: 's1', owner: 'k', config: { model: 'm' } });
    store.createSession({ id: 's2', owner: null, config: {} });
    store.appendMessage(message('s1', 'm1'));
    store.appendMessage(message('s1', 'm2', { role: 'assistant' }));
    expect(store.has('s1')).toBe(true);
    expect(store.has('nope')).toBe(false);
    expect(store.ids()).toEqual(['s1', 's2']);

    const taken = store.takeSession('s1');
    expect(taken?.session).toMatchObject({ id: 's1', owner: 'k', config: { model: 'm' }, messageCount: 2 });
    expect(taken?.messages.map((m) => [m.id, m.seq, m.role])).toEqual([
      ['m1', 1, 'user'],
      ['m2', 2, 'assistant'],
    ]);
    expect(store.has('s1')).toBe(false);
    expect(store.getSession('s1')).toBeNull();
    expect(store.ids()).toEqual(['s2']);
    expect(store.takeSession('s1')).toBeNull();
  });

  it('pings true until closed; close is idempotent', () => {
    expect(store.ping()).toBe(true);
    store.close();
    store.close();
    expect(store.ping()).toBe(false);
    expect(() => store.getSession('x')).toThrow();
  });
});

describe('MemorySessionStore in-progress messages', () => {
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

  const start = (id = 'a1', sessionId = 's1', extra: Partial<NewMessage> = {}) =>
    store.appendMessage(message(sessionId, id, { role: 'assistant', content: '', inProgress: true, ...extra }));

  it('appends messages not in progress by default, and in progress on request', () => {
    expect(store.allMessages('s1')[0]?.inProgress).toBe(false);
    expect(start()).toMatchObject({ inProgress: true, content: '', seq: 2 });
  });

  it('checkpoints only while in progress, in the right session, storing copies', () => {
    start();
    const toolEvents = [{ type: 'tool_use' as const, id: 't1', name: 'Read' }];
    expect(store.checkpointMessage('s1', 'a1', 'partial', toolEvents)).toBe(true);
    toolEvents.push({ type: 'tool_use', id: 't2', name: 'Bash' });
    expect(store.allMessages('s1')[1]).toMatchObject({ content: 'partial', toolEvents: [toolEvents[0]], inProgress: true });

    expect(store.checkpointMessage('other', 'a1', 'x', [])).toBe(false);
    expect(store.checkpointMessage('s1', 'missing', 'x', [])).toBe(false);
    expect(store.checkpointMessage('s1', 'u1', 'x', [])).toBe(false);

    expect(store.finishMessage('s1', 'a1', finished())).not.toBeNull();
    expect(store.checkpointMessage('s1', 'a1', 'late', [])).toBe(false);
    expect(store.allMessages('s1')[1]?.content).toBe('final answer');
  });

  it('finishes once, adding the token and cost differences to the session totals', () => {
    start('a1', 's1', { inputTokens: 4, outputTokens: 1, costUsd: 0.125 });
    const events = [{ type: 'tool_result' as const, tool_use_id: 't1', content: 'ok' }];
    const done = store.finishMessage('s1', 'a1', finished({ toolEvents: events, mode: 'cached' }));
    expect(done).toMatchObject({
      content: 'final answer',
      inputTokens: 10,
      outputTokens: 5,
      costUsd: 0.25,
      model: 'claude-x',
      stopReason: 'end_turn',
      toolEvents: events,
      mode: 'cached',
      inProgress: false,
    });
    expect(store.allMessages('s1')[1]).toEqual(done);
    expect(store.getSession('s1')).toMatchObject({ totalInputTokens: 13, totalOutputTokens: 5, totalCostUsd: 0.75 });

    expect(store.finishMessage('s1', 'a1', finished({ inputTokens: 99 }))).toBeNull();
    expect(store.finishMessage('s1', 'missing', finished())).toBeNull();
    expect(store.finishMessage('other', 'a1', finished())).toBeNull();
    expect(store.getSession('s1')).toMatchObject({ totalInputTokens: 13, totalOutputTokens: 5, totalCostUsd: 0.75 });
  });

  it('recovers in-progress messages: incomplete with content or tool events, error when empty', () => {
    start('a1');
    store.checkpointMessage('s1', 'a1', 'half', []);
    start('a2');
    start('a3', 's1', { error: 'overloaded' });
    start('a4');
    store.checkpointMessage('s1', 'a4', '', [{ type: 'tool_use', name: 'Bash' }]);

    expect(store.recoverInProgressMessages()).toBe(4);
    expect(store.allMessages('s1').map((m) => [m.id, m.status, m.error, m.inProgress])).toEqual([
      ['u1', 'complete', null, false],
      ['a1', 'incomplete', 'server_restarted', false],
      ['a2', 'error', 'server_restarted', false],
      ['a3', 'error', 'overloaded', false],
      ['a4', 'incomplete', 'server_restarted', false],
    ]);
    expect(store.recoverInProgressMessages()).toBe(0);
    expect(store.finishMessage('s1', 'a1', finished())).toBeNull();
  });
});
