import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isAdmin, type Identity } from '../auth/identity.js';
import type { KeyRing } from '../auth/key-ring.js';
import { HttpError } from './http-error.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Null when the request failed authentication (it is refused after being rate-limited). */
    identity: Identity | null;
    authFailure: HttpError | null;
  }
}

/** Probes, scrapers and the greeting need no key. */
const PUBLIC_ROUTES = new Set(['/', '/heartbeat', '/livez', '/readyz', '/health', '/health/detailed', '/health/stability', '/health/alerts', '/metrics']);
/** Management routes: the admin key only. */
const ADMIN_ROUTES = new Set(['/health/circuit-breaker/:name/reset', '/health/fallback-cache/clear']);

export interface AuthOptions {
  keys: KeyRing;
  /** Authentication off: everybody is `anonymous` and sees everything. */
  disabled: boolean;
}

/** The key a request presents: `Authorization: Bearer <key>` or `x-api-key: <key>`. */
export function presentedKey(headers: IncomingHttpHeaders): string | undefined {
  const authorization = headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match) return match[1];
  }
  const apiKey = headers['x-api-key'];
  return typeof apiKey === 'string' && apiKey.trim() !== '' ? apiKey.trim() : undefined;
}

export function unauthorized(message: string): HttpError {
  return new HttpError(401, 'authentication_error', message, undefined, { 'www-authenticate': 'Bearer realm="claude-chat-api"' });
}

/**
 * Identifies the caller (`request.identity`) without refusing anything yet, so that failed attempts
 * still count against the caller's address in the rate limiter; `enforceAuth` refuses them after.
 */
export function installAuth(app: FastifyInstance, options: AuthOptions): void {
  const open = options.disabled || !options.keys.configured;
  // null until the hook runs (Fastify wants a non-object default for request decorations).
  app.decorateRequest('identity', null);
  app.decorateRequest('authFailure', null);
  // Callback-style, like the other hooks on the hot path: an async hook costs a promise per request.
  app.addHook('onRequest', (request, _reply, done) => {
    request.authFailure = null;
    if (open) {
      request.identity = { kind: 'anonymous' };
      return done();
    }
    const route = request.routeOptions.url;
    const key = presentedKey(request.headers);
    const identity = key === undefined ? null : options.keys.identify(key);
    // CORS preflights never carry credentials; they reveal nothing and must pass.
    if (request.method === 'OPTIONS' || (route !== undefined && PUBLIC_ROUTES.has(route))) {
      request.identity = identity ?? { kind: 'guest' };
      return done();
    }
    request.identity = identity;
    if (key === undefined) request.authFailure = unauthorized('An API key is required: send Authorization: Bearer <key> or x-api-key: <key>');
    else if (!identity) request.authFailure = unauthorized('The API key is not valid');
    else if (route !== undefined && ADMIN_ROUTES.has(route) && !isAdmin(identity)) {
      request.authFailure = new HttpError(403, 'permission_error', 'This route needs the admin key');
    }
    done();
  });
}

/** Refuses what `installAuth` found wanting (401 / 403); registered after the rate limiter. */
export function enforceAuth(app: FastifyInstance): void {
  app.addHook('onRequest', (request, _reply, done) => {
    done(request.authFailure ?? undefined);
  });
}

/** The caller of a request that passed `enforceAuth` (always identified by then). */
export function identityOf(request: FastifyRequest): Identity {
  if (!request.identity) throw unauthorized('An API key is required');
  return request.identity;
}
