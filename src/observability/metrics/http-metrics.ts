import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { UNMATCHED_ROUTE, type Metrics } from './metrics.js';

/** nginx's "client closed request": the client went away before the response was complete. */
export const CLIENT_CLOSED_REQUEST = 499;

interface InFlight {
  method: string;
  route: string;
  done: boolean;
}

/**
 * Adds `onRequest` / `onResponse` hooks recording every request: in-flight gauge, duration histogram
 * by method, route template (`unmatched` for 404s) and status, and 5xx responses as errors.
 *
 * Call it on the root instance before routes are registered, so the hooks apply to every route
 * (`/metrics` itself included). Hijacked replies (SSE) fire `onResponse` when the stream ends, so a
 * stream counts as in flight until then. Fastify runs `onResponse` only when the response finishes;
 * a response cut short by the client disconnecting is recorded when its socket closes instead, as 499
 * (or the status already sent, if the headers went out), so the in-flight gauge never leaks.
 */
export function installHttpMetrics(app: FastifyInstance, metrics: Metrics): void {
  const inFlight = new WeakMap<FastifyRequest, InFlight>();

  const finish = (request: FastifyRequest, reply: FastifyReply, statusCode: number): void => {
    const entry = inFlight.get(request);
    if (!entry || entry.done) return;
    entry.done = true;
    metrics.httpRequestFinished(entry.method, entry.route, statusCode, reply.elapsedTime / 1000);
  };

  // Callback-style hooks (an async one costs a promise and a microtask per request); `on`, not `once`,
  // for the response's single 'close' (no wrapper per request).
  app.addHook('onRequest', (request, reply, done) => {
    const entry: InFlight = { method: request.method, route: routeOf(request), done: false };
    inFlight.set(request, entry);
    metrics.httpRequestStarted(entry.method, entry.route);
    reply.raw.on('close', () => {
      // A finished response is recorded by onResponse (which may still be running its earlier hooks).
      if (reply.raw.writableFinished) return;
      finish(request, reply, reply.raw.headersSent ? reply.raw.statusCode : CLIENT_CLOSED_REQUEST);
    });
    done();
  });

  app.addHook('onResponse', (request, reply, done) => {
    finish(request, reply, reply.statusCode);
    done();
  });
}

function routeOf(request: FastifyRequest): string {
  return request.routeOptions.url ?? UNMATCHED_ROUTE;
}
