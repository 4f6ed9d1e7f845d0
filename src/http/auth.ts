import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isAdmin, type Identity } from '../auth/identity.js';
import type { KeyRing } from '../auth/key-ring.js';
import { HttpError } from './http-error.js';

declare module 'fastify' {
  interface FastifyRequest {
    identity: Identity;
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

function presentedKey(request: FastifyRequest): string | undefined {
  const authorization = request.headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match) return match[1];
  }
  const apiKey = request.headers['x-api-key'];
  return typeof apiKey === 'string' && apiKey.trim() !== '' ? apiKey.trim() : undefined;
}

function unauthorized(message: string): HttpError {
  return new HttpError(401, 'authentication_error', message, undefined, { 'www-authenticate': 'Bearer realm="claude-chat-api"' });
}

/** Sets `request.identity` and refuses requests without the key their route needs (401 / 403). */
export function installAuth(app: FastifyInstance, options: AuthOptions): void {
  const open = options.disabled || !options.keys.configured;
  // null until the hook runs (Fastify wants a non-object default for request decorations).
  app.decorateRequest('identity', null as never);
  app.addHook('onRequest', async (request) => {
    if (open) {
      request.identity = { kind: 'anonymous' };
      return;
    }
    const route = request.routeOptions.url;
    const key = presentedKey(request);
    const identity = key === undefined ? null : options.keys.identify(key);
    // CORS preflights never carry credentials; they reveal nothing and must pass.
    if (request.method === 'OPTIONS' || (route !== undefined && PUBLIC_ROUTES.has(route))) {
      request.identity = identity ?? { kind: 'guest' };
      return;
    }
    if (key === undefined) throw unauthorized('An API key is required: send Authorization: Bearer <key> or x-api-key: <key>');
    if (!identity) throw unauthorized('The API key is not valid');
    if (route !== undefined && ADMIN_ROUTES.has(route) && !isAdmin(identity)) {
      throw new HttpError(403, 'permission_error', 'This route needs the admin key');
    }
    request.identity = identity;
  });
}
