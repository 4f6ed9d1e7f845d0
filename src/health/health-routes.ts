import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { ResponseCache } from '../coordination/cache/types.js';
import { HttpError } from '../http/http-error.js';
import type { Readiness } from '../lifecycle/readiness.js';
import type { CircuitBreakerRegistry } from '../resilience/circuit-breaker/registry.js';
import type { CircuitBreakerStats } from '../resilience/circuit-breaker/types.js';
import type { FallbackRegistry } from '../resilience/fallback/registry.js';
import type { CheckStatus, HealthCheckRegistry, LastResult } from './check-registry.js';
import { systemStats, type SystemStats } from './system-stats.js';

export const HEALTH_SERVICE_NAME = 'Claude Chat API';
export const HEALTH_SERVICE_ID = 'claude-chat-api';
/** Name of the check whose result /health/detailed reports as `claude_sdk`. */
export const CLAUDE_CHECK = 'claude';
const SESSION_IDS_LIMIT = 100;

export interface PerformanceSnapshot {
  requests_total: number;
  requests_in_progress: number;
  errors_total: number;
  error_rate: number;
}

export interface HealthRouteDeps {
  checks: HealthCheckRegistry;
  breakers: CircuitBreakerRegistry;
  fallbacks: FallbackRegistry;
  cache: ResponseCache;
  store: { ping(): boolean; countSessions(): number };
  activeSessions(): number;
  /** Ids of active sessions; only shown to admins. */
  sessionIds(limit: number): string[];
  /** Whether the caller may see session ids. Default: nobody (until API keys land). */
  isAdmin?(request: FastifyRequest): boolean;
  readiness: Readiness;
  provider: { name: string; simulated: boolean };
  performance(): PerformanceSnapshot;
  version: string;
  sessionConfigsSummary?(): unknown;
  /** Host figures for /health/detailed; default `systemStats(dataDir)`. */
  systemStats?(): SystemStats;
  /** Directory whose file system /health/detailed reports (default: the working directory). */
  dataDir?: string;
}

export type DetailedStatus = 'healthy' | 'degraded' | 'unhealthy';

interface HealthJsonCheck {
  componentType: string;
  componentId?: string;
  status: CheckStatus;
  observedValue?: number;
  observedUnit?: string;
  output?: string;
  time: string;
}

/**
 * The health surface: /health (RFC health+json), /health/detailed, /health/stability, breaker reset,
 * fallback-cache clear, /livez and /readyz. Every read uses cached check results; none runs a probe.
 */
export function healthRoutes(deps: HealthRouteDeps): FastifyPluginAsync {
  const isAdmin = deps.isAdmin ?? (() => false);
  const readSystem = deps.systemStats ?? (() => systemStats(deps.dataDir));

  return async (app) => {
    app.get('/livez', async () => ({ status: 'alive' }));

    app.get('/readyz', async (_request, reply) => {
      const state = deps.readiness.state;
      return reply.code(state === 'ready' ? 200 : 503).send({ status: state });
    });

    app.get('/health', async (_request, reply) => {
      const time = new Date().toISOString();
      const results = deps.checks.results();
      const checks: Record<string, HealthJsonCheck[]> = {};
      for (const [name, result] of Object.entries(results)) {
        (checks[`${name}:${result.measurement}`] ??= []).push(toHealthJson(result));
      }
      const backend = deps.cache.stats().backend;
      checks['cache:backend'] = [
        {
          componentType: 'datastore',
          componentId: backend === 'memory' ? 'memory' : 'redis',
          status: backend === 'redis_degraded' ? 'warn' : 'pass',
          ...(backend === 'redis_degraded' ? { output: 'Redis unreachable: the fallback cache runs in memory' } : {}),
          time,
        },
      ];
      const breakers = Object.values(deps.breakers.stats());
      if (breakers.length > 0) {
        checks['circuit_breakers:state'] = breakers.map((b) => ({
          componentType: 'component',
          componentId: b.name,
          status: b.state === 'closed' ? 'pass' : 'warn',
          output: b.state,
          time,
        }));
      }
      const status = overallStatus(results, backend === 'redis_degraded', breakers);
      const body = {
        status: status === 'unhealthy' ? 'fail' : status === 'degraded' ? 'warn' : 'pass',
        version: deps.version,
        serviceId: HEALTH_SERVICE_ID,
        description: HEALTH_SERVICE_NAME,
        checks,
      };
      return reply
        .code(status === 'unhealthy' ? 503 : 200)
        .header('cache-control', 'no-store')
        .type('application/health+json')
        .send(body);
    });

    app.get('/health/detailed', async (request, reply) => {
      const results = deps.checks.results();
      const breakerStats = deps.breakers.stats();
      const backend = deps.cache.stats().backend;
      const status = overallStatus(results, backend === 'redis_degraded', Object.values(breakerStats));
      const claude = results[CLAUDE_CHECK];
      const active = deps.activeSessions();
      const summary = deps.sessionConfigsSummary?.();
      const body = {
        status,
        service: HEALTH_SERVICE_NAME,
        version: deps.version,
        uptime_seconds: Math.round(deps.readiness.uptimeSeconds() * 1000) / 1000,
        timestamp: new Date().toISOString(),
        sessions: {
          active_count: active,
          total_created: safeCount(deps.store),
          session_configs: {
            count: active,
            ...(summary !== undefined ? { summary } : {}),
            ...(isAdmin(request) ? { ids: deps.sessionIds(SESSION_IDS_LIMIT) } : {}),
          },
        },
        system: readSystem(),
        claude_sdk: {
          status: claudeStatus(claude),
          provider: deps.provider.name,
          simulated: deps.provider.simulated,
          connection_time_ms: claude?.checked ? claude.durationMs : null,
          last_check: claude?.checked ? claude.time : null,
          ...(claude?.checked && claude.output !== undefined ? { output: claude.output } : {}),
        },
        performance: deps.performance(),
        stability: {
          circuit_breakers: Object.fromEntries(
            Object.entries(breakerStats).map(([name, b]) => [name, { state: b.state, failure_count: b.failureCount, can_execute: b.canExecute }]),
          ),
        },
        fallback_stats: { operations: deps.fallbacks.stats() },
      };
      return reply.code(status === 'unhealthy' ? 503 : 200).header('cache-control', 'no-store').send(body);
    });

    app.get('/health/stability', async () => {
      const breakers = deps.breakers.stats();
      const fallbacks = deps.fallbacks.stats();
      return {
        circuit_breakers: Object.fromEntries(
          Object.entries(breakers).map(([name, b]) => [
            name,
            {
              state: b.state,
              failure_count: b.failureCount,
              can_execute: b.canExecute,
              retry_after_ms: b.retryAfterMs,
              total_calls: b.totalCalls,
              total_failures: b.totalFailures,
              total_rejections: b.totalRejections,
            },
          ]),
        ),
        fallback_statistics: { operations: fallbacks, cache: deps.cache.stats() },
        health_checks: deps.checks.results(),
        summary: {
          total_circuit_breakers: Object.keys(breakers).length,
          open_circuit_breakers: Object.values(breakers).filter((b) => b.state === 'open').length,
          total_operations_with_fallbacks: Object.values(fallbacks).filter((f) => f.steps.some((s) => s.enabled)).length,
          total_fallbacks_used: Object.values(fallbacks).reduce((sum, f) => sum + f.fallback_used, 0),
        },
      };
    });

    app.post<{ Params: { name: string } }>('/health/circuit-breaker/:name/reset', async (request) => {
      const { name } = request.params;
      if (!deps.breakers.reset(name)) throw new HttpError(404, 'not_found', `No circuit breaker named '${name}'`);
      return {
        circuit_breaker: name,
        status: 'reset',
        new_state: deps.breakers.get(name)?.stats().state ?? 'closed',
        timestamp: new Date().toISOString(),
      };
    });

    // Admin-only once API keys land; no body needed.
    app.post('/health/fallback-cache/clear', async () => ({ status: 'cleared', items_cleared: await deps.cache.clear() }));
  };
}

/**
 * unhealthy: a critical check fails (a local fault such as the store not writable). degraded: a breaker
 * is not closed, any other check warns or fails (Claude included), or the cache lost Redis. Else healthy.
 */
export function overallStatus(
  results: Record<string, LastResult>,
  cacheDegraded: boolean,
  breakers: Pick<CircuitBreakerStats, 'state'>[],
): DetailedStatus {
  const all = Object.values(results);
  if (all.some((r) => r.critical && r.status === 'fail')) return 'unhealthy';
  if (cacheDegraded || breakers.some((b) => b.state !== 'closed') || all.some((r) => r.status !== 'pass')) return 'degraded';
  return 'healthy';
}

function toHealthJson(result: LastResult): HealthJsonCheck {
  return {
    componentType: result.componentType,
    ...(result.componentId !== undefined ? { componentId: result.componentId } : {}),
    status: result.status,
    ...(result.observedValue !== undefined ? { observedValue: result.observedValue } : {}),
    ...(result.observedUnit !== undefined ? { observedUnit: result.observedUnit } : {}),
    ...(result.output !== undefined ? { output: result.output } : {}),
    time: result.time,
  };
}

function claudeStatus(result: LastResult | undefined): DetailedStatus | 'unknown' {
  if (!result?.checked) return 'unknown';
  return result.status === 'pass' ? 'healthy' : result.status === 'warn' ? 'degraded' : 'unhealthy';
}

/** The store may be the thing that is broken; the report must still answer. */
function safeCount(store: { countSessions(): number }): number | null {
  try {
    return store.countSessions();
  } catch {
    return null;
  }
}
