import type { FastifyPluginAsync } from 'fastify';
import type { Metrics } from './metrics.js';

/** Figures the JSON view takes from outside the metrics module. */
export interface MetricsSources {
  uptimeSeconds(): number;
  /** Sessions held by the store. */
  sessionsTotal(): number;
  openBreakers(): number;
  memoryUsagePercent(): number;
  cpuUsagePercent(): number;
}

export interface MetricsJson {
  requests_total: number;
  requests_in_progress: number;
  errors_total: number;
  /** errors_total / max(1, requests_total). */
  error_rate: number;
  sessions_created: number;
  /** Chat turns in progress. */
  sessions_active: number;
  /** Sessions held by the store (`sources.sessionsTotal()`). */
  sessions_total: number;
  uptime_seconds: number;
  fallbacks_used: number;
  circuit_breakers_open: number;
  memory_usage_percent: number;
  cpu_usage_percent: number;
}

export type MetricsFormat = 'json' | 'prometheus' | 'openmetrics';

const FORMAT_BY_MEDIA_TYPE: Readonly<Record<string, MetricsFormat>> = {
  'application/openmetrics-text': 'openmetrics',
  'text/plain': 'prometheus',
  'application/json': 'json',
};

/**
 * Which exposition an Accept header asks for: the acceptable media type (q > 0) with the highest q
 * among application/openmetrics-text, text/plain and application/json, the first listed on a tie.
 * Anything else (no header, a wildcard, a browser's text/html) gets JSON.
 */
export function metricsFormatFor(accept: string | undefined): MetricsFormat {
  if (!accept) return 'json';
  let best: { format: MetricsFormat; q: number } | undefined;
  for (const range of accept.split(',')) {
    const [mediaType = '', ...params] = range.split(';').map((part) => part.trim());
    const format = FORMAT_BY_MEDIA_TYPE[mediaType.toLowerCase()];
    if (!format) continue;
    const q = qualityOf(params);
    if (q > 0 && (!best || q > best.q)) best = { format, q };
  }
  return best?.format ?? 'json';
}

function qualityOf(params: string[]): number {
  for (const param of params) {
    const [key = '', value = ''] = param.split('=').map((part) => part.trim());
    if (key.toLowerCase() !== 'q') continue;
    const q = Number(value);
    return Number.isFinite(q) ? Math.min(1, Math.max(0, q)) : 1;
  }
  return 1;
}

/**
 * `GET /metrics`: the Prometheus exposition when the Accept header asks for `text/plain` or
 * `application/openmetrics-text`, else a JSON summary. OpenMetrics requests get the Prometheus text
 * too, with its own content type (`text/plain; version=0.0.4`), which Prometheus accepts.
 */
export function metricsRoutes(metrics: Metrics, sources: MetricsSources): FastifyPluginAsync {
  return async (app) => {
    app.get('/metrics', async (request, reply) => {
      void reply.header('vary', 'Accept').header('cache-control', 'no-store');
      const format = metricsFormatFor(request.headers.accept);
      if (format !== 'json') {
        const { contentType, body } = await metrics.prometheus(format === 'openmetrics');
        return reply.type(contentType).send(body);
      }
      return metricsJson(metrics, sources);
    });
  };
}

export function metricsJson(metrics: Metrics, sources: MetricsSources): MetricsJson {
  const counters = metrics.counters();
  return {
    requests_total: counters.requestsTotal,
    requests_in_progress: counters.requestsInProgress,
    errors_total: counters.errorsTotal,
    error_rate: counters.errorsTotal / Math.max(1, counters.requestsTotal),
    sessions_created: counters.sessionsCreated,
    sessions_active: counters.sessionsActive,
    sessions_total: finite(sources.sessionsTotal()),
    uptime_seconds: finite(sources.uptimeSeconds()),
    fallbacks_used: counters.fallbacksUsed,
    circuit_breakers_open: finite(sources.openBreakers()),
    memory_usage_percent: finite(sources.memoryUsagePercent()),
    cpu_usage_percent: finite(sources.cpuUsagePercent()),
  };
}

/** JSON has no NaN / Infinity (they serialize as null); report 0 instead. */
function finite(value: number): number {
  return Number.isFinite(value) ? value : 0;
}
