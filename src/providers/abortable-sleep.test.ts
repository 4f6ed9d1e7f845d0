import { afterEach, beforeEach, describe, it, expect, vi } from 'vitest';
import { abortableSleep } from './abortable-sleep.js';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

/** Tracks how a promise settled without awaiting it. */
function track(promise: Promise<void>) {
  const state: { settled: 'pending' | 'resolved' | 'rejected'; reason?: unknown } = { settled: 'pending' };
  promise.then(
    () => {
      state.settled = 'resolved';
    },
    (reason: unknown) => {
      state.settled = 'rejected';
      state.reason = reason;
    },
  );
  return state;
}

describe('abortableSleep', () => {
  it('resolves only once ms have passed and leaves no timer', async () => {
    const controller = new AbortController();
    const state = track(abortableSleep(100, controller.signal));
    expect(vi.getTimerCount()).toBe(1);

    await vi.advanceTimersByTimeAsync(99);
    expect(state.settled).toBe('pending');

    await vi.advanceTimersByTimeAsync(1);
    expect(state.settled).toBe('resolved');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('does not react to an abort after it resolved', async () => {
    const controller = new AbortController();
    const state = track(abortableSleep(10, controller.signal));
    await vi.advanceTimersByTimeAsync(10);
    controller.abort(new Error('late'));
    await vi.advanceTimersByTimeAsync(0);
    expect(state.settled).toBe('resolved');
  });

  it('rejects immediately with the signal reason on abort, clearing its timer', async () => {
    const controller = new AbortController();
    const state = track(abortableSleep(10_000, controller.signal));
    const reason = new Error('stop');

    controller.abort(reason);
    await Promise.resolve();
    await Promise.resolve();
    expect(state.settled).toBe('rejected');
    expect(state.reason).toBe(reason);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('uses the default AbortError reason when none is given', async () => {
    const controller = new AbortController();
    const sleep = abortableSleep(1000, controller.signal);
    controller.abort();
    await expect(sleep).rejects.toMatchObject({ name: 'AbortError' });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects with the reason of an already aborted signal without scheduling a timer', async () => {
    const reason = new Error('already gone');
    const sleep = abortableSleep(1000, AbortSignal.abort(reason));
    expect(vi.getTimerCount()).toBe(0);
    await expect(sleep).rejects.toBe(reason);
  });

  it('rejects for a pre-aborted signal even when ms is 0', async () => {
    const reason = new Error('already gone');
    await expect(abortableSleep(0, AbortSignal.abort(reason))).rejects.toBe(reason);
  });

  it('resolves at once for ms <= 0 without a timer', async () => {
    const controller = new AbortController();
    const zero = abortableSleep(0, controller.signal);
    const negative = abortableSleep(-5, controller.signal);
    expect(vi.getTimerCount()).toBe(0);
    await expect(zero).resolves.toBeUndefined();
    await expect(negative).resolves.toBeUndefined();
  });

  it('removes its abort listener once it resolves', async () => {
    const controller = new AbortController();
    const remove = vi.spyOn(controller.signal, 'removeEventListener');
    const add = vi.spyOn(controller.signal, 'addEventListener');
    const sleep = abortableSleep(50, controller.signal);
    await vi.advanceTimersByTimeAsync(50);
    await sleep;
    expect(add).toHaveBeenCalledTimes(1);
    expect(remove).toHaveBeenCalledWith('abort', add.mock.calls[0]?.[1]);
  });
});
