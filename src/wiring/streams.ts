import type { Logger } from 'pino';
import type { AppConfig } from '../config.js';
import { MemoryIdempotencyStore } from '../coordination/idempotency/memory-idempotency.js';
import { RedisIdempotencyStore } from '../coordination/idempotency/redis-idempotency.js';
import type { IdempotencyStore } from '../coordination/idempotency/types.js';
import { RedisBackendSwitch } from '../coordination/redis/backend-switch.js';
import { FailFastRedisClient } from '../coordination/redis/fail-fast-client.js';
import type { IdempotencySettings } from '../http/idempotency.js';
import type { StreamingSettings } from '../http/turn-streaming.js';
import { RedisStreamLog } from '../streams/redis-stream-log.js';
import { StreamHub } from '../streams/stream-hub.js';
import { LogEvent } from '../observability/events.js';
import type { Telemetry } from '../observability/telemetry.js';

export interface Streams {
  streaming: StreamingSettings;
  idempotency: IdempotencySettings;
  hub: StreamHub;
  /** For the health check: where logs and keys are shared, and what this instance holds. */
  status(): { backend: 'memory' | 'redis' | 'redis_degraded'; turns: number; finishedTurns: number; finishedBytes: number };
  close(): Promise<void>;
}

/** How long a repeated request waits for the first one with its key to start its turn. */
const IDEMPOTENCY_WAIT_MS = 10_000;

/**
 * Stream logs and idempotency keys: in this process by default; with REDIS_URL, also in Redis (one
 * client for both) so any instance can resume a stream or recognise a repeated request, with this
 * process's memory as the fallback while Redis fails.
 */
export async function wireStreams(config: AppConfig, logger: Logger, telemetry: Telemetry): Promise<Streams> {
  const memoryKeys = new MemoryIdempotencyStore();
  let idempotencyStore: IdempotencyStore = memoryKeys;
  let shared: RedisStreamLog | null = null;
  let redis: FailFastRedisClient | null = null;
  let backend: RedisBackendSwitch | null = null;
  if (config.redisUrl) {
    const client = new FailFastRedisClient({ url: config.redisUrl });
    redis = client;
    backend = new RedisBackendSwitch({
      client: client.client,
      isReady: () => client.isReady,
      now: Date.now,
      retryIntervalMs: 1000,
      log: (event, fields) => logger.warn({ event, component: 'streams', ...fields }),
      events: { degraded: LogEvent.streamBackendDegraded, recovered: LogEvent.streamBackendRecovered },
    });
    await client.awaitInitialConnect();
    shared = new RedisStreamLog({ client: client.client, backend, maxFrames: config.streams.maxFrames, retentionMs: config.streams.retentionMs });
    idempotencyStore = new RedisIdempotencyStore(client.client, backend, memoryKeys);
  }
  const hub = new StreamHub({ retentionMs: config.streams.retentionMs, maxFrames: config.streams.maxFrames, maxRetainedBytes: config.streams.maxRetainedBytes, shared });
  return {
    hub,
    streaming: {
      hub,
      continueOnDisconnect: config.streams.continueOnDisconnect,
      limits: { maxBacklogBytes: config.streams.clientMaxBacklogBytes, stallMs: config.streams.clientStallMs },
      telemetry,
    },
    idempotency: { store: idempotencyStore, ttlMs: config.idempotency.ttlMs, waitMs: IDEMPOTENCY_WAIT_MS },
    status: () => ({ backend: backend === null ? 'memory' : backend.degraded ? 'redis_degraded' : 'redis', ...hub.stats() }),
    close: async () => {
      hub.close();
      await idempotencyStore.close();
      backend?.close();
      await redis?.close();
    },
  };
}
