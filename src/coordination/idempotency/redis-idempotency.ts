import type { Redis } from 'ioredis';
import { errorMessage, type RedisBackendSwitch } from '../redis/backend-switch.js';
import type { MemoryIdempotencyStore } from './memory-idempotency.js';
import type { IdempotencyRecord, IdempotencyStore } from './types.js';

export const DEFAULT_IDEMPOTENCY_PREFIX = 'claude-chat:idem:';

/**
 * Idempotency keys in Redis (SET NX), shared by every instance and kept across restarts. While Redis
 * fails, keys are kept in memory on this instance (logged once by the backend switch).
 */
export class RedisIdempotencyStore implements IdempotencyStore {
  constructor(
    private readonly client: Redis,
    private readonly switch_: RedisBackendSwitch,
    private readonly memory: MemoryIdempotencyStore,
    private readonly prefix = DEFAULT_IDEMPOTENCY_PREFIX,
  ) {}

  get backend(): 'redis' | 'redis_degraded' {
    return this.switch_.degraded ? 'redis_degraded' : 'redis';
  }

  async reserve(key: string, fingerprint: string, pendingTtlMs: number): Promise<IdempotencyRecord | null> {
    return this.attempt('reserve', async () => {
      const record = JSON.stringify({ state: 'pending', fingerprint });
      if ((await this.client.set(this.prefix + key, record, 'PX', pendingTtlMs, 'NX')) === 'OK') return null;
      // Gone between the two calls (expired): treat as reserved by someone else still; the caller re-reads.
      return (await this.read(key)) ?? { state: 'pending', fingerprint };
    }, () => this.memory.reserveSync(key, fingerprint, pendingTtlMs));
  }

  async complete(key: string, fingerprint: string, result: unknown, ttlMs: number): Promise<void> {
    this.memory.completeSync(key, fingerprint, result, ttlMs);
    await this.attempt('complete', async () => {
      await this.client.set(this.prefix + key, JSON.stringify({ state: 'done', fingerprint, result }), 'PX', ttlMs);
    }, () => undefined);
  }

  async release(key: string): Promise<void> {
    await this.memory.release(key);
    await this.attempt('release', async () => {
      await this.client.del(this.prefix + key);
    }, () => undefined);
  }

  async get(key: string): Promise<IdempotencyRecord | null> {
    return this.attempt('get', () => this.read(key), () => null).then(async (found) => found ?? this.memory.get(key));
  }

  async close(): Promise<void> {
    await this.memory.close();
  }

  private async read(key: string): Promise<IdempotencyRecord | null> {
    const raw = await this.client.get(this.prefix + key);
    return raw === null ? null : (JSON.parse(raw) as IdempotencyRecord);
  }

  private async attempt<T>(operation: string, viaRedis: () => Promise<T>, viaMemory: () => T): Promise<T> {
    if (this.switch_.shouldUseRedis()) {
      try {
        const result = await viaRedis();
        this.switch_.recover('probe_succeeded');
        return result;
      } catch (error) {
        this.switch_.operationFailed({ operation, error: errorMessage(error) });
      }
    }
    return viaMemory();
  }
}
