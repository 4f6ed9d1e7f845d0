/** What an Idempotency-Key stands for: a request in flight, or the outcome to hand back to repeats. */
export type IdempotencyRecord =
  | { state: 'pending'; fingerprint: string }
  | { state: 'done'; fingerprint: string; result: unknown };

/**
 * Idempotency keys (already scoped to caller and route by the caller of this store). `reserve` is
 * atomic: exactly one of several concurrent requests gets null and does the work.
 */
export interface IdempotencyStore {
  /** Null when this call reserved the key (pending for `pendingTtlMs`); else the existing record. */
  reserve(key: string, fingerprint: string, pendingTtlMs: number): Promise<IdempotencyRecord | null>;
  /** Stores the outcome for `ttlMs`. */
  complete(key: string, fingerprint: string, result: unknown, ttlMs: number): Promise<void>;
  /** Forgets a reservation whose request failed before doing anything, so a retry can run. */
  release(key: string): Promise<void>;
  get(key: string): Promise<IdempotencyRecord | null>;
  readonly backend: 'memory' | 'redis' | 'redis_degraded';
  close(): Promise<void>;
}
