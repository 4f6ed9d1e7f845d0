/**
 * Behaviour every SessionStore implementation shares, run against each store by its own test file.
 * Store-specific behaviour (files, migrations, copies, routing...) stays in that store's test file.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { FinishMessageFields, NewMessage, SessionRecord, SessionStore } from '../../src/store/types.js';
import { InvalidCursorError } from '../../src/store/session-cursor.js';

/** A complete user message with sensible defaults. */
export function message(sessionId: string, id: string, extra: Partial<NewMessage> = {}): NewMessage {
  return { id, sessionId, role: 'user', content: `content of ${id}`, status: 'complete', ...extra };
}

/** The final state written by finishMessage in these tests. */
export function finished(extra: Partial<FinishMessageFields> = {}): FinishMessageFields {
  return {
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
  };
}

/** Follows nextCursor until the end and returns every page. */
export function allPages(store: SessionStore, owner: string | null | undefined, limit: number): SessionRecord[][] {
  const pages: SessionRecord[][] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = store.listSessions({ owner, limit, cursor });
    pages.push(page.items);
    if (page.nextCursor === null) return pages;
    cursor = page.nextCursor;
  }
}

/**
 * Defines the shared describe/it blocks for a SessionStore. `open` is called before each test
 * (a fresh, empty store); the store is closed after each test, then `cleanup` runs.
 */
export function describeSessionStoreContract(name: string, open: () => SessionStore, cleanup?: () => void): void {
  let store: SessionStore;

  const pagesOf = (owner: string | null | undefined, limit: number): SessionRecord[][] =>
    allPages(store, owner, limit);

  describe(`${name} contract`, () => {
    beforeEach(() => {
      store = open();
    });

    afterEach(() => {
      vi.useRealTimers();
      store.close();
      cleanup?.();
    });

    describe('sessions', () => {
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
        expect(() => store.createSession({ id: 's1', owner: null, config: {} })).toThrow();
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

      it('deletes a session with its messages; false when it does not exist', () => {
        store.createSession({ id: 's1', owner: null, config: {} });
        store.appendMessage(message('s1', 'm1'));
        store.appendMessage(message('s1', 'm2'));

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

      it('tells whether a session still holds a message (gone once cleared or deleted, never across sessions)', () => {
        store.createSession({ id: 's1', owner: null, config: {} });
        store.createSession({ id: 's2', owner: null, config: {} });
        store.appendMessage(message('s1', 'm1'));
        store.appendMessage(message('s2', 'm2'));
        expect(store.hasMessage('s1', 'm1')).toBe(true);
        expect(store.hasMessage('s2', 'm1')).toBe(false);
        expect(store.hasMessage('s1', 'nope')).toBe(false);
        store.clearMessages('s1');
        expect(store.hasMessage('s1', 'm1')).toBe(false);
        store.deleteSession('s2');
        expect(store.hasMessage('s2', 'm2')).toBe(false);
      });
    });

    describe('messages', () => {
      beforeEach(() => {
        store.createSession({ id: 's1', owner: null, config: {} });
      });

      it('appends with increasing seq and updates the session counters', () => {
        const first = store.appendMessage(message('s1', 'm1', { inputTokens: 10, outputTokens: 0, costUsd: 0.25 }));
        const second = store.appendMessage(
          message('s1', 'm2', {
            role: 'assistant',
            content: 'hi',
            inputTokens: 20,
            outputTokens: 7,
            costUsd: 0.5,
            model: 'claude',
            stopReason: 'end_turn',
            mode: 'cached',
          }),
        );
        const third = store.appendMessage(message('s1', 'm3', { status: 'error', error: 'overloaded' }));

        expect([first?.seq, second?.seq, third?.seq]).toEqual([1, 2, 3]);
        expect(first).toMatchObject({ mode: 'live', model: null, stopReason: null, error: null, toolEvents: [] });
        expect(second).toMatchObject({
          role: 'assistant',
          model: 'claude',
          stopReason: 'end_turn',
          mode: 'cached',
          error: null,
          toolEvents: [],
        });
        expect(third).toMatchObject({ status: 'error', error: 'overloaded', inputTokens: 0, costUsd: 0 });
        expect(store.getSession('s1')).toMatchObject({
          messageCount: 3,
          totalInputTokens: 30,
          totalOutputTokens: 7,
          totalCostUsd: 0.75,
        });
        expect(store.allMessages('s1')).toEqual([first, second, third]);
        expect(store.allMessages('s1').map((m) => m.id)).toEqual(['m1', 'm2', 'm3']);
        expect(() => store.appendMessage(message('s1', 'm1'))).toThrow();
      });

      it('returns null for an unknown session, changes nothing and lists nothing', () => {
        expect(store.appendMessage(message('missing', 'm1'))).toBeNull();
        expect(store.getSession('s1')?.messageCount).toBe(0);
        expect(store.listMessages('missing', { limit: 10 })).toEqual([]);
        expect(store.allMessages('missing')).toEqual([]);
      });

      it('paginates messages with afterSeq', () => {
        for (let i = 1; i <= 5; i++) store.appendMessage(message('s1', `m${i}`));

        const seqs = (afterSeq: number | undefined, limit: number): number[] =>
          store.listMessages('s1', { limit, afterSeq }).map((m) => m.seq);
        expect(seqs(undefined, 2)).toEqual([1, 2]);
        expect(seqs(2, 2)).toEqual([3, 4]);
        expect(seqs(4, 2)).toEqual([5]);
        expect(seqs(4, 10)).toEqual([5]);
        expect(seqs(5, 2)).toEqual([]);
        expect(seqs(5, 10)).toEqual([]);
        expect(store.listMessages('other', { limit: 10 })).toEqual([]);
      });

      it('round-trips tool events', () => {
        const toolEvents = [
          { type: 'tool_use' as const, id: 't1', name: 'search', input: { q: 'x', nested: [1, 2] } },
          { type: 'tool_result' as const, tool_use_id: 't1', content: 'found', is_error: false },
          { type: 'tool_use' as const, name: 'Read', input: { path: '/x' } },
        ];
        const appended = store.appendMessage(message('s1', 'm1', { role: 'assistant', toolEvents }));

        expect(appended?.toolEvents).toEqual(toolEvents);
        expect(store.allMessages('s1')[0]?.toolEvents).toEqual(toolEvents);
      });
    });

    describe('listSessions', () => {
      it('pages through sessions in createdAt DESC, id DESC order without gaps or repeats', () => {
        vi.useFakeTimers({ toFake: ['Date'] });
        // Distinct createdAt: the order follows time, not ids.
        const scrambled = ['c', 'a', 'g', 'e', 'b', 'f', 'd'];
        scrambled.forEach((id, i) => {
          vi.setSystemTime(new Date(Date.UTC(2024, 0, 1, 0, 0, i)));
          store.createSession({ id, owner: null, config: {} });
        });
        const distinct = pagesOf(undefined, 3);
        expect(distinct.map((p) => p.length)).toEqual([3, 3, 1]);
        expect(distinct.flat().map((s) => s.id)).toEqual([...scrambled].reverse());

        for (const id of scrambled) store.deleteSession(id);
        const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
        ids.forEach((id, i) => {
          // Pairs share a timestamp to exercise the id tie-break.
          vi.setSystemTime(new Date(Date.UTC(2024, 0, 2, 0, 0, Math.floor(i / 2))));
          store.createSession({ id, owner: null, config: {} });
        });
        const paired = pagesOf(undefined, 3);
        expect(paired.map((p) => p.map((s) => s.id))).toEqual([['g', 'f', 'e'], ['d', 'c', 'b'], ['a']]);
      });

      it('returns a null cursor when the last page is exactly full', () => {
        for (const id of ['a', 'b', 'c', 'd']) store.createSession({ id, owner: null, config: {} });
        const page = store.listSessions({ limit: 4 });
        expect(page.items).toHaveLength(4);
        expect(page.nextCursor).toBeNull();

        const pages = pagesOf(undefined, 2);
        expect(pages).toHaveLength(2);
        expect(pages.flat()).toHaveLength(4);
      });

      it('filters by owner: undefined = all, null = no owner, string = that owner', () => {
        const owners: (string | null)[] = ['k1', null, 'k2', 'k1', null, 'k1'];
        owners.forEach((owner, i) => store.createSession({ id: `s${i}`, owner, config: {} }));

        for (const limit of [1, 2]) {
          const idsOf = (owner: string | null | undefined): string[] =>
            pagesOf(owner, limit)
              .flat()
              .map((s) => s.id)
              .sort();
          expect(idsOf(undefined)).toEqual(['s0', 's1', 's2', 's3', 's4', 's5']);
          expect(idsOf(null)).toEqual(['s1', 's4']);
          expect(idsOf('k1')).toEqual(['s0', 's3', 's5']);
          expect(idsOf('k2')).toEqual(['s2']);
          expect(idsOf('nobody')).toEqual([]);
        }

        expect(store.countSessions()).toBe(6);
        expect(store.countSessions(undefined)).toBe(6);
        expect(store.countSessions(null)).toBe(2);
        expect(store.countSessions('k1')).toBe(3);
        expect(store.countSessions('nobody')).toBe(0);
      });

      it('throws InvalidCursorError for malformed cursors', () => {
        store.createSession({ id: 's1', owner: null, config: {} });
        const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
        const bad = [
          'not base64!',
          '',
          '%%%',
          'abc',
          'bm90IGpzb24',
          Buffer.from('{"x":1}').toString('base64url'),
          encode({ a: 1 }),
          encode(['only-one']),
          encode([1, 2]),
        ];

        for (const limit of [1, 10]) {
          for (const cursor of bad) {
            expect(() => store.listSessions({ limit, cursor }), `cursor ${JSON.stringify(cursor)}`).toThrow(
              InvalidCursorError,
            );
          }
        }
        expect(new InvalidCursorError()).toBeInstanceOf(Error);
        expect(new InvalidCursorError().message).toMatch(/cursor/i);
      });
    });

    describe('in-progress messages', () => {
      beforeEach(() => {
        store.createSession({ id: 's1', owner: null, config: {} });
        store.appendMessage(message('s1', 'u1', { inputTokens: 3, costUsd: 0.5 }));
      });

      const start = (id = 'a1', sessionId = 's1', extra: Partial<NewMessage> = {}) =>
        store.appendMessage(message(sessionId, id, { role: 'assistant', content: '', inProgress: true, ...extra }));

      it('appends messages not in progress by default, and in progress on request', () => {
        expect(store.allMessages('s1')[0]?.inProgress).toBe(false);
        expect(start()).toMatchObject({ inProgress: true, status: 'complete', content: '', seq: 2 });
        expect(store.allMessages('s1').map((m) => m.inProgress)).toEqual([false, true]);
      });

      it('checkpoints content and tool events only while in progress, in the right session, storing copies', () => {
        start();
        const toolEvents = [{ type: 'tool_use' as const, id: 't1', name: 'Read' }];
        expect(store.checkpointMessage('s1', 'a1', 'partial', toolEvents)).toBe(true);
        expect(store.allMessages('s1')[1]).toMatchObject({ content: 'partial', toolEvents, inProgress: true });
        toolEvents.push({ type: 'tool_use', id: 't2', name: 'Bash' });
        expect(store.allMessages('s1')[1]).toMatchObject({ content: 'partial', toolEvents: [toolEvents[0]], inProgress: true });

        expect(store.checkpointMessage('other', 'a1', 'x', [])).toBe(false);
        expect(store.checkpointMessage('s1', 'missing', 'x', [])).toBe(false);
        expect(store.checkpointMessage('s1', 'u1', 'x', [])).toBe(false); // not in progress
        expect(store.allMessages('s1')[0]?.content).toBe('content of u1');

        expect(store.finishMessage('s1', 'a1', finished())).not.toBeNull();
        expect(store.checkpointMessage('s1', 'a1', 'late', [])).toBe(false);
        expect(store.allMessages('s1')[1]?.content).toBe('final answer');
      });

      it('finishes a message once, adding the token and cost differences to the session totals', () => {
        start('a1', 's1', { inputTokens: 4, outputTokens: 1, costUsd: 0.125 });
        expect(store.getSession('s1')).toMatchObject({ totalInputTokens: 7, totalOutputTokens: 1, totalCostUsd: 0.625 });
        store.checkpointMessage('s1', 'a1', 'partial', []);
        const events = [{ type: 'tool_result' as const, tool_use_id: 't1', content: 'ok' }];

        const fields = finished({ toolEvents: events, mode: 'cached' });

        const done = store.finishMessage('s1', 'a1', fields);

        // Every field written (content 'final answer', 10/5 tokens, cost 0.25, model, stop reason, no error...).
        expect(done).toMatchObject({ ...fields, id: 'a1', seq: 2, inProgress: false });
        expect(store.allMessages('s1')[1]).toEqual(done);
        expect(store.getSession('s1')).toMatchObject({
          messageCount: 2,
          totalInputTokens: 13,
          totalOutputTokens: 5,
          totalCostUsd: 0.75,
        });

        // Only while in progress: a second finish changes nothing.
        expect(store.finishMessage('s1', 'a1', finished({ inputTokens: 99, content: 'other' }))).toBeNull();
        expect(store.finishMessage('s1', 'missing', finished())).toBeNull();
        expect(store.finishMessage('other', 'a1', finished())).toBeNull();
        expect(store.allMessages('s1')[1]).toEqual(done);
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

      it('recovers in-progress messages: incomplete with content or tool events, error when empty', () => {
        start('a1');
        store.checkpointMessage('s1', 'a1', 'half', []);
        start('a2');
        start('a3', 's1', { error: 'overloaded' });
        start('a4');
        store.checkpointMessage('s1', 'a4', '', [{ type: 'tool_use', name: 'Bash' }]);

        expect(store.recoverInProgressMessages()).toBe(4);
        expect(store.allMessages('s1').map((m) => [m.id, m.status, m.error, m.content, m.inProgress])).toEqual([
          ['u1', 'complete', null, 'content of u1', false],
          ['a1', 'incomplete', 'server_restarted', 'half', false],
          ['a2', 'error', 'server_restarted', '', false],
          ['a3', 'error', 'overloaded', '', false],
          ['a4', 'incomplete', 'server_restarted', '', false],
        ]);
        expect(store.recoverInProgressMessages()).toBe(0);
        expect(store.checkpointMessage('s1', 'a1', 'late', [])).toBe(false);
        expect(store.finishMessage('s1', 'a1', finished())).toBeNull();
      });
    });
  });
}
