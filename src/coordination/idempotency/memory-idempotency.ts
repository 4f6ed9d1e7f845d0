import { LRUCache } from 'lru-cache';
import type { IdempotencyRecord, IdempotencyStore } from './types.js';

/** In-process idempotency keys: per instance, and gone after a restart (use Redis to share and keep them). */
export class MemoryIdempotencyStore implements IdempotencyStore {
  readonly backend = 'memory' as const;
  private readonly records: LRUCache<string, IdempotencyRecord>;

  constructor(maxKeys = 100_000) {
    this.records = new LRUCache({ max: maxKeys, ttlAutopurge: false });
  }

  reserveSync(key: string, fingerprint: string, pendingTtlMs: number): IdempotencyRecord | null {
    const existing = this.records.get(key);
    if (existing) return existing;
    this.records.set(key, { state: 'pending', fingerprint }, { ttl: pendingTtlMs });
    return null;
  }

  completeSync(key: string, fingerprint: string, result: unknown, ttlMs: number): void {
    this.records.set(key, { state: 'done', fingerprint, result }, { ttl: ttlMs });
  }

  async reserve(key: string, fingerprint: string, pendingTtlMs: number): Promise<IdempotencyRecord | null> {
    return this.reserveSync(key, fingerprint, pendingTtlMs);
  }

  async complete(key: string, fingerprint: string, result: unknown, ttlMs: number): Promise<void> {
    this.completeSync(key, fingerprint, result, ttlMs);
  }

  async release(key: string): Promise<void> {
    this.records.delete(key);
  }

  async get(key: string): Promise<IdempotencyRecord | null> {
    return this.records.get(key) ?? null;
  }

  async close(): Promise<void> {
    this.records.clear();
  }
}
