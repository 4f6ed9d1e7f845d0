import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMPONENT_OF } from '../../src/observability/events.js';
import { collectFrames } from '../support/sse-client.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.destroy();
});

describe('structured logs', () => {
  it('tags every line written while serving a request with its X-Request-ID', async () => {
    const before = server.logs.length;
    const res = await fetch(`${server.url}/api/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'req-abc-123' },
      body: JSON.stringify({ message: 'trace me' }),
    });
    expect(res.headers.get('x-request-id')).toBe('req-abc-123');
    await collectFrames(res);
    await expect.poll(() => server.logs.slice(before).some((l) => l.event === 'http_request')).toBe(true);
    const lines = server.logs.slice(before);
    const events = lines.map((l) => l.event);
    expect(events).toEqual(expect.arrayContaining(['session_created', 'chat_turn_started', 'chat_turn_completed', 'http_request']));
    for (const line of lines) expect(line.request_id, JSON.stringify(line)).toBe('req-abc-123');
  });

  it('generates a request id when none (or an unusable one) is given', async () => {
    const res = await fetch(`${server.url}/heartbeat`, { headers: { 'x-request-id': 'bad id with spaces' } });
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('gives every catalogued event its component', async () => {
    await fetch(`${server.url}/api/new-session`, { method: 'POST' });
    const catalogued = server.logs.filter((l) => typeof l.event === 'string' && COMPONENT_OF.has(l.event));
    expect(catalogued.length).toBeGreaterThan(3);
    for (const line of catalogued) expect(line.component, JSON.stringify(line)).toBe(COMPONENT_OF.get(String(line.event)));
  });

  it('never writes an Authorization header, API key, cookie or message text', async () => {
    const res = await fetch(`${server.url}/api/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer secret-token-xyz', 'x-api-key': 'key-987', cookie: 'sid=cookie-555' },
      body: JSON.stringify({ message: 'my private words' }),
    });
    await collectFrames(res);
    const text = JSON.stringify(server.logs);
    for (const secret of ['secret-token-xyz', 'key-987', 'cookie-555', 'my private words']) expect(text).not.toContain(secret);
  });
});
