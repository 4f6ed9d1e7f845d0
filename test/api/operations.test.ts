import { describe, expect, it } from 'vitest';
import { useFakeAnthropic } from '../support/fake-anthropic-suite.js';
import { chat, postChat, readFrames } from '../support/sse-client.js';
import { PUBLISHED_METRICS } from '../support/metric-catalogue.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

let server: TestServer;
const upstream = useFakeAnthropic(() => server);

const env = () => ({ ANTHROPIC_API_KEY: 'sk-test', ANTHROPIC_BASE_URL: upstream.fake.url, RETRY_MAX_RETRIES: '0', CHAT_FALLBACKS: 'none' });

interface MetricsJson {
  requests_total: number;
  requests_in_progress: number;
  errors_total: number;
  error_rate: number;
  sessions_created: number;
  sessions_active: number;
  uptime_seconds: number;
  fallbacks_used: number;
  circuit_breakers_open: number;
  memory_usage_percent: number;
  cpu_usage_percent: number;
}

const metricsJson = async () => (await (await fetch(`${server.url}/metrics`)).json()) as MetricsJson;
const detailed = async () => {
  const res = await fetch(`${server.url}/health/detailed`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { status: string } };
};


describe('/health/detailed on the real application', () => {
  it('has the seed fields with the right types', async () => {
    server = await startTestServer({ env: env() });
    await chat(server.url, { message: 'hello' });
    const { status, body } = await detailed();
    expect(status).toBe(200);
    expect(body).toMatchObject({
      status: expect.stringMatching(/^(healthy|degraded)$/),
      service: 'Claude Chat API',
      version: expect.any(String),
      uptime_seconds: expect.any(Number),
      timestamp: expect.any(String),
      sessions: { active_count: 0, total_created: 1 },
      system: {
        cpu: { usage_percent: expect.any(Number), count: expect.any(Number), load_average: expect.any(Array) },
        memory: { total_gb: expect.any(Number), available_gb: expect.any(Number), usage_percent: expect.any(Number), process_rss_mb: expect.any(Number), process_vms_mb: expect.any(Number) },
        disk: { usage_percent: expect.any(Number) },
      },
      claude_sdk: { status: expect.any(String) },
      performance: { requests_total: expect.any(Number), requests_in_progress: expect.any(Number), errors_total: expect.any(Number), error_rate: expect.any(Number) },
      stability: { circuit_breakers: { claude_sdk: { state: 'closed', failure_count: 0, can_execute: true } } },
      fallback_stats: { operations: expect.any(Object) },
    });
  });

  it('stays fast while the upstream hangs, and health checks never send a message request', async () => {
    server = await startTestServer({ env: env() });
    upstream.fake.setDefaultFault({ kind: 'no_response' });
    const controller = new AbortController();
    const hanging = postChat(server.url, { message: 'hang' }, controller.signal).catch(() => undefined);
    await upstream.fake.waitFor((f) => f.requests.some((r) => r.path === '/v1/messages'));
    const timings: number[] = [];
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      expect((await detailed()).status).toBe(200);
      timings.push(performance.now() - started);
    }
    expect(Math.min(...timings)).toBeLessThan(100);
    await server.app.operations.checks.runAll();
    // The only message request is the chat's own; the Claude check lists models.
    expect(upstream.fake.requests.filter((r) => r.path === '/v1/messages')).toHaveLength(1);
    expect(upstream.fake.requests.some((r) => r.path === '/v1/models')).toBe(true);
    controller.abort();
    await hanging;
  });

  it('is degraded (200) with the Claude breaker forced open, unhealthy (503) with an unwritable store; /livez stays 200', async () => {
    server = await startTestServer({ env: env() });
    server.app.resilience.claudeBreaker.forceOpen();
    let result = await detailed();
    expect(result.status).toBe(200);
    expect(result.body.status).toBe('degraded');
    expect((await fetch(`${server.url}/livez`)).status).toBe(200);

    server.app.database.database.pragma('query_only = ON');
    await server.app.operations.checks.runAll();
    result = await detailed();
    expect(result.status).toBe(503);
    expect(result.body.status).toBe('unhealthy');
    expect((await fetch(`${server.url}/health`)).status).toBe(503);
    expect((await fetch(`${server.url}/livez`)).status).toBe(200);
    server.app.database.database.pragma('query_only = OFF');
  });

  it('resets a breaker on request', async () => {
    server = await startTestServer({ env: env() });
    server.app.resilience.claudeBreaker.forceOpen();
    const res = await fetch(`${server.url}/health/circuit-breaker/claude_sdk/reset`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ circuit_breaker: 'claude_sdk', status: 'reset', new_state: 'closed', timestamp: expect.any(String) });
    expect(server.app.resilience.claudeBreaker.stats().state).toBe('closed');
    expect((await fetch(`${server.url}/health/circuit-breaker/nope/reset`, { method: 'POST' })).status).toBe(404);
  });
});

describe('/metrics on the real application', () => {
  it('counts a failed chat in errors_total and error_rate', async () => {
    server = await startTestServer({ env: env() });
    const before = await metricsJson();
    upstream.fake.enqueueFault({ kind: 'status', status: 500 });
    await chat(server.url, { message: 'fail' });
    const after = await metricsJson();
    expect(after.errors_total).toBe(before.errors_total + 1);
    expect(after.error_rate).toBeGreaterThan(0);
    for (const value of Object.values(after)) expect(typeof value).toBe('number');
  });

  it('counts an open stream as in progress until it ends', async () => {
    server = await startTestServer({ env: env() });
    upstream.fake.setReply('a b c d e f g h');
    upstream.fake.setChunkDelayMs(40);
    const response = await postChat(server.url, { message: 'slow' });
    const frames = readFrames(response);
    await frames.next();
    const during = await metricsJson();
    expect(during.requests_in_progress).toBeGreaterThanOrEqual(2); // the stream and this request
    expect(during.sessions_active).toBe(1);
    for await (const frame of frames) void frame;
    await expect.poll(async () => (await metricsJson()).requests_in_progress).toBe(1);
    expect((await metricsJson()).sessions_active).toBe(0);
  });

  it('serves the Prometheus exposition to a scraper, with the listed metric names', async () => {
    server = await startTestServer({ env: env() });
    await chat(server.url, { message: 'count me' });
    const res = await fetch(`${server.url}/metrics`, { headers: { accept: 'text/plain;version=0.0.4' } });
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    for (const name of [...PUBLISHED_METRICS, 'process_resident_memory_bytes']) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(text).toMatch(/circuit_breaker_state\{circuit="claude_sdk",state="closed"\} 1/);
    expect(text).toMatch(/http_server_request_duration_seconds_count\{[^}]*route="\/api\/chat"/);
    expect(text).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/); // no ids in labels
  });
});
