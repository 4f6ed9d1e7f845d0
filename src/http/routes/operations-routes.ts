import type { FastifyPluginAsync } from 'fastify';
import type { ServicesOptions } from '../services.js';

export const SERVICE_NAME = 'Claude Chat API';

/** Liveness, readiness and a basic health report (the full operations surface builds on these). */
export const operationsRoutes: FastifyPluginAsync<ServicesOptions> = async (app, { services }) => {
  const { readiness, provider, store } = services;

  app.get('/', async () => ({ status: 'ok', service: SERVICE_NAME, version: services.version }));

  app.get('/heartbeat', async () => ({
    alive: true,
    timestamp: new Date().toISOString(),
    uptime: readiness.uptimeSeconds(),
  }));

  app.get('/livez', async () => ({ status: 'alive' }));

  app.get('/readyz', async (_request, reply) => {
    const ready = readiness.state === 'ready';
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : readiness.state });
  });

  app.get('/health', async (_request, reply) => {
    const time = new Date().toISOString();
    const storeOk = store.ping();
    const cacheBackend = services.cache.stats().backend;
    const body = {
      status: storeOk ? (provider.simulated || cacheBackend === 'redis_degraded' ? 'warn' : 'pass') : 'fail',
      version: services.version,
      serviceId: 'claude-chat-api',
      description: SERVICE_NAME,
      checks: {
        'store:writable': [{ componentType: 'datastore', componentId: store.kind, status: storeOk ? 'pass' : 'fail', time }],
        'cache:backend': [
          {
            componentType: 'datastore',
            componentId: cacheBackend === 'memory' ? 'memory' : 'redis',
            status: cacheBackend === 'redis_degraded' ? 'warn' : 'pass',
            output: cacheBackend === 'redis_degraded' ? 'Redis unreachable: the fallback cache runs in memory' : undefined,
            time,
          },
        ],
        'claude:provider': [
          {
            componentType: 'component',
            componentId: provider.name,
            status: provider.simulated ? 'warn' : 'pass',
            output: provider.simulated ? 'simulated provider: answers do not come from Claude' : undefined,
            time,
          },
        ],
      },
    };
    return reply.code(storeOk ? 200 : 503).type('application/health+json').send(body);
  });
};
