import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { sleep } from './sleep.js';
import { capture } from './test-helpers.js';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('sleep', () => {
  it('resolves once ms have passed, leaving no timer and no abort listener', async () => {
    const controller = new AbortController();
    const removeListener = vi.spyOn(controller.signal, 'removeEventListener');
    const state = capture(sleep(100, controller.signal));

    await vi.advanceTimersByTimeAsync(99);
    expect(state.settled).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(state.settled).toBe('resolved');
    expect(vi.getTimerCount()).toBe(0);
    expect(removeListener).toHaveBeenCalledWith('abort', expect.any(Function));
  });

  it('works without a signal', async () => {
    const state = capture(sleep(50));
    await vi.advanceTimersByTimeAsync(50);
    expect(state.settled).toBe('resolved');
  });

  it('rejects with the reason at once on abort and clears its timer', async () => {
    const controller = new AbortController();
    const state = capture(sleep(10_000, controller.signal));
    const reason = new Error('stop');

    controller.abort(reason);
    await Promise.resolve();
    await Promise.resolve();
    expect(state).toMatchObject({ settled: 'rejected', reason });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects without starting a timer when the signal is already aborted', async () => {
    const reason = new Error('gone');
    await expect(sleep(100, AbortSignal.abort(reason))).rejects.toBe(reason);
    expect(vi.getTimerCount()).toBe(0);
  });
});
