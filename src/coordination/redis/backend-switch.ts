import type { Redis } from 'ioredis';

export type BackendSwitchLogFn = (event: string, fields: Record<string, unknown>) => void;

export interface RedisBackendSwitchOptions {
  /** The Redis client whose 'error' / 'ready' / 'close' events drive the switch. */
  client: Redis;
  /** Whether the Redis backend currently has a ready connection. */
  isReady: () => boolean;
  /** Millisecond clock of the retry interval and the degraded duration. */
  now: () => number;
  /** While degraded with a ready client, Redis is retried once this long has passed since the last failure. */
  retryIntervalMs: number;
  log: BackendSwitchLogFn | undefined;
  /** Events logged once per switch, e.g. `cache_backend_degraded` / `cache_backend_recovered`. */
  events: { degraded: string; recovered: string };
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Degrade-to-memory / recover-to-Redis bookkeeping shared by the resilient Redis wrappers: whether the
 * Redis backend is degraded, how many backend errors were absorbed, when to retry Redis, and the
 * degraded / recovered log events (once per switch). Listens to the client: a lost (or never
 * established) connection degrades, a reconnection recovers. Holds no timers. After `close()` it
 * detaches from the client and ignores everything.
 */
export class RedisBackendSwitch {
  readonly #client: Redis;
  readonly #isReady: () => boolean;
  readonly #now: () => number;
  readonly #retryIntervalMs: number;
  readonly #log: BackendSwitchLogFn | undefined;
  readonly #events: { degraded: string; recovered: string };
  #degraded = false;
  #degradedAt = 0;
  #lastFailureAt = 0;
  #closed = false;
  #backendErrors = 0;
  #lastClientError: string | undefined;
  readonly #onReady = () => this.recover('reconnected');
  readonly #onClientError = (error: Error) => {
    this.#lastClientError = error.message;
  };
  /** A lost (or never established) connection is one absorbed backend error. */
  readonly #onClose = () => {
    if (this.#closed) return;
    if (this.#degraded) {
      this.#lastFailureAt = this.#now();
      return;
    }
    this.#backendErrors += 1;
    this.degrade('connection_lost', { error: this.#lastClientError ?? 'connection closed' });
  };

  constructor(options: RedisBackendSwitchOptions) {
    this.#client = options.client;
    this.#isReady = options.isReady;
    this.#now = options.now;
    this.#retryIntervalMs = options.retryIntervalMs;
    this.#log = options.log;
    this.#events = options.events;
    this.#client.on('error', this.#onClientError);
    this.#client.on('ready', this.#onReady);
    this.#client.on('close', this.#onClose);
  }

  get degraded(): boolean {
    return this.#degraded;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Redis failures absorbed so far. */
  get backendErrors(): number {
    return this.#backendErrors;
  }

  #emit(event: string, fields: Record<string, unknown>): void {
    try {
      this.#log?.(event, fields);
    } catch {
      // a failing logger must not break the wrapper
    }
  }

  /** Records a failure; the first one while healthy switches to memory and logs `{reason, fallback, ...extra}`. */
  degrade(reason: string, extra: Record<string, unknown>): void {
    if (this.#closed) return;
    this.#lastFailureAt = this.#now();
    if (this.#degraded) return;
    this.#degraded = true;
    this.#degradedAt = this.#lastFailureAt;
    this.#emit(this.#events.degraded, { reason, fallback: 'memory', ...extra });
  }

  /** Switches back to Redis (logging once) if degraded. */
  recover(reason: string): void {
    if (this.#closed || !this.#degraded) return;
    this.#degraded = false;
    this.#lastClientError = undefined;
    this.#emit(this.#events.recovered, { reason, degradedMs: this.#now() - this.#degradedAt });
  }

  /** A Redis operation failed: one absorbed backend error, and degrade with reason `operation_failed`. */
  operationFailed(extra: Record<string, unknown>): void {
    if (this.#closed) return;
    this.#backendErrors += 1;
    this.degrade('operation_failed', extra);
  }

  /** Whether the next operation should go to Redis. */
  shouldUseRedis(): boolean {
    if (this.#closed) return false;
    if (!this.#degraded) return true;
    return this.#isReady() && this.#now() - this.#lastFailureAt >= this.#retryIntervalMs;
  }

  /** Stops listening to the client and ignores later events; returns false if it was already closed. */
  close(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    this.#client.off('ready', this.#onReady);
    this.#client.off('close', this.#onClose);
    this.#client.off('error', this.#onClientError);
    return true;
  }
}
