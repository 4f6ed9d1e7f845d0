import { describe, it, expect } from 'vitest';
import type { MessageRecord, MessageRole } from '../store/types.js';
import { buildConversation } from './conversation.js';

let seq = 0;

/** A complete stored message; only role and content matter to buildConversation. */
function record(role: MessageRole, content: string, extra: Partial<MessageRecord> = {}): MessageRecord {
  seq += 1;
  const at = new Date(Date.UTC(2025, 0, 1, 0, 0, seq)).toISOString();
  return {
    id: `msg_${seq}`,
    sessionId: 'sess_1',
    seq,
    role,
    content,
    status: 'complete',
    inputTokens: role === 'assistant' ? 10 : 0,
    outputTokens: role === 'assistant' ? 5 : 0,
    costUsd: 0,
    model: role === 'assistant' ? 'claude-sonnet-4-5' : null,
    stopReason: role === 'assistant' ? 'end_turn' : null,
    error: null,
    toolEvents: [],
    mode: 'live',
    inProgress: false,
    createdAt: at,
    updatedAt: at,
    ...extra,
  };
}

const user = (content: string, extra?: Partial<MessageRecord>) => record('user', content, extra);
const assistant = (content: string, extra?: Partial<MessageRecord>) => record('assistant', content, extra);

/** A failed assistant turn: stored, but it produced no text. */
const failed = () => assistant('', { status: 'error', error: 'overloaded_error', stopReason: null });

describe('buildConversation', () => {
  it('returns an empty conversation for an empty history', () => {
    expect(buildConversation([])).toEqual([]);
  });

  it('keeps an alternating history as it is, in order, with only role and content', () => {
    const history = [user('Hi'), assistant('Hello!'), user('How are you?'), assistant('Fine.'), user('Good.')];
    expect(buildConversation(history)).toEqual([
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
      { role: 'user', content: 'How are you?' },
      { role: 'assistant', content: 'Fine.' },
      { role: 'user', content: 'Good.' },
    ]);
  });

  it('skips empty (failed) assistant turns and joins the user messages around them', () => {
    const history = [user('First question'), failed(), user('Trying again')];
    expect(buildConversation(history)).toEqual([{ role: 'user', content: 'First question\n\nTrying again' }]);
  });

  it('skips whitespace-only messages', () => {
    const history = [user('Q1'), assistant('  \n\t '), user('Q2'), assistant('A2')];
    expect(buildConversation(history)).toEqual([
      { role: 'user', content: 'Q1\n\nQ2' },
      { role: 'assistant', content: 'A2' },
    ]);
  });

  it('joins consecutive user messages with a blank line', () => {
    const history = [user('one'), user('two'), user('three'), assistant('ok')];
    expect(buildConversation(history)).toEqual([
      { role: 'user', content: 'one\n\ntwo\n\nthree' },
      { role: 'assistant', content: 'ok' },
    ]);
  });

  it('joins consecutive assistant messages with a blank line too', () => {
    const history = [user('q'), assistant('part one', { status: 'incomplete' }), assistant('part two')];
    expect(buildConversation(history)).toEqual([
      { role: 'user', content: 'q' },
      { role: 'assistant', content: 'part one\n\npart two' },
    ]);
  });

  it('drops assistant messages before the first user message', () => {
    const history = [assistant('Welcome!'), assistant('Still here'), user('Hello'), assistant('Hi')];
    expect(buildConversation(history)).toEqual([
      { role: 'user', content: 'Hello' },
      { role: 'assistant', content: 'Hi' },
    ]);
  });

  it('always produces strictly alternating turns that start with the user', () => {
    const history = [
      assistant('orphan'),
      user('a'),
      user('b'),
      failed(),
      assistant('c'),
      failed(),
      user('d'),
      assistant(''),
      user('e'),
      assistant('f'),
      assistant('g'),
    ];
    const conversation = buildConversation(history);
    expect(conversation[0]?.role).toBe('user');
    conversation.forEach((message, i) => {
      expect(message.role).toBe(i % 2 === 0 ? 'user' : 'assistant');
      expect(message.content.trim()).not.toBe('');
    });
    expect(conversation).toEqual([
      { role: 'user', content: 'a\n\nb' },
      { role: 'assistant', content: 'c' },
      { role: 'user', content: 'd\n\ne' },
      { role: 'assistant', content: 'f\n\ng' },
    ]);
  });

  it('keeps message content verbatim (no trimming of real text)', () => {
    const history = [user('  indented\ncode  '), assistant('reply\n')];
    expect(buildConversation(history).map((m) => m.content)).toEqual(['  indented\ncode  ', 'reply\n']);
  });

  it('does not modify the stored records', () => {
    const history = [user('one'), user('two')];
    const before = structuredClone(history);
    buildConversation(history);
    expect(history).toEqual(before);
  });
  it('leaves mock replies out: Claude never sees a canned fallback as its own answer', () => {
    const history = [record('user', 'q1'), record('assistant', 'canned', { mode: 'mock' }), record('user', 'q2')];
    expect(buildConversation(history)).toEqual([{ role: 'user', content: 'q1\n\nq2' }]);
  });
});
