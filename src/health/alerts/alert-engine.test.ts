import Fastify from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AlertEngine, type AlertName, type AlertSources } from './alert-engine.js';
import { alertRoutes } from './alert-routes.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const INTERVAL = 15 * SECOND;

class ManualClock {
  constructor(public t = Date.UTC(2025, 0, 1, 12, 0, 0)) {}
  now(): number {
    return this.t;
  }
}

interface FakeSources extends AlertSources {
  requests: number;
  errors: number;
  breakers: string[];
  memory: number;
  fallbacks: number;
  sessions: number;
}

function fakeSources(): FakeSources {
  return {
    requests: 0,
    errors: 0,
    breakers: [],
    memory: 40,
    fallbacks: 0,
    sessions: 0,
    requestsTotal() {
      return this.requests;
    },
    errorsTotal() {
      return this.errors;
    },
    openBreakers() {
      return this.breakers;
    },
    memoryUsagePercent() {
      return this.memory;
    },
    fallbacksTotal() {
      return this.fallbacks;
    },
    activeSessions() {
      return this.sessions;
    },
  };
}

function setup(options: { evaluateIntervalMs?: number } = {}) {
  const clock = new ManualClock();
  const sources = fakeSources();
  const log = { warn: vi.fn<(obj: object) => void>(), info: vi.fn<(obj: object) => void>() };
  const engine = new AlertEngine(sources, { clock, log, evaluateIntervalMs: options.evaluateIntervalMs ?? INTERVAL });
  const state = (name: AlertName) => engine.alerts().find((a) => a.name === name);
  /** Advances the clock by `ms` in evaluation-interval steps, running `each` before every evaluation. */
  const run = (ms: number, each: () => void = () => undefined) => {
    for (let elapsed = 0; elapsed < ms; elapsed += INTERVAL) {
      clock.t += INTERVAL;
      each();
      engine.evaluate();
    }
  };
  const events = (kind: 'warn' | 'info', alert: AlertName) =>
    log[kind].mock.calls.map(([obj]) => obj as Record<string, unknown>).filter((o) => o.alert === alert);
  engine.evaluate(); // baseline sample at t0
  return { clock, sources, log, engine, state, run, events };
}

describe('AlertEngine', () => {
  it('starts with every alert inactive', () => {
    const { engine } = setup();
    const alerts = engine.alerts();
    expect(alerts.map((a) => a.name)).toEqual([
      'high_error_rate',
      'circuit_breaker_open',
      'high_memory_usage',
      'frequent_fallbacks',
      'too_many_active_sessions',
    ]);
    expect(alerts.every((a) => a.state === 'inactive' && a.since === null)).toBe(true);
    expect(engine.firing()).toEqual([]);
  });

  describe('high_error_rate', () => {
    it('goes pending, fires after 5 minutes sustained above 10 %, and resolves when errors stop', () => {
      const { sources, state, run, events, clock, engine } = setup();
      // 20 requests / 15 s with 4 errors: 20 % error rate.
      const traffic = (errors: number) => () => {
        sources.requests += 20;
        sources.errors += errors;
      };
      run(INTERVAL, traffic(4));
      expect(state('high_error_rate')?.state).toBe('pending');
      const pendingSince = clock.t;
      expect(state('high_error_rate')?.since).toBe(new Date(pendingSince).toISOString());

      run(5 * MINUTE - INTERVAL, traffic(4)); // 4 m 45 s of a sustained 20 % error rate
      expect(state('high_error_rate')?.state).toBe('pending');
      expect(events('warn', 'high_error_rate')).toHaveLength(0);

      run(INTERVAL, traffic(4));
      expect(clock.t - pendingSince).toBe(5 * MINUTE);
      const firing = state('high_error_rate');
      expect(firing?.state).toBe('firing');
      expect(firing?.severity).toBe('critical');
      expect(firing?.value).toBeCloseTo(0.2);
      expect(firing?.description).toMatch(/20\.0%/);
      expect(events('warn', 'high_error_rate')).toEqual([
        {
          event: 'alert_firing',
          component: 'alerts',
          alert: 'high_error_rate',
          value: firing?.value,
          description: firing?.description,
        },
      ]);

      // Still failing: no repeated firing log.
      run(2 * MINUTE, traffic(4));
      expect(events('warn', 'high_error_rate')).toHaveLength(1);

      // Errors stop: the 5-minute ratio falls to 10 % or less within 3 minutes.
      run(3 * MINUTE, traffic(0));
      expect(state('high_error_rate')?.state).toBe('inactive');
      expect(events('info', 'high_error_rate')).toEqual([
        { event: 'alert_resolved', component: 'alerts', alert: 'high_error_rate' },
      ]);
      run(5 * MINUTE, traffic(0));
      expect(events('info', 'high_error_rate')).toHaveLength(1);
      expect(engine.firing()).toEqual([]);
    });

    it('does not fire on a high ratio with fewer than 20 requests in the window', () => {
      const { sources, state, run } = setup();
      // 1 request a minute, all failing: 5 requests per 5 minutes.
      let tick = 0;
      run(15 * MINUTE, () => {
        if (tick++ % 4 === 0) {
          sources.requests += 1;
          sources.errors += 1;
        }
      });
      expect(state('high_error_rate')?.state).toBe('inactive');
      expect(state('high_error_rate')?.description).toMatch(/need 20/);
    });

    it('returns to inactive without logging when the rate drops while still pending', () => {
      const { sources, state, run, log } = setup();
      run(MINUTE, () => {
        sources.requests += 20;
        sources.errors += 10;
      });
      expect(state('high_error_rate')?.state).toBe('pending');
      // A burst of good traffic brings the 5-minute ratio back under 10 % within two evaluations.
      run(2 * INTERVAL, () => {
        sources.requests += 200;
      });
      expect(state('high_error_rate')?.state).toBe('inactive');
      run(10 * MINUTE, () => {
        sources.requests += 200;
      });
      expect(state('high_error_rate')?.state).toBe('inactive');
      expect(log.warn).not.toHaveBeenCalled();
      expect(log.info).not.toHaveBeenCalled();
    });

    it('does not count errors from before the engine started', () => {
      const clock = new ManualClock();
      const sources = fakeSources();
      sources.requests = 1000;
      sources.errors = 900;
      const engine = new AlertEngine(sources, { clock });
      for (let i = 0; i < 40; i++) {
        sources.requests += 20;
        engine.evaluate();
        clock.t += INTERVAL;
      }
      expect(engine.alerts().find((a) => a.name === 'high_error_rate')?.state).toBe('inactive');
    });
  });

  describe('circuit_breaker_open', () => {
    it('fires as soon as a breaker opens, lists the circuits, and resolves when they close', () => {
      const { sources, state, run, events } = setup();
      sources.breakers = ['claude-api'];
      run(INTERVAL);
      const firing = state('circuit_breaker_open');
      expect(firing?.state).toBe('firing');
      expect(firing?.value).toBe(1);
      expect(firing?.labels).toEqual({ circuits: 'claude-api' });
      expect(firing?.description).toContain('claude-api');

      sources.breakers = ['redis', 'claude-api'];
      run(INTERVAL);
      expect(state('circuit_breaker_open')?.labels).toEqual({ circuits: 'claude-api,redis' });
      expect(state('circuit_breaker_open')?.value).toBe(2);
      expect(events('warn', 'circuit_breaker_open')).toHaveLength(1);

      sources.breakers = [];
      run(INTERVAL);
      expect(state('circuit_breaker_open')?.state).toBe('inactive');
      expect(state('circuit_breaker_open')?.labels).toEqual({});
      expect(events('info', 'circuit_breaker_open')).toEqual([
        { event: 'alert_resolved', component: 'alerts', alert: 'circuit_breaker_open' },
      ]);
    });
  });

  describe('high_memory_usage', () => {
    it('fires only after memory stays above 90 % for 2 minutes, then resolves', () => {
      const { sources, state, run, events, clock } = setup();
      sources.memory = 95;
      run(INTERVAL);
      const start = clock.t;
      expect(state('high_memory_usage')?.state).toBe('pending');

      run(2 * MINUTE - INTERVAL);
      expect(clock.t - start).toBe(2 * MINUTE - INTERVAL);
      expect(state('high_memory_usage')?.state).toBe('pending');
      expect(events('warn', 'high_memory_usage')).toHaveLength(0);

      run(INTERVAL);
      expect(clock.t - start).toBe(2 * MINUTE);
      expect(state('high_memory_usage')?.state).toBe('firing');
      expect(state('high_memory_usage')?.value).toBe(95);
      expect(events('warn', 'high_memory_usage')).toHaveLength(1);

      sources.memory = 60;
      run(INTERVAL);
      expect(state('high_memory_usage')?.state).toBe('inactive');
      expect(events('info', 'high_memory_usage')).toHaveLength(1);
    });

    it('restarts the 2-minute wait when memory dips below the threshold', () => {
      const { sources, state, run } = setup();
      sources.memory = 95;
      run(90 * SECOND);
      sources.memory = 85;
      run(INTERVAL);
      sources.memory = 95;
      run(90 * SECOND); // above again since the first of these evaluations: 75 s so far
      expect(state('high_memory_usage')?.state).toBe('pending');
      run(30 * SECOND); // 105 s
      expect(state('high_memory_usage')?.state).toBe('pending');
      run(15 * SECOND); // 120 s
      expect(state('high_memory_usage')?.state).toBe('firing');
    });

    it('treats exactly 90 % as fine', () => {
      const { sources, state, run } = setup();
      sources.memory = 90;
      run(5 * MINUTE);
      expect(state('high_memory_usage')?.state).toBe('inactive');
    });
  });

  describe('frequent_fallbacks', () => {
    it('fires on 4 fallbacks within a minute and resolves after a quiet minute', () => {
      const { sources, state, run, events } = setup();
      sources.fallbacks += 2;
      run(INTERVAL);
      expect(state('frequent_fallbacks')?.state).toBe('inactive');
      sources.fallbacks += 2;
      run(INTERVAL);
      expect(state('frequent_fallbacks')?.state).toBe('firing');
      expect(state('frequent_fallbacks')?.value).toBe(4);
      expect(events('warn', 'frequent_fallbacks')).toHaveLength(1);

      run(30 * SECOND);
      expect(state('frequent_fallbacks')?.state).toBe('firing');
      run(30 * SECOND);
      expect(state('frequent_fallbacks')?.state).toBe('inactive');
      expect(state('frequent_fallbacks')?.value).toBe(0);
      expect(events('info', 'frequent_fallbacks')).toHaveLength(1);
    });

    it('does not fire on 4 fallbacks spread over more than a minute', () => {
      const { sources, state, run } = setup();
      let tick = 0;
      run(10 * MINUTE, () => {
        if (tick++ % 5 === 0) sources.fallbacks += 1; // one every 75 s
      });
      expect(state('frequent_fallbacks')?.state).toBe('inactive');
    });

    it('counts from zero across a counter reset', () => {
      const { sources, state, run } = setup();
      sources.fallbacks = 50;
      run(2 * MINUTE); // the 50 fall out of the window
      expect(state('frequent_fallbacks')?.state).toBe('inactive');
      sources.fallbacks = 0; // process restarted behind the source
      run(INTERVAL);
      expect(state('frequent_fallbacks')?.value).toBe(0);
      sources.fallbacks = 4;
      run(INTERVAL);
      expect(state('frequent_fallbacks')?.value).toBe(4);
      expect(state('frequent_fallbacks')?.state).toBe('firing');
    });
  });

  describe('too_many_active_sessions', () => {
    it('fires above 100 active sessions and resolves at 100', () => {
      const { sources, state, run, events } = setup();
      sources.sessions = 100;
      run(INTERVAL);
      expect(state('too_many_active_sessions')?.state).toBe('inactive');
      sources.sessions = 101;
      run(INTERVAL);
      expect(state('too_many_active_sessions')?.state).toBe('firing');
      expect(state('too_many_active_sessions')?.value).toBe(101);
      expect(events('warn', 'too_many_active_sessions')).toHaveLength(1);
      sources.sessions = 100;
      run(INTERVAL);
      expect(state('too_many_active_sessions')?.state).toBe('inactive');
      expect(events('info', 'too_many_active_sessions')).toHaveLength(1);
    });
  });

  it('logs exactly one alert_firing and one alert_resolved per transition', () => {
    const { sources, run, log } = setup();
    for (let cycle = 0; cycle < 3; cycle++) {
      sources.sessions = 150;
      sources.breakers = ['claude-api'];
      run(MINUTE);
      sources.sessions = 0;
      sources.breakers = [];
      run(MINUTE);
    }
    const firing = log.warn.mock.calls.map(([o]) => o as Record<string, unknown>);
    const resolved = log.info.mock.calls.map(([o]) => o as Record<string, unknown>);
    expect(firing.every((o) => o.event === 'alert_firing' && o.component === 'alerts')).toBe(true);
    expect(resolved.every((o) => o.event === 'alert_resolved' && o.component === 'alerts')).toBe(true);
    expect(firing.filter((o) => o.alert === 'too_many_active_sessions')).toHaveLength(3);
    expect(firing.filter((o) => o.alert === 'circuit_breaker_open')).toHaveLength(3);
    expect(resolved.filter((o) => o.alert === 'too_many_active_sessions')).toHaveLength(3);
    expect(resolved.filter((o) => o.alert === 'circuit_breaker_open')).toHaveLength(3);
    expect(firing).toHaveLength(6);
    expect(resolved).toHaveLength(6);
  });

  it('drops samples older than the longest window', () => {
    const { sources, engine, run } = setup();
    run(60 * MINUTE, () => {
      sources.requests += 10;
    });
    // 5-minute window / 15 s interval = 20 intervals: 21 samples span it, plus at most one baseline.
    expect(engine.sampleCount()).toBeGreaterThanOrEqual(21);
    expect(engine.sampleCount()).toBeLessThanOrEqual(22);
    run(60 * MINUTE);
    expect(engine.sampleCount()).toBeLessThanOrEqual(22);
  });

  it('keeps an alert as it was when a source throws, and logs the failure', () => {
    const { sources, state, run, log } = setup();
    sources.sessions = 200;
    run(INTERVAL);
    expect(state('too_many_active_sessions')?.state).toBe('firing');
    sources.activeSessions = () => {
      throw new Error('gauge unavailable');
    };
    run(INTERVAL);
    expect(state('too_many_active_sessions')?.state).toBe('firing');
    expect(log.warn).toHaveBeenCalledWith(
      expect.objectContaining({ event: 'alert_evaluation_failed', alert: 'too_many_active_sessions' }),
    );
    expect(log.info).not.toHaveBeenCalled();
  });

  describe('start / stop', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it('evaluates on an unref-ed interval and leaves no timer after stop', () => {
      vi.useFakeTimers();
      const sources = fakeSources();
      const evaluate = vi.spyOn(AlertEngine.prototype, 'evaluate');
      const engine = new AlertEngine(sources, { evaluateIntervalMs: 1000 });
      engine.start();
      engine.start(); // idempotent
      expect(engine.running).toBe(true);
      expect(evaluate).toHaveBeenCalledTimes(1);
      expect(vi.getTimerCount()).toBe(1);
      vi.advanceTimersByTime(3000);
      expect(evaluate).toHaveBeenCalledTimes(4);
      engine.stop();
      expect(engine.running).toBe(false);
      expect(vi.getTimerCount()).toBe(0);
      vi.advanceTimersByTime(5000);
      expect(evaluate).toHaveBeenCalledTimes(4);
      evaluate.mockRestore();
    });

    it('unrefs its timer so it never holds the process open', () => {
      const unref = vi.fn();
      const fakeTimer = { unref } as unknown as NodeJS.Timeout;
      const setIntervalSpy = vi.spyOn(globalThis, 'setInterval').mockReturnValue(fakeTimer);
      const clearIntervalSpy = vi.spyOn(globalThis, 'clearInterval').mockImplementation(() => undefined);
      try {
        const engine = new AlertEngine(fakeSources());
        engine.start();
        expect(setIntervalSpy).toHaveBeenCalledWith(expect.any(Function), 15_000);
        expect(unref).toHaveBeenCalledTimes(1);
        engine.stop();
        expect(clearIntervalSpy).toHaveBeenCalledWith(fakeTimer);
      } finally {
        setIntervalSpy.mockRestore();
        clearIntervalSpy.mockRestore();
      }
    });
  });
});

describe('GET /health/alerts', () => {
  it('reports every alert with its state, and counts the firing ones', async () => {
    const { engine, sources, run, clock } = setup();
    sources.breakers = ['claude-api'];
    sources.memory = 95;
    run(INTERVAL);
    const app = Fastify();
    await app.register(alertRoutes(engine));
    try {
      const res = await app.inject({ method: 'GET', url: '/health/alerts' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/application\/json/);
      const body = res.json<{
        alerts: { name: string; state: string; severity: string; value: number | null; since: string | null; description: string }[];
        firing: number;
        evaluated_at: string | null;
      }>();
      expect(body.firing).toBe(1);
      expect(body.evaluated_at).toBe(new Date(clock.t).toISOString());
      expect(body.alerts).toHaveLength(5);
      for (const alert of body.alerts) {
        expect(Object.keys(alert)).toEqual(
          expect.arrayContaining(['name', 'state', 'severity', 'value', 'since', 'description']),
        );
      }
      const byName = Object.fromEntries(body.alerts.map((a) => [a.name, a]));
      expect(byName.circuit_breaker_open).toMatchObject({
        state: 'firing',
        severity: 'critical',
        value: 1,
        since: new Date(clock.t).toISOString(),
      });
      expect(byName.high_memory_usage).toMatchObject({ state: 'pending', severity: 'warning', value: 95 });
      expect(byName.too_many_active_sessions).toMatchObject({ state: 'inactive', since: null, value: 0 });
    } finally {
      await app.close();
    }
  });

  it('reports evaluated_at null before the first evaluation', async () => {
    const engine = new AlertEngine(fakeSources());
    const app = Fastify();
    await app.register(alertRoutes(engine));
    try {
      const res = await app.inject({ method: 'GET', url: '/health/alerts' });
      expect(res.json()).toMatchObject({ firing: 0, evaluated_at: null });
    } finally {
      await app.close();
    }
  });
});
