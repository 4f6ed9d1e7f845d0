import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RateLimitDecision, RateLimiter } from '../coordination/rate-limit/types.js';
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

/** A limiter that can decide at once (the in-memory one): no promise and no microtask per request. */
interface SyncRateLimiter {
  hitSync(key: string, limit: number, windowMs: number): RateLimitDecision;
}

function syncOf(limiter: RateLimiter): SyncRateLimiter | null {
  const candidate = limiter as RateLimiter & Partial<SyncRateLimiter>;
  return typeof candidate.hitSync === 'function' ? (candidate as SyncRateLimiter) : null;
}

/**
 * Counts every request in its route group and refuses the excess with 429, Retry-After and the
 * RateLimit headers. Each group has its own budget: exceeding one never blocks the others.
 */
export function installRateLimit(app: FastifyInstance, options: RateLimitOptions): void {
  const windowSeconds = Math.ceil(options.windowMs / 1000);
  // The fixed headers of each group, built once.
  const fixed = new Map(
    (Object.keys(options.limits) as RateLimitGroup[]).map((group) => {
      const limit = options.limits[group];
      return [group, { limit, policy: `${limit};w=${windowSeconds}`, limitText: String(limit) }];
    }),
  );
  const sync = syncOf(options.limiter);

  const apply = (group: RateLimitGroup, reply: FastifyReply, decision: RateLimitDecision): HttpError | undefined => {
    const { limit, policy, limitText } = fixed.get(group) as { limit: number; policy: string; limitText: string };
    const resetSeconds = Math.max(1, Math.ceil(decision.resetMs / 1000));
    reply.header('ratelimit-policy', policy);
    reply.header('ratelimit-limit', limitText);
    reply.header('ratelimit-remaining', String(Math.max(0, decision.remaining)));
    reply.header('ratelimit-reset', String(resetSeconds));
    if (decision.allowed) return undefined;
    options.onRejected?.(group);
    return new HttpError(
      429,
      'rate_limit_exceeded',
      `Too many ${group} requests: at most ${limit} per ${windowSeconds} s; retry in ${resetSeconds} s`,
      { group, limit, window_seconds: windowSeconds },
      { 'retry-after': String(resetSeconds) },
    );
  };

  app.addHook('onRequest', (request, reply, done) => {
    if (request.method === 'OPTIONS') return done();
    const group = groupOf(request.routeOptions.url);
    if (!group) return done();
    const key = `${group}:${subjectOf(request)}`;
    const limit = options.limits[group];
    if (sync) {
      let decision: RateLimitDecision;
      try {
        decision = sync.hitSync(key, limit, options.windowMs);
      } catch (error) {
        return done(error as Error);
      }
      return done(apply(group, reply, decision));
    }
    options.limiter.hit(key, limit, options.windowMs).then(
      (decision) => done(apply(group, reply, decision)),
      (error: unknown) => done(error as Error),
    );
  });
}
