import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HealthCheckRegistry, HealthCheckTimeoutError, type CheckResult, type HealthLog } from './check-registry.js';

function fakeLog() {
  const entries: { level: 'warn' | 'info'; obj: Record<string, unknown> }[] = [];
  const log: HealthLog = {
    warn: (obj) => entries.push({ level: 'warn', obj: obj as Record<string, unknown> }),
    info: (obj) => entries.push({ level: 'info', obj: obj as Record<string, unknown> }),
  };
  return { log, entries, events: () => entries.map((e) => e.obj.event) };
}

describe('HealthCheckRegistry', () => {
  let registry: HealthCheckRegistry;

  beforeEach(() => {
    vi.useFakeTimers();
  });

  afterEach(() => {
    registry.stop();
    vi.useRealTimers();
  });

  it('accepts a pino logger', () => {
    registry = new HealthCheckRegistry({ log: pino({ level: 'silent' }) });
    expect(registry.names()).toEqual([]);
  });

  it('starts every check as warn "not checked yet" until its first run', async () => {
    registry = new HealthCheckRegistry();
    registry.registerHealthCheck('a', () => ({ status: 'pass' }), { critical: true, componentType: 'datastore' });
    expect(registry.results()).toEqual({
      a: expect.objectContaining({ status: 'warn', output: 'not checked yet', checked: false, critical: true, consecutiveFailures: 0, componentType: 'datastore' }),
    });
    await registry.runAll();
    expect(registry.result('a')).toMatchObject({ status: 'pass', checked: true });
    expect(registry.result('a')?.output).toBeUndefined();
  });

  it('runs all checks once on start, then each on its own interval', async () => {
    registry = new HealthCheckRegistry();
    const fast = vi.fn(() => ({ status: 'pass' as const }));
    const slow = vi.fn(() => ({ status: 'pass' as const }));
    registry.registerHealthCheck('fast', fast, { intervalMs: 1_000 });
    registry.registerHealthCheck('slow', slow, { intervalMs: 5_000 });
    registry.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(fast).toHaveBeenCalledTimes(1);
    expect(slow).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(fast).toHaveBeenCalledTimes(6);
    expect(slow).toHaveBeenCalledTimes(2);
  });

  it('caches results: reading them never runs a check', async () => {
    registry = new HealthCheckRegistry();
    let value = 1;
    const check = vi.fn(() => ({ status: 'pass' as const, observedValue: value, observedUnit: 'ms' }));
    registry.registerHealthCheck('a', check, { intervalMs: 10_000 });
    registry.start();
    await vi.advanceTimersByTimeAsync(0);
    value = 2;
    for (let i = 0; i < 5; i += 1) expect(registry.results().a?.observedValue).toBe(1);
    expect(check).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(registry.results().a).toMatchObject({ status: 'pass', observedValue: 2, observedUnit: 'ms' });
  });

  it('records time (ISO) and duration of a run', async () => {
    registry = new HealthCheckRegistry();
    registry.registerHealthCheck('slowish', async () => {
      await new Promise((resolve) => setTimeout(resolve, 250));
      return { status: 'pass' };
    });
    const run = registry.runAll();
    await vi.advanceTimersByTimeAsync(250);
    await run;
    const result = registry.result('slowish');
    expect(result?.durationMs).toBe(250);
    expect(new Date(result?.time ?? '').toISOString()).toBe(result?.time);
  });

  it('fails a check that exceeds its timeout and aborts its signal', async () => {
    registry = new HealthCheckRegistry();
    let seen: AbortSignal | undefined;
    registry.registerHealthCheck(
      'hang',
      (signal) => {
        seen = signal;
        return new Promise<CheckResult>(() => {});
      },
      { timeoutMs: 1_000, intervalMs: 60_000 },
    );
    const run = registry.runAll();
    await vi.advanceTimersByTimeAsync(999);
    expect(seen?.aborted).toBe(false);
    expect(registry.result('hang')?.checked).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await run;
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toBeInstanceOf(HealthCheckTimeoutError);
    expect(registry.result('hang')).toMatchObject({ status: 'fail', output: 'timed out after 1000 ms', consecutiveFailures: 1 });
  });

  it('does not call a check again while a timed-out call is still pending; resumes once it settles', async () => {
    registry = new HealthCheckRegistry();
    let release: (() => void) | undefined;
    const check = vi.fn(
      () =>
        new Promise<CheckResult>((resolve) => {
          release = () => resolve({ status: 'pass' });
        }),
    );
    registry.registerHealthCheck('stubborn', check, { timeoutMs: 100, intervalMs: 1_000 });
    registry.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(registry.result('stubborn')?.status).toBe('fail');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(check).toHaveBeenCalledTimes(1);
    expect(registry.result('stubborn')).toMatchObject({ status: 'fail', consecutiveFailures: 2 });
    release?.();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(check).toHaveBeenCalledTimes(2);
  });

  it('never overlaps runs of one check', async () => {
    registry = new HealthCheckRegistry();
    let running = 0;
    let maxRunning = 0;
    const check = vi.fn(async () => {
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      running -= 1;
      return { status: 'pass' as const };
    });
    registry.registerHealthCheck('slow', check, { intervalMs: 1_000, timeoutMs: 10_000 });
    registry.start();
    const extra = [registry.runAll(), registry.runCheck('slow')];
    await vi.advanceTimersByTimeAsync(10_000);
    await Promise.all(extra);
    expect(maxRunning).toBe(1);
    // Runs at 0, 3000 (first tick after 2500), 6000, 9000.
    expect(check).toHaveBeenCalledTimes(4);
  });

  it('turns a throw, a rejection or a malformed result into fail', async () => {
    registry = new HealthCheckRegistry();
    registry.registerHealthCheck('throws', () => {
      throw new Error('boom');
    });
    registry.registerHealthCheck('rejects', async () => {
      throw new Error('nope');
    });
    registry.registerHealthCheck('bad', () => ({ status: 'ok' }) as unknown as CheckResult);
    await registry.runAll();
    expect(registry.result('throws')).toMatchObject({ status: 'fail', output: 'boom' });
    expect(registry.result('rejects')).toMatchObject({ status: 'fail', output: 'nope' });
    expect(registry.result('bad')).toMatchObject({ status: 'fail', output: 'check returned an invalid result' });
  });

  it('logs health_check_failed once per transition to fail and health_check_recovered when it passes again', async () => {
    const { log, entries, events } = fakeLog();
    registry = new HealthCheckRegistry({ log });
    let next: CheckResult = { status: 'fail', output: 'down' };
    registry.registerHealthCheck('flaky', () => next);
    await registry.runAll();
    await registry.runAll();
    await registry.runAll();
    expect(events()).toEqual(['health_check_failed']);
    expect(entries[0]).toEqual({
      level: 'warn',
      obj: { event: 'health_check_failed', component: 'health', check: 'flaky', output: 'down', consecutive_failures: 1, critical: false },
    });
    expect(registry.result('flaky')?.consecutiveFailures).toBe(3);
    next = { status: 'pass' };
    await registry.runAll();
    await registry.runAll();
    expect(events()).toEqual(['health_check_failed', 'health_check_recovered']);
    expect(entries[1]).toMatchObject({ level: 'info', obj: { event: 'health_check_recovered', component: 'health', check: 'flaky', failures: 3 } });
    expect(registry.result('flaky')?.consecutiveFailures).toBe(0);
    next = { status: 'fail', output: 'again' };
    await registry.runAll();
    expect(events()).toEqual(['health_check_failed', 'health_check_recovered', 'health_check_failed']);
  });

  it('logs nothing for warn results or the initial state', async () => {
    const { log, entries } = fakeLog();
    registry = new HealthCheckRegistry({ log });
    registry.registerHealthCheck('w', () => ({ status: 'warn', output: 'meh' }));
    await registry.runAll();
    expect(entries).toEqual([]);
  });

  it('stop clears every timer, abandons runs in flight and records nothing from them', async () => {
    const { log, entries } = fakeLog();
    registry = new HealthCheckRegistry({ log });
    let seen: AbortSignal | undefined;
    registry.registerHealthCheck('quick', () => ({ status: 'pass' }), { intervalMs: 1_000 });
    registry.registerHealthCheck(
      'hang',
      (signal) => {
        seen = signal;
        return new Promise<CheckResult>(() => {});
      },
      { intervalMs: 1_000, timeoutMs: 5_000 },
    );
    registry.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    registry.stop();
    expect(vi.getTimerCount()).toBe(0);
    expect(seen?.aborted).toBe(true);
    await registry.runCheck('quick');
    expect(vi.getTimerCount()).toBe(0);
    expect(registry.result('hang')?.checked).toBe(false);
    expect(entries).toEqual([]);
  });

  it('runs a check registered after start at once and schedules it', async () => {
    registry = new HealthCheckRegistry();
    registry.start();
    const check = vi.fn(() => ({ status: 'pass' as const }));
    registry.registerHealthCheck('late', check, { intervalMs: 1_000 });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(check).toHaveBeenCalledTimes(2);
  });

  it('rejects duplicate names and invalid timings', async () => {
    registry = new HealthCheckRegistry();
    registry.registerHealthCheck('a', () => ({ status: 'pass' }));
    expect(() => registry.registerHealthCheck('a', () => ({ status: 'pass' }))).toThrow(/already registered/);
    expect(() => registry.registerHealthCheck('b', () => ({ status: 'pass' }), { intervalMs: 0 })).toThrow(RangeError);
    expect(() => registry.registerHealthCheck('c', () => ({ status: 'pass' }), { timeoutMs: Number.NaN })).toThrow(RangeError);
    await expect(registry.runCheck('missing')).resolves.toBe(false);
  });
});
