import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CircuitOpenError } from '../errors.js';
import { retry, withRetry } from './retry.js';
import { RetryBudget } from './retry-budget.js';
import type { RetryAttemptInfo, RetryOptions } from './types.js';
import { capture, FakeUpstreamError } from './test-helpers.js';

/** Fake timers mock Date too, so this clock moves with vi.advanceTimersByTime. */
const clock = { now: () => Date.now() };
/** random 0.5 puts every jittered delay exactly on the schedule. */
const onSchedule = (): RetryOptions => ({ clock, random: () => 0.5 });

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

/** Records when each attempt started, relative to the test's start, and fails every one of them. */
function alwaysFailing(error: () => unknown = () => new FakeUpstreamError()) {
  const start = Date.now();
  const startedAt: number[] = [];
  const fn = vi.fn(async () => {
    startedAt.push(Date.now() - start);
    throw error();
  });
  return { fn, startedAt };
}

describe('retry', () => {
  it('returns the first success without waiting, passing attempt 0 and the signal', async () => {
    const signal = new AbortController().signal;
    const budget = { recordCall: vi.fn(), tryAcquireRetry: vi.fn(() => true) };
    const fn = vi.fn(async () => 'ok');

    await expect(retry(fn, { ...onSchedule(), signal, budget })).resolves.toBe('ok');
    expect(fn).toHaveBeenCalledExactlyOnceWith(0, signal);
    expect(budget.recordCall).toHaveBeenCalledTimes(1);
    expect(budget.tryAcquireRetry).not.toHaveBeenCalled();
  });

  it('retries after the scheduled delay and returns the eventual success', async () => {
    let calls = 0;
    const fn = vi.fn(async (attempt: number) => {
      calls++;
      if (attempt < 2) throw new FakeUpstreamError();
      return `attempt ${attempt}`;
    });
    const state = capture(retry(fn, { clock, random: () => 0 }));

    await vi.advanceTimersByTimeAsync(799);
    expect(calls).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toBe(2);
    await vi.advanceTimersByTimeAsync(1599);
    expect(calls).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(state).toMatchObject({ settled: 'resolved', value: 'attempt 2' });
    expect(fn.mock.calls.map(([attempt]) => attempt)).toEqual([0, 1, 2]);
  });

  it('waits 1, 2, 5, 10, 30, 60 s, then rethrows the last error unchanged after 7 attempts', async () => {
    const errors: FakeUpstreamError[] = [];
    const { fn, startedAt } = alwaysFailing(() => {
      const error = new FakeUpstreamError();
      errors.push(error);
      return error;
    });
    const state = capture(retry(fn, onSchedule()));

    await vi.runAllTimersAsync();
    expect(state.settled).toBe('rejected');
    expect(state.reason).toBe(errors.at(-1));
    expect(startedAt).toEqual([0, 1000, 3000, 8000, 18000, 48000, 108000]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps every wait within the jitter bounds', async () => {
    const delays: number[] = [];
    const { fn } = alwaysFailing();
    const state = capture(retry(fn, { clock, onRetry: ({ delayMs }) => delays.push(delayMs) }));

    await vi.runAllTimersAsync();
    expect(state.settled).toBe('rejected');
    expect(delays).toHaveLength(6);
    delays.forEach((delay, i) => {
      const base = [1000, 2000, 5000, 10000, 30000, 60000][i] ?? 0;
      expect(delay).toBeGreaterThanOrEqual(base * 0.8);
      expect(delay).toBeLessThanOrEqual(base * 1.2);
    });
  });

  it('repeats the last delay when maxRetries goes beyond the schedule', async () => {
    const { fn, startedAt } = alwaysFailing();
    const state = capture(retry(fn, { ...onSchedule(), maxRetries: 8 }));

    await vi.runAllTimersAsync();
    expect(state.settled).toBe('rejected');
    expect(fn).toHaveBeenCalledTimes(9);
    expect(startedAt.slice(-3)).toEqual([108000, 168000, 228000]);
  });

  it('makes exactly one attempt with maxRetries 0', async () => {
    const error = new FakeUpstreamError();
    const fn = vi.fn(async () => {
      throw error;
    });
    await expect(retry(fn, { ...onSchedule(), maxRetries: 0 })).rejects.toBe(error);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it.each([1, 2, 3])('makes at most maxRetries + 1 attempts (maxRetries %i)', async (maxRetries) => {
    const { fn } = alwaysFailing();
    const state = capture(retry(fn, { ...onSchedule(), maxRetries }));
    await vi.runAllTimersAsync();
    expect(state.settled).toBe('rejected');
    expect(fn).toHaveBeenCalledTimes(maxRetries + 1);
  });
});

describe('retry and Retry-After', () => {
  it('waits at least the retry-after the server asked for', async () => {
    const { fn, startedAt } = alwaysFailing(() => new FakeUpstreamError('rate_limit_error', 'retryable', 7000));
    const state = capture(retry(fn, { clock, random: () => 0, maxRetries: 1 }));

    await vi.advanceTimersByTimeAsync(6999);
    expect(fn).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(fn).toHaveBeenCalledTimes(2);
    expect(startedAt).toEqual([0, 7000]);
    expect(state.settled).toBe('rejected');
  });

  it('never waits less than the retry-after, whatever the jitter draws', async () => {
    const delays: number[] = [];
    const { fn } = alwaysFailing(() => new FakeUpstreamError('rate_limit_error', 'retryable', 3000));
    const state = capture(retry(fn, { clock, onRetry: ({ delayMs }) => delays.push(delayMs) }));

    await vi.runAllTimersAsync();
    expect(state.settled).toBe('rejected');
    for (const delay of delays) {
      expect(delay).toBeGreaterThanOrEqual(3000);
      expect(delay).toBeLessThanOrEqual(3300);
    }
  });

  it('caps a long retry-after at maxRetryAfterMs', async () => {
    const { fn, startedAt } = alwaysFailing(() => new FakeUpstreamError('rate_limit_error', 'retryable', 3_600_000));
    const state = capture(retry(fn, { clock, random: () => 0.99, maxRetries: 2, maxRetryAfterMs: 20_000 }));

    await vi.runAllTimersAsync();
    expect(state.settled).toBe('rejected');
    expect(startedAt).toEqual([0, 20_000, 40_000]);
  });
});

describe('retry deadline', () => {
  it('starts no retry whose wait would end past the deadline', async () => {
    const { fn, startedAt } = alwaysFailing();
    const start = Date.now();
    const state = capture(retry(fn, { ...onSchedule(), deadlineMs: 10_000 }));

    await vi.runAllTimersAsync();
    expect(state.settled).toBe('rejected');
    // 0, 1 s, 3 s, 8 s; the next wait (10 s) would end at 18 s.
    expect(startedAt).toEqual([0, 1000, 3000, 8000]);
    expect(Date.now() - start).toBeLessThanOrEqual(10_000);
  });

  it('counts time spent in attempts against the deadline', async () => {
    const start = Date.now();
    const fn = vi.fn(async () => {
      await new Promise((resolve) => setTimeout(resolve, 4000));
      throw new FakeUpstreamError();
    });
    const state = capture(retry(fn, { ...onSchedule(), deadlineMs: 10_000 }));

    await vi.runAllTimersAsync();
    expect(state.settled).toBe('rejected');
    // 4 s attempt, 1 s wait, 4 s attempt ends at 9 s; a 2 s wait would end at 11 s.
    expect(fn).toHaveBeenCalledTimes(2);
    expect(Date.now() - start).toBe(9000);
  });
});

describe('retry and abort', () => {
  it('ends a wait at once on abort, rejecting with the reason and leaving no timer', async () => {
    const controller = new AbortController();
    const { fn } = alwaysFailing();
    const state = capture(retry(fn, { ...onSchedule(), signal: controller.signal }));

    await vi.advanceTimersByTimeAsync(500);
    expect(vi.getTimerCount()).toBe(1);
    const reason = new Error('client went away');
    controller.abort(reason);
    await vi.advanceTimersByTimeAsync(0);

    expect(state).toMatchObject({ settled: 'rejected', reason });
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('does not retry when the signal aborts during an attempt, rethrowing that attempt’s error', async () => {
    const controller = new AbortController();
    const error = new FakeUpstreamError();
    const fn = vi.fn(async () => {
      controller.abort();
      throw error;
    });
    await expect(retry(fn, { ...onSchedule(), signal: controller.signal })).rejects.toBe(error);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('makes no attempt and records no call when the signal is already aborted', async () => {
    const reason = new Error('already gone');
    const budget = { recordCall: vi.fn(), tryAcquireRetry: vi.fn(() => true) };
    const fn = vi.fn(async () => 'ok');
    await expect(retry(fn, { ...onSchedule(), budget, signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(fn).not.toHaveBeenCalled();
    expect(budget.recordCall).not.toHaveBeenCalled();
  });
});

describe('retry of errors that must not be retried', () => {
  it.each<[string, () => unknown]>([
    ['non_retryable', () => new FakeUpstreamError('invalid_request_error', 'non_retryable')],
    ['aborted', () => new FakeUpstreamError('aborted', 'aborted')],
    ['AbortError', () => new DOMException('The operation was aborted', 'AbortError')],
    ['CircuitOpenError', () => new CircuitOpenError('anthropic', 30_000)],
  ])('calls fn once for %s and rethrows the error itself', async (_label, makeError) => {
    const error = makeError();
    const fn = vi.fn(async () => {
      throw error;
    });
    const onRetry = vi.fn();
    await expect(retry(fn, { ...onSchedule(), onRetry })).rejects.toBe(error);
    expect(fn).toHaveBeenCalledTimes(1);
    expect(onRetry).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('retry with a budget', () => {
  it('allows at most one retry for 10 calls at ratio 0.1, and again once the window has passed', async () => {
    const budget = new RetryBudget({ ratio: 0.1, minRetriesPerWindow: 0, windowMs: 10_000, clock });
    const { fn } = alwaysFailing();
    const runBatch = async () => {
      const states = Array.from({ length: 10 }, () => capture(retry(fn, { ...onSchedule(), budget, maxRetries: 3 })));
      await vi.advanceTimersByTimeAsync(5000);
      expect(states.every((s) => s.settled === 'rejected')).toBe(true);
    };

    await runBatch();
    expect(fn).toHaveBeenCalledTimes(11);
    expect(budget.stats()).toMatchObject({ calls: 10, retries: 1 });

    await vi.advanceTimersByTimeAsync(10_000);
    expect(budget.stats()).toMatchObject({ calls: 0, retries: 0 });
    await runBatch();
    expect(fn).toHaveBeenCalledTimes(22);
  });
});

describe('retry onRetry', () => {
  it('reports attempt, delay and reason for each retry', async () => {
    const errors: unknown[] = [new FakeUpstreamError('overloaded_error'), new TypeError('fetch failed'), 'a bare string'];
    let i = 0;
    const fn = vi.fn(async () => {
      const error = errors[i++];
      if (error === undefined) return 'done';
      throw error;
    });
    const infos: RetryAttemptInfo[] = [];
    const state = capture(retry(fn, { clock, random: () => 0, onRetry: (info) => infos.push(info) }));

    await vi.runAllTimersAsync();
    expect(state).toMatchObject({ settled: 'resolved', value: 'done' });
    expect(infos).toEqual([
      { attempt: 1, delayMs: 800, reason: 'overloaded_error', error: errors[0] },
      { attempt: 2, delayMs: 1600, reason: 'TypeError', error: errors[1] },
      { attempt: 3, delayMs: 4000, reason: 'unknown', error: errors[2] },
    ]);
  });
});

describe('withRetry', () => {
  it('passes the arguments through on every attempt and returns the value', async () => {
    let failures = 1;
    const add = vi.fn(async (a: number, b: string) => {
      if (failures-- > 0) throw new FakeUpstreamError();
      return `${b}${a + 1}`;
    });
    const wrapped = withRetry(onSchedule())(add);
    const state = capture(wrapped(41, 'answer: '));

    await vi.runAllTimersAsync();
    expect(state).toMatchObject({ settled: 'resolved', value: 'answer: 42' });
    expect(add.mock.calls).toEqual([
      [41, 'answer: '],
      [41, 'answer: '],
    ]);
  });

  it('validates its options when created', () => {
    expect(() => withRetry({ maxRetries: -1 })).toThrow(RangeError);
  });
});
