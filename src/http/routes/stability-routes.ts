import type { FastifyPluginAsync } from 'fastify';
import type { ServicesOptions } from '../services.js';

/** The stability layer as operators see it: breakers, fallbacks, cache. */
export const stabilityRoutes: FastifyPluginAsync<ServicesOptions> = async (app, { services }) => {
  app.get('/health/stability', async () => {
    const breakers = services.breakers.stats();
    const fallbacks = services.fallbacks.stats();
    const circuitBreakers = Object.fromEntries(
      Object.entries(breakers).map(([name, b]) => [
        name,
        { state: b.state, failure_count: b.failureCount, can_execute: b.canExecute, retry_after_ms: b.retryAfterMs, total_calls: b.totalCalls, total_failures: b.totalFailures, total_rejections: b.totalRejections },
      ]),
    );
    return {
      circuit_breakers: circuitBreakers,
      fallback_statistics: { operations: fallbacks, cache: services.cache.stats() },
      health_checks: {},
      summary: {
        total_circuit_breakers: Object.keys(breakers).length,
        open_circuit_breakers: Object.values(breakers).filter((b) => b.state === 'open').length,
        total_operations_with_fallbacks: Object.values(fallbacks).filter((f) => f.steps.some((s) => s.enabled)).length,
        total_fallbacks_used: Object.values(fallbacks).reduce((sum, f) => sum + f.fallback_used, 0),
      },
    };
  });

  // Admin-only once API keys land (security issue); no body needed.
  app.post('/health/fallback-cache/clear', async () => ({ status: 'cleared', items_cleared: await services.cache.clear() }));
};
