import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Identity } from '../auth/identity.js';
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
export function subjectOf(identity: Identity | null, ip: string): string {
  if (identity && (identity.kind === 'client' || identity.kind === 'admin')) return `key:${identity.keyId}`;
  return `ip:${ip}`;
}

/** A limiter that can decide at once (the in-memory one): no promise and no microtask per request. */
interface SyncRateLimiter {
  hitSync(key: string, limit: number, windowMs: number): RateLimitDecision;
}

function syncOf(limiter: RateLimiter): SyncRateLimiter | null {
  const candidate = limiter as RateLimiter & Partial<SyncRateLimiter>;
  return typeof candidate.hitSync === 'function' ? (candidate as SyncRateLimiter) : null;
}

/** The RateLimit headers a response carries, and the 429 to answer with when the budget is spent. */
export interface RateLimitVerdict {
  headers: [name: string, value: string][];
  refusal: HttpError | undefined;
}

/**
 * Counts a request in its route group and decides: the RateLimit headers, and a 429 with Retry-After
 * for the excess. Each group has its own budget: exceeding one never blocks the others. Shared by the
 * Fastify hook and the routes served ahead of Fastify (http/direct-route.ts).
 */
export class RateLimitPolicy {
  private readonly windowSeconds: number;
  /** The fixed headers of each group, built once. */
  private readonly fixed: Map<RateLimitGroup, { limit: number; policy: string; limitText: string }>;
  private readonly sync: SyncRateLimiter | null;

  constructor(private readonly options: RateLimitOptions) {
    this.windowSeconds = Math.ceil(options.windowMs / 1000);
    this.fixed = new Map(
      (Object.keys(options.limits) as RateLimitGroup[]).map((group) => {
        const limit = options.limits[group];
        return [group, { limit, policy: `${limit};w=${this.windowSeconds}`, limitText: String(limit) }];
      }),
    );
    this.sync = syncOf(options.limiter);
  }

  /** Synchronous with the in-memory limiter (no promise per request); a promise with Redis. */
  check(group: RateLimitGroup, subject: string): RateLimitVerdict | Promise<RateLimitVerdict> {
    const key = `${group}:${subject}`;
    const limit = this.options.limits[group];
    if (this.sync) return this.verdict(group, this.sync.hitSync(key, limit, this.options.windowMs));
    return this.options.limiter.hit(key, limit, this.options.windowMs).then((decision) => this.verdict(group, decision));
  }

  private verdict(group: RateLimitGroup, decision: RateLimitDecision): RateLimitVerdict {
    const { limit, policy, limitText } = this.fixed.get(group) as { limit: number; policy: string; limitText: string };
    const resetSeconds = Math.max(1, Math.ceil(decision.resetMs / 1000));
    const headers: [string, string][] = [
      ['ratelimit-policy', policy],
      ['ratelimit-limit', limitText],
      ['ratelimit-remaining', String(Math.max(0, decision.remaining))],
      ['ratelimit-reset', String(resetSeconds)],
    ];
    if (decision.allowed) return { headers, refusal: undefined };
    this.options.onRejected?.(group);
    const refusal = new HttpError(
      429,
      'rate_limit_exceeded',
      `Too many ${group} requests: at most ${limit} per ${this.windowSeconds} s; retry in ${resetSeconds} s`,
      { group, limit, window_seconds: this.windowSeconds },
      { 'retry-after': String(resetSeconds) },
    );
    return { headers, refusal };
  }
}

/** The rate limit as a Fastify hook, for every route Fastify serves. */
export function installRateLimit(app: FastifyInstance, policy: RateLimitPolicy): void {
  const apply = (reply: FastifyReply, verdict: RateLimitVerdict): HttpError | undefined => {
    for (const [name, value] of verdict.headers) reply.header(name, value);
    return verdict.refusal;
  };

  app.addHook('onRequest', (request, reply, done) => {
    if (request.method === 'OPTIONS') return done();
    const group = groupOf(request.routeOptions.url);
    if (!group) return done();
    let verdict: RateLimitVerdict | Promise<RateLimitVerdict>;
    try {
      verdict = policy.check(group, subjectOf(request.identity, request.ip));
    } catch (error) {
      return done(error as Error);
    }
    if (!(verdict instanceof Promise)) return done(apply(reply, verdict));
    verdict.then(
      (settled) => done(apply(reply, settled)),
      (error: unknown) => done(error as Error),
    );
  });
}
