import type { FastifyPluginAsync } from 'fastify';
import type { AlertEngine, AlertStatus } from './alert-engine.js';

export interface AlertsResponse {
  alerts: AlertStatus[];
  /** How many alerts are firing. */
  firing: number;
  /** ISO time of the engine's last evaluation; null before the first. */
  evaluated_at: string | null;
}

/** `GET /health/alerts`: the in-process alerts' current states (see AlertEngine). */
export function alertRoutes(engine: AlertEngine): FastifyPluginAsync {
  return async (app) => {
    app.get('/health/alerts', async (_request, reply): Promise<AlertsResponse> => {
      const alerts = engine.alerts();
      reply.header('cache-control', 'no-store');
      return {
        alerts,
        firing: alerts.filter((a) => a.state === 'firing').length,
        evaluated_at: engine.evaluatedAt(),
      };
    });
  };
}
