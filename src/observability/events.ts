/**
 * Catalogue of `event` names written to the log, each with the component that emits it; one place so
 * dashboards, docs and the logger (which adds `component` to every line) stay in step.
 */
const CATALOGUE = {
  serverStarted: ['server_started', 'lifecycle'],
  serverStopped: ['server_stopped', 'lifecycle'],
  appShutdownStart: ['app_shutdown_start', 'lifecycle'],
  turnsRefused: ['shutdown_refusing_new_turns', 'lifecycle'],
  sessionsCleanup: ['sessions_cleanup', 'lifecycle'],
  sessionShutdownTimeout: ['session_shutdown_timeout', 'lifecycle'],
  stabilityCleanupStart: ['stability_cleanup_start', 'lifecycle'],
  stabilityCleanup: ['stability_cleanup', 'lifecycle'],
  appShutdownComplete: ['app_shutdown_complete', 'lifecycle'],
  appShutdownTimeout: ['app_shutdown_timeout', 'lifecycle'],
  turnsRecovered: ['turns_recovered', 'lifecycle'],
  providerSelected: ['provider_selected', 'providers'],
  httpRequestStarted: ['http_request_started', 'http'],
  authDisabled: ['auth_disabled', 'auth'],
  httpRequest: ['http_request', 'http'],
  requestError: ['request_error', 'http'],
  sessionCreated: ['session_created', 'sessions'],
  sessionUpdated: ['session_updated', 'sessions'],
  sessionDeleted: ['session_deleted', 'sessions'],
  sessionCleared: ['session_cleared', 'sessions'],
  provisionalSessionsReconciled: ['provisional_sessions_reconciled', 'sessions'],
  chatTurnStarted: ['chat_turn_started', 'chat'],
  chatTurnCompleted: ['chat_turn_completed', 'chat'],
  chatTurnFailed: ['chat_turn_failed', 'chat'],
  chatTurnInterrupted: ['chat_turn_interrupted', 'chat'],
  clientDisconnected: ['client_disconnected', 'chat'],
  streamResumed: ['stream_resumed', 'chat'],
  streamClientCutOff: ['stream_client_cut_off', 'chat'],
  idempotentReplay: ['idempotent_replay', 'chat'],
  streamBackendDegraded: ['stream_backend_degraded', 'streams'],
  streamBackendRecovered: ['stream_backend_recovered', 'streams'],
  messageStoreFailed: ['message_store_failed', 'chat'],
  circuitBreakerOpened: ['circuit_breaker_opened', 'resilience'],
  circuitBreakerHalfOpened: ['circuit_breaker_half_opened', 'resilience'],
  circuitBreakerClosed: ['circuit_breaker_closed', 'resilience'],
  reconnectionAttempt: ['reconnection_attempt', 'resilience'],
  fallbackUsed: ['fallback_used', 'fallback'],
  fallbackStep: ['fallback_step', 'fallback'],
  alternativeProviderFailed: ['alternative_provider_failed', 'fallback'],
  cacheHit: ['cache_hit', 'cache'],
  cacheMiss: ['cache_miss', 'cache'],
  cacheBackendDegraded: ['cache_backend_degraded', 'cache'],
  cacheBackendRecovered: ['cache_backend_recovered', 'cache'],
  jobQueued: ['job_queued', 'jobs'],
  jobStarted: ['job_started', 'jobs'],
  jobCompleted: ['job_completed', 'jobs'],
  jobRetryScheduled: ['job_retry_scheduled', 'jobs'],
  jobFailed: ['job_failed', 'jobs'],
  jobRunnerError: ['job_runner_error', 'jobs'],
  healthCheckFailed: ['health_check_failed', 'health'],
  healthCheckRecovered: ['health_check_recovered', 'health'],
  alertFiring: ['alert_firing', 'alerts'],
  alertResolved: ['alert_resolved', 'alerts'],
  unhandledRejection: ['unhandled_rejection', 'process'],
  uncaughtException: ['uncaught_exception', 'process'],
} as const;

type Catalogue = typeof CATALOGUE;

export const LogEvent = Object.fromEntries(Object.entries(CATALOGUE).map(([key, [event]]) => [key, event])) as {
  readonly [K in keyof Catalogue]: Catalogue[K][0];
};

export type LogEventName = Catalogue[keyof Catalogue][0];

/** Event name → component, for the logger's mixin. */
export const COMPONENT_OF: ReadonlyMap<string, string> = new Map(Object.values(CATALOGUE).map(([event, component]) => [event, component]));
