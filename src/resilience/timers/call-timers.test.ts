import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { UpstreamTimeoutError } from '../errors.js';
import { CallTimers, type CallTimerLimits } from './call-timers.js';
import { DeadlineTicker } from './deadline-ticker.js';

// A 1 ms ticker on the faked Date makes deadlines exact in these tests.
const ticker = () => new DeadlineTicker(1, { now: () => Date.now() });
const LIMITS: CallTimerLimits = { connectMs: 100, firstTokenMs: 300, idleMs: 50, totalMs: 1000 };

function timers(limits: Partial<CallTimerLimits> = {}) {
  const fired: UpstreamTimeoutError[] = [];
  const t = new CallTimers({ ...LIMITS, ...limits }, (e) => fired.push(e), ticker());
  return { t, fired };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('CallTimers', () => {
  it('fires the connect timer when upstream never answers', () => {
    const { t, fired } = timers();
    t.start();
    vi.advanceTimersByTime(99);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired.map((e) => [e.timer, e.errorType, e.limitMs])).toEqual([['connect', 'connect_timeout', 100]]);
    expect(fired[0]?.failureClass).toBe('retryable');
    vi.advanceTimersByTime(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('fires the first-token timer after a connection that brings no content', () => {
    const { t, fired } = timers();
    t.start();
    vi.advanceTimersByTime(80);
    t.connected();
    vi.advanceTimersByTime(299);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired.map((e) => e.timer)).toEqual(['first_token']);
  });

  it('fires the idle timer when a flowing stream goes silent, and not while events keep coming', () => {
    const { t, fired } = timers();
    t.start();
    t.connected();
    for (let i = 0; i < 10; i++) {
      vi.advanceTimersByTime(40);
      t.content();
    }
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(50);
    expect(fired.map((e) => e.timer)).toEqual(['idle']);
  });

  it('counts non-content activity against the idle timer', () => {
    const { t, fired } = timers();
    t.start();
    t.content();
    vi.advanceTimersByTime(40);
    t.activity();
    vi.advanceTimersByTime(40);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(10);
    expect(fired.map((e) => e.timer)).toEqual(['idle']);
  });

  it('fires the total timer even while content keeps flowing', () => {
    const { t, fired } = timers({ idleMs: 0 });
    t.start();
    t.connected();
    for (let i = 0; i < 99; i++) {
      vi.advanceTimersByTime(10);
      t.content();
    }
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(10);
    expect(fired.map((e) => e.timer)).toEqual(['total']);
  });

  it('applies the idle limit as soon as content flows, even when the first-token limit is longer', () => {
    const { t, fired } = timers({ firstTokenMs: 10_000, idleMs: 20, totalMs: 0 });
    t.start();
    t.connected();
    t.content();
    vi.advanceTimersByTime(20);
    expect(fired.map((e) => e.timer)).toEqual(['idle']);
  });

  it('never fires after stop and leaves no timer behind', () => {
    const { t, fired } = timers();
    t.start();
    t.connected();
    t.content();
    t.stop();
    vi.advanceTimersByTime(1);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(10_000);
    expect(fired).toEqual([]);
  });

  it('treats a 0 limit as off', () => {
    const { t, fired } = timers({ connectMs: 0, firstTokenMs: 0, idleMs: 0, totalMs: 0 });
    t.start();
    vi.advanceTimersByTime(60_000);
    expect(fired).toEqual([]);
  });

  it('fires at most once', () => {
    const { t, fired } = timers({ connectMs: 10, totalMs: 20 });
    t.start();
    vi.advanceTimersByTime(1000);
    expect(fired).toHaveLength(1);
  });
});

describe('DeadlineTicker', () => {
  it('runs only while something is watched and notices a deadline within its resolution', () => {
    const coarse = new DeadlineTicker(25, { now: () => Date.now() });
    const fired: string[] = [];
    const t = new CallTimers({ ...LIMITS, connectMs: 100 }, (e) => fired.push(e.timer), coarse);
    expect(vi.getTimerCount()).toBe(0);
    t.start();
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(99);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(25);
    expect(fired).toEqual(['connect']);
    expect(coarse.size).toBe(0);
    vi.advanceTimersByTime(25);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('shares one timer among many calls', () => {
    const shared = new DeadlineTicker(25, { now: () => Date.now() });
    const calls = Array.from({ length: 100 }, () => new CallTimers(LIMITS, () => undefined, shared));
    for (const c of calls) c.start();
    expect(vi.getTimerCount()).toBe(1);
    for (const c of calls) c.stop();
    expect(shared.size).toBe(0);
  });
});
