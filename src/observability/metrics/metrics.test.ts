import { describe, expect, it } from 'vitest';
import { register } from 'prom-client';
import type { CircuitBreaker } from '../../resilience/circuit-breaker/circuit-breaker.js';
import { CircuitBreakerRegistry } from '../../resilience/circuit-breaker/registry.js';
import type { CircuitBreakerConfig } from '../../resilience/circuit-breaker/types.js';
import type { TurnReport } from '../telemetry.js';
import { Metrics } from './metrics.js';
import { PUBLISHED_METRICS } from '../../../test/support/metric-catalogue.js';
import { parseExposition, sampleValue, type Exposition } from './test-helpers.js';

const CONFIG: CircuitBreakerConfig = { failureThreshold: 2, timeoutSeconds: 10, successThreshold: 1, halfOpenMaxCalls: 1 };

const METRIC_NAMES = PUBLISHED_METRICS;

function manualClock() {
  const clock = { ms: 0, now: () => clock.ms };
  return clock;
}

function report(overrides: Partial<TurnReport> = {}): TurnReport {
  return {
    model: 'claude-test',
    mode: 'live',
    outcome: 'success',
    durationMs: 1500,
    timeToFirstTokenMs: 200,
    inputTokens: 100,
    outputTokens: 40,
    ...overrides,
  };
}

async function scrape(metrics: Metrics): Promise<Exposition> {
  const { contentType, body } = await metrics.prometheus();
  expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(body);
}

describe('Metrics', () => {
  it('exposes every metric on its own registry, in well-formed Prometheus text', async () => {
    const metrics = new Metrics();
    const exposition = await scrape(metrics);
    for (const name of METRIC_NAMES) expect(exposition.types.has(name), name).toBe(true);
    expect(exposition.types.get('http_server_request_duration_seconds')).toBe('histogram');
    expect(exposition.types.get('chat_errors_total')).toBe('counter');
    expect(exposition.types.get('circuit_breaker_state')).toBe('gauge');
    expect(exposition.types.get('circuit_breaker_calls_total')).toBe('counter');
    // Process metrics from collectDefaultMetrics.
    expect(exposition.types.has('process_cpu_user_seconds_total')).toBe(true);
    expect(exposition.types.has('nodejs_heap_size_used_bytes')).toBe(true);
    // Error series read 0 before the first error.
    expect(sampleValue(exposition, 'chat_errors_total', { kind: 'http_5xx' })).toBe(0);
    expect(sampleValue(exposition, 'chat_errors_total', { kind: 'stream' })).toBe(0);

    const utilization = sampleValue(exposition, 'system_memory_utilization');
    expect(utilization).toBeGreaterThan(0);
    expect(utilization).toBeLessThanOrEqual(1);
  });

  it('does not touch the global registry, so several instances coexist', async () => {
    const before = register.getMetricsAsArray().length;
    const a = new Metrics();
    const b = new Metrics();
    a.rateLimitRejected('chat');
    expect(register.getMetricsAsArray().length).toBe(before);
    expect(sampleValue(await scrape(a), 'rate_limit_rejections_total', { group: 'chat' })).toBe(1);
    const other = await scrape(b);
    expect(() => sampleValue(other, 'rate_limit_rejections_total')).toThrow(/found 0/);
  });

  it('answers OpenMetrics requests with the Prometheus text, and that does not disturb later scrapes', async () => {
    const metrics = new Metrics();
    metrics.turnFinished(report());
    const first = await metrics.prometheus(true);
    expect(first.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(sampleValue(parseExposition(first.body), 'chat_turns_total', { mode: 'live', outcome: 'success' })).toBe(1);
    expect(sampleValue(await scrape(metrics), 'chat_turns_total', { mode: 'live', outcome: 'success' })).toBe(1);
  });

  it('records chat turns: active gauge, duration, first token, tokens, turns and stream errors', async () => {
    const metrics = new Metrics();
    metrics.turnStarted();
    metrics.turnStarted();
    expect(sampleValue(await scrape(metrics), 'chat_sessions_active')).toBe(2);

    metrics.turnFinished(report());
    metrics.turnFinished(report({ outcome: 'error', errorType: 'overloaded', timeToFirstTokenMs: null, inputTokens: 0, outputTokens: 0 }));
    const exposition = await scrape(metrics);

    expect(sampleValue(exposition, 'chat_sessions_active')).toBe(0);
    expect(sampleValue(exposition, 'chat_turns_total', { mode: 'live', outcome: 'success' })).toBe(1);
    expect(sampleValue(exposition, 'chat_turns_total', { mode: 'live', outcome: 'error' })).toBe(1);
    const success = { operation: 'chat', model: 'claude-test', mode: 'live', outcome: 'success' };
    expect(sampleValue(exposition, 'gen_ai_client_operation_duration_seconds_count', success)).toBe(1);
    expect(sampleValue(exposition, 'gen_ai_client_operation_duration_seconds_sum', success)).toBe(1.5);
    expect(sampleValue(exposition, 'gen_ai_client_operation_duration_seconds_count', { ...success, outcome: 'error' })).toBe(1);
    // Only the turn that had a first token is in the TTFT histogram.
    expect(sampleValue(exposition, 'gen_ai_server_time_to_first_token_seconds_count', { model: 'claude-test', mode: 'live' })).toBe(1);
    expect(sampleValue(exposition, 'gen_ai_server_time_to_first_token_seconds_sum', { model: 'claude-test', mode: 'live' })).toBe(0.2);
    // Only the turn with usage is in the token histogram.
    expect(sampleValue(exposition, 'gen_ai_client_token_usage_count', { token_type: 'input', model: 'claude-test' })).toBe(1);
    expect(sampleValue(exposition, 'gen_ai_client_token_usage_sum', { token_type: 'output', model: 'claude-test' })).toBe(40);
    expect(sampleValue(exposition, 'gen_ai_client_token_usage_bucket', { token_type: 'input', model: 'claude-test', le: '64' })).toBe(0);
    expect(sampleValue(exposition, 'gen_ai_client_token_usage_bucket', { token_type: 'input', model: 'claude-test', le: '256' })).toBe(1);
    expect(sampleValue(exposition, 'chat_tokens_total', { token_type: 'input', model: 'claude-test' })).toBe(100);
    expect(sampleValue(exposition, 'chat_tokens_total', { token_type: 'output', model: 'claude-test' })).toBe(40);
    expect(sampleValue(exposition, 'chat_errors_total', { kind: 'stream' })).toBe(1);
    expect(sampleValue(exposition, 'chat_errors_total', { kind: 'http_5xx' })).toBe(0);

    expect(metrics.counters()).toMatchObject({ turnsTotal: 2, sessionsActive: 0, errorsTotal: 1 });
  });

  it('never drives the active-turns gauge below zero', async () => {
    const metrics = new Metrics();
    metrics.turnFinished(report());
    expect(sampleValue(await scrape(metrics), 'chat_sessions_active')).toBe(0);
    expect(metrics.counters().sessionsActive).toBe(0);
  });

  it('bounds free-form model names so a client cannot explode the series', async () => {
    const metrics = new Metrics({ defaultMetrics: false, maxLabelValues: 2 });
    for (const model of ['a', 'b', 'c', 'd', 'a']) metrics.turnFinished(report({ model }));
    const exposition = await scrape(metrics);
    const models = new Set(exposition.samples.filter((s) => s.name === 'chat_tokens_total').map((s) => s.labels.model));
    expect(models).toEqual(new Set(['a', 'b', 'other']));
    expect(sampleValue(exposition, 'chat_tokens_total', { token_type: 'input', model: 'other' })).toBe(200);
  });

  it('counts sessions, retries, fallbacks and rate-limit rejections', async () => {
    const metrics = new Metrics();
    metrics.sessionCreated(false);
    metrics.sessionCreated(true);
    metrics.sessionCreated(true);
    metrics.retryAttempt('claude_sdk', 'overloaded');
    metrics.retryAttempt('claude_sdk', 'overloaded');
    metrics.fallbackUsed('chat', 'cache');
    metrics.rateLimitRejected('chat');
    const exposition = await scrape(metrics);
    expect(sampleValue(exposition, 'chat_sessions_created_total', { provisional: 'false' })).toBe(1);
    expect(sampleValue(exposition, 'chat_sessions_created_total', { provisional: 'true' })).toBe(2);
    expect(sampleValue(exposition, 'retry_attempts_total', { circuit: 'claude_sdk', reason: 'overloaded' })).toBe(2);
    expect(sampleValue(exposition, 'fallbacks_total', { operation: 'chat', strategy: 'cache' })).toBe(1);
    expect(sampleValue(exposition, 'rate_limit_rejections_total', { group: 'chat' })).toBe(1);
    expect(metrics.counters()).toEqual({
      requestsTotal: 0,
      requestsInProgress: 0,
      errorsTotal: 0,
      sessionsCreated: 3,
      sessionsActive: 0,
      fallbacksUsed: 1,
      turnsTotal: 0,
    });
  });

  it('records HTTP requests: in-flight gauge, duration by status, 5xx as errors', async () => {
    const metrics = new Metrics();
    metrics.httpRequestStarted('GET', '/items/:id');
    metrics.httpRequestStarted('GET', '/items/:id');
    let exposition = await scrape(metrics);
    expect(sampleValue(exposition, 'http_server_active_requests', { method: 'GET', route: '/items/:id' })).toBe(2);
    expect(metrics.counters().requestsInProgress).toBe(2);

    metrics.httpRequestFinished('GET', '/items/:id', 200, 0.02);
    metrics.httpRequestFinished('GET', '/items/:id', 503, 0.5);
    exposition = await scrape(metrics);
    expect(sampleValue(exposition, 'http_server_active_requests', { method: 'GET', route: '/items/:id' })).toBe(0);
    const labels = { method: 'GET', route: '/items/:id' };
    expect(sampleValue(exposition, 'http_server_request_duration_seconds_count', { ...labels, status_code: '200' })).toBe(1);
    expect(sampleValue(exposition, 'http_server_request_duration_seconds_bucket', { ...labels, status_code: '200', le: '0.025' })).toBe(1);
    expect(sampleValue(exposition, 'http_server_request_duration_seconds_count', { ...labels, status_code: '503' })).toBe(1);
    expect(sampleValue(exposition, 'chat_errors_total', { kind: 'http_5xx' })).toBe(1);
    expect(metrics.counters()).toMatchObject({ requestsTotal: 2, requestsInProgress: 0, errorsTotal: 1 });
  });

  it('reflects a real breaker: state gauge, transitions and calls', async () => {
    const clock = manualClock();
    const registry = new CircuitBreakerRegistry({ clock });
    const breaker: CircuitBreaker = registry.register('claude_sdk', CONFIG);
    const metrics = new Metrics();
    metrics.observeBreakers(registry);
    metrics.observeBreakers(registry); // idempotent: transitions must not be counted twice

    breaker.acquire().success();
    let exposition = await scrape(metrics);
    expect(sampleValue(exposition, 'circuit_breaker_state', { circuit: 'claude_sdk', state: 'closed' })).toBe(1);
    expect(sampleValue(exposition, 'circuit_breaker_state', { circuit: 'claude_sdk', state: 'open' })).toBe(0);
    expect(sampleValue(exposition, 'circuit_breaker_state', { circuit: 'claude_sdk', state: 'half_open' })).toBe(0);

    // Open it by reporting failures, then get one call rejected.
    for (let i = 0; i < CONFIG.failureThreshold; i++) breaker.acquire().failure(new Error('down'));
    expect(breaker.state).toBe('open');
    expect(() => breaker.acquire()).toThrow();

    exposition = await scrape(metrics);
    expect(sampleValue(exposition, 'circuit_breaker_state', { circuit: 'claude_sdk', state: 'closed' })).toBe(0);
    expect(sampleValue(exposition, 'circuit_breaker_state', { circuit: 'claude_sdk', state: 'open' })).toBe(1);
    expect(sampleValue(exposition, 'circuit_breaker_transitions_total', { circuit: 'claude_sdk', from: 'closed', to: 'open' })).toBe(1);
    expect(sampleValue(exposition, 'circuit_breaker_calls_total', { circuit: 'claude_sdk', outcome: 'success' })).toBe(1);
    expect(sampleValue(exposition, 'circuit_breaker_calls_total', { circuit: 'claude_sdk', outcome: 'failure' })).toBe(2);
    expect(sampleValue(exposition, 'circuit_breaker_calls_total', { circuit: 'claude_sdk', outcome: 'rejected' })).toBe(1);

    // After the open period a probe is admitted (half-open) and its success closes the circuit.
    clock.ms += CONFIG.timeoutSeconds * 1000;
    breaker.acquire().success();
    expect(breaker.state).toBe('closed');
    // A breaker registered after observeBreakers is included too.
    registry.register('session_operations', CONFIG);

    exposition = await scrape(metrics);
    expect(sampleValue(exposition, 'circuit_breaker_state', { circuit: 'claude_sdk', state: 'closed' })).toBe(1);
    expect(sampleValue(exposition, 'circuit_breaker_transitions_total', { circuit: 'claude_sdk', from: 'open', to: 'half_open' })).toBe(1);
    expect(sampleValue(exposition, 'circuit_breaker_transitions_total', { circuit: 'claude_sdk', from: 'half_open', to: 'closed' })).toBe(1);
    expect(sampleValue(exposition, 'circuit_breaker_state', { circuit: 'session_operations', state: 'closed' })).toBe(1);
    expect(sampleValue(exposition, 'circuit_breaker_calls_total', { circuit: 'session_operations', outcome: 'success' })).toBe(0);
  });
});
