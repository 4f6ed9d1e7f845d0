/**
 * The metrics the server publishes (README "Monitoring"): the contract that the metrics tests, the
 * Prometheus rules and the Grafana dashboard are all checked against. Histograms are also exposed as
 * `_bucket`, `_sum` and `_count`.
 */
export const HISTOGRAM_METRICS = [
  'http_server_request_duration_seconds',
  'gen_ai_client_operation_duration_seconds',
  'gen_ai_server_time_to_first_token_seconds',
  'gen_ai_client_token_usage',
] as const;

export const SCALAR_METRICS = [
  'http_server_active_requests',
  'chat_tokens_total',
  'chat_sessions_active',
  'chat_sessions_created_total',
  'chat_turns_total',
  'chat_errors_total',
  'circuit_breaker_state',
  'circuit_breaker_transitions_total',
  'circuit_breaker_calls_total',
  'retry_attempts_total',
  'fallbacks_total',
  'rate_limit_rejections_total',
  'chat_stream_events_total',
  'system_memory_utilization',
] as const;

export const PUBLISHED_METRICS: readonly string[] = [...HISTOGRAM_METRICS, ...SCALAR_METRICS];
