import type { FastifyPluginAsync } from 'fastify';
import type { ServicesOptions } from '../services.js';

export const SERVICE_NAME = 'Claude Chat API';

/** The seed's greeting and heartbeat; health, metrics and alerts live in src/health and src/observability. */
export const operationsRoutes: FastifyPluginAsync<ServicesOptions> = async (app, { services }) => {
  const { readiness } = services;

  app.get('/', async () => ({ status: 'ok', service: SERVICE_NAME, version: services.version }));

  app.get('/heartbeat', async () => ({
    alive: true,
    timestamp: new Date().toISOString(),
    uptime: readiness.uptimeSeconds(),
  }));
};
