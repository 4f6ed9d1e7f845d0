import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import { LogEvent } from '../observability/events.js';
import { requestContext } from '../observability/request-context.js';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import { enforceAuth, installAuth, type AuthOptions } from './auth.js';
import { DirectRoutes, type DirectRoute, type HttpRequestMetrics } from './direct-route.js';
import { installRateLimit, RateLimitPolicy, type RateLimitOptions } from './rate-limit.js';
import { requestIdOf } from './request-id.js';
import { installErrorHandlers, sendError } from './error-handler.js';
import { HttpError } from './http-error.js';
import { chatRoutes } from './routes/chat-routes.js';
import { operationsRoutes } from './routes/operations-routes.js';
import { sessionRoutes } from './routes/session-routes.js';
import { jobRoutes } from './routes/job-routes.js';
import type { Services } from './services.js';

export interface HttpOptions {
  logger: Logger;
  maxBodyBytes: number;
  auth: AuthOptions;
  rateLimit: RateLimitOptions;
  /** Fastify's trustProxy: whether (and which) X-Forwarded-For hops to believe for the client address. */
  trustProxy: boolean | number | string[];
  corsOrigins: string[];
  maxHeaderBytes: number;
  maxHeaders: number;
  /** Route plugins built elsewhere (health, metrics, alerts). */
  plugins?: FastifyPluginAsync[];
  /** Hooks on the root instance before any route (e.g. HTTP metrics). */
  instrument?: (app: FastifyInstance) => void;
  /** The same request metrics for the routes served ahead of Fastify. */
  requestMetrics?: HttpRequestMetrics;
  /** Routes served straight off node:http when the request is plain (http/direct-route.ts). */
  directRoutes?: DirectRoute[];
}

export async function buildHttpApp(services: Services, options: HttpOptions): Promise<FastifyInstance> {
  let direct: DirectRoutes | undefined;
  const app: FastifyInstance = Fastify({
    // pino's Logger is a FastifyBaseLogger; the cast only widens the generic Fastify infers.
    loggerInstance: options.logger as FastifyBaseLogger,
    // One `http_request` event per response (below) instead of Fastify's two untagged lines.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    // The request id reaches log lines through the request context (logger mixin), for request.log
    // and for the services' own loggers alike; a child binding would write it twice.
    childLoggerFactory: (logger) => logger,
    bodyLimit: options.maxBodyBytes,
    requestIdHeader: false,
    genReqId: (req) => requestIdOf(req.headers),
    routerOptions: { ignoreTrailingSlash: true },
    // By the time the server closes, shutdown has drained, waited and closed every session: whatever
    // connection is still open (a client that stopped reading) is cut rather than waited for.
    forceCloseConnections: true,
    // Errors the router raises before any route (bad URL encoding, an over-long path parameter) get
    // the same error shape and request id as everything else.
    frameworkErrors: (error, request, reply) => {
      const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
      reply.header('x-request-id', String(request.id));
      return sendError(
        reply,
        request,
        new HttpError(tooLong ? 414 : 400, tooLong ? 'uri_too_long' : 'invalid_request', tooLong ? 'A path segment is too long' : 'The URL is not validly encoded'),
      );
    },
    trustProxy: typeof options.trustProxy === 'number' ? trustHops(options.trustProxy) : options.trustProxy,
    // Header limits live on the Node server: too large a header block gets 431 before any parsing.
    // The direct routes see each request first and hand on whatever they do not take.
    serverFactory: (handler) => {
      const server = createServer({ maxHeaderSize: options.maxHeaderBytes }, (req: IncomingMessage, res: ServerResponse) => {
        if (direct === undefined || !direct.take(req, res)) handler(req, res);
      });
      server.maxHeadersCount = options.maxHeaders;
      return server;
    },
  });

  // Everything done for a request (hooks, handler, the services it calls) runs in its context, which
  // is left when the response is over (with none in flight, the context's async hooks go off).
  app.addHook('onRequest', (request, reply, done) => {
    reply.raw.once('close', () => requestContext.leave());
    requestContext.enter({ requestId: String(request.id) }, () => {
      // Start lines are debug: at info, one line per request (http_request, at the end) is enough.
      request.log.debug({ event: LogEvent.httpRequestStarted, method: request.method, url: request.url.split('?')[0] });
      done();
    });
  });
  // First, so that refusals (401, 429) carry them too.
  const security = await securityHeaders();
  installSecurityHeaders(app, security);
  acceptEmptyJsonBodies(app);
  installErrorHandlers(app);
  options.instrument?.(app);
  // Identify, then count (failed key guesses count against the address), then refuse.
  installAuth(app, options.auth);
  const rateLimit = new RateLimitPolicy(options.rateLimit);
  installRateLimit(app, rateLimit);
  enforceAuth(app);

  await app.register(cors, {
    origin: options.corsOrigins.length > 0 ? options.corsOrigins : false,
    exposedHeaders: ['x-session-id', 'x-turn-id', 'x-request-id', 'idempotent-replayed', 'x-fallback-strategy', 'retry-after', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset'],
    allowedHeaders: ['content-type', 'authorization', 'x-api-key', 'x-request-id', 'idempotency-key', 'last-event-id'],
    methods: ['GET', 'POST', 'PUT', 'DELETE'],
    maxAge: 600,
  });

  // Callback-style hooks: an async one costs a promise and a microtask per request, for nothing here.
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-request-id', String(request.id));
    done(null, payload);
  });
  // While draining, every response asks its client to reconnect (elsewhere) for the next request.
  app.addHook('onRequest', (_request, reply, done) => {
    if (services.readiness.draining) reply.header('connection', 'close');
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    request.log.info({
      event: LogEvent.httpRequest,
      request_id: String(request.id),
      method: request.method,
      route: request.routeOptions.url ?? 'unmatched',
      status: reply.statusCode,
      duration_ms: Math.round(reply.elapsedTime * 100) / 100,
    });
    done();
  });

  await app.register(operationsRoutes, { services });
  await app.register(sessionRoutes, { services });
  await app.register(chatRoutes, { services });
  await app.register(jobRoutes, { services });
  for (const plugin of options.plugins ?? []) await app.register(plugin);

  if (options.directRoutes && options.directRoutes.length > 0) {
    const parseJson = app.getDefaultJsonParser('error', 'error');
    direct = new DirectRoutes(options.directRoutes, {
      logger: options.logger,
      keys: options.auth.keys,
      open: options.auth.disabled || !options.auth.keys.configured,
      trustProxy: options.trustProxy !== false,
      maxBodyBytes: options.maxBodyBytes,
      rateLimit,
      metrics: options.requestMetrics,
      securityHeaders: security.flatMap(([name, value]) => [name, String(value)]),
      draining: () => services.readiness.draining,
      parseJson: (text) => {
        let parsed: unknown;
        let failure: Error | null = null;
        // Fastify's parser is synchronous: `done` has run when it returns.
        parseJson(undefined as never, text, (error, value) => {
          failure = error;
          parsed = value;
        });
        if (failure) throw failure;
        return parsed;
      },
    });
    const closing = direct;
    app.addHook('preClose', (done) => {
      closing.close();
      done();
    });
  }
  return app;
}

/** An API: no HTML is served, so the strictest content policy costs nothing. */
const HELMET_OPTIONS = {
  contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
  crossOriginResourcePolicy: { policy: 'same-site' as const },
};

/**
 * The security headers (@fastify/helmet) are the same for every response here, but the plugin rebuilds
 * helmet's middleware — parsing the CSP directives again — in two hooks on every request, about 15 µs
 * of a gateway call. So the plugin runs once, on a probe request at start-up, and the headers it set
 * are what every response gets (same values and order).
 */
async function securityHeaders(): Promise<[string, string | string[]][]> {
  const probe = Fastify();
  await probe.register(helmet, HELMET_OPTIONS);
  let headers: [string, string | string[]][] = [];
  probe.get('/', async (_request, reply) => {
    headers = Object.entries(reply.raw.getHeaders()).map(([name, value]) => [name, Array.isArray(value) ? value : String(value)]);
    return '';
  });
  await probe.inject('/');
  await probe.close();
  return headers;
}

/** Set on the raw response, so SSE replies (which write the raw response) get them too. */
function installSecurityHeaders(app: FastifyInstance, headers: [string, string | string[]][]): void {
  app.addHook('onRequest', (_request, reply, done) => {
    const res = reply.raw;
    for (const [name, value] of headers) res.setHeader(name, value);
    done();
  });
}

/** Trusts the n proxies closest to the server (Fastify's hop-count form of trustProxy). */
function trustHops(hops: number) {
  return (_address: string, hop: number) => hop < hops;
}

/**
 * Old clients POST with `content-type: application/json` and no body; treat that as "no body"
 * rather than a parse error. Everything else goes through Fastify's safe JSON parser.
 */
function acceptEmptyJsonBodies(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  // A JSON API: other media types get 415 rather than being parsed as text.
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    parseJson(request, text, done);
  });
}
