import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { ActiveTurns } from './chat/active-turns.js';
import { settlesWithin } from './chat/settles-within.js';
import { SessionService } from './chat/session-service.js';
import { TurnRunner } from './chat/turn-runner.js';
import type { AppConfig } from './config.js';
import { buildHttpApp } from './http/app.js';
import { Readiness } from './lifecycle/readiness.js';
import { LogEvent } from './observability/events.js';
import { createProvider } from './providers/create-provider.js';
import type { Provider } from './providers/types.js';
import { openSqliteStore, type SqliteSessionStore } from './store/sqlite/sqlite-store.js';
import { FailoverSessionStore } from './store/failover/failover-store.js';
import { ProvisionalReconciler } from './lifecycle/provisional-reconciler.js';
import { gracefulShutdown, type ShutdownSettings } from './lifecycle/graceful-shutdown.js';
import type { NewSession, SessionRecord } from './store/types.js';
import { VERSION } from './version.js';
import { wireResilience, type Resilience } from './wiring/resilience.js';
import { wireFallbacks, type Fallbacks } from './wiring/fallbacks.js';
import { JobRunner } from './jobs/job-runner.js';
import { SqliteJobStore } from './jobs/sqlite-job-store.js';
import { answerQueuedTurn } from './chat/queued-turn.js';
import { Metrics } from './observability/metrics/metrics.js';
import { installHttpMetrics } from './observability/metrics/http-metrics.js';
import { wireOperations, type Operations } from './wiring/operations.js';
import { createRateLimiter } from './coordination/rate-limit/resilient-limiter.js';
import { MessagesGateway } from './gateway/messages-gateway.js';
import { messagesDirectRoute } from './gateway/messages-endpoint.js';
import { gatewayRoutes } from './gateway/gateway-routes.js';
import { GatewayProvider } from './gateway/gateway-provider.js';
import { wireStreams, type Streams } from './wiring/streams.js';

export interface Application {
  http: FastifyInstance;
  store: FailoverSessionStore;
  /** The SQLite store underneath (tests and operations tooling). */
  database: SqliteSessionStore;
  provider: Provider;
  readiness: Readiness;
  turns: ActiveTurns;
  resilience: Resilience;
  fallbacks: Fallbacks;
  jobs: JobRunner;
  operations: Operations;
  /** Stream logs (resume) and idempotency keys. */
  streams: Streams;
  /** The staged shutdown after a signal (drain, grace, batches, release). Idempotent. */
  shutdown(signal: string, settings?: ShutdownSettings): Promise<void>;
  /** The same without drain delay and grace: running turns are closed at once. Idempotent. */
  close(): Promise<void>;
}

export interface ApplicationOverrides {
  provider?: Provider;
}

/** The composition root: builds every layer from the config. Used by main.ts and by tests. */
export async function createApplication(config: AppConfig, logger: Logger, overrides: ApplicationOverrides = {}): Promise<Application> {
  const database = openSqliteStore(config.databasePath);
  // Sessions created while the database refuses writes live in memory until it recovers.
  const store = new FailoverSessionStore(database);
  // Answers a crash left streaming are marked incomplete (or error when empty) before anything runs.
  const recovered = store.recoverInProgressMessages();
  if (recovered > 0) logger.warn({ event: LogEvent.turnsRecovered, messages: recovered });
  const rawProvider = overrides.provider ?? createProvider(config);
  const metrics = new Metrics();
  // With a routing file, chat sessions go through the same gateway routing as /v1/messages.
  let gateway: MessagesGateway | null = null;
  /** What chat turns call, unguarded: the health check probes this, not a client chat never uses. */
  let chatUpstream: Provider = rawProvider;
  const resilience = wireResilience(config, rawProvider, logger, metrics, (registry) => {
    gateway = config.routing
      ? new MessagesGateway(config.routing, registry, { timers: config.timeouts, delaysMs: config.retry.delaysMs, maxRetryAfterMs: config.retry.maxRetryAfterMs }, logger)
      : null;
    if (!config.routingFile || !gateway || overrides.provider) return { provider: rawProvider, retriesInside: false };
    chatUpstream = new GatewayProvider(gateway);
    return { provider: chatUpstream, retriesInside: true };
  });
  if (!config.auth.keys.configured || config.auth.disabled) {
    logger.warn({ event: LogEvent.authDisabled, host: config.host }, 'no API keys: anyone who can reach this address can use every route');
  }
  const provider = resilience.provider;
  logger.info({ event: LogEvent.providerSelected, provider: provider.name, simulated: provider.simulated, model: config.defaultModel });
  if (provider.simulated) {
    logger.warn({ event: LogEvent.providerSelected, provider: provider.name, simulated: true }, 'no ANTHROPIC_API_KEY: answers are simulated, not from Claude');
  }
  const activeTurns = new ActiveTurns();
  const readiness = new Readiness();
  const reconciler = new ProvisionalReconciler(store, config.fallbacks.reconcileIntervalMs, logger);
  const defaults = { model: config.defaultModel, maxTokens: config.defaultMaxTokens };
  const jobStore = new SqliteJobStore(database.database);
  const jobs = new JobRunner(jobStore, {
    execute: (job, signal) => answerQueuedTurn(job, signal, { store, provider: resilience.unretriedProvider, defaults }),
    canRun: () => resilience.claudeBreaker.stats().canExecute,
    delaysMs: config.retry.delaysMs,
    onEvent: (event, fields) => logger.info({ event, component: 'jobs', ...fields }),
  });
  const fallbacks = wireFallbacks(config, rawProvider, resilience, logger, (input) => jobs.enqueue(input.sessionId, input.userMessageId).id);
  const sessionCreation = fallbacks.registry.chain<NewSession, SessionRecord>('session_creation');
  config.fallbacks.session.forEach((strategy, index) =>
    sessionCreation.register({ strategy, priority: index + 1, enabled: true }, async (input) => {
      const session = store.createProvisional(input);
      reconciler.wake();
      return session;
    }),
  );
  const streams = await wireStreams(config, logger, metrics);
  // Other instances (with Redis) may ask this one to interrupt its turns, and this one them.
  streams.hub.listenForAborts((sessionId, kind) => activeTurns.abort(sessionId, kind));
  const sessions = new SessionService({
    store,
    turns: activeTurns,
    log: logger,
    guard: resilience.sessionBreaker,
    fallbacks: sessionCreation,
    telemetry: metrics,
    remote: streams.hub,
  });
  const turns = new TurnRunner({
    store,
    provider,
    turns: activeTurns,
    defaults,
    log: logger,
    fallbacks: fallbacks.chat,
    telemetry: metrics,
    checkpointIntervalMs: config.checkpointIntervalMs,
  });
  const limiter = createRateLimiter({
    redisUrl: config.redisUrl,
    log: (event, fields) => logger.warn({ event, component: 'rate_limit', ...fields }),
  });
  const operations = wireOperations({
    config,
    logger,
    provider: chatUpstream,
    store,
    cache: fallbacks.cache,
    breakers: resilience.registry,
    fallbacks: fallbacks.registry,
    readiness,
    version: VERSION,
    activeSessions: () => activeTurns.size,
    activeSessionIds: (limit) => activeTurns.sessionIds(limit),
    metrics,
    limiter,
    streams: () => streams.status(),
  });
  const http = await buildHttpApp(
    {
      sessions,
      turns,
      store,
      provider,
      readiness,
      version: VERSION,
      breakers: resilience.registry,
      fallbacks: fallbacks.registry,
      cache: fallbacks.cache,
      jobs: jobStore,
      sessionPolicy: { allowedTools: config.input.allowedTools, cwdRoot: config.input.cwdRoot },
      streaming: streams.streaming,
      idempotency: streams.idempotency,
    },
    {
      logger,
      maxBodyBytes: config.maxBodyBytes,
      auth: { keys: config.auth.keys, disabled: config.auth.disabled },
      rateLimit: {
        limiter,
        windowMs: config.rateLimits.windowMs,
        limits: { chat: config.rateLimits.chat, session: config.rateLimits.session, analytics: config.rateLimits.analytics, default: config.rateLimits.default },
        onRejected: (group) => metrics.rateLimitRejected(group),
      },
      trustProxy: config.trustProxy,
      corsOrigins: config.corsOrigins,
      maxHeaderBytes: config.input.maxHeaderBytes,
      maxHeaders: config.input.maxHeaders,
      plugins: [...operations.routes, gatewayRoutes(gateway)],
      instrument: (app) => installHttpMetrics(app, metrics),
      requestMetrics: metrics,
      directRoutes: gateway ? [messagesDirectRoute(gateway)] : [],
    },
  );

  jobs.start();
  operations.start();

  let stopping: Promise<void> | undefined;
  /** The staged shutdown (lifecycle/graceful-shutdown.ts); runs once, later calls wait for it. */
  const shutdown = (signal: string, settings: ShutdownSettings = config.shutdown) => {
    stopping ??= gracefulShutdown(
      {
        readiness,
        unsettledTurns: () => activeTurns.unsettled(),
        log: logger,
        settings,
        releaseResources: async () => {
          // Each step runs even if an earlier one failed: a broken store must not keep Redis open.
          const attempt = async (step: string, fn: () => unknown) => {
            try {
              await fn();
            } catch (err) {
              logger.error({ event: LogEvent.stabilityCleanup, step, err }, 'a shutdown step failed');
            }
          };
          // Force-closing the last connections unblocks turns stuck writing to a client that stopped
          // reading; give them a moment to store their answers.
          await attempt('http', () => http.close());
          await attempt('turns', () => settlesWithin(Promise.all(activeTurns.unsettled().map((t) => t.settled)), 1000));
          // Whatever is still streaming now is cut: say so in the store rather than at the next start.
          await attempt('in_progress_answers', () => store.recoverInProgressMessages());
          await attempt('jobs', () => jobs.stop());
          await attempt('operations', () => operations.stop());
          await attempt('reconciler', () => reconciler.stop());
          await attempt('cache', () => fallbacks.cache.close());
          await attempt('rate_limiter', () => limiter.close());
          await attempt('streams', () => streams.close());
          await attempt('gateway', () => gateway?.close());
          await attempt('store', () => store.close());
        },
      },
      signal,
    );
    return stopping;
  };
  /** For tests and embedding: the same shutdown without the drain delay or grace period. */
  const close = () => shutdown('close', { ...config.shutdown, drainDelayMs: 0, graceMs: 0 });
  return { http, store, database, provider, readiness, turns: activeTurns, resilience, fallbacks, jobs, operations, streams, shutdown, close };
}
