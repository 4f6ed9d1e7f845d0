import { describe, expect, it } from 'vitest';
import { MemoryRateLimiter } from './memory-limiter.js';
import { createRateLimiter } from './resilient-limiter.js';
import { retryAfterMs } from './sliding-window.js';

class ManualClock {
  constructor(public time: number) {}
  now(): number {
    return this.time;
  }
  advance(ms: number): void {
    this.time += ms;
  }
}

const WINDOW = 1000;
const T0 = 1_700_000_000_000; // a multiple of WINDOW: a window starts here

function setup(options: { start?: number; maxKeys?: number } = {}) {
  const clock = new ManualClock(options.start ?? T0);
  const limiter = new MemoryRateLimiter({ clock, maxKeys: options.maxKeys });
  return { clock, limiter };
}

describe('MemoryRateLimiter', () => {
  it('enforces the limit within a window with remaining and resetMs', async () => {
    const { clock, limiter } = setup();
    clock.advance(200);
    const decisions = [];
    for (let i = 0; i < 4; i++) decisions.push(await limiter.hit('k', 3, WINDOW));
    expect(decisions.slice(0, 3)).toEqual([
      { allowed: true, limit: 3, remaining: 2, resetMs: 800 },
      { allowed: true, limit: 3, remaining: 1, resetMs: 800 },
      { allowed: true, limit: 3, remaining: 0, resetMs: 800 },
    ]);
    // Rejected: this window alone is full, so one more request fits once 1/3 of the next window has
    // passed (3 * 2/3 + 1 <= 3): 800 ms to the window end + 334 ms.
    expect(decisions[3]).toEqual({ allowed: false, limit: 3, remaining: 0, resetMs: 1134 });
    clock.advance(500);
    expect(await limiter.hit('k', 3, WINDOW)).toMatchObject({ allowed: false, remaining: 0, resetMs: 634 });
    expect(limiter.backend()).toBe('memory');
  });

  it('does not count rejected requests', async () => {
    const { limiter } = setup();
    for (let i = 0; i < 2; i++) await limiter.hit('k', 2, WINDOW);
    for (let i = 0; i < 10; i++) expect((await limiter.hit('k', 2, WINDOW)).allowed).toBe(false);
    // resetMs of a rejection is exactly when the next request is admitted again
    const { clock, limiter: other } = setup();
    for (let i = 0; i < 3; i++) await other.hit('k', 3, WINDOW);
    const rejected = await other.hit('k', 3, WINDOW);
    clock.advance(rejected.resetMs - 1);
    expect((await other.hit('k', 3, WINDOW)).allowed).toBe(false);
    clock.advance(1);
    expect(await other.hit('k', 3, WINDOW)).toMatchObject({ allowed: true, remaining: 0 });
  });

  it('allows again after the window: the previous window is weighted, then forgotten', async () => {
    const { clock, limiter } = setup();
    for (let i = 0; i < 4; i++) await limiter.hit('k', 4, WINDOW);
    expect((await limiter.hit('k', 4, WINDOW)).allowed).toBe(false);

    // Half-way through the next window the previous 4 weigh 2: two more fit.
    clock.advance(WINDOW + WINDOW / 2);
    expect(await limiter.hit('k', 4, WINDOW)).toEqual({ allowed: true, limit: 4, remaining: 1, resetMs: 500 });
    expect(await limiter.hit('k', 4, WINDOW)).toEqual({ allowed: true, limit: 4, remaining: 0, resetMs: 500 });
    const rejected = await limiter.hit('k', 4, WINDOW);
    expect(rejected.allowed).toBe(false);

    // Two full windows later nothing is left.
    clock.advance(2 * WINDOW);
    expect(await limiter.hit('k', 4, WINDOW)).toEqual({ allowed: true, limit: 4, remaining: 3, resetMs: 500 });
  });

  it('blocked by the previous window: resetMs is when enough of it has slid out', async () => {
    const { clock, limiter } = setup();
    for (let i = 0; i < 10; i++) await limiter.hit('k', 10, WINDOW);
    clock.advance(WINDOW); // start of the next window: the previous 10 weigh 10
    const rejected = await limiter.hit('k', 10, WINDOW);
    // previous * (1000 - e) / 1000 + 0 + 1 <= 10  <=>  e >= 100
    expect(rejected).toEqual({ allowed: false, limit: 10, remaining: 0, resetMs: 100 });
    clock.advance(100);
    expect(await limiter.hit('k', 10, WINDOW)).toMatchObject({ allowed: true, remaining: 0 });
  });

  it('keeps keys independent', async () => {
    const { limiter } = setup();
    await limiter.hit('a', 1, WINDOW);
    expect((await limiter.hit('a', 1, WINDOW)).allowed).toBe(false);
    expect(await limiter.hit('b', 1, WINDOW)).toMatchObject({ allowed: true, remaining: 0 });
    expect(await limiter.hit('c', 2, 60_000)).toMatchObject({ allowed: true, remaining: 1 });
    expect(limiter.size).toBe(3);
  });

  it('a limit of 0 rejects everything; invalid arguments reject with a RangeError', async () => {
    const { limiter } = setup({ start: T0 + 250 });
    expect(await limiter.hit('k', 0, WINDOW)).toEqual({ allowed: false, limit: 0, remaining: 0, resetMs: 750 });
    await expect(limiter.hit('k', -1, WINDOW)).rejects.toThrow(RangeError);
    await expect(limiter.hit('k', 1.5, WINDOW)).rejects.toThrow(RangeError);
    await expect(limiter.hit('k', 1, 0)).rejects.toThrow(RangeError);
    await expect(limiter.hit('k', 1, Number.NaN)).rejects.toThrow(RangeError);
    expect(() => new MemoryRateLimiter({ maxKeys: 0 })).toThrow(RangeError);
  });

  it('prunes expired keys lazily on later hits', async () => {
    const { clock, limiter } = setup();
    for (let i = 0; i < 10; i++) await limiter.hit(`old-${i}`, 5, WINDOW);
    expect(limiter.size).toBe(10);
    clock.advance(WINDOW); // still needed as the "previous" window
    await limiter.hit('fresh-1', 5, WINDOW);
    expect(limiter.size).toBe(11);
    clock.advance(WINDOW); // both windows of the old keys have passed
    await limiter.hit('fresh-2', 5, WINDOW);
    expect(limiter.size).toBe(2);
  });

  it('caps the number of keys, evicting the least recently hit', async () => {
    const { limiter } = setup({ maxKeys: 3 });
    await limiter.hit('a', 1, WINDOW);
    await limiter.hit('b', 1, WINDOW);
    await limiter.hit('c', 1, WINDOW);
    await limiter.hit('a', 1, WINDOW); // rejected, but touches "a"
    await limiter.hit('d', 1, WINDOW); // evicts "b"
    expect(limiter.size).toBe(3);
    expect((await limiter.hit('a', 1, WINDOW)).allowed).toBe(false); // still tracked
    expect((await limiter.hit('b', 1, WINDOW)).allowed).toBe(true); // forgotten: evicted
    expect(limiter.size).toBe(3);
  });

  it('does not reset when the clock goes backwards', async () => {
    const { clock, limiter } = setup();
    await limiter.hit('k', 1, WINDOW);
    clock.advance(-5 * WINDOW);
    expect((await limiter.hit('k', 1, WINDOW)).allowed).toBe(false);
  });

  it('a different window for the same key starts a fresh counter', async () => {
    const { limiter } = setup();
    await limiter.hit('k', 1, WINDOW);
    expect((await limiter.hit('k', 1, 2 * WINDOW)).allowed).toBe(true);
  });

  it('close forgets the counters; createRateLimiter without a URL is a memory limiter', async () => {
    const clock = new ManualClock(T0);
    const limiter = createRateLimiter({ clock });
    expect(limiter).toBeInstanceOf(MemoryRateLimiter);
    expect(limiter.backend()).toBe('memory');
    await limiter.hit('k', 1, WINDOW);
    await limiter.close();
    expect((limiter as MemoryRateLimiter).size).toBe(0);
    expect(createRateLimiter({ redisUrl: '' })).toBeInstanceOf(MemoryRateLimiter);
  });

  it('retryAfterMs is never below 1 ms', () => {
    expect(retryAfterMs({ current: 0, previous: 0, elapsedMs: 999 }, 0, WINDOW)).toBe(1);
    expect(retryAfterMs({ current: 1, previous: 0, elapsedMs: 999 }, 1, WINDOW)).toBe(1001);
  });
});
