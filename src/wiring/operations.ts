import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import type { AppConfig } from '../config.js';
import { isAdmin } from '../auth/identity.js';
import type { ResponseCache } from '../coordination/cache/types.js';
import { AlertEngine } from '../health/alerts/alert-engine.js';
import { alertRoutes } from '../health/alerts/alert-routes.js';
import { HealthCheckRegistry } from '../health/check-registry.js';
import { registerDefaultChecks } from '../health/default-checks.js';
import { healthRoutes } from '../health/health-routes.js';
import { CpuSampler, memoryStats } from '../health/system-stats.js';
import type { Readiness } from '../lifecycle/readiness.js';
import type { Metrics } from '../observability/metrics/metrics.js';
import { metricsRoutes } from '../observability/metrics/metrics-routes.js';
import type { Provider } from '../providers/types.js';
import type { CircuitBreakerRegistry } from '../resilience/circuit-breaker/registry.js';
import type { FallbackRegistry } from '../resilience/fallback/registry.js';
import type { SessionStore } from '../store/types.js';
import type { RateLimiter } from '../coordination/rate-limit/types.js';

export interface OperationsDeps {
  config: AppConfig;
  logger: Logger;
  provider: Provider;
  store: SessionStore;
  cache: ResponseCache;
  breakers: CircuitBreakerRegistry;
  fallbacks: FallbackRegistry;
  readiness: Readiness;
  version: string;
  /** Sessions with a turn in progress. */
  activeSessions(): number;
  activeSessionIds(limit: number): string[];
  metrics: Metrics;
  limiter: RateLimiter;
  /** Where stream logs and idempotency keys are shared, and how many answers are held here. */
  streams: () => { backend: 'memory' | 'redis' | 'redis_degraded'; turns: number; finishedTurns: number; finishedBytes: number };
}

export interface Operations {
  metrics: Metrics;
  checks: HealthCheckRegistry;
  alerts: AlertEngine;
  /** Route plugins: health, metrics, alerts. */
  routes: FastifyPluginAsync[];
  start(): void;
  stop(): void;
}

/** Metrics, health checks and alerts, all reading the same live objects. */
export function wireOperations(deps: OperationsDeps): Operations {
  const { config, logger, breakers } = deps;
  const { metrics } = deps;
  metrics.observeBreakers(breakers);
  const cpu = new CpuSampler();
  const memoryPercent = () => memoryStats().usagePercent;
  const openBreakers = () => Object.entries(breakers.stats()).filter(([, s]) => s.state === 'open').map(([name]) => name);

  const checks = new HealthCheckRegistry({ log: logger });
  registerDefaultChecks(checks, {
    provider: deps.provider,
    store: deps.store,
    cache: deps.cache,
    activeSessions: deps.activeSessions,
    options: {
      claude: { intervalMs: config.health.claudeIntervalMs },
      local: { intervalMs: config.health.intervalMs },
      memoryWarnPercent: config.health.memoryWarnPercent,
      sessionsWarnCount: config.health.activeSessionsWarn,
    },
  });

  checks.registerHealthCheck(
    'rate_limit',
    () => {
      const backend = deps.limiter.backend();
      return backend === 'redis_degraded'
        ? { status: 'warn', output: 'Redis unreachable: rate limits are counted in memory, per instance' }
        : { status: 'pass', output: backend };
    },
    { intervalMs: config.health.intervalMs, componentType: 'datastore', componentId: 'rate_limiter', measurement: 'backend' },
  );

  checks.registerHealthCheck(
    'streams',
    () => {
      const { backend, ...held } = deps.streams();
      const detail = `${backend}; ${held.turns} answers held (${held.finishedTurns} finished, ${held.finishedBytes} bytes)`;
      return backend === 'redis_degraded'
        ? { status: 'warn', output: `Redis unreachable: streams resume and idempotency keys work on this instance only; ${detail}` }
        : { status: 'pass', output: detail };
    },
    { intervalMs: config.health.intervalMs, componentType: 'datastore', componentId: 'stream_log', measurement: 'backend' },
  );

  const alerts = new AlertEngine(
    {
      requestsTotal: () => metrics.counters().requestsTotal,
      errorsTotal: () => metrics.counters().errorsTotal,
      openBreakers,
      memoryUsagePercent: memoryPercent,
      fallbacksTotal: () => metrics.counters().fallbacksUsed,
      activeSessions: deps.activeSessions,
    },
    { log: logger },
  );

  const performance = () => {
    const c = metrics.counters();
    return { requests_total: c.requestsTotal, requests_in_progress: c.requestsInProgress, errors_total: c.errorsTotal, error_rate: c.errorsTotal / Math.max(1, c.requestsTotal) };
  };
  const routes: FastifyPluginAsync[] = [
    healthRoutes({
      checks,
      breakers,
      fallbacks: deps.fallbacks,
      cache: deps.cache,
      store: deps.store,
      activeSessions: deps.activeSessions,
      sessionIds: deps.activeSessionIds,
      readiness: deps.readiness,
      provider: deps.provider,
      performance,
      version: deps.version,
      dataDir: config.databasePath === ':memory:' ? process.cwd() : config.dataDir,
      isAdmin: (request) => request.identity !== null && isAdmin(request.identity),
    }),
    metricsRoutes(metrics, {
      uptimeSeconds: () => deps.readiness.uptimeSeconds(),
      sessionsTotal: () => deps.store.countSessions(),
      openBreakers: () => openBreakers().length,
      memoryUsagePercent: memoryPercent,
      cpuUsagePercent: () => cpu.usagePercent(),
    }),
    alertRoutes(alerts),
  ];
  return {
    metrics,
    checks,
    alerts,
    routes,
    start: () => {
      checks.start();
      alerts.start();
    },
    stop: () => {
      checks.stop();
      alerts.stop();
    },
  };
}
