import os from 'node:os';
import {
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
  prometheusContentType,
} from 'prom-client';
import type { CircuitBreakerRegistry } from '../../resilience/circuit-breaker/registry.js';
import type { CircuitState } from '../../resilience/circuit-breaker/types.js';
import { STREAM_EVENTS, type StreamEvent, type Telemetry, type TurnReport } from '../telemetry.js';

/** Label value for requests that matched no route (404s): never the raw URL. */
export const UNMATCHED_ROUTE = 'unmatched';

/** OpenTelemetry `http.server.request.duration` buckets, extended for SSE streams that stay open for minutes. */
export const HTTP_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60, 120, 300];
/** OpenTelemetry gen-ai semantic conventions: `gen_ai.client.operation.duration`. */
export const GEN_AI_DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
/** OpenTelemetry gen-ai semantic conventions: `gen_ai.server.time_to_first_token`. */
export const TIME_TO_FIRST_TOKEN_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
/** OpenTelemetry gen-ai semantic conventions: `gen_ai.client.token.usage` (powers of 4). */
export const TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];

const CIRCUIT_STATES: readonly CircuitState[] = ['closed', 'open', 'half_open'];

/** Cheap running totals, kept as plain numbers next to the Prometheus metrics (JSON view, alerts). */
export interface MetricsCounters {
  /** HTTP requests completed (or aborted by the client). */
  requestsTotal: number;
  /** HTTP requests started and not yet completed (an SSE stream counts until it ends). */
  requestsInProgress: number;
  /** `chat_errors_total`: 5xx responses plus turns that finished with outcome `error`. */
  errorsTotal: number;
  sessionsCreated: number;
  /** Chat turns in progress (`chat_sessions_active`). */
  sessionsActive: number;
  fallbacksUsed: number;
  turnsTotal: number;
}

export interface MetricsExposition {
  contentType: string;
  body: string;
}

export interface MetricsOptions {
  /** Register prom-client's process / Node.js default metrics (default true). */
  defaultMetrics?: boolean;
  /** Distinct values kept per free-form label (model, retry reason); later ones read `other` (default 50). */
  maxLabelValues?: number;
}

/**
 * Bounds a label whose values come from outside the code (e.g. a model name a client asked for): the
 * first `max` distinct values are kept, the rest are reported as `other`, so a series explosion can't
 * happen whatever callers send.
 */
class BoundedLabel {
  private readonly seen = new Set<string>();
  constructor(private readonly max: number) {}

  of(value: string): string {
    const v = value === '' ? 'unknown' : value;
    if (this.seen.has(v)) return v;
    if (this.seen.size >= this.max) return 'other';
    this.seen.add(v);
    return v;
  }
}

/**
 * The server's metrics, on a prom-client Registry of its own (never the global one). Implements
 * `Telemetry`, so chat and resilience code report through that interface without knowing prom-client.
 *
 * Names follow the OpenTelemetry semantic conventions mapped to Prometheus style (`http.server.request.duration`
 * → `http_server_request_duration_seconds`). Labels are low-cardinality only: route templates, never ids.
 */
export class Metrics implements Telemetry {
  /** The registry all metrics live on; exposed so the application can add its own. */
  readonly registry = new Registry();

  private readonly breakerRegistries = new Set<CircuitBreakerRegistry>();
  private readonly models: BoundedLabel;
  private readonly reasons: BoundedLabel;

  private readonly totals: MetricsCounters = {
    requestsTotal: 0,
    requestsInProgress: 0,
    errorsTotal: 0,
    sessionsCreated: 0,
    sessionsActive: 0,
    fallbacksUsed: 0,
    turnsTotal: 0,
  };

  private readonly httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  private readonly httpActive: Gauge<'method' | 'route'>;
  private readonly operationDuration: Histogram<'operation' | 'model' | 'mode' | 'outcome'>;
  private readonly timeToFirstToken: Histogram<'model' | 'mode'>;
  private readonly tokenUsage: Histogram<'token_type' | 'model'>;
  private readonly tokensTotal: Counter<'token_type' | 'model'>;
  private readonly sessionsActive: Gauge;
  private readonly sessionsCreated: Counter<'provisional'>;
  private readonly turns: Counter<'mode' | 'outcome'>;
  private readonly errors: Counter<'kind'>;
  private readonly breakerState: Gauge<'circuit' | 'state'>;
  private readonly breakerTransitions: Counter<'circuit' | 'from' | 'to'>;
  private readonly breakerCalls: Counter<'circuit' | 'outcome'>;
  private readonly retries: Counter<'circuit' | 'reason'>;
  private readonly fallbacks: Counter<'operation' | 'strategy'>;
  private readonly rateLimitRejections: Counter<'group'>;
  private readonly streamEvents: Counter<'event'>;
  private readonly memoryUtilization: Gauge;

  constructor(options: MetricsOptions = {}) {
    const registers = [this.registry];
    const maxLabelValues = options.maxLabelValues ?? 50;
    this.models = new BoundedLabel(maxLabelValues);
    this.reasons = new BoundedLabel(maxLabelValues);
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });

    this.httpDuration = new Histogram({
      name: 'http_server_request_duration_seconds',
      help: 'Duration of HTTP server requests (SSE streams until they end).',
      labelNames: ['method', 'route', 'status_code'],
      buckets: HTTP_DURATION_BUCKETS,
      registers,
    });
    this.httpActive = new Gauge({
      name: 'http_server_active_requests',
      help: 'HTTP server requests in flight.',
      labelNames: ['method', 'route'],
      registers,
    });
    this.operationDuration = new Histogram({
      name: 'gen_ai_client_operation_duration_seconds',
      help: 'Duration of gen-ai operations (chat turns), by model, mode and outcome.',
      labelNames: ['operation', 'model', 'mode', 'outcome'],
      buckets: GEN_AI_DURATION_BUCKETS,
      registers,
    });
    this.timeToFirstToken = new Histogram({
      name: 'gen_ai_server_time_to_first_token_seconds',
      help: 'Time from the start of a chat turn to the first content sent to the client.',
      labelNames: ['model', 'mode'],
      buckets: TIME_TO_FIRST_TOKEN_BUCKETS,
      registers,
    });
    this.tokenUsage = new Histogram({
      name: 'gen_ai_client_token_usage',
      help: 'Tokens used per chat turn, by token type (input / output).',
      labelNames: ['token_type', 'model'],
      buckets: TOKEN_BUCKETS,
      registers,
    });
    this.tokensTotal = new Counter({
      name: 'chat_tokens_total',
      help: 'Tokens used by chat turns, by token type (input / output).',
      labelNames: ['token_type', 'model'],
      registers,
    });
    this.sessionsActive = new Gauge({
      name: 'chat_sessions_active',
      help: 'Chat turns in progress.',
      registers,
    });
    this.sessionsCreated = new Counter({
      name: 'chat_sessions_created_total',
      help: 'Chat sessions created; provisional = kept in memory while the database was unavailable.',
      labelNames: ['provisional'],
      registers,
    });
    this.turns = new Counter({
      name: 'chat_turns_total',
      help: 'Chat turns finished, by mode and outcome.',
      labelNames: ['mode', 'outcome'],
      registers,
    });
    this.errors = new Counter({
      name: 'chat_errors_total',
      help: 'Errors: http_5xx = 5xx responses, stream = chat turns that finished with outcome error.',
      labelNames: ['kind'],
      registers,
    });
    this.breakerState = new Gauge({
      name: 'circuit_breaker_state',
      help: 'Circuit breaker state: 1 for the current state, 0 for the others.',
      labelNames: ['circuit', 'state'],
      registers,
      collect: () => this.collectBreakerStates(),
    });
    this.breakerTransitions = new Counter({
      name: 'circuit_breaker_transitions_total',
      help: 'Circuit breaker state transitions.',
      labelNames: ['circuit', 'from', 'to'],
      registers,
    });
    this.breakerCalls = new Counter({
      name: 'circuit_breaker_calls_total',
      help: 'Calls through circuit breakers: success, failure, rejected (read from the breakers at scrape).',
      labelNames: ['circuit', 'outcome'],
      registers,
      collect: () => this.collectBreakerCalls(),
    });
    this.retries = new Counter({
      name: 'retry_attempts_total',
      help: 'Retry attempts, by circuit and reason.',
      labelNames: ['circuit', 'reason'],
      registers,
    });
    this.fallbacks = new Counter({
      name: 'fallbacks_total',
      help: 'Fallbacks used, by operation and strategy.',
      labelNames: ['operation', 'strategy'],
      registers,
    });
    this.rateLimitRejections = new Counter({
      name: 'rate_limit_rejections_total',
      help: 'Requests rejected by rate limiting, by limit group.',
      labelNames: ['group'],
      registers,
    });
    this.streamEvents = new Counter({
      name: 'chat_stream_events_total',
      help: 'Chat stream events: resumed, idempotent_replay, client_disconnected, client_cut_off.',
      labelNames: ['event'],
      registers,
    });
    this.memoryUtilization = new Gauge({
      name: 'system_memory_utilization',
      help: 'System memory in use, as a ratio (0-1) of total memory.',
      registers,
      collect: () => {
        const total = os.totalmem();
        this.memoryUtilization.set(total > 0 ? Math.min(1, Math.max(0, 1 - os.freemem() / total)) : 0);
      },
    });

    // Series that should read 0 rather than be absent before the first event (rate() and alerts need them).
    this.errors.inc({ kind: 'http_5xx' }, 0);
    this.errors.inc({ kind: 'stream' }, 0);
    for (const event of STREAM_EVENTS) this.streamEvents.inc({ event }, 0);
    this.sessionsCreated.inc({ provisional: 'false' }, 0);
    this.sessionsCreated.inc({ provisional: 'true' }, 0);
  }

  // --- Telemetry -----------------------------------------------------------------------------------

  turnStarted(): void {
    this.totals.sessionsActive++;
    this.sessionsActive.set(this.totals.sessionsActive);
  }

  turnFinished(report: TurnReport): void {
    // Clamped: a finish without a start (a reporting bug) must not drive the gauge negative.
    this.totals.sessionsActive = Math.max(0, this.totals.sessionsActive - 1);
    this.sessionsActive.set(this.totals.sessionsActive);
    this.totals.turnsTotal++;

    const model = this.models.of(report.model);
    const mode = report.mode;
    this.turns.inc({ mode, outcome: report.outcome });
    this.operationDuration.observe({ operation: 'chat', model, mode, outcome: report.outcome }, seconds(report.durationMs));
    if (report.timeToFirstTokenMs !== null) this.timeToFirstToken.observe({ model, mode }, seconds(report.timeToFirstTokenMs));
    // A turn that never reached the model (queued, refused early) has no usage to record.
    if (report.inputTokens > 0 || report.outputTokens > 0) {
      for (const [tokenType, count] of [
        ['input', report.inputTokens],
        ['output', report.outputTokens],
      ] as const) {
        const value = nonNegative(count);
        this.tokenUsage.observe({ token_type: tokenType, model }, value);
        this.tokensTotal.inc({ token_type: tokenType, model }, value);
      }
    }
    if (report.outcome === 'error') this.recordError('stream');
  }

  retryAttempt(circuit: string, reason: string): void {
    this.retries.inc({ circuit, reason: this.reasons.of(reason) });
  }

  streamEvent(event: StreamEvent): void {
    this.streamEvents.inc({ event });
  }

  fallbackUsed(operation: string, strategy: string): void {
    this.totals.fallbacksUsed++;
    this.fallbacks.inc({ operation, strategy });
  }

  sessionCreated(provisional: boolean): void {
    this.totals.sessionsCreated++;
    this.sessionsCreated.inc({ provisional: provisional ? 'true' : 'false' });
  }

  // --- HTTP, rate limiting, breakers ---------------------------------------------------------------

  httpRequestStarted(method: string, route: string): void {
    this.totals.requestsInProgress++;
    this.httpActive.inc({ method, route });
  }

  /** Pair with exactly one `httpRequestStarted` of the same method and route. A 5xx counts as an error. */
  httpRequestFinished(method: string, route: string, statusCode: number, durationSeconds: number): void {
    this.totals.requestsInProgress = Math.max(0, this.totals.requestsInProgress - 1);
    this.totals.requestsTotal++;
    this.httpActive.dec({ method, route });
    this.httpDuration.observe({ method, route, status_code: String(statusCode) }, Math.max(0, durationSeconds));
    if (statusCode >= 500 && statusCode <= 599) this.recordError('http_5xx');
  }

  rateLimitRejected(group: string): void {
    this.rateLimitRejections.inc({ group });
  }

  /**
   * Counts the registry's transitions (of present and future breakers) and includes its breakers in the
   * state and calls metrics, read at each scrape. Observing the same registry twice is a no-op.
   */
  observeBreakers(registry: CircuitBreakerRegistry): void {
    if (this.breakerRegistries.has(registry)) return;
    this.breakerRegistries.add(registry);
    registry.onTransition(({ circuitName, from, to }) => {
      this.breakerTransitions.inc({ circuit: circuitName, from, to });
    });
  }

  // --- Reading -------------------------------------------------------------------------------------

  counters(): MetricsCounters {
    return { ...this.totals };
  }

  /**
   * The Prometheus text exposition (`text/plain; version=0.0.4`) of every metric.
   *
   * `_openMetrics` is accepted for callers that negotiated OpenMetrics, but the answer is the Prometheus
   * text either way (Prometheus and other scrapers accept it): prom-client renders OpenMetrics by renaming
   * counter objects in place (dropping `_total`), which would corrupt the Prometheus rendering of the same
   * metrics, so the registry stays in Prometheus format.
   */
  async prometheus(_openMetrics = false): Promise<MetricsExposition> {
    return { contentType: prometheusContentType, body: await this.registry.metrics() };
  }

  // --- Internals -----------------------------------------------------------------------------------

  private recordError(kind: 'http_5xx' | 'stream'): void {
    this.totals.errorsTotal++;
    this.errors.inc({ kind });
  }

  private collectBreakerStates(): void {
    this.breakerState.reset();
    for (const registry of this.breakerRegistries) {
      for (const breaker of registry.list()) {
        const current = breaker.state;
        for (const state of CIRCUIT_STATES) this.breakerState.set({ circuit: breaker.name, state }, state === current ? 1 : 0);
      }
    }
  }

  /**
   * The breakers keep lifetime totals; the counter is rebuilt from them at each scrape (reset + inc).
   * It only goes down if a breaker is replaced in its registry, which Prometheus reads as a counter reset.
   */
  private collectBreakerCalls(): void {
    this.breakerCalls.reset();
    for (const registry of this.breakerRegistries) {
      for (const [name, stats] of Object.entries(registry.stats())) {
        this.breakerCalls.inc({ circuit: name, outcome: 'success' }, Math.max(0, stats.totalCalls - stats.totalFailures));
        this.breakerCalls.inc({ circuit: name, outcome: 'failure' }, stats.totalFailures);
        this.breakerCalls.inc({ circuit: name, outcome: 'rejected' }, stats.totalRejections);
      }
    }
  }
}

function seconds(ms: number): number {
  return nonNegative(ms) / 1000;
}

function nonNegative(value: number): number {
  return Number.isFinite(value) && value > 0 ? value : 0;
}
