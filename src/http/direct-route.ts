import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Identity } from '../auth/identity.js';
import type { KeyRing } from '../auth/key-ring.js';
import { LogEvent } from '../observability/events.js';
import { CLIENT_CLOSED_REQUEST } from '../observability/metrics/http-metrics.js';
import { presentedKey } from './auth.js';
import { toHttpError } from './error-handler.js';
import type { HttpError } from './http-error.js';
import { subjectOf, type RateLimitGroup, type RateLimitPolicy, type RateLimitVerdict } from './rate-limit.js';
import { requestIdOf } from './request-id.js';

/**
 * A route served straight off node:http, ahead of Fastify: `/v1/messages`, where a gateway must add
 * next to nothing. Fastify's request pipeline (routing, request and reply objects, a dozen hooks, the
 * content-type parser, reply serialisation) costs about as much CPU as the upstream call itself; this
 * does the same protective work — request id, security headers, authentication, rate limit, body
 * limit, safe JSON parsing, metrics, one `http_request` log line — once, inline.
 *
 * Only the plain case is taken: a JSON body with a Content-Length within the limit, a valid key (or
 * authentication off), no `Origin` (CORS) and the server not closing. Anything else — a missing or
 * wrong key, a browser, a chunked or oversized body — goes on to Fastify, which serves the same route
 * with the same answers (and errors), so the two paths cannot disagree on what is refused.
 */
export interface DirectRoute {
  path: string;
  group: RateLimitGroup;
  /** Writes a refusal (rate limit, unreadable body) in the shape this route's clients expect. */
  sendError(res: ServerResponse, head: ResponseHead, error: HttpError, requestId: string): void;
  serve(exchange: DirectExchange): Promise<void>;
}

/**
 * Headers every answer to the request carries (security, request id, rate limit), as a flat
 * `[name, value, name, value…]` list for `res.writeHead`: Node validates and writes them once, where
 * `setHeader` would store each in a map first (~1 µs a header, a dozen headers per answer).
 */
export type ResponseHead = string[];

export interface DirectExchange {
  req: IncomingMessage;
  res: ServerResponse;
  head: ResponseHead;
  requestId: string;
  identity: Identity;
  /** The body exactly as sent. */
  raw: Buffer;
  /** Parses it as Fastify's routes would (undefined for a blank body); throws their 400 when it is not JSON. */
  parse(): unknown;
}

export interface HttpRequestMetrics {
  httpRequestStarted(method: string, route: string): void;
  httpRequestFinished(method: string, route: string, statusCode: number, durationSeconds: number): void;
}

export interface DirectRouteDeps {
  logger: Logger;
  keys: KeyRing;
  /** Authentication off (or no key configured): everybody is `anonymous`. */
  open: boolean;
  /** With a trusted proxy the client address needs X-Forwarded-For parsing: such anonymous calls go to Fastify. */
  trustProxy: boolean;
  maxBodyBytes: number;
  rateLimit: RateLimitPolicy;
  metrics: HttpRequestMetrics | undefined;
  /** The security headers, flat (see ResponseHead). */
  securityHeaders: readonly string[];
  draining: () => boolean;
  /** Fastify's JSON parser (prototype poisoning refused), so both paths accept exactly the same bodies. */
  parseJson: (text: string) => unknown;
}

function isJsonContentType(type: string | undefined): boolean {
  if (type === undefined) return false;
  const semicolon = type.indexOf(';');
  return (semicolon === -1 ? type : type.slice(0, semicolon)).trim().toLowerCase() === 'application/json';
}

/**
 * The server's front door: returns true when it took the request, false to hand it to Fastify (which
 * then sees it untouched: nothing has been read or written).
 */
export class DirectRoutes {
  private readonly byPath = new Map<string, DirectRoute>();
  private closing = false;

  constructor(
    routes: readonly DirectRoute[],
    private readonly deps: DirectRouteDeps,
  ) {
    for (const route of routes) this.byPath.set(route.path, route);
  }

  /** From now on everything goes to Fastify, which answers 503 while it closes. */
  close(): void {
    this.closing = true;
  }

  take(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method !== 'POST' || this.closing || this.byPath.size === 0) return false;
    const url = req.url ?? '';
    const query = url.indexOf('?');
    const route = this.byPath.get(query === -1 ? url : url.slice(0, query));
    if (!route) return false;
    const headers = req.headers;
    if (headers.origin !== undefined || !isJsonContentType(headers['content-type'])) return false;
    const length = Number(headers['content-length']);
    if (!(length > 0 && length <= this.deps.maxBodyBytes)) return false;
    const identity = this.identify(req);
    if (!identity) return false;
    this.serve(route, req, res, identity);
    return true;
  }

  private identify(req: IncomingMessage): Identity | null {
    if (this.deps.open) return this.deps.trustProxy ? null : { kind: 'anonymous' };
    const key = presentedKey(req.headers);
    return key === undefined ? null : this.deps.keys.identify(key);
  }

  private serve(route: DirectRoute, req: IncomingMessage, res: ServerResponse, identity: Identity): void {
    const { deps } = this;
    const started = performance.now();
    const requestId = requestIdOf(req.headers);
    const method = 'POST';
    deps.metrics?.httpRequestStarted(method, route.path);
    let recorded = false;
    const record = (status: number) => {
      if (recorded) return;
      recorded = true;
      const ms = performance.now() - started;
      deps.metrics?.httpRequestFinished(method, route.path, status, ms / 1000);
      return ms;
    };
    res.on('close', () => {
      if (res.writableFinished) return;
      record(res.headersSent ? res.statusCode : CLIENT_CLOSED_REQUEST);
    });
    res.on('finish', () => {
      const ms = record(res.statusCode);
      if (ms === undefined) return;
      deps.logger.info({ event: LogEvent.httpRequest, request_id: requestId, method, route: route.path, status: res.statusCode, duration_ms: Math.round(ms * 100) / 100 });
    });

    const head: ResponseHead = deps.securityHeaders.slice();
    head.push('x-request-id', requestId);
    if (deps.draining()) head.push('connection', 'close');

    const admitted = (verdict: RateLimitVerdict) => {
      for (const [name, value] of verdict.headers) head.push(name, value);
      if (verdict.refusal) {
        req.resume();
        route.sendError(res, head, verdict.refusal, requestId);
        return;
      }
      this.readBody(route, req, res, head, identity, requestId);
    };
    const failed = (error: unknown) => this.fail(route, res, head, requestId, error);
    try {
      const verdict = deps.rateLimit.check(route.group, subjectOf(identity, req.socket.remoteAddress ?? ''));
      if (verdict instanceof Promise) verdict.then(admitted).catch(failed);
      else admitted(verdict);
    } catch (error) {
      failed(error);
    }
  }

  private readBody(route: DirectRoute, req: IncomingMessage, res: ServerResponse, head: ResponseHead, identity: Identity, requestId: string): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      const parse = () => {
        const text = raw.toString('utf8');
        // As on Fastify's routes: an empty body sent as JSON counts as no body.
        return text.trim() === '' ? undefined : this.deps.parseJson(text);
      };
      const failed = (error: unknown) => this.fail(route, res, head, requestId, error);
      // No request context (see observability/request-context.ts): the route names the request itself.
      // Whatever it throws (a body that is not JSON, too), at once or later, becomes the answer.
      try {
        route.serve({ req, res, head, requestId, identity, raw, parse }).catch(failed);
      } catch (error) {
        failed(error);
      }
    });
    // A client that goes away mid-body: nothing to answer (the close handler records it).
    req.on('error', () => res.destroy());
  }

  private fail(route: DirectRoute, res: ServerResponse, head: ResponseHead, requestId: string, error: unknown): void {
    const httpError = toHttpError(error);
    if (httpError.statusCode >= 500) this.deps.logger.error({ event: LogEvent.requestError, request_id: requestId, err: error }, 'request failed');
    if (res.headersSent) res.destroy();
    else route.sendError(res, head, httpError, requestId);
  }
}
