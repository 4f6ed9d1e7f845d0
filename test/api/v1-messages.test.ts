import Anthropic from '@anthropic-ai/sdk';
import { describe, expect, it } from 'vitest';
import { useFakeAnthropic } from '../support/fake-anthropic-suite.js';
import { fakeTarget, writeRoutingFile } from '../support/routing-file.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const CLIENT_KEY = 'client-key-0123456789';
const PRIMARY = 'claude-sonnet-4-6';
const FALLBACK = 'claude-haiku-4-5';

let server: TestServer;
const upstream = useFakeAnthropic(() => server, 'gateway-');

/** A route for PRIMARY with a fallback target on the same fake (another model), 2 retries. */
function routingFile(): string {
  return writeRoutingFile(upstream.dir, {
    defaults: { retries: 2 },
    routes: {
      [PRIMARY]: {
        targets: [
          fakeTarget(upstream.fake.url, 'primary', { apiKey: 'upstream-key-1' }),
          fakeTarget(upstream.fake.url, 'fallback', { apiKey: 'upstream-key-2', model: FALLBACK }),
        ],
      },
      '*': { targets: [fakeTarget(upstream.fake.url, 'default', { apiKey: 'upstream-key-1' })] },
    },
  });
}

async function start(extra: Record<string, string> = {}) {
  server = await startTestServer({
    env: { API_KEYS: `app:${CLIENT_KEY}`, CONFIG_FILE: routingFile(), RETRY_DELAYS_MS: '20,40', UPSTREAM_IDLE_TIMEOUT_MS: '1000', ...extra },
  });
  return new Anthropic({ apiKey: CLIENT_KEY, baseURL: server.url, maxRetries: 0, logLevel: 'off' });
}

const callsFor = (model: string) => upstream.fake.requestsFor(model);
const ask = { model: PRIMARY, max_tokens: 100, messages: [{ role: 'user' as const, content: 'hello gateway' }] };

async function rawStream(body: unknown) {
  const res = await fetch(`${server.url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': CLIENT_KEY },
    body: JSON.stringify({ ...(body as object), stream: true }),
  });
  return { res, text: await res.text() };
}

describe('/v1/messages for Anthropic SDK clients', () => {
  it('answers a non-streaming SDK call with the upstream message, usage and gateway headers', async () => {
    const client = await start();
    const { data, response } = await client.messages.create(ask).withResponse();
    expect(data.content[0]).toMatchObject({ type: 'text', text: 'Echo: hello gateway' });
    expect(data.model).toBe(PRIMARY);
    expect(data.usage.output_tokens).toBeGreaterThan(0);
    expect(response.headers.get('x-gateway-attempts')).toBe('1');
    expect(callsFor(PRIMARY)[0]?.headers['x-api-key']).toBe('upstream-key-1');
  });

  it('streams to an SDK client: every event, a complete message', async () => {
    const client = await start();
    const stream = client.messages.stream(ask);
    const message = await stream.finalMessage();
    expect(message.content[0]).toMatchObject({ type: 'text', text: 'Echo: hello gateway' });
    expect(message.stop_reason).toBe('end_turn');
  });

  it('refuses a call without a client key in Anthropic shape', async () => {
    await start();
    const res = await fetch(`${server.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ask) });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });
  });

  it('passes models and count_tokens through', async () => {
    const client = await start();
    const models = await client.models.list();
    expect(models.data.length).toBeGreaterThan(0);
    const count = await client.messages.countTokens({ model: PRIMARY, messages: ask.messages });
    expect(count.input_tokens).toBeGreaterThan(0);
  });
});

describe('/v1/messages failover', () => {
  it('retries a 500 on the same model and answers in full (S03)', async () => {
    const client = await start();
    upstream.fake.setModelBehavior(PRIMARY, { faults: [{ kind: 'status', status: 500 }] });
    const { data, response } = await client.messages.create(ask).withResponse();
    expect(data.content[0]).toMatchObject({ text: 'Echo: hello gateway' });
    expect(callsFor(PRIMARY)).toHaveLength(2);
    expect(response.headers.get('x-gateway-attempts')).toBe('2');
  });

  it('fails over to the fallback model when the primary keeps answering 503, naming it (S16)', async () => {
    const client = await start();
    upstream.fake.setModelBehavior(PRIMARY, { then: { kind: 'status', status: 503 } });
    const { data, response } = await client.messages.create(ask).withResponse();
    expect(data.model).toBe(FALLBACK);
    expect(data.usage.output_tokens).toBeGreaterThan(0);
    expect(response.headers.get('x-gateway-fallback-model')).toBe(FALLBACK);
    expect(callsFor(PRIMARY)).toHaveLength(3); // the first try and 2 retries
    expect(callsFor(FALLBACK)).toHaveLength(1);
  });

  it('makes exactly one attempt on a client error and passes the reason through (S12/S13)', async () => {
    const client = await start();
    upstream.fake.setModelBehavior(PRIMARY, { faults: [{ kind: 'status', status: 400, message: 'Output blocked by content filtering policy' }] });
    await expect(client.messages.create(ask)).rejects.toMatchObject({ status: 400, message: expect.stringContaining('content filtering') });
    expect(callsFor(PRIMARY)).toHaveLength(1);
    expect(callsFor(FALLBACK)).toHaveLength(0);
  });

  it('restarts a stream cut before any content invisibly, and ends one cut after content with event: error (S08)', async () => {
    await start();
    upstream.fake.setModelBehavior(PRIMARY, { faults: [{ kind: 'cut_mid_stream', afterChunks: 0 }] });
    const invisible = await rawStream(ask);
    expect(invisible.text).toContain('event: message_stop');
    expect(invisible.text).not.toContain('event: error');
    expect(callsFor(PRIMARY)).toHaveLength(2);

    upstream.fake.setModelBehavior(PRIMARY, { faults: [{ kind: 'cut_mid_stream', afterChunks: 1 }] });
    const cut = await rawStream(ask);
    expect(cut.res.status).toBe(200);
    expect(cut.text).toContain('event: content_block_delta');
    expect(cut.text).not.toContain('event: message_stop');
    expect(cut.text.trimEnd().split('\n\n').at(-1)).toMatch(/^event: error\ndata: .*"type":"error"/);
  });

  it('never passes off a stream that ends without message_stop as complete (S11)', async () => {
    await start();
    upstream.fake.setModelBehavior(PRIMARY, { faults: [{ kind: 'no_message_stop', afterChunks: 2 }] });
    const { text } = await rawStream(ask);
    expect(text).not.toContain('event: message_stop');
    expect(text.trimEnd().split('\n\n').at(-1)).toMatch(/^event: error/);
  });
});
