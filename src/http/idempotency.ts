import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { SessionScope } from '../auth/identity.js';
import type { IdempotencyStore } from '../coordination/idempotency/types.js';
import { HttpError } from './http-error.js';

export interface IdempotencySettings {
  store: IdempotencyStore;
  /** How long a key remembers its outcome (24 h by default). */
  ttlMs: number;
  /** How long a repeat waits for the first request to get going before a 409. */
  waitMs: number;
}

/** The outcome of claiming a key: do the work (then complete or release), or hand back the earlier outcome. */
export type IdempotencyClaim =
  | { kind: 'new'; complete(result: unknown): Promise<void>; release(): Promise<void> }
  | { kind: 'repeat'; result: unknown };

const KEY = /^[\x21-\x7e]{1,255}$/;
const PENDING_TTL_MS = 30_000;
const POLL_MS = 10;

/** The request's Idempotency-Key, undefined when absent; a malformed one is a 400. */
export function idempotencyKeyOf(request: FastifyRequest): string | undefined {
  const raw = request.headers['idempotency-key'];
  if (raw === undefined) return undefined;
  const key = Array.isArray(raw) ? raw[0] : raw;
  if (key === undefined || !KEY.test(key)) {
    throw new HttpError(400, 'invalid_idempotency_key', 'Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good choice)');
  }
  return key;
}

/**
 * Claims an Idempotency-Key for one caller and route. The first request gets `new`; a repeat with the
 * same body gets the first one's outcome (waiting briefly while the first is still starting); the same
 * key with another body is a 422.
 */
export async function claimIdempotencyKey(
  settings: IdempotencySettings,
  scope: SessionScope,
  route: string,
  key: string,
  body: unknown,
): Promise<IdempotencyClaim> {
  // `open:` (no authentication) can never collide with a key's name.
  const scoped = sha256(`${scope.owner === null ? 'open:' : `key:${scope.owner}`}\n${route}\n${key}`);
  const fingerprint = sha256(stableJson(body));
  const deadline = Date.now() + settings.waitMs;
  for (;;) {
    const existing = await settings.store.reserve(scoped, fingerprint, PENDING_TTL_MS);
    if (existing === null) {
      return {
        kind: 'new',
        complete: (result) => settings.store.complete(scoped, fingerprint, result, settings.ttlMs),
        release: () => settings.store.release(scoped),
      };
    }
    if (existing.fingerprint !== fingerprint) {
      throw new HttpError(422, 'idempotency_key_reused', 'This Idempotency-Key was already used with a different request; use a new key for a new request');
    }
    if (existing.state === 'done') return { kind: 'repeat', result: existing.result };
    if (Date.now() >= deadline) {
      throw new HttpError(409, 'idempotency_key_in_progress', 'A request with this Idempotency-Key is still starting; retry shortly', undefined, { 'retry-after': '1' });
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** JSON with object keys sorted, so the same body always has the same fingerprint. */
function stableJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
}
