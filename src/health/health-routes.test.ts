import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryResponseCache } from '../coordination/cache/memory-cache.js';
import { installErrorHandlers } from '../http/error-handler.js';
import { Readiness } from '../lifecycle/readiness.js';
import { CircuitBreakerRegistry, registerDefaultBreakers } from '../resilience/circuit-breaker/registry.js';
import { FallbackRegistry } from '../resilience/fallback/registry.js';
import { HealthCheckRegistry } from './check-registry.js';
import { registerDefaultChecks, type DefaultCheckDeps } from './default-checks.js';
import { healthRoutes, type HealthRouteDeps } from './health-routes.js';

interface Harness {
  app: FastifyInstance;
  checks: HealthCheckRegistry;
  breakers: CircuitBreakerRegistry;
  cache: MemoryResponseCache;
  readiness: Readiness;
  store: { ok: boolean; ping(): boolean; countSessions(): number; kind: string };
  probe: ReturnType<typeof vi.fn>;
}

const HEALTH_JSON_KEYS = ['claude:reachability', 'memory:utilization', 'sessions:active', 'event_loop:delay', 'store:writable', 'cache:backend'];

async function build(
  options: { probe?: (signal: AbortSignal) => Promise<void>; admin?: boolean; overrides?: Partial<HealthRouteDeps>; run?: boolean } = {},
): Promise<Harness> {
  const checks = new HealthCheckRegistry();
  const breakers = new CircuitBreakerRegistry();
  registerDefaultBreakers(breakers);
  const fallbacks = new FallbackRegistry();
  fallbacks.register('chat', { strategy: 'mock_response', priority: 1, enabled: true }, async () => 'mock');
  const cache = new MemoryResponseCache();
  const readiness = new Readiness();
  readiness.markReady();
  const store = {
    ok: true,
    kind: 'sqlite',
    ping(): boolean {
      return this.ok;
    },
    countSessions: () => 7,
  };
  const probe = vi.fn(options.probe ?? (async () => {}));
  const provider = { name: 'anthropic', simulated: false, probe };
  const checkDeps: DefaultCheckDeps = {
    provider,
    store,
    cache,
    activeSessions: () => 3,
    memoryUsagePercent: () => 42,
    eventLoopDelayMs: () => 5,
  };
  registerDefaultChecks(checks, checkDeps);
  if (options.run !== false) await checks.runAll();
  const app = Fastify();
  installErrorHandlers(app);
  await app.register(
    healthRoutes({
      checks,
      breakers,
      fallbacks,
      cache,
      store,
      activeSessions: () => 3,
      sessionIds: (limit) => ['s1', 's2', 's3'].slice(0, limit),
      isAdmin: () => options.admin ?? false,
      readiness,
      provider,
      performance: () => ({ requests_total: 10, requests_in_progress: 1, errors_total: 2, error_rate: 0.2 }),
      version: '1.2.3',
      sessionConfigsSummary: () => ({ models: { 'claude-sonnet': 3 } }),
      dataDir: process.cwd(),
      ...options.overrides,
    }),
  );
  await app.ready();
  return { app, checks, breakers, cache, readiness, store, probe };
}

describe('health routes', () => {
  let h: Harness;

  afterEach(async () => {
    h.checks.stop();
    await h.app.close();
  });

  describe('with everything healthy', () => {
    beforeEach(async () => {
      h = await build();
    });

    it('GET /health answers application/health+json with one entry per check', async () => {
      const res = await h.app.inject({ method: 'GET', url: '/health' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/health\+json/);
      const body = res.json();
      expect(body).toMatchObject({ status: 'pass', version: '1.2.3', serviceId: 'claude-chat-api', description: 'Claude Chat API' });
      for (const key of HEALTH_JSON_KEYS) {
        expect(Array.isArray(body.checks[key]), key).toBe(true);
        for (const entry of body.checks[key]) {
          expect(typeof entry.componentType).toBe('string');
          expect(['pass', 'warn', 'fail']).toContain(entry.status);
          expect(new Date(entry.time).toISOString()).toBe(entry.time);
        }
      }
      expect(body.checks['claude:reachability'][0]).toMatchObject({ componentType: 'component', componentId: 'anthropic', status: 'pass', observedUnit: 'ms' });
      expect(typeof body.checks['claude:reachability'][0].observedValue).toBe('number');
      expect(body.checks['memory:utilization'][0]).toMatchObject({ componentType: 'system', status: 'pass', observedValue: 42, observedUnit: 'percent' });
      expect(body.checks['sessions:active'][0]).toMatchObject({ status: 'pass', observedValue: 3 });
      expect(body.checks['event_loop:delay'][0]).toMatchObject({ status: 'pass', observedValue: 5, observedUnit: 'ms' });
      expect(body.checks['store:writable'][0]).toMatchObject({ componentType: 'datastore', componentId: 'sqlite', status: 'pass' });
      expect(body.checks['cache:backend'][0]).toMatchObject({ componentType: 'datastore', componentId: 'memory', status: 'pass' });
      expect(body.checks['circuit_breakers:state']).toHaveLength(2);
      expect(body.checks['redis:connectivity']).toBeUndefined();
    });

    it('GET /health/detailed reports every section with the right types', async () => {
      const res = await h.app.inject({ method: 'GET', url: '/health/detailed' });
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body).toMatchObject({ status: 'healthy', service: 'Claude Chat API', version: '1.2.3' });
      expect(typeof body.uptime_seconds).toBe('number');
      expect(new Date(body.timestamp).toISOString()).toBe(body.timestamp);
      expect(body.sessions).toEqual({
        active_count: 3,
        total_created: 7,
        session_configs: { count: 3, summary: { models: { 'claude-sonnet': 3 } } },
      });
      const { cpu, memory, disk } = body.system;
      expect(typeof cpu.usage_percent).toBe('number');
      expect(typeof cpu.count).toBe('number');
      expect(cpu.load_average).toHaveLength(3);
      for (const key of ['total_gb', 'available_gb', 'usage_percent', 'process_rss_mb', 'process_vms_mb']) {
        expect(typeof memory[key], key).toBe('number');
      }
      expect(memory.process_rss_mb).toBeGreaterThan(0);
      expect(typeof disk.usage_percent).toBe('number');
      expect(body.claude_sdk).toMatchObject({ status: 'healthy', provider: 'anthropic', simulated: false });
      expect(typeof body.claude_sdk.connection_time_ms).toBe('number');
      expect(new Date(body.claude_sdk.last_check).toISOString()).toBe(body.claude_sdk.last_check);
      expect(body.performance).toEqual({ requests_total: 10, requests_in_progress: 1, errors_total: 2, error_rate: 0.2 });
      expect(body.stability.circuit_breakers).toEqual({
        claude_sdk: { state: 'closed', failure_count: 0, can_execute: true },
        session_operations: { state: 'closed', failure_count: 0, can_execute: true },
      });
      expect(body.fallback_stats.operations.chat).toMatchObject({ total_calls: 0, fallback_used: 0 });
    });

    it('GET /health/stability reports breakers, fallbacks, cache, checks and a summary', async () => {
      const res = await h.app.inject({ method: 'GET', url: '/health/stability' });
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body.circuit_breakers.claude_sdk).toEqual({
        state: 'closed',
        failure_count: 0,
        can_execute: true,
        retry_after_ms: 0,
        total_calls: 0,
        total_failures: 0,
        total_rejections: 0,
      });
      expect(body.fallback_statistics.operations.chat.steps).toEqual([{ strategy: 'mock_response', priority: 1, enabled: true }]);
      expect(body.fallback_statistics.cache).toMatchObject({ backend: 'memory', entries: 0 });
      expect(Object.keys(body.health_checks).sort()).toEqual(['claude', 'event_loop', 'memory', 'sessions', 'store']);
      expect(body.health_checks.store).toMatchObject({ status: 'pass', critical: true, consecutiveFailures: 0, checked: true });
      expect(typeof body.health_checks.store.durationMs).toBe('number');
      expect(body.summary).toEqual({
        total_circuit_breakers: 2,
        open_circuit_breakers: 0,
        total_operations_with_fallbacks: 1,
        total_fallbacks_used: 0,
      });
    });

    it('GET /livez and /readyz', async () => {
      expect((await h.app.inject({ method: 'GET', url: '/livez' })).json()).toEqual({ status: 'alive' });
      const ready = await h.app.inject({ method: 'GET', url: '/readyz' });
      expect(ready.statusCode).toBe(200);
      expect(ready.json()).toEqual({ status: 'ready' });
      h.readiness.markDraining();
      const draining = await h.app.inject({ method: 'GET', url: '/readyz' });
      expect(draining.statusCode).toBe(503);
      expect(draining.json()).toEqual({ status: 'draining' });
    });

    it('a forced-open breaker is degraded with HTTP 200, and the reset route closes it', async () => {
      h.breakers.require('claude_sdk').forceOpen();
      const detailed = await h.app.inject({ method: 'GET', url: '/health/detailed' });
      expect(detailed.statusCode).toBe(200);
      expect(detailed.json().status).toBe('degraded');
      expect(detailed.json().stability.circuit_breakers.claude_sdk).toEqual({ state: 'open', failure_count: 0, can_execute: false });
      const health = await h.app.inject({ method: 'GET', url: '/health' });
      expect(health.statusCode).toBe(200);
      expect(health.json().status).toBe('warn');
      expect((await h.app.inject({ method: 'GET', url: '/health/stability' })).json().summary.open_circuit_breakers).toBe(1);

      const reset = await h.app.inject({ method: 'POST', url: '/health/circuit-breaker/claude_sdk/reset' });
      expect(reset.statusCode).toBe(200);
      const body = reset.json();
      expect(body).toMatchObject({ circuit_breaker: 'claude_sdk', status: 'reset', new_state: 'closed' });
      expect(new Date(body.timestamp).toISOString()).toBe(body.timestamp);
      expect(h.breakers.require('claude_sdk').stats().state).toBe('closed');
      expect((await h.app.inject({ method: 'GET', url: '/health/detailed' })).json().status).toBe('healthy');
    });

    it('the reset route 404s an unknown breaker', async () => {
      const res = await h.app.inject({ method: 'POST', url: '/health/circuit-breaker/nope/reset' });
      expect(res.statusCode).toBe(404);
      expect(res.json().error).toMatchObject({ type: 'not_found' });
      expect(res.json().error.message).toContain('nope');
    });

    it('POST /health/fallback-cache/clear empties the cache without a body', async () => {
      const answer = { text: 'hi', model: 'm', stopReason: 'end_turn', inputTokens: 1, outputTokens: 1, toolEvents: [], cachedAt: Date.now() };
      await h.cache.set('a', answer, 60_000);
      await h.cache.set('b', answer, 60_000);
      const res = await h.app.inject({ method: 'POST', url: '/health/fallback-cache/clear' });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ status: 'cleared', items_cleared: 2 });
      expect(h.cache.stats().entries).toBe(0);
    });
  });

  it('a failing critical check (store not writable) is unhealthy 503 while /livez stays 200', async () => {
    h = await build();
    h.store.ok = false;
    await h.checks.runCheck('store');
    const detailed = await h.app.inject({ method: 'GET', url: '/health/detailed' });
    expect(detailed.statusCode).toBe(503);
    expect(detailed.json().status).toBe('unhealthy');
    const health = await h.app.inject({ method: 'GET', url: '/health' });
    expect(health.statusCode).toBe(503);
    expect(health.json().status).toBe('fail');
    expect(health.json().checks['store:writable'][0]).toMatchObject({ status: 'fail', output: expect.any(String) });
    const live = await h.app.inject({ method: 'GET', url: '/livez' });
    expect(live.statusCode).toBe(200);
    expect(live.json()).toEqual({ status: 'alive' });
  });

  it('a failing Claude probe with the breaker open is degraded, not unhealthy', async () => {
    h = await build({ probe: async () => Promise.reject(new Error('upstream unreachable')) });
    h.breakers.require('claude_sdk').forceOpen();
    const res = await h.app.inject({ method: 'GET', url: '/health/detailed' });
    expect(res.statusCode).toBe(200);
    expect(res.json().status).toBe('degraded');
    expect(res.json().claude_sdk).toMatchObject({ status: 'unhealthy', output: 'upstream unreachable' });
  });

  it('shows session ids to admins only', async () => {
    h = await build({ admin: true });
    const res = await h.app.inject({ method: 'GET', url: '/health/detailed' });
    expect(res.json().sessions.session_configs).toMatchObject({ count: 3, ids: ['s1', 's2', 's3'] });
  });

  it('answers /health/detailed without awaiting a probe that never resolves', async () => {
    h = await build({ probe: () => new Promise<void>(() => {}), run: false });
    h.checks.start();
    expect(h.probe).toHaveBeenCalledTimes(1);
    const res = await h.app.inject({ method: 'GET', url: '/health/detailed' });
    expect(res.statusCode).toBe(200);
    expect(res.json().claude_sdk).toMatchObject({ status: 'unknown', connection_time_ms: null, last_check: null });
    expect(res.json().status).toBe('degraded');
    const health = await h.app.inject({ method: 'GET', url: '/health' });
    expect(health.json().checks['claude:reachability'][0]).toMatchObject({ status: 'warn', output: 'not checked yet' });
    expect(h.probe).toHaveBeenCalledTimes(1);
  });
});
