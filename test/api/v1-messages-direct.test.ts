/**
 * `/v1/messages` is served ahead of Fastify when a request is plain (http/direct-route.ts); everything
 * else goes through Fastify's route. Both must give the same answers: each case is sent once plainly
 * (a Content-Length body: the direct route) and once with a chunked body (which the direct route hands
 * on to Fastify), and the two answers are compared.
 */
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { useFakeAnthropic } from '../support/fake-anthropic-suite.js';
import { startRedisServer } from '../support/redis-server.js';
import { fakeTarget, writeRoutingFile } from '../support/routing-file.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const CLIENT_KEY = 'client-key-direct-0123456789';
const MODEL = 'claude-sonnet-4-6';
const ask = { model: MODEL, max_tokens: 100, messages: [{ role: 'user', content: 'hello direct' }] };

let server: TestServer;
const upstream = useFakeAnthropic(() => server, 'direct-');

/** Messages calls the upstream saw (the health check's model listing aside). */
const messageCalls = () => upstream.fake.requests.filter((r) => r.path === '/v1/messages');

async function start(env: Record<string, string> = {}) {
  const routing = writeRoutingFile(upstream.dir, { routes: { '*': { targets: [fakeTarget(upstream.fake.url, 'default')] } } });
  server = await startTestServer({ env: { API_KEYS: `app:${CLIENT_KEY}`, CONFIG_FILE: routing, ...env } });
}

type Path = 'direct' | 'fastify';

interface Answer {
  status: number;
  headers: Record<string, string>;
  text: string;
}

/** One call; `fastify` sends the same bytes chunked (no Content-Length), which only Fastify serves. */
async function call(path: Path, body: string, headers: Record<string, string> = {}, url = '/v1/messages'): Promise<Answer> {
  const all = { 'content-type': 'application/json', 'x-api-key': CLIENT_KEY, ...headers };
  const res = await request(`${server.url}${url}`, {
    method: 'POST',
    headers: all,
    body: path === 'direct' ? body : Readable.from([Buffer.from(body)]),
  });
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(res.headers)) if (typeof value === 'string') out[name] = value;
  return { status: res.statusCode, headers: out, text: await res.body.text() };
}

/** What must not differ between the two paths: the status, the body (request ids aside) and the headers that carry meaning. */
function comparable(answer: Answer) {
  const { date: _date, 'x-request-id': _id, 'ratelimit-remaining': _left, 'ratelimit-reset': _reset, 'keep-alive': _alive, connection: _connection, 'transfer-encoding': _te, 'content-length': _length, ...headers } = answer.headers;
  return { status: answer.status, headers, body: answer.text.replace(/"request_id":"[^"]+"/g, '"request_id":"…"').replace(/msg_[0-9a-f]+/g, 'msg_…') };
}

async function bothPaths(body: string, headers: Record<string, string> = {}, url?: string) {
  const direct = await call('direct', body, headers, url);
  const fastify = await call('fastify', body, headers, url);
  return { direct, fastify };
}

const prometheusText = async () => (await fetch(`${server.url}/metrics`, { headers: { accept: 'text/plain;version=0.0.4' } })).text();
const httpRequests = () => server.logs.filter((line) => line.event === 'http_request' && line.route === '/v1/messages');

describe('/v1/messages served ahead of Fastify', () => {
  it('answers a call the same on both paths: body, security headers, gateway headers, rate-limit headers', async () => {
    await start();
    const { direct, fastify } = await bothPaths(JSON.stringify(ask));
    expect(direct.status).toBe(200);
    expect(JSON.parse(direct.text)).toMatchObject({ type: 'message', content: [{ type: 'text', text: 'Echo: hello direct' }] });
    expect(comparable(direct)).toEqual(comparable(fastify));
    expect(direct.headers).toMatchObject({ 'x-gateway-attempts': '1', 'x-gateway-target': 'default', 'content-type': 'application/json', 'ratelimit-limit': '100000', 'x-content-type-options': 'nosniff' });
    expect(direct.headers['content-security-policy']).toContain("default-src 'none'");
    expect(Number(direct.headers['content-length'])).toBe(Buffer.byteLength(direct.text));
    expect(Number(direct.headers['ratelimit-remaining'])).toBe(Number(fastify.headers['ratelimit-remaining']) + 1);
  });

  it('streams the same events on both paths, and keeps the query string route (SDK beta calls)', async () => {
    await start();
    const { direct, fastify } = await bothPaths(JSON.stringify({ ...ask, stream: true }), {}, '/v1/messages?beta=true');
    expect(direct.status).toBe(200);
    expect(direct.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(direct.text).toContain('event: message_stop');
    expect(comparable(direct)).toEqual(comparable(fastify));
  });

  it('refuses bad bodies alike: malformed JSON, prototype poisoning, missing fields, an empty object', async () => {
    await start();
    const bodies = [
      '{"model":',
      '{"__proto__":{"x":1},"model":"m","max_tokens":1,"messages":[]}',
      '{"constructor":{"prototype":{"x":1}}}',
      // Nested, and with a letter escaped: still refused, though only the top level is read on the fast path.
      `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x","__pro\\u0074o__":{"x":1}}]}`,
      JSON.stringify({ model: MODEL }),
      '{}',
      '   ',
      '{"model":"","max_tokens":1,"messages":[]}',
      '{"model":"m","max_tokens":"1","messages":[]}',
      '{"model":"m","max_tokens":1,"messages":{}}',
      '[{"model":"m","max_tokens":1,"messages":[]}]',
      '{"model":"m","max_tokens":1,"messages":[]} x',
    ];
    for (const body of bodies) {
      const { direct, fastify } = await bothPaths(body);
      expect(direct.status, body).toBe(400);
      expect(JSON.parse(direct.text), body).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
      expect(comparable(direct), body).toEqual(comparable(fastify));
    }
    expect(messageCalls()).toHaveLength(0);
  });

  it('answers any body alike on both doors: valid, invalid, odd types, refused keys, escapes, cut short', async () => {
    await start();
    /** Mostly the valid value, sometimes a wrong or missing one (JSON.stringify drops undefined). */
    const field = (valid: unknown, wrong: unknown[]) => fc.oneof({ arbitrary: fc.constant(valid), weight: 5 }, { arbitrary: fc.constantFrom(...wrong), weight: 1 });
    const body = fc.record({
      model: field(MODEL, [undefined, '', 5, null]),
      max_tokens: field(5, [undefined, '5', 1.5, null]),
      messages: field([{ role: 'user', content: 'fuzz é' }], [undefined, {}, 'x']),
      stream: field(undefined, [true, false, 'true']),
      extra: field(undefined, [{ nested: [1, { a: null }] }, 'x']),
    });
    /** How the body is written: as JSON.stringify does, spaced, a key or letter escaped, a refused key added, cut short. */
    const writing = fc.constantFrom('plain', 'spaced', 'escaped-key', 'escaped-letter', 'proto', 'cut');
    const write = (value: Record<string, unknown>, how: string): string => {
      const text = JSON.stringify(value);
      if (how === 'spaced') return JSON.stringify(value, null, 1);
      if (how === 'escaped-key') return text.replace('"model"', '"mod\\u0065l"');
      if (how === 'escaped-letter') return text.replace('"user"', '"\\u0075ser"');
      if (how === 'proto') return text.replace('{', '{"__proto__":{"x":1},');
      if (how === 'cut') return text.slice(0, Math.max(1, text.length - 3));
      return text;
    };
    await fc.assert(
      fc.asyncProperty(body, writing, async (value, how) => {
        const text = write(value, how);
        const { direct, fastify } = await bothPaths(text);
        expect(comparable(direct), text).toEqual(comparable(fastify));
        expect(direct.status, text).toBeLessThan(500);
      }),
      { numRuns: 200 },
    );
  });

  it('reads a request written unusually as its parse reads it, and forwards its bytes unchanged', async () => {
    await start();
    const bodies = [
      // An escaped key and an escaped model name mean what they decode to.
      `{"mod\\u0065l":"${MODEL}","max_tokens":5,"messages":[{"role":"user","content":"escaped key"}]}`,
      `{"model":"claude-sonnet\\u002d4-6","max_tokens":5,"messages":[{"role":"user","content":"escaped model"}]}`,
      // The last of duplicate keys counts; `stream` only when it is `true`.
      `{"model":"other","model":"${MODEL}","max_tokens":5,"messages":[{"role":"user","content":"dupes"}],"stream":"true"}`,
      ` {\n "model" : "${MODEL}" , "max_tokens" : 5e0 , "messages" : [ {"role":"user","content":"spaced é 😀"} ] }\n`,
      // Non-ASCII escaped as JSON encoders do (Python's json.dumps by default).
      `{"model":"${MODEL}","max_tokens":5,"messages":[{"role":"user","content":"caf\\u00e9 \\ud83d\\ude00 \\u001b"}]}`,
    ];
    for (const body of bodies) {
      const { direct, fastify } = await bothPaths(body);
      expect(direct.status, body).toBe(200);
      expect(direct.headers['content-type'], body).toBe('application/json');
      expect(comparable(direct), body).toEqual(comparable(fastify));
    }
    const forwarded = messageCalls().map((r) => r.rawBody);
    expect(forwarded).toEqual(bodies.flatMap((body) => [body, body]));
  });

  it('names the call in the lines the gateway writes for it, without a request context', async () => {
    await start({ RETRY_DELAYS_MS: '10' });
    upstream.fake.setModelBehavior(MODEL, { faults: [{ kind: 'status', status: 500 }] });
    const answer = await call('direct', JSON.stringify(ask), { 'x-request-id': 'trace-retry' });
    expect(answer.status).toBe(200);
    expect(answer.headers['x-gateway-attempts']).toBe('2');
    await new Promise((resolve) => setImmediate(resolve));
    const retries = server.logs.filter((line) => line.event === 'reconnection_attempt');
    expect(retries).toHaveLength(1);
    expect(retries[0]).toMatchObject({ request_id: 'trace-retry', component: 'gateway', target: 'default' });
  });

  it('echoes a sane X-Request-ID and logs one http_request line per call with it', async () => {
    await start();
    const { direct, fastify } = await bothPaths(JSON.stringify(ask), { 'x-request-id': 'trace-abc.123' });
    expect(direct.headers['x-request-id']).toBe('trace-abc.123');
    expect(fastify.headers['x-request-id']).toBe('trace-abc.123');
    const insane = await call('direct', JSON.stringify(ask), { 'x-request-id': 'bad id\twith spaces' });
    expect(insane.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    await new Promise((resolve) => setImmediate(resolve));
    const lines = httpRequests();
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({ request_id: 'trace-abc.123', method: 'POST', status: 200, component: 'http' });
    expect(lines[2]).toMatchObject({ request_id: insane.headers['x-request-id'] });
    expect(lines.every((line) => typeof line.duration_ms === 'number')).toBe(true);
  });

  it('counts both paths in the HTTP metrics, under the /v1/messages route', async () => {
    await start();
    await bothPaths(JSON.stringify(ask));
    await call('direct', '{"model":');
    const metrics = await prometheusText();
    const count = (status: string) => Number(new RegExp(`http_server_request_duration_seconds_count\\{[^}]*route="/v1/messages"[^}]*status_code="${status}"[^}]*\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
    expect(count('200')).toBe(2);
    expect(count('400')).toBe(1);
    expect(metrics).toMatch(/http_server_active_requests\{[^}]*route="\/v1\/messages"[^}]*\} 0/);
  });

  it('shares one rate-limit budget between the paths and refuses the excess in Anthropic shape', async () => {
    await start({ RATE_LIMIT_CHAT: '2' });
    expect((await call('direct', JSON.stringify(ask))).status).toBe(200);
    expect((await call('fastify', JSON.stringify(ask))).status).toBe(200);
    const { direct, fastify } = await bothPaths(JSON.stringify(ask));
    expect(direct.status).toBe(429);
    expect(JSON.parse(direct.text)).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
    expect(Number(direct.headers['retry-after'])).toBeGreaterThan(0);
    expect(comparable(direct)).toEqual(comparable(fastify));
    expect(messageCalls()).toHaveLength(2);
  });

  it('with the rate limit in Redis (a verdict that takes a round trip), still shares one budget between the paths', async () => {
    const redis = await startRedisServer();
    try {
      await start({ RATE_LIMIT_CHAT: '2', REDIS_URL: redis.url });
      expect((await call('direct', JSON.stringify(ask))).status).toBe(200);
      expect((await call('fastify', JSON.stringify(ask))).status).toBe(200);
      const refused = await call('direct', JSON.stringify(ask));
      expect(refused.status).toBe(429);
      expect(JSON.parse(refused.text)).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
    } finally {
      await server.destroy();
      await redis.stop();
    }
  });

  it('hands what it does not take to Fastify: no or a wrong key (401), other media types (415), oversized bodies (413), browsers (CORS)', async () => {
    await start({ MAX_BODY_BYTES: '2048', CORS_ORIGINS: 'https://app.example' });
    const missing = await call('direct', JSON.stringify(ask), { 'x-api-key': '' });
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toContain('Bearer');
    expect(JSON.parse(missing.text)).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });
    expect((await call('direct', JSON.stringify(ask), { 'x-api-key': 'not-a-key' })).status).toBe(401);
    expect((await call('direct', JSON.stringify(ask), { 'content-type': 'text/plain' })).status).toBe(415);
    const big = JSON.stringify({ ...ask, messages: [{ role: 'user', content: 'x'.repeat(4096) }] });
    expect((await call('direct', big)).status).toBe(413);
    const browser = await call('direct', JSON.stringify(ask), { origin: 'https://app.example' });
    expect(browser.status).toBe(200);
    expect(browser.headers['access-control-allow-origin']).toBe('https://app.example');
    expect(browser.headers['access-control-expose-headers']).toContain('x-request-id');
    expect(messageCalls()).toHaveLength(1);
  });

  it('with authentication off, serves anonymous callers directly and limits them per address', async () => {
    await start({ API_KEYS: '', AUTH_DISABLED: 'true', RATE_LIMIT_CHAT: '1' });
    expect((await call('direct', JSON.stringify(ask), { 'x-api-key': '' })).status).toBe(200);
    const refused = await call('direct', JSON.stringify(ask), { 'x-api-key': '' });
    expect(refused.status).toBe(429);
  });

  it('a client that goes away mid-answer cancels the upstream call and is recorded as 499', async () => {
    await start();
    upstream.fake.setModelBehavior(MODEL, { then: { kind: 'no_response' } });
    const controller = new AbortController();
    const pending = request(`${server.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': CLIENT_KEY },
      body: JSON.stringify(ask),
      signal: controller.signal,
    }).catch(() => undefined);
    await expect.poll(() => messageCalls().length).toBe(1);
    controller.abort();
    await pending;
    await expect.poll(async () => (await prometheusText()).match(/http_server_request_duration_seconds_count\{[^}]*route="\/v1\/messages"[^}]*status_code="499"[^}]*\} 1/) !== null).toBe(true);
  });

  it('a client that goes away mid-stream, after content, cancels the upstream stream', async () => {
    await start();
    upstream.fake.setChunkDelayMs(50);
    const controller = new AbortController();
    const response = await request(`${server.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': CLIENT_KEY },
      body: JSON.stringify({ ...ask, stream: true }),
      signal: controller.signal,
    });
    expect(response.statusCode).toBe(200);
    let seen = '';
    try {
      for await (const chunk of response.body) {
        seen += String(chunk);
        if (seen.includes('content_block_delta')) controller.abort();
      }
    } catch {
      // the abort ends the read
    }
    await expect.poll(() => messageCalls()[0]?.clientClosed).toBe(true);
    expect(messageCalls()[0]?.completed).toBe(false);
  });

  // (That the upstream read pauses meanwhile is shown in src/gateway/stream-relay.test.ts: here the
  // kernel's socket buffers may hold the whole answer.)
  it('gives a client that stops reading for a while every byte of a long stream, in order', async () => {
    await start();
    const reply = Array.from({ length: 4000 }, (_, i) => `word${i} `.padEnd(2000, '.')).join('');
    upstream.fake.setReply(reply);
    upstream.fake.setChunking({ chunkSize: 2000 });
    const response = await request(`${server.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': CLIENT_KEY },
      body: JSON.stringify({ ...ask, max_tokens: 100_000, stream: true }),
    });
    expect(response.statusCode).toBe(200);
    const chunks: Buffer[] = [];
    const iterator = response.body[Symbol.asyncIterator]();
    chunks.push((await iterator.next()).value as Buffer);
    // The client stops reading (8 MB: its buffers fill and the server's writes report backpressure),
    // then reads the rest.
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) chunks.push(next.value as Buffer);
    const events = Buffer.concat(chunks).toString('utf8').trimEnd().split('\n\n');
    const text = events
      .filter((event) => event.startsWith('event: content_block_delta'))
      .map((event) => (JSON.parse(event.slice(event.indexOf('data: ') + 6)) as { delta: { text: string } }).delta.text)
      .join('');
    expect(text).toBe(reply);
    expect(events.at(-1)).toMatch(/^event: message_stop/);
  });
});

