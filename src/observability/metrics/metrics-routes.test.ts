import http from 'node:http';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { installHttpMetrics } from './http-metrics.js';
import { Metrics } from './metrics.js';
import { metricsFormatFor, metricsRoutes, type MetricsSources } from './metrics-routes.js';
import { parseExposition, sampleValue } from './test-helpers.js';

const SOURCES: MetricsSources = {
  uptimeSeconds: () => 42,
  sessionsTotal: () => 7,
  openBreakers: () => 1,
  memoryUsagePercent: () => 55.5,
  cpuUsagePercent: () => 12.5,
};

const JSON_FIELDS = [
  'requests_total',
  'requests_in_progress',
  'errors_total',
  'error_rate',
  'sessions_created',
  'sessions_active',
  'uptime_seconds',
  'fallbacks_used',
  'circuit_breakers_open',
  'memory_usage_percent',
  'cpu_usage_percent',
];

let app: FastifyInstance | undefined;

afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function buildApp(metrics: Metrics): Promise<FastifyInstance> {
  app = Fastify();
  installHttpMetrics(app, metrics);
  app.get('/items/:id', async (request) => ({ id: (request.params as { id: string }).id }));
  app.get('/boom', async () => {
    throw new Error('boom');
  });
  await app.register(metricsRoutes(metrics, SOURCES));
  await app.ready();
  return app;
}

describe('GET /metrics', () => {
  it('answers JSON by default, every field a number', async () => {
    const server = await buildApp(new Metrics());
    const response = await server.inject({ method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    const body = response.json<Record<string, unknown>>();
    for (const field of JSON_FIELDS) expect(typeof body[field], field).toBe('number');
    expect(body).toMatchObject({
      uptime_seconds: 42,
      circuit_breakers_open: 1,
      memory_usage_percent: 55.5,
      cpu_usage_percent: 12.5,
      sessions_total: 7,
      errors_total: 0,
      error_rate: 0,
      // This request is in flight while the body is built.
      requests_in_progress: 1,
    });
  });

  it('serves the Prometheus text when asked for text/plain', async () => {
    const server = await buildApp(new Metrics());
    await server.inject({ method: 'GET', url: '/items/1' });
    const response = await server.inject({ method: 'GET', url: '/metrics', headers: { accept: 'text/plain' } });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    expect(response.headers.vary).toMatch(/accept/i);
    const exposition = parseExposition(response.body);
    expect(sampleValue(exposition, 'http_server_request_duration_seconds_count', { method: 'GET', route: '/items/:id', status_code: '200' })).toBe(1);
  });

  it('serves the Prometheus text when Prometheus prefers OpenMetrics', async () => {
    const server = await buildApp(new Metrics());
    const accept = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';
    const response = await server.inject({ method: 'GET', url: '/metrics', headers: { accept } });
    expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(parseExposition(response.body).types.get('chat_errors_total')).toBe('counter');
  });

  it('counts a 500 as an error and in the error rate', async () => {
    const metrics = new Metrics();
    const server = await buildApp(metrics);
    expect((await server.inject({ method: 'GET', url: '/boom' })).statusCode).toBe(500);
    await server.inject({ method: 'GET', url: '/items/1' });
    await server.inject({ method: 'GET', url: '/items/2' });
    await server.inject({ method: 'GET', url: '/items/3' });

    const body = (await server.inject({ method: 'GET', url: '/metrics' })).json<Record<string, number>>();
    expect(body.requests_total).toBe(4);
    expect(body.errors_total).toBe(1);
    expect(body.error_rate).toBe(0.25);

    const text = (await server.inject({ method: 'GET', url: '/metrics', headers: { accept: 'text/plain' } })).body;
    const exposition = parseExposition(text);
    expect(sampleValue(exposition, 'chat_errors_total', { kind: 'http_5xx' })).toBe(1);
    expect(sampleValue(exposition, 'http_server_request_duration_seconds_count', { route: '/boom', status_code: '500' })).toBe(1);
  });

  it('labels by route template, never the raw URL, and 404s as unmatched', async () => {
    const server = await buildApp(new Metrics());
    await server.inject({ method: 'GET', url: '/items/abc' });
    await server.inject({ method: 'GET', url: '/items/def' });
    await server.inject({ method: 'GET', url: '/nowhere/123' });

    const text = (await server.inject({ method: 'GET', url: '/metrics', headers: { accept: 'text/plain' } })).body;
    expect(text).not.toContain('abc');
    expect(text).not.toContain('/nowhere');
    const exposition = parseExposition(text);
    expect(sampleValue(exposition, 'http_server_request_duration_seconds_count', { route: '/items/:id', status_code: '200' })).toBe(2);
    expect(sampleValue(exposition, 'http_server_request_duration_seconds_count', { route: 'unmatched', status_code: '404' })).toBe(1);
  });

  it('brings the in-flight gauge back to 0 once requests are done', async () => {
    const metrics = new Metrics();
    const server = await buildApp(metrics);
    await Promise.all([
      server.inject({ method: 'GET', url: '/items/1' }),
      server.inject({ method: 'GET', url: '/boom' }),
      server.inject({ method: 'GET', url: '/metrics' }),
    ]);
    expect(metrics.counters().requestsInProgress).toBe(0);
    const exposition = parseExposition((await metrics.prometheus()).body);
    const active = exposition.samples.filter((s) => s.name === 'http_server_active_requests');
    expect(active.length).toBeGreaterThan(0);
    for (const sample of active) expect(sample.value).toBe(0);
  });

  it('records a request the client abandons, so it does not stay in flight', async () => {
    const metrics = new Metrics();
    app = Fastify();
    installHttpMetrics(app, metrics);
    let started!: () => void;
    const handlerStarted = new Promise<void>((resolve) => (started = resolve));
    app.get('/slow', (_request, reply) => {
      reply.hijack();
      reply.raw.writeHead(200, { 'content-type': 'text/event-stream' });
      reply.raw.write('data: hello\n\n');
      started();
      // Never ends: the client goes away.
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address();
    if (typeof address !== 'object' || address === null) throw new Error('no address');

    // The client reads the first event, then drops the connection.
    await new Promise<void>((resolve, reject) => {
      const request = http.get({ host: '127.0.0.1', port: address.port, path: '/slow', agent: false }, (response) => {
        response.once('data', () => {
          handlerStarted
            .then(() => {
              expect(metrics.counters().requestsInProgress).toBe(1);
              request.destroy();
              resolve();
            })
            .catch(reject);
        });
      });
      request.on('error', () => undefined);
    });
    await expect.poll(() => metrics.counters().requestsInProgress).toBe(0);
    const exposition = parseExposition((await metrics.prometheus()).body);
    expect(sampleValue(exposition, 'http_server_request_duration_seconds_count', { route: '/slow', status_code: '200' })).toBe(1);
  });
});

describe('metricsFormatFor', () => {
  it.each([
    [undefined, 'json'],
    ['', 'json'],
    ['*/*', 'json'],
    ['application/json', 'json'],
    ['text/html,application/xhtml+xml,*/*;q=0.8', 'json'],
    ['text/plain', 'prometheus'],
    ['text/plain;version=0.0.4;q=0.5, application/json;q=0.4', 'prometheus'],
    ['application/json, text/plain;q=0.9', 'json'],
    ['application/openmetrics-text; version=1.0.0', 'openmetrics'],
    ['text/plain;q=0, application/openmetrics-text;q=0.2', 'openmetrics'],
    ['TEXT/PLAIN', 'prometheus'],
  ] as const)('%s → %s', (accept, format) => {
    expect(metricsFormatFor(accept)).toBe(format);
  });
});
