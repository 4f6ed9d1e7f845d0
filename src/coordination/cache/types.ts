/** A cached complete answer, replayed as normal frames with mode "cached". */
export interface CachedAnswer {
  text: string;
  model: string;
  stopReason: string | null;
  inputTokens: number;
  outputTokens: number;
  /** Tool events of the answer, replayed as tool_use / tool_result frames. */
  toolEvents: { type: 'tool_use' | 'tool_result'; [key: string]: unknown }[];
  /** Epoch ms when it was stored. */
  cachedAt: number;
}

export type CacheBackendStatus = 'memory' | 'redis' | 'redis_degraded';

export interface ResponseCacheStats {
  backend: CacheBackendStatus;
  entries: number;
  bytes: number;
  hits: number;
  misses: number;
  sets: number;
  /** Redis errors absorbed by falling back to memory. */
  backendErrors: number;
}

/**
 * The fallback response cache. Implementations never throw to callers: a failing backend degrades to
 * a miss (get) or a no-op / memory write (set), so a request never fails because of the cache.
 */
export interface ResponseCache {
  get(key: string): Promise<CachedAnswer | undefined>;
  set(key: string, value: CachedAnswer, ttlMs: number): Promise<void>;
  /** Removes every entry; returns how many were removed (best effort for Redis). */
  clear(): Promise<number>;
  stats(): ResponseCacheStats;
  close(): Promise<void>;
}
