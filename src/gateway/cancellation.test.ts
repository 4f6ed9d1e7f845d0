import { describe, expect, it } from 'vitest';
import { Cancellation } from './cancellation.js';
import { abortableSleep } from '../providers/abortable-sleep.js';

describe('Cancellation', () => {
  it('runs its listeners once, on the first abort, with the reason set first', () => {
    const cancel = new Cancellation();
    const seen: unknown[] = [];
    cancel.addEventListener('abort', () => seen.push(cancel.reason));
    const removed = () => seen.push('removed');
    cancel.addEventListener('abort', removed);
    cancel.removeEventListener('abort', removed);
    cancel.abort('why');
    cancel.abort('again');
    expect(cancel.aborted).toBe(true);
    expect(seen).toEqual(['why']);
    cancel.addEventListener('abort', () => seen.push('late')); // as AbortSignal: never called
    expect(seen).toEqual(['why']);
  });

  it('defaults the reason to an AbortError, like AbortController', () => {
    const cancel = new Cancellation();
    cancel.abort();
    expect(cancel.reason).toBeInstanceOf(DOMException);
    expect((cancel.reason as DOMException).name).toBe('AbortError');
  });

  it('abortableSleep resolves after the delay or rejects with the reason at once', async () => {
    await expect(abortableSleep(5, new Cancellation())).resolves.toBeUndefined();
    const cancel = new Cancellation();
    const sleeping = abortableSleep(10_000, cancel);
    cancel.abort(new Error('stop'));
    await expect(sleeping).rejects.toThrow('stop');
    await expect(abortableSleep(10, cancel)).rejects.toThrow('stop');
  });
});
