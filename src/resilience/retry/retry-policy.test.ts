import { describe, expect, it, vi } from 'vitest';
import { CircuitOpenError } from '../errors.js';
import { DEFAULT_RETRY_DELAYS_MS, RetryPolicy } from './retry-policy.js';
import type { RetryOptions } from './types.js';
import { FakeUpstreamError, manualClock } from './test-helpers.js';

const ALMOST_ONE = 1 - Number.EPSILON;

function policy(options: RetryOptions = {}) {
  const clock = options.clock ?? manualClock();
  return new RetryPolicy({ clock, ...options });
}

function delayOf(p: RetryPolicy, retryNumber: number, error: unknown = new FakeUpstreamError()): number {
  const decision = p.decide(error, retryNumber, 0);
  if (!decision.retry) throw new Error(`expected a retry, got ${decision.reason}`);
  return decision.delayMs;
}

describe('RetryPolicy options', () => {
  it.each<[string, RetryOptions]>([
    ['negative maxRetries', { maxRetries: -1 }],
    ['fractional maxRetries', { maxRetries: 1.5 }],
    ['jitter above 1', { jitter: 1.1 }],
    ['negative jitter', { jitter: -0.1 }],
    ['NaN jitter', { jitter: Number.NaN }],
    ['empty delays', { delaysMs: [] }],
    ['a negative delay', { delaysMs: [1000, -1] }],
    ['an infinite delay', { delaysMs: [Number.POSITIVE_INFINITY] }],
    ['negative maxRetryAfterMs', { maxRetryAfterMs: -1 }],
    ['negative deadlineMs', { deadlineMs: -5 }],
  ])('rejects %s', (_label, options) => {
    expect(() => new RetryPolicy(options)).toThrow(RangeError);
  });

  it('accepts the edges: no retries, no jitter, full jitter, zero delays', () => {
    expect(() => new RetryPolicy({ maxRetries: 0, jitter: 0, delaysMs: [0] })).not.toThrow();
    expect(() => new RetryPolicy({ jitter: 1 })).not.toThrow();
  });

  it('does not follow later changes to the caller’s delay array', () => {
    const delaysMs = [100];
    const p = policy({ delaysMs, jitter: 0 });
    delaysMs[0] = 999;
    expect(delayOf(p, 1)).toBe(100);
  });
});

describe('RetryPolicy delays', () => {
  it('follows 1, 2, 5, 10, 30, 60 s at the lower jitter bound when random is 0', () => {
    const p = policy({ random: () => 0 });
    expect([1, 2, 3, 4, 5, 6].map((n) => delayOf(p, n))).toEqual([800, 1600, 4000, 8000, 24000, 48000]);
  });

  it('follows the schedule at the upper jitter bound when random is almost 1', () => {
    const p = policy({ random: () => ALMOST_ONE });
    expect([1, 2, 3, 4, 5, 6].map((n) => delayOf(p, n))).toEqual([1200, 2400, 6000, 12000, 36000, 72000]);
  });

  it('is exactly the schedule with jitter 0', () => {
    const p = policy({ jitter: 0 });
    expect([1, 2, 3, 4, 5, 6].map((n) => delayOf(p, n))).toEqual([...DEFAULT_RETRY_DELAYS_MS]);
  });

  it('stays within ±20 % of the schedule with the default random', () => {
    const p = policy();
    for (let n = 1; n <= 6; n++) {
      const base = DEFAULT_RETRY_DELAYS_MS[n - 1] ?? 0;
      const draws = Array.from({ length: 500 }, () => delayOf(p, n));
      for (const delay of draws) {
        expect(delay).toBeGreaterThanOrEqual(base * 0.8);
        expect(delay).toBeLessThanOrEqual(base * 1.2);
      }
      // Jitter really spreads the delays rather than sticking to one value.
      expect(new Set(draws).size).toBeGreaterThan(10);
    }
  });

  it('repeats the last delay beyond the schedule', () => {
    const p = policy({ maxRetries: 10, jitter: 0 });
    expect([7, 8, 9, 10].map((n) => delayOf(p, n))).toEqual([60000, 60000, 60000, 60000]);
  });

  it('uses a custom schedule', () => {
    const p = policy({ delaysMs: [10, 20], maxRetries: 3, jitter: 0 });
    expect([1, 2, 3].map((n) => delayOf(p, n))).toEqual([10, 20, 20]);
  });
});

describe('RetryPolicy limits', () => {
  it('allows no retry with maxRetries 0', () => {
    expect(policy({ maxRetries: 0 }).decide(new FakeUpstreamError(), 1, 0)).toEqual({ retry: false, reason: 'max_retries' });
  });

  it('allows exactly maxRetries retries (default 6)', () => {
    const p = policy();
    expect(p.decide(new FakeUpstreamError(), 6, 0).retry).toBe(true);
    expect(p.decide(new FakeUpstreamError(), 7, 0)).toEqual({ retry: false, reason: 'max_retries' });
    const three = policy({ maxRetries: 3 });
    expect(three.decide(new FakeUpstreamError(), 3, 0).retry).toBe(true);
    expect(three.decide(new FakeUpstreamError(), 4, 0)).toEqual({ retry: false, reason: 'max_retries' });
  });

  it('stops when the wait would end past the deadline', () => {
    const clock = manualClock(500);
    const p = policy({ clock, deadlineMs: 2500, jitter: 0 });
    // Started at 500: the deadline is 3000.
    expect(p.decide(new FakeUpstreamError(), 1, 500)).toEqual({ retry: true, delayMs: 1000 });
    clock.advance(1000);
    // 1500 + 2000 = 3500 > 3000.
    expect(p.decide(new FakeUpstreamError(), 2, 500)).toEqual({ retry: false, reason: 'deadline' });
  });

  it('allows a wait ending exactly at the deadline', () => {
    const p = policy({ deadlineMs: 1000, jitter: 0 });
    expect(p.decide(new FakeUpstreamError(), 1, 0)).toEqual({ retry: true, delayMs: 1000 });
  });

  it('stops with aborted once the signal is aborted', () => {
    const p = policy({ signal: AbortSignal.abort() });
    expect(p.decide(new FakeUpstreamError(), 1, 0)).toEqual({ retry: false, reason: 'aborted' });
  });
});

describe('RetryPolicy retry-after', () => {
  it('waits at least the retry-after, spreading it upwards by at most 10 %', () => {
    const error = new FakeUpstreamError('rate_limit_error', 'retryable', 7000);
    expect(delayOf(policy({ random: () => 0 }), 1, error)).toBe(7000);
    expect(delayOf(policy({ random: () => ALMOST_ONE }), 1, error)).toBe(7700);
    expect(delayOf(policy({ jitter: 0, random: () => ALMOST_ONE }), 1, error)).toBe(7000);
  });

  it('honours a retry-after shorter than the schedule', () => {
    const error = new FakeUpstreamError('rate_limit_error', 'retryable', 300);
    expect(delayOf(policy({ random: () => 0 }), 4, error)).toBe(300);
  });

  it('caps the retry-after at maxRetryAfterMs (default 60 s)', () => {
    const error = new FakeUpstreamError('rate_limit_error', 'retryable', 600_000);
    expect(delayOf(policy({ random: () => ALMOST_ONE }), 1, error)).toBe(60_000);
    expect(delayOf(policy({ maxRetryAfterMs: 5000 }), 1, error)).toBe(5000);
  });

  it('stops when the retry-after reaches past the deadline', () => {
    const error = new FakeUpstreamError('rate_limit_error', 'retryable', 20_000);
    expect(policy({ deadlineMs: 10_000 }).decide(error, 1, 0)).toEqual({ retry: false, reason: 'deadline' });
  });
});

describe('RetryPolicy retryability', () => {
  const notRetryable = { retry: false, reason: 'not_retryable' };

  it('never retries non-retryable, aborted or breaker-rejected errors', () => {
    const p = policy();
    expect(p.decide(new FakeUpstreamError('invalid_request_error', 'non_retryable'), 1, 0)).toEqual(notRetryable);
    expect(p.decide(new FakeUpstreamError('aborted', 'aborted'), 1, 0)).toEqual(notRetryable);
    expect(p.decide(new DOMException('stopped', 'AbortError'), 1, 0)).toEqual(notRetryable);
    expect(p.decide(new CircuitOpenError('anthropic', 5000), 1, 0)).toEqual(notRetryable);
  });

  it('retries unclassified errors', () => {
    expect(policy().decide(new TypeError('fetch failed'), 1, 0).retry).toBe(true);
  });

  it('lets shouldRetry decide, but never for a breaker rejection', () => {
    const never = policy({ shouldRetry: () => false });
    expect(never.decide(new FakeUpstreamError(), 1, 0)).toEqual(notRetryable);
    const always = policy({ shouldRetry: () => true });
    expect(always.decide(new FakeUpstreamError('invalid_request_error', 'non_retryable'), 1, 0).retry).toBe(true);
    expect(always.decide(new CircuitOpenError('anthropic', 0), 1, 0)).toEqual(notRetryable);
  });
});

describe('RetryPolicy budget', () => {
  function fakeBudget(grant: boolean) {
    return { recordCall: vi.fn(), tryAcquireRetry: vi.fn(() => grant) };
  }

  it('stops with budget when the budget refuses', () => {
    const budget = fakeBudget(false);
    expect(policy({ budget }).decide(new FakeUpstreamError(), 1, 0)).toEqual({ retry: false, reason: 'budget' });
    expect(budget.tryAcquireRetry).toHaveBeenCalledTimes(1);
  });

  it('spends the budget only when every other check passed', () => {
    const budget = fakeBudget(true);
    policy({ budget }).decide(new FakeUpstreamError('x', 'non_retryable'), 1, 0);
    policy({ budget, maxRetries: 0 }).decide(new FakeUpstreamError(), 1, 0);
    policy({ budget, deadlineMs: 10 }).decide(new FakeUpstreamError(), 1, 0);
    policy({ budget, signal: AbortSignal.abort() }).decide(new FakeUpstreamError(), 1, 0);
    expect(budget.tryAcquireRetry).not.toHaveBeenCalled();

    expect(policy({ budget }).decide(new FakeUpstreamError(), 1, 0).retry).toBe(true);
    expect(budget.tryAcquireRetry).toHaveBeenCalledTimes(1);
  });
});
