import { beforeEach, describe, expect, it } from 'vitest';
import { describeSessionStoreContract, message } from '../../../test/support/session-store-contract.js';
import { MemorySessionStore } from './memory-store.js';

describeSessionStoreContract('MemorySessionStore', () => new MemorySessionStore());

let store: MemorySessionStore;

describe('MemorySessionStore sessions', () => {
  beforeEach(() => {
    store = new MemorySessionStore();
  });

  it('returns copies that callers cannot mutate', () => {
    const created = store.createSession({ id: 's1', owner: null, config: { allowed_tools: ['a'] } });
    created.config.allowed_tools!.push('x');
    created.messageCount = 99;
    expect(store.getSession('s1')).toMatchObject({ config: { allowed_tools: ['a'] }, messageCount: 0 });
  });
});

describe('MemorySessionStore extras and lifecycle', () => {
  beforeEach(() => {
    store = new MemorySessionStore();
  });

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

  it('has kind memory, pings true until closed; close is idempotent', () => {
    expect(store.kind).toBe('memory');
    expect(store.ping()).toBe(true);
    store.close();
    store.close();
    expect(store.ping()).toBe(false);
    expect(() => store.getSession('x')).toThrow();
  });
});
