import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RateLimiter } from '../coordination/rate-limit/types.js';
import { HttpError } from './http-error.js';

export type RateLimitGroup = 'chat' | 'session' | 'analytics' | 'default';

export interface RateLimitOptions {
  limiter: RateLimiter;
  windowMs: number;
  limits: Record<RateLimitGroup, number>;
  onRejected?: (group: RateLimitGroup) => void;
}

/** Groups are route templates, so varying an id in the path never escapes a limit. */
const GROUPS: Record<string, RateLimitGroup> = {
  '/api/chat': 'chat',
  '/v1/messages': 'chat',
  '/api/new-session': 'session',
  '/api/session-with-config': 'session',
  '/api/session/:id': 'session',
  '/api/session/:id/config': 'session',
  '/api/session/:id/stream': 'session',
  '/api/interrupt': 'session',
  '/api/clear': 'session',
  '/api/jobs/:id': 'session',
  '/api/sessions': 'analytics',
  '/api/session-history/:id': 'analytics',
  '/health/detailed': 'analytics',
  '/health/stability': 'analytics',
  '/health/alerts': 'analytics',
};

/** Probes and the scraper are never limited: throttling them would only blind the operator. */
const EXEMPT = new Set(['/livez', '/readyz', '/health', '/metrics']);

export function groupOf(route: string | undefined): RateLimitGroup | null {
  if (route !== undefined && EXEMPT.has(route)) return null;
  return (route !== undefined ? GROUPS[route] : undefined) ?? 'default';
}

/** Per key when authenticated, per client address otherwise (X-Forwarded-For only with TRUST_PROXY). */
function subjectOf(request: FastifyRequest): string {
  const identity = request.identity;
  if (identity && (identity.kind === 'client' || identity.kind === 'admin')) return `key:${identity.keyId}`;
  return `ip:${request.ip}`;
}

/**
 * Counts every request in its route group and refuses the excess with 429, Retry-After and the
 * RateLimit headers. Each group has its own budget: exceeding one never blocks the others.
 */
export function installRateLimit(app: FastifyInstance, options: RateLimitOptions): void {
  const windowSeconds = Math.ceil(options.windowMs / 1000);
  app.addHook('onRequest', async (request, reply) => {
    if (request.method === 'OPTIONS') return;
    const group = groupOf(request.routeOptions.url);
    if (!group) return;
    const limit = options.limits[group];
    const decision = await options.limiter.hit(`${group}:${subjectOf(request)}`, limit, options.windowMs);
    const resetSeconds = Math.max(1, Math.ceil(decision.resetMs / 1000));
    reply.header('ratelimit-policy', `${limit};w=${windowSeconds}`);
    reply.header('ratelimit-limit', String(limit));
    reply.header('ratelimit-remaining', String(Math.max(0, decision.remaining)));
    reply.header('ratelimit-reset', String(resetSeconds));
    if (!decision.allowed) {
      options.onRejected?.(group);
      throw new HttpError(
        429,
        'rate_limit_exceeded',
        `Too many ${group} requests: at most ${limit} per ${windowSeconds} s; retry in ${resetSeconds} s`,
        { group, limit, window_seconds: windowSeconds },
        { 'retry-after': String(resetSeconds) },
      );
    }
  });
}
