/** Catalogue of `event` names written to the log; one place so dashboards and docs stay in step. */
export const LogEvent = {
  serverStarted: 'server_started',
  serverStopping: 'server_stopping',
  serverStopped: 'server_stopped',
  providerSelected: 'provider_selected',
  httpRequest: 'http_request',
  requestError: 'request_error',
  sessionCreated: 'session_created',
  sessionUpdated: 'session_updated',
  sessionDeleted: 'session_deleted',
  sessionCleared: 'session_cleared',
  chatTurnStarted: 'chat_turn_started',
  chatTurnCompleted: 'chat_turn_completed',
  chatTurnFailed: 'chat_turn_failed',
  chatTurnInterrupted: 'chat_turn_interrupted',
  clientDisconnected: 'client_disconnected',
  messageStoreFailed: 'message_store_failed',
  circuitBreakerOpened: 'circuit_breaker_opened',
  circuitBreakerHalfOpened: 'circuit_breaker_half_opened',
  circuitBreakerClosed: 'circuit_breaker_closed',
  reconnectionAttempt: 'reconnection_attempt',
  unhandledRejection: 'unhandled_rejection',
  uncaughtException: 'uncaught_exception',
} as const;

export type LogEventName = (typeof LogEvent)[keyof typeof LogEvent];
