import { beforeEach, describe, expect, it } from 'vitest';
import { MemorySessionStore } from '../store/memory/memory-store.js';
import type { NewMessage } from '../store/types.js';
import { replayFromHistory } from './history-replay.js';
import type { TurnStream } from './turn-stream.js';

let store: MemorySessionStore;

beforeEach(() => {
  store = new MemorySessionStore();
  store.createSession({ id: 's1', owner: null, config: {} });
});

function user(id: string, content = 'question'): void {
  store.appendMessage({ id, sessionId: 's1', role: 'user', content, status: 'complete' });
}

function assistant(id: string, fields: Partial<NewMessage> = {}): void {
  store.appendMessage({ id, sessionId: 's1', role: 'assistant', content: 'Hello there', status: 'complete', ...fields });
}

/** The frames of a replayed stream, parsed. */
function framesOf(stream: TurnStream): Record<string, unknown>[] {
  return stream.framesAfter(0).frames.map((f) => JSON.parse(f.data) as Record<string, unknown>);
}

describe('replayFromHistory', () => {
  it('replays a complete answer as processing, text, tool frames, result and done, in one ended stream', () => {
    user('u1');
    assistant('a1', {
      content: 'Found it.',
      inputTokens: 12,
      outputTokens: 34,
      costUsd: 0.0042,
      model: 'claude-test',
      stopReason: 'end_turn',
      mode: 'live',
      toolEvents: [
        { type: 'tool_use', id: 'tu_1', name: 'search', input: { q: 'cats' } },
        { type: 'tool_result', tool_use_id: 'tu_1', content: [{ type: 'text', text: '3 results' }], is_error: false },
        { type: 'tool_result', tool_use_id: 'tu_2', content: 'boom', is_error: true },
      ],
    });

    const stream = replayFromHistory(store, 's1', 'u1');
    expect(stream).not.toBeNull();
    expect(stream!.turnId).toBe('u1');
    expect(stream!.sessionId).toBe('s1');
    expect(stream!.ended).toBe(true);
    expect(stream!.lastSeq).toBe(7);
    expect(stream!.framesAfter(0).ended).toBe(true);
    expect(stream!.framesAfter(0).frames.map((f) => f.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(framesOf(stream!)).toEqual([
      { type: 'processing', session_id: 's1', message_id: 'u1', mode: 'live' },
      { type: 'text_chunk', session_id: 's1', content: 'Found it.' },
      { type: 'tool_use', session_id: 's1', tool_use_id: 'tu_1', name: 'search', input: { q: 'cats' } },
      { type: 'tool_result', session_id: 's1', tool_use_id: 'tu_1', content: [{ type: 'text', text: '3 results' }], is_error: false },
      { type: 'tool_result', session_id: 's1', tool_use_id: 'tu_2', content: 'boom', is_error: true },
      {
        type: 'result',
        session_id: 's1',
        message_id: 'a1',
        input_tokens: 12,
        output_tokens: 34,
        cost_usd: 0.0042,
        model: 'claude-test',
        mode: 'live',
        stop_reason: 'end_turn',
      },
      { type: 'done', session_id: 's1', mode: 'live' },
    ]);
  });

  it('omits the text frame for an empty answer, and sends an unknown model as an empty string', () => {
    user('u1');
    assistant('a1', { content: '', model: null, stopReason: null, mode: 'mock' });
    const frames = framesOf(replayFromHistory(store, 's1', 'u1')!);
    expect(frames.map((f) => f.type)).toEqual(['processing', 'result', 'done']);
    expect(frames[1]).toMatchObject({ model: '', stop_reason: null, mode: 'mock' });
    expect(frames[2]).toEqual({ type: 'done', session_id: 's1', mode: 'mock' });
  });

  it('ends an incomplete answer with a recoverable error frame instead of a result', () => {
    user('u1');
    assistant('a1', { content: 'partial', status: 'incomplete', error: 'stream_cut', mode: 'live' });
    const frames = framesOf(replayFromHistory(store, 's1', 'u1')!);
    expect(frames.map((f) => f.type)).toEqual(['processing', 'text_chunk', 'error', 'done']);
    expect(frames[2]).toEqual({
      type: 'error',
      session_id: 's1',
      error: 'This answer did not complete; the stored part was replayed',
      error_type: 'stream_cut',
      recoverable: true,
      message_id: 'u1',
    });
  });

  it("an errored answer without a recorded error reports 'incomplete'", () => {
    user('u1');
    assistant('a1', { content: '', status: 'error', error: null });
    const frames = framesOf(replayFromHistory(store, 's1', 'u1')!);
    expect(frames.map((f) => f.type)).toEqual(['processing', 'error', 'done']);
    expect(frames[1]).toMatchObject({ error_type: 'incomplete', recoverable: true });
  });

  it('stringifies tool ids and treats a non-boolean is_error as false', () => {
    user('u1');
    assistant('a1', {
      toolEvents: [
        { type: 'tool_use', id: 7, name: 'calc', input: null },
        { type: 'tool_result', tool_use_id: 7, content: 'ok', is_error: 'yes' },
      ],
    });
    const frames = framesOf(replayFromHistory(store, 's1', 'u1')!);
    expect(frames[2]).toMatchObject({ type: 'tool_use', tool_use_id: '7', name: 'calc', input: null });
    expect(frames[3]).toMatchObject({ type: 'tool_result', tool_use_id: '7', is_error: false });
  });

  it('replays the answer of the requested turn, not another one', () => {
    user('u1');
    assistant('a1', { content: 'first answer' });
    user('u2');
    assistant('a2', { content: 'second answer' });
    expect(framesOf(replayFromHistory(store, 's1', 'u1')!)[1]).toMatchObject({ content: 'first answer' });
    const second = framesOf(replayFromHistory(store, 's1', 'u2')!);
    expect(second[0]).toMatchObject({ message_id: 'u2' });
    expect(second[1]).toMatchObject({ content: 'second answer' });
    expect(second.at(-2)).toMatchObject({ type: 'result', message_id: 'a2' });
  });

  it('is null for an unknown turn, an unknown session, or an id that is not a user message', () => {
    user('u1');
    assistant('a1');
    expect(replayFromHistory(store, 's1', 'nope')).toBeNull();
    expect(replayFromHistory(store, 'other', 'u1')).toBeNull();
    expect(replayFromHistory(store, 's1', 'a1')).toBeNull();
  });

  it('is null while the answer is not stored yet or still in progress', () => {
    user('u1');
    expect(replayFromHistory(store, 's1', 'u1')).toBeNull();
    store.appendMessage({ id: 'a1', sessionId: 's1', role: 'assistant', content: 'so far', status: 'incomplete', inProgress: true });
    expect(replayFromHistory(store, 's1', 'u1')).toBeNull();
    store.finishMessage('s1', 'a1', {
      content: 'done now',
      status: 'complete',
      inputTokens: 1,
      outputTokens: 2,
      costUsd: 0,
      model: 'm',
      stopReason: 'end_turn',
      error: null,
      toolEvents: [],
      mode: 'live',
    });
    expect(framesOf(replayFromHistory(store, 's1', 'u1')!)[1]).toMatchObject({ content: 'done now' });
  });

  it('is null when the message after the turn is another user message (the turn stored no answer)', () => {
    user('u1');
    user('u2');
    assistant('a2');
    expect(replayFromHistory(store, 's1', 'u1')).toBeNull();
    expect(replayFromHistory(store, 's1', 'u2')).not.toBeNull();
  });

  it('replays the same answer every time, each as a fresh stream', () => {
    user('u1');
    assistant('a1');
    const first = replayFromHistory(store, 's1', 'u1')!;
    const second = replayFromHistory(store, 's1', 'u1')!;
    expect(second).not.toBe(first);
    expect(framesOf(second)).toEqual(framesOf(first));
  });
});
