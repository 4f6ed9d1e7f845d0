import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import pino from 'pino';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { KeyRing, sha256 } from '../auth/key-ring.js';
import { MemoryRateLimiter } from '../coordination/rate-limit/memory-limiter.js';
import { DirectRoutes, type DirectExchange, type DirectRoute } from './direct-route.js';
import { RateLimitPolicy } from './rate-limit.js';

const KEY = 'direct-route-key-0123456789';

interface Call {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string | Buffer[];
}

/** A direct route that echoes what it was given; whatever it does not take is answered 404 "fastify". */
async function harness(options: { open?: boolean; trustProxy?: boolean; maxBodyBytes?: number; serve?: DirectRoute['serve'] } = {}) {
  const served: DirectExchange[] = [];
  const route: DirectRoute = {
    path: '/v1/messages',
    group: 'chat',
    sendError: (res, head, error) => {
      res.writeHead(error.statusCode, head.concat(Object.entries(error.headers).flat(), 'content-type', 'text/plain'));
      res.end(`refused: ${error.type}`);
    },
    serve: options.serve ?? (async (exchange) => {
      served.push(exchange);
      const body = exchange.parse();
      exchange.res.writeHead(200, exchange.head);
      exchange.res.end(JSON.stringify({ body, identity: exchange.identity }));
    }),
  };
  const direct = new DirectRoutes([route], {
    logger: pino({ level: 'silent' }),
    keys: new KeyRing([{ id: 'app', sha256: sha256(KEY) }], undefined),
    open: options.open ?? false,
    trustProxy: options.trustProxy ?? false,
    maxBodyBytes: options.maxBodyBytes ?? 1024,
    rateLimit: new RateLimitPolicy({ limiter: new MemoryRateLimiter(), windowMs: 60_000, limits: { chat: 2, session: 1, analytics: 1, default: 1 } }),
    metrics: undefined,
    securityHeaders: ['x-content-type-options', 'nosniff'],
    draining: () => false,
    parseJson: (text) => JSON.parse(text) as unknown,
  });
  const server: Server = createServer((req, res) => {
    if (!direct.take(req, res)) res.writeHead(404).end('fastify');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const send = async (init: Call) => {
    const res = await request(`${url}${init.path ?? '/v1/messages'}`, {
      method: (init.method ?? 'POST') as 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': KEY, ...init.headers },
      // An array of chunks goes out chunked (no Content-Length).
      body: Array.isArray(init.body) ? Readable.from(init.body) : (init.body ?? '{"a":1}'),
    });
    return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
  };
  return { direct, served, send };
}

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

describe('DirectRoutes', () => {
  it('takes a plain call: parsed body, identity, the headers every answer carries', async () => {
    const { send } = await harness();
    const answer = await send({ headers: { 'x-request-id': 'req-1' }, path: '/v1/messages?beta=true' });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toEqual({ body: { a: 1 }, identity: { kind: 'client', keyId: 'app' } });
    expect(answer.headers).toMatchObject({ 'x-content-type-options': 'nosniff', 'x-request-id': 'req-1', 'ratelimit-limit': '2', 'ratelimit-remaining': '1' });
  });

  it('hands on, untouched, whatever is not plain: other paths and methods, browsers, other media types, no length, oversized, no or a wrong key', async () => {
    const { send, served } = await harness();
    const cases: Call[] = [
      { path: '/v1/messages/count_tokens' },
      { path: '/v1/messages/' },
      { method: 'PUT' },
      { headers: { origin: 'https://app.example' } },
      { headers: { 'content-type': 'text/plain' } },
      { body: [Buffer.from('{"a":1}')] },
      { body: JSON.stringify({ a: 'x'.repeat(2000) }) },
      { body: '' },
      { headers: { 'x-api-key': '' } },
      { headers: { 'x-api-key': 'wrong-key-0123456789' } },
    ];
    for (const init of cases) expect((await send(init)).text, JSON.stringify(init).slice(0, 80)).toBe('fastify');
    expect(served).toHaveLength(0);
  });

  it('accepts application/json with parameters, and a Bearer key', async () => {
    const { send } = await harness();
    const answer = await send({ headers: { 'content-type': 'Application/JSON; charset=utf-8', 'x-api-key': '', authorization: `Bearer ${KEY}` } });
    expect(answer.status).toBe(200);
  });

  it("refuses the excess in the route's own error shape, and an unreadable body too", async () => {
    const { send } = await harness();
    expect((await send({ body: '{"a":' })).text).toBe('refused: invalid_json');
    expect((await send({})).status).toBe(200);
    const refused = await send({});
    expect(refused.status).toBe(429);
    expect(refused.text).toBe('refused: rate_limit_exceeded');
    expect(refused.headers['retry-after']).toBeDefined();
  });

  it('answers with the refusal whatever the route throws, at once or later', async () => {
    const thrown = await harness({
      serve: (exchange) => {
        exchange.parse();
        return Promise.resolve();
      },
    });
    expect(await thrown.send({ body: '{"a":' })).toMatchObject({ status: 400, text: 'refused: invalid_json' });
    const rejected = await harness({ serve: async () => Promise.reject(new Error('boom')) });
    expect(await rejected.send({})).toMatchObject({ status: 500, text: 'refused: internal_error' });
  });

  it('with authentication off serves everybody as anonymous, unless the client address needs a trusted proxy', async () => {
    const open = await harness({ open: true });
    expect(JSON.parse((await open.send({ headers: { 'x-api-key': '' } })).text).identity).toEqual({ kind: 'anonymous' });
    const proxied = await harness({ open: true, trustProxy: true });
    expect((await proxied.send({ headers: { 'x-api-key': '' } })).text).toBe('fastify');
  });

  it('hands everything on once closing (Fastify answers 503 then)', async () => {
    const { send, direct } = await harness();
    direct.close();
    expect((await send({})).text).toBe('fastify');
  });
});
