import { describe, expect, it } from 'vitest';
import { RetryBudget } from './retry-budget.js';
import { manualClock } from './test-helpers.js';

function acquireAll(budget: RetryBudget, max = 1000): number {
  let granted = 0;
  while (granted < max && budget.tryAcquireRetry()) granted++;
  return granted;
}

describe('RetryBudget', () => {
  it.each([{ ratio: -0.1 }, { ratio: Number.NaN }, { minRetriesPerWindow: -1 }, { windowMs: 0 }, { windowMs: Number.POSITIVE_INFINITY }])(
    'rejects %o',
    (options) => {
      expect(() => new RetryBudget(options)).toThrow(RangeError);
    },
  );

  it('allows minRetriesPerWindow retries with no calls at all', () => {
    const budget = new RetryBudget({ minRetriesPerWindow: 3, clock: manualClock() });
    expect(acquireAll(budget)).toBe(3);
  });

  it('allows a ratio of the calls on top of the minimum', () => {
    const budget = new RetryBudget({ ratio: 0.1, minRetriesPerWindow: 0, clock: manualClock() });
    for (let i = 0; i < 10; i++) budget.recordCall();
    expect(acquireAll(budget)).toBe(1);
    for (let i = 0; i < 10; i++) budget.recordCall();
    expect(acquireAll(budget)).toBe(1);
    expect(budget.stats()).toEqual({ calls: 20, retries: 2, allowed: 2 });
  });

  it('defaults to 10 retries plus 20 % of calls', () => {
    const budget = new RetryBudget({ clock: manualClock() });
    for (let i = 0; i < 50; i++) budget.recordCall();
    expect(acquireAll(budget)).toBe(20);
  });

  it('forgets calls and retries older than the window, bucket by bucket', () => {
    const clock = manualClock();
    const budget = new RetryBudget({ ratio: 0.5, minRetriesPerWindow: 0, windowMs: 10_000, clock });
    for (let i = 0; i < 4; i++) budget.recordCall();
    expect(acquireAll(budget)).toBe(2);

    clock.advance(5000);
    for (let i = 0; i < 2; i++) budget.recordCall();
    expect(budget.stats()).toEqual({ calls: 6, retries: 2, allowed: 3 });

    // The first bucket (t = 0) has expired; the one from t = 5000 remains.
    clock.advance(5000);
    expect(budget.stats()).toEqual({ calls: 2, retries: 0, allowed: 1 });

    clock.advance(5000);
    expect(budget.stats()).toEqual({ calls: 0, retries: 0, allowed: 0 });
  });

  it('refills once a window has passed', () => {
    const clock = manualClock(123_456);
    const budget = new RetryBudget({ ratio: 0.1, minRetriesPerWindow: 0, windowMs: 10_000, clock });
    for (let i = 0; i < 10; i++) budget.recordCall();
    expect(acquireAll(budget)).toBe(1);

    clock.advance(9_999);
    for (let i = 0; i < 10; i++) budget.recordCall();
    // Within the window the first retry still counts: 1 of 2 allowed is spent.
    expect(acquireAll(budget)).toBe(1);

    clock.advance(20_000);
    expect(budget.stats().calls).toBe(0);
    for (let i = 0; i < 10; i++) budget.recordCall();
    expect(acquireAll(budget)).toBe(1);
  });

  it('reuses a bucket slot a whole window later without mixing in old counts', () => {
    const clock = manualClock();
    const budget = new RetryBudget({ ratio: 1, minRetriesPerWindow: 0, windowMs: 1000, clock });
    budget.recordCall();
    budget.recordCall();
    clock.advance(1000); // Same slot in the ring, next lap.
    budget.recordCall();
    expect(budget.stats()).toEqual({ calls: 1, retries: 0, allowed: 1 });
  });

  it('copes with a clock that starts below zero', () => {
    const budget = new RetryBudget({ ratio: 1, minRetriesPerWindow: 0, clock: manualClock(-25_000) });
    budget.recordCall();
    expect(acquireAll(budget)).toBe(1);
  });
});
