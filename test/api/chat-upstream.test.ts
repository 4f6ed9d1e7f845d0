import { describe, expect, it } from 'vitest';
import type { MessagesRequestBody } from '../support/fake-anthropic.js';
import { useFakeAnthropic } from '../support/fake-anthropic-suite.js';
import { chat, collectFrames, postChat, readFrames, textOf, type ChatFrame } from '../support/sse-client.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

let server: TestServer;
const anthropic = useFakeAnthropic(() => server);

// Retries and fallbacks are off here: these tests look at single upstream outcomes.
const env = () => ({ ANTHROPIC_API_KEY: 'sk-test-key', ANTHROPIC_BASE_URL: anthropic.fake.url, CLAUDE_MODEL: 'claude-sonnet-4-6', RETRY_MAX_RETRIES: '0', CHAT_FALLBACKS: 'none' });

async function history(sessionId: string, base = server.url) {
  const res = await fetch(`${base}/api/session-history/${sessionId}`);
  expect(res.status).toBe(200);
  return (await res.json()) as { messages: { role: string; content: string; status: string; error: string | null; input_tokens: number; output_tokens: number; cost_usd: number }[]; total_messages: number };
}

function types(frames: ChatFrame[]): string[] {
  return frames.map((f) => f.type);
}

/** Opens a chat stream and resolves once the first text chunk has arrived. */
async function chatUntilFirstChunk(body: unknown, signal?: AbortSignal) {
  const response = await postChat(server.url, body, signal);
  const iterator = readFrames(response);
  const seen: ChatFrame[] = [];
  for (;;) {
    const next = await iterator.next();
    if (next.done) throw new Error(`stream ended before any text: ${JSON.stringify(seen)}`);
    seen.push(next.value);
    if (next.value.type === 'text_chunk') break;
  }
  return { response, iterator, seen };
}

async function drain(iterator: AsyncGenerator<ChatFrame>, seen: ChatFrame[]) {
  for (;;) {
    const next = await iterator.next();
    if (next.done) return seen;
    seen.push(next.value);
  }
}


describe('chat against the Anthropic fake', () => {
  it('sends the whole history in order with the session settings, and stores the reply', async () => {
    server = await startTestServer({ env: env() });
    const created = await fetch(`${server.url}/api/session-with-config`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ system_prompt: 'Be brief.', model: 'claude-haiku-4-5', max_tokens: 321, temperature: 0.2 }),
    });
    const { session_id } = (await created.json()) as { session_id: string };

    const first = await chat(server.url, { message: 'first question', session_id });
    expect(types(first.frames)).toEqual(['processing', ...Array(textOf(first.frames) ? first.frames.length - 3 : 0).fill('text_chunk'), 'result', 'done']);
    expect(textOf(first.frames)).toBe('Echo: first question');
    await chat(server.url, { message: 'second question', session_id });

    const upstream = anthropic.fake.requests.filter((r) => r.path === '/v1/messages');
    expect(upstream).toHaveLength(2);
    const body = upstream[1]?.body as MessagesRequestBody;
    expect(body.messages).toEqual([
      { role: 'user', content: 'first question' },
      { role: 'assistant', content: 'Echo: first question' },
      { role: 'user', content: 'second question' },
    ]);
    expect(body).toMatchObject({ model: 'claude-haiku-4-5', max_tokens: 321, temperature: 0.2, system: 'Be brief.', stream: true });
    expect(upstream[1]?.headers.authorization).toBe('Bearer sk-test-key');

    const stored = await history(session_id);
    expect(stored.messages.map((m) => [m.role, m.content, m.status])).toEqual([
      ['user', 'first question', 'complete'],
      ['assistant', 'Echo: first question', 'complete'],
      ['user', 'second question', 'complete'],
      ['assistant', 'Echo: second question', 'complete'],
    ]);
  });

  it('reports usage, model, cost and live mode in the result frame', async () => {
    server = await startTestServer({ env: env() });
    const { frames } = await chat(server.url, { message: 'price this' });
    const result = frames.find((f) => f.type === 'result');
    expect(result).toMatchObject({ model: 'claude-sonnet-4-6', mode: 'live', stop_reason: 'end_turn' });
    const input = Number(result?.input_tokens);
    const output = Number(result?.output_tokens);
    expect(input).toBeGreaterThan(0);
    expect(output).toBeGreaterThan(0);
    expect(result?.cost_usd).toBeCloseTo((input * 3 + output * 15) / 1_000_000, 10);
    const stored = await history(String(result?.session_id));
    expect(stored.messages[1]).toMatchObject({ input_tokens: input, output_tokens: output, status: 'complete' });
  });

  it('keeps the history across a restart on the same database file', async () => {
    server = await startTestServer({ env: env() });
    const { frames } = await chat(server.url, { message: 'remember me' });
    const sessionId = frames[0]?.session_id as string;
    const dbPath = server.dbPath;
    await server.stop();

    const restarted = await startTestServer({ env: env(), dbPath });
    try {
      const stored = await history(sessionId, restarted.url);
      expect(stored.total_messages).toBe(2);
      expect(stored.messages.map((m) => [m.role, m.content])).toEqual([
        ['user', 'remember me'],
        ['assistant', 'Echo: remember me'],
      ]);
      await chat(restarted.url, { message: 'and now?', session_id: sessionId });
      const last = anthropic.fake.requests[anthropic.fake.requests.length - 1]?.body as MessagesRequestBody;
      expect(last.messages.map((m) => m.content)).toEqual(['remember me', 'Echo: remember me', 'and now?']);
    } finally {
      await restarted.stop();
    }
  });

  it('ends an upstream 400 with an error frame then done, and stores the answer as not complete', async () => {
    server = await startTestServer({ env: env() });
    anthropic.fake.enqueueFault({ kind: 'status', status: 400, message: 'max_tokens: too large' });
    const { response, frames } = await chat(server.url, { message: 'bad request please' });
    expect(response.status).toBe(200);
    expect(types(frames)).toEqual(['processing', 'error', 'done']);
    expect(frames[1]).toMatchObject({ error_type: 'invalid_request_error', recoverable: false });
    const stored = await history(frames[0]?.session_id as string);
    expect(stored.messages.map((m) => [m.role, m.status])).toEqual([
      ['user', 'complete'],
      ['assistant', 'error'],
    ]);
    expect(stored.messages[1]?.error).toBe('invalid_request_error');
  });

  it.each([
    [{ kind: 'status', status: 429, retryAfterSeconds: 3 } as const, 'rate_limit_error', true],
    [{ kind: 'status', status: 500 } as const, 'api_error', true],
    [{ kind: 'status', status: 529 } as const, 'overloaded_error', true],
    [{ kind: 'status', status: 401 } as const, 'authentication_error', false],
    [{ kind: 'reset_before_headers' } as const, 'connection_error', true],
  ])('classifies %o before any output as %s (recoverable %s)', async (fault, errorType, recoverable) => {
    server = await startTestServer({ env: env() });
    anthropic.fake.enqueueFault(fault);
    const { frames } = await chat(server.url, { message: 'will fail' });
    expect(types(frames)).toEqual(['processing', 'error', 'done']);
    expect(frames[1]).toMatchObject({ error_type: errorType, recoverable });
  });

  it.each([
    [{ kind: 'cut_mid_stream', afterChunks: 2 } as const, 'stream_cut'],
    [{ kind: 'error_event', afterChunks: 2, errorType: 'overloaded_error' } as const, 'overloaded_error'],
    [{ kind: 'malformed_event', afterChunks: 2 } as const, 'malformed_event'],
  ])('never passes off a broken stream (%o) as finished', async (fault, errorType) => {
    server = await startTestServer({ env: env() });
    anthropic.fake.setReply('one two three four five six seven');
    anthropic.fake.enqueueFault(fault);
    const { frames } = await chat(server.url, { message: 'break midway' });
    expect(types(frames).slice(-2)).toEqual(['error', 'done']);
    expect(types(frames)).not.toContain('result');
    expect(frames.at(-2)).toMatchObject({ error_type: errorType, recoverable: true });
    expect(textOf(frames)).toBe('one two ');
    const stored = await history(frames[0]?.session_id as string);
    expect(stored.messages[1]).toMatchObject({ role: 'assistant', content: 'one two ', status: 'incomplete', error: errorType });
  });

  it('interrupt aborts the upstream call, ends the stream with a terminal frame and done, stores the partial reply as incomplete', async () => {
    server = await startTestServer({ env: env() });
    anthropic.fake.setReply('alpha beta gamma delta epsilon zeta eta theta iota kappa');
    anthropic.fake.setChunkDelayMs(40);
    const { iterator, seen } = await chatUntilFirstChunk({ message: 'long answer please' });
    const sessionId = seen[0]?.session_id as string;

    const interrupt = await fetch(`${server.url}/api/interrupt`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ session_id: sessionId }),
    });
    expect(await interrupt.json()).toEqual({ status: 'interrupted', session_id: sessionId, interrupted: true });
    const frames = await drain(iterator, seen);

    expect(types(frames).slice(-2)).toEqual(['error', 'done']);
    expect(frames.at(-2)).toMatchObject({ error_type: 'interrupted', recoverable: true });
    expect(frames.filter((f) => f.type === 'done')).toHaveLength(1);
    await anthropic.fake.waitFor((f) => f.requests.some((r) => r.path === '/v1/messages' && r.clientClosed));
    const stored = await history(sessionId);
    const assistant = stored.messages[1];
    expect(assistant?.status).toBe('incomplete');
    expect(assistant?.content).toBe(textOf(frames));
    expect(assistant?.content.length).toBeLessThan('alpha beta gamma delta epsilon zeta eta theta iota kappa'.length);
    // The session is free again once the interrupted turn ended.
    const idle = await fetch(`${server.url}/api/interrupt`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ session_id: sessionId }),
    });
    expect(await idle.json()).toMatchObject({ status: 'idle', interrupted: false });
  });

  it('with STREAM_ON_DISCONNECT=abort, a client that disconnects mid-stream aborts the upstream call and leaves an incomplete message', async () => {
    server = await startTestServer({ env: { ...env(), STREAM_ON_DISCONNECT: 'abort' } });
    anthropic.fake.setReply('one two three four five six seven eight nine ten');
    anthropic.fake.setChunkDelayMs(40);
    const controller = new AbortController();
    const { seen } = await chatUntilFirstChunk({ message: 'going away' }, controller.signal);
    const sessionId = seen[0]?.session_id as string;
    controller.abort();

    await anthropic.fake.waitFor((f) => f.requests.some((r) => r.path === '/v1/messages' && r.clientClosed));
    await expect.poll(async () => (await history(sessionId)).messages.length).toBe(2);
    const stored = await history(sessionId);
    expect(stored.messages[1]).toMatchObject({ role: 'assistant', status: 'incomplete', error: 'client_disconnected' });
    expect(server.app.turns.size).toBe(0);
    expect(server.logs.some((l) => l.event === 'client_disconnected' && l.generation === 'aborted')).toBe(true);
  });

  it('by default, a client that disconnects mid-stream does not stop the answer: it completes into history', async () => {
    server = await startTestServer({ env: env() });
    const reply = 'one two three four five six seven eight nine ten';
    anthropic.fake.setReply(reply);
    anthropic.fake.setChunkDelayMs(20);
    const controller = new AbortController();
    const { seen } = await chatUntilFirstChunk({ message: 'going away' }, controller.signal);
    const sessionId = seen[0]?.session_id as string;
    controller.abort();

    await expect.poll(async () => (await history(sessionId)).messages[1]?.status).toBe('complete');
    expect((await history(sessionId)).messages[1]).toMatchObject({ role: 'assistant', content: reply, error: null });
    const upstream = anthropic.fake.requests.filter((r) => r.path === '/v1/messages');
    expect(upstream).toHaveLength(1);
    expect(upstream[0]).toMatchObject({ clientClosed: false, completed: true });
    expect(server.logs.some((l) => l.event === 'client_disconnected' && l.generation === 'continues')).toBe(true);
    // The turn outlived its response; its lines still name the request (the request context is held).
    await expect.poll(() => server.logs.some((l) => l.event === 'chat_turn_completed' && l.session_id === sessionId)).toBe(true);
    const turnLines = server.logs.filter((l) => l.session_id === sessionId && ['chat_turn_started', 'client_disconnected', 'chat_turn_completed'].includes(String(l.event)));
    expect(turnLines.map((l) => l.event)).toEqual(expect.arrayContaining(['chat_turn_started', 'client_disconnected', 'chat_turn_completed']));
    const ids = new Set(turnLines.map((l) => l.request_id));
    expect(ids.size).toBe(1);
    expect([...ids][0]).toEqual(expect.any(String));
  });

  it('refuses a second message to a session that is still answering with 409', async () => {
    server = await startTestServer({ env: env() });
    anthropic.fake.setReply('slow slow slow slow slow slow');
    anthropic.fake.setChunkDelayMs(30);
    const { iterator, seen } = await chatUntilFirstChunk({ message: 'first' });
    const sessionId = seen[0]?.session_id as string;
    const second = await postChat(server.url, { message: 'second', session_id: sessionId });
    expect(second.status).toBe(409);
    expect(await second.json()).toMatchObject({ error: { type: 'turn_in_progress' } });
    const frames = await drain(iterator, seen);
    expect(types(frames).slice(-2)).toEqual(['result', 'done']);
    expect((await history(sessionId)).total_messages).toBe(2);
  });

  it('clearing a session mid-reply interrupts the reply first: session_cleared then done, and the history ends up empty', async () => {
    server = await startTestServer({ env: env() });
    anthropic.fake.setReply('a b c d e f g h i j k l');
    anthropic.fake.setChunkDelayMs(30);
    const { iterator, seen } = await chatUntilFirstChunk({ message: 'clear me' });
    const sessionId = seen[0]?.session_id as string;
    const cleared = await fetch(`${server.url}/api/clear`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ session_id: sessionId }),
    });
    expect(cleared.status).toBe(200);
    // The interrupted reply was stored before the clear, so both messages are deleted by it.
    expect(await cleared.json()).toMatchObject({ status: 'cleared', deleted_messages: 2 });
    const frames = await drain(iterator, seen);
    expect(types(frames).slice(-2)).toEqual(['error', 'done']);
    expect(frames.at(-2)).toMatchObject({ error_type: 'session_cleared', recoverable: false });
    await anthropic.fake.waitFor((f) => f.requests.some((r) => r.clientClosed));
    expect((await history(sessionId)).messages).toEqual([]);
    // The session is free for the next message at once.
    const next = await chat(server.url, { message: 'again', session_id: sessionId });
    expect(types(next.frames).slice(-2)).toEqual(['result', 'done']);
  });

  it('changing the config mid-reply interrupts the reply first (session_reconfigured, stored incomplete), then applies', async () => {
    server = await startTestServer({ env: env() });
    anthropic.fake.setReply('a b c d e f g h i j k l');
    anthropic.fake.setChunkDelayMs(30);
    const { iterator, seen } = await chatUntilFirstChunk({ message: 'reconfigure me' });
    const sessionId = seen[0]?.session_id as string;
    const updated = await fetch(`${server.url}/api/session/${sessionId}/config`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ system_prompt: 'Be brief.' }),
    });
    expect(updated.status).toBe(200);
    const frames = await drain(iterator, seen);
    expect(frames.at(-2)).toMatchObject({ type: 'error', error_type: 'session_reconfigured', recoverable: true });
    const stored = await history(sessionId);
    expect(stored.messages[1]).toMatchObject({ role: 'assistant', status: 'incomplete', error: 'session_reconfigured' });
    expect(stored.messages[1]?.content).toBe(textOf(frames));
  });

  it('deleting a session mid-reply ends its stream with session_deleted then done', async () => {
    server = await startTestServer({ env: env() });
    anthropic.fake.setReply('a b c d e f g h i j k l');
    anthropic.fake.setChunkDelayMs(30);
    const { iterator, seen } = await chatUntilFirstChunk({ message: 'delete me' });
    const sessionId = seen[0]?.session_id as string;
    expect((await fetch(`${server.url}/api/session/${sessionId}`, { method: 'DELETE' })).status).toBe(200);
    const frames = await drain(iterator, seen);
    expect(types(frames).slice(-2)).toEqual(['error', 'done']);
    expect(frames.at(-2)).toMatchObject({ error_type: 'session_deleted', recoverable: false });
    await anthropic.fake.waitFor((f) => f.requests.some((r) => r.clientClosed));
    expect((await fetch(`${server.url}/api/session-history/${sessionId}`)).status).toBe(404);
    expect(server.app.store.listMessages(sessionId, { limit: 10 })).toEqual([]);
  });

  it('streams tool use as tool_use frames and stores it with the message', async () => {
    server = await startTestServer({ env: env() });
    anthropic.fake.setToolUse({ name: 'get_weather', input: { city: 'Paris' }, id: 'toolu_1' });
    const { frames } = await chat(server.url, { message: 'weather?' });
    const toolUse = frames.find((f) => f.type === 'tool_use');
    expect(toolUse).toMatchObject({ tool_use_id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } });
    expect(frames.find((f) => f.type === 'result')).toMatchObject({ stop_reason: 'tool_use' });
    const res = await fetch(`${server.url}/api/session-history/${frames[0]?.session_id}`);
    const body = (await res.json()) as { messages: { tool_events: unknown[] }[] };
    expect(body.messages[1]?.tool_events).toEqual([{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }]);
  });

  it('never writes the prompt or the API key into the logs', async () => {
    server = await startTestServer({ env: env() });
    await collectFrames(await postChat(server.url, { message: 'my secret prompt text' }));
    const text = JSON.stringify(server.logs);
    expect(text).not.toContain('my secret prompt text');
    expect(text).not.toContain('sk-test-key');
    expect(server.logs.some((l) => l.event === 'chat_turn_completed')).toBe(true);
  });
});
