import type { SessionService } from '../chat/session-service.js';
import type { TurnRunner } from '../chat/turn-runner.js';
import type { Readiness } from '../lifecycle/readiness.js';
import type { Provider } from '../providers/types.js';
import type { SessionStore } from '../store/types.js';
import type { CircuitBreakerRegistry } from '../resilience/circuit-breaker/registry.js';
import type { FallbackRegistry } from '../resilience/fallback/registry.js';
import type { ResponseCache } from '../coordination/cache/types.js';
import type { JobStore } from '../jobs/types.js';
import type { SessionPolicy } from '../chat/schemas.js';
import type { IdempotencySettings } from './idempotency.js';
import type { StreamingSettings } from './turn-streaming.js';

/** What the routes need, handed to each route plugin as its options (no globals). */
export interface Services {
  sessions: SessionService;
  turns: TurnRunner;
  store: SessionStore;
  provider: Provider;
  readiness: Readiness;
  version: string;
  breakers: CircuitBreakerRegistry;
  fallbacks: FallbackRegistry;
  cache: ResponseCache;
  jobs: JobStore;
  /** Limits on the agent-only session fields. */
  sessionPolicy: SessionPolicy;
  /** Stream logs, resumption and per-connection bounds of /api/chat. */
  streaming: StreamingSettings;
  idempotency: IdempotencySettings;
}

export interface ServicesOptions {
  services: Services;
}
