/**
 * streamFrames against a real HTTP server on 127.0.0.1 (format, resuming, completion, disconnects, and
 * clients that stop reading), plus a fake response whose "client" takes data only when told to, for the
 * exact backlog and stall boundaries.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Frame } from '../chat/frames.js';
import type { FrameSource } from '../streams/frame-source.js';
import { TurnStream } from '../streams/turn-stream.js';
import { openEventStream, streamFrames, type ClientBufferLimits, type StreamEnd } from './sse-stream.js';
import { track } from '../../test/support/track-promise.js';

const NO_LIMITS: ClientBufferLimits = { maxBacklogBytes: 2 ** 40, stallMs: 0 };

const text = (content: string): Frame => ({ type: 'text_chunk', content });

function turnWith(chunks: string[], maxFrames = 100_000): TurnStream {
  const stream = new TurnStream('t1', 's1', maxFrames);
  for (const chunk of chunks) void stream.send(text(chunk));
  return stream;
}

/** The exact bytes streamFrames writes for the frames of `stream` after `afterSeq`. */
function eventsOf(stream: TurnStream, afterSeq: number): string {
  return stream
    .framesAfter(afterSeq)
    .frames.map((f) => `id: t1:${f.seq}\ndata: ${f.data}\n\n`)
    .join('');
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

// ---------------------------------------------------------------------------------------------
// A real server

const servers: http.Server[] = [];
const sockets: net.Socket[] = [];

afterEach(async () => {
  vi.useRealTimers();
  for (const socket of sockets.splice(0)) socket.destroy();
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

interface Served {
  port: number;
  /** What streamFrames returned. */
  end: Promise<StreamEnd>;
  /** The server side of the (single) connection. */
  response: Promise<ServerResponse>;
}

async function serve(source: FrameSource, afterSeq: number, limits: ClientBufferLimits): Promise<Served> {
  let gotResponse!: (res: ServerResponse) => void;
  const response = new Promise<ServerResponse>((resolve) => (gotResponse = resolve));
  let settle!: { resolve: (end: StreamEnd) => void; reject: (error: unknown) => void };
  const end = new Promise<StreamEnd>((resolve, reject) => (settle = { resolve, reject }));
  const server = http.createServer((_req, res) => {
    openEventStream(res, { 'x-turn-id': source.turnId });
    gotResponse(res);
    streamFrames(res, source, afterSeq, limits).then(settle.resolve, settle.reject);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, end, response };
}

interface Client {
  readonly body: string;
  readonly headers: IncomingHttpHeaders;
  /** Resolves when the response ended normally (with its trailers), rejects when it was cut. */
  finished: Promise<IncomingMessage>;
  disconnect(): void;
}

/** A client that reads everything as it comes. */
async function connect(port: number): Promise<Client> {
  let body = '';
  const req = http.get({ host: '127.0.0.1', port, path: '/' });
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => (body += chunk));
  const finished = new Promise<IncomingMessage>((resolve, reject) => {
    res.once('end', () => resolve(res));
    res.once('aborted', () => reject(new Error('aborted')));
    res.once('error', reject);
    req.once('error', reject);
  });
  finished.catch(() => undefined);
  return {
    get body() {
      return body;
    },
    headers: res.headers,
    finished,
    disconnect: () => req.destroy(),
  };
}

/** A client that sends the request and then never reads a byte of the answer. */
function connectWithoutReading(port: number): net.Socket {
  const socket = net.connect(port, '127.0.0.1');
  sockets.push(socket);
  socket.on('error', () => undefined);
  socket.pause();
  socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  return socket;
}

describe('streamFrames over HTTP', () => {
  it('sends every frame as `id: <turn>:<seq>` and `data: <json>`, then ends the response with complete', async () => {
    const stream = turnWith(['one', 'two']);
    void stream.send({ type: 'done', mode: 'live' });
    stream.end();
    const reader = stream.reader();
    const served = await serve(reader, 0, NO_LIMITS);
    const client = await connect(served.port);
    await client.finished;

    expect(await served.end).toBe('complete');
    expect(client.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(client.headers['x-turn-id']).toBe('t1');
    expect(client.body).toBe(
      'id: t1:1\ndata: {"type":"text_chunk","session_id":"s1","content":"one"}\n\n' +
        'id: t1:2\ndata: {"type":"text_chunk","session_id":"s1","content":"two"}\n\n' +
        'id: t1:3\ndata: {"type":"done","session_id":"s1","mode":"live"}\n\n',
    );
    expect(stream.readerCount).toBe(0);
  });

  it('resumes after afterSeq', async () => {
    const stream = turnWith(['a', 'b', 'c', 'd']);
    stream.end();
    const served = await serve(stream.reader(), 2, NO_LIMITS);
    const client = await connect(served.port);
    await client.finished;
    expect(await served.end).toBe('complete');
    expect(client.body).toBe(eventsOf(stream, 2));
    expect(client.body.startsWith('id: t1:3\n')).toBe(true);
  });

  it('completes with an empty body when the client already has the last frame', async () => {
    const stream = turnWith(['a', 'b']);
    stream.end();
    const served = await serve(stream.reader(), 2, NO_LIMITS);
    const client = await connect(served.port);
    await client.finished;
    expect(await served.end).toBe('complete');
    expect(client.body).toBe('');
  });

  it('streams live frames as the turn appends them, and completes only after the last one', async () => {
    const stream = turnWith(['first']);
    const served = await serve(stream.reader(), 0, NO_LIMITS);
    const end = track(served.end);
    const client = await connect(served.port);
    await until(() => client.body.includes('id: t1:1\n'), 'the first frame');
    expect(end.settled()).toBe(false);

    void stream.send(text('second'));
    await until(() => client.body.includes('id: t1:2\n'), 'the second frame');
    void stream.send({ type: 'done' });
    stream.end();
    await client.finished;
    expect(await served.end).toBe('complete');
    expect(client.body).toBe(eventsOf(stream, 0));
  });

  it('sends the fallback strategy as a trailer', async () => {
    const stream = turnWith(['a']);
    stream.setFallbackStrategy('cached');
    stream.end();
    const served = await serve(stream.reader(), 0, NO_LIMITS);
    const client = await connect(served.port);
    const res = await client.finished;
    expect(await served.end).toBe('complete');
    expect(client.headers.trailer).toBe('x-fallback-strategy');
    expect(res.trailers['x-fallback-strategy']).toBe('cached');
  });

  it("returns 'client_gone' when the client disconnects while waiting for frames; the turn goes on", async () => {
    const stream = turnWith(['a']);
    const served = await serve(stream.reader(), 0, NO_LIMITS);
    const end = track(served.end);
    const client = await connect(served.port);
    await until(() => client.body.includes('id: t1:1\n'), 'the first frame');
    expect(stream.readerCount).toBe(1);
    await tick();
    expect(end.settled()).toBe(false);

    client.disconnect();
    expect(await served.end).toBe('client_gone');
    expect(stream.readerCount).toBe(0);
    await stream.send(text('b'));
    expect(stream.lastSeq).toBe(2);
  });

  it("cuts the client off with 'gap' when the frames it needs were trimmed", async () => {
    const stream = turnWith(['a', 'b', 'c', 'd', 'e'], 2);
    const served = await serve(stream.reader(), 1, NO_LIMITS);
    const client = await connect(served.port);
    await expect(client.finished).rejects.toThrow();
    expect(await served.end).toBe('gap');
    expect(client.body).toBe('');
    expect((await served.response).destroyed).toBe(true);
    expect(stream.readerCount).toBe(0);
  });

  it("ends a lost log with a stream_lost error frame and no done ('lost')", async () => {
    const release = vi.fn();
    const source: FrameSource = {
      turnId: 't1',
      sessionId: 's1',
      fallbackStrategy: undefined,
      position: async () => 'ok',
      read: async () => ({ frames: [{ seq: 4, data: '{"type":"text_chunk","session_id":"s1","content":"x"}' }], ended: false, gap: false, lost: true }),
      backlogBytes: () => 0,
      onAppend: () => () => undefined,
      release,
    };
    const served = await serve(source, 3, NO_LIMITS);
    const client = await connect(served.port);
    await client.finished;
    expect(await served.end).toBe('lost');
    const events = client.body.split('\n\n').filter(Boolean);
    expect(events).toHaveLength(2);
    expect(events[0]).toBe('id: t1:4\ndata: {"type":"text_chunk","session_id":"s1","content":"x"}');
    expect(events[1]!.startsWith('data: ')).toBe(true);
    expect(JSON.parse(events[1]!.slice('data: '.length))).toMatchObject({ type: 'error', session_id: 's1', error_type: 'stream_lost', recoverable: true });
    expect(client.body).not.toContain('"done"');
    expect(release).toHaveBeenCalledTimes(1);
  });

  it("cuts off a client that reads nothing while the answer grows past maxBacklogBytes ('slow_client')", async () => {
    const maxBacklogBytes = 1 << 20;
    const stream = turnWith([]);
    const served = await serve(stream.reader(), 0, { maxBacklogBytes, stallMs: 0 });
    const end = track(served.end);
    connectWithoutReading(served.port);
    const res = await served.response;

    // 64 KiB frames until the socket refuses more and the answer then grows by more than the bound.
    const chunk = 'x'.repeat(64 * 1024);
    const cap = 2000; // 128 MiB: far more than any socket buffers
    let appended = 0;
    while (!end.settled() && appended < cap) {
      await stream.send(text(chunk));
      appended++;
      await tick();
    }
    expect(await served.end).toBe('slow_client');
    expect(appended).toBeLessThan(cap);
    expect(appended * chunk.length).toBeGreaterThan(maxBacklogBytes);
    expect(res.destroyed).toBe(true);
    expect(stream.readerCount).toBe(0);
    // The answer goes on without that client.
    expect(stream.closed).toBe(false);
    await stream.send(text('more'));
    expect(stream.lastSeq).toBe(appended + 1);
  });

  it("cuts off a client whose socket refuses data for stallMs ('slow_client')", async () => {
    const stallMs = 200;
    const stream = turnWith([]);
    const served = await serve(stream.reader(), 0, { maxBacklogBytes: 2 ** 40, stallMs });
    const end = track(served.end);
    connectWithoutReading(served.port);
    const res = await served.response;

    const chunk = 'y'.repeat(64 * 1024);
    let appended = 0;
    while (!res.writableNeedDrain && appended < 2000) {
      await stream.send(text(chunk));
      appended++;
      await tick();
    }
    expect(res.writableNeedDrain).toBe(true);
    const blockedAt = Date.now();
    expect(end.settled()).toBe(false);
    expect(await served.end).toBe('slow_client');
    const waited = Date.now() - blockedAt;
    expect(waited).toBeGreaterThanOrEqual(stallMs / 2);
    expect(waited).toBeLessThan(10_000);
    expect(res.destroyed).toBe(true);
    expect(stream.readerCount).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// A fake response: the client takes data only when `take()` is called

class FakeResponse extends Writable {
  written = '';
  trailers: Record<string, string> = {};
  private pending: (() => void)[] = [];

  constructor(private accepting: boolean) {
    // A 1-byte buffer: every write of a refusing client reports back-pressure at once.
    super({ highWaterMark: accepting ? 1 << 30 : 1, decodeStrings: false });
  }

  override _write(chunk: unknown, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.written += String(chunk);
    if (this.accepting) callback();
    else this.pending.push(() => callback());
  }

  /** The client takes everything written so far (and then keeps taking). */
  take(): void {
    this.accepting = true;
    for (const done of this.pending.splice(0)) done();
  }

  /** The client stops taking data. */
  refuse(): void {
    this.accepting = false;
  }

  addTrailers(headers: Record<string, string>): void {
    Object.assign(this.trailers, headers);
  }

  asServerResponse(): ServerResponse {
    return this as unknown as ServerResponse;
  }
}

/** A text frame whose serialized form is exactly `bytes` long. */
function frameOfSize(bytes: number): Frame {
  const overhead = JSON.stringify({ type: 'text_chunk', session_id: 's1', content: '' }).length;
  return text('z'.repeat(bytes - overhead));
}

describe('streamFrames back-pressure bounds', () => {
  it('waits for drain and then goes on to the end', async () => {
    const stream = turnWith(['a', 'b', 'c']);
    stream.end();
    const res = new FakeResponse(false);
    const end = track(streamFrames(res.asServerResponse(), stream.reader(), 0, NO_LIMITS));
    await tick();
    expect(end.settled()).toBe(false);
    expect(res.written).toBe(eventsOf(stream, 0).split('\n\n')[0] + '\n\n');
    res.take();
    expect(await end.promise).toBe('complete');
    expect(res.written).toBe(eventsOf(stream, 0));
  });

  it('does not count the frames already logged (a replay), only what the answer grows by while blocked', async () => {
    const stream = new TurnStream('t1', 's1', 1000);
    for (let i = 0; i < 10; i++) void stream.send(frameOfSize(1000)); // 10 kB already logged
    const res = new FakeResponse(false);
    const end = track(streamFrames(res.asServerResponse(), stream.reader(), 0, { maxBacklogBytes: 2500, stallMs: 0 }));
    await tick();
    expect(res.written.split('\n\n').filter(Boolean)).toHaveLength(1); // blocked after the first frame

    void stream.send(frameOfSize(1000));
    void stream.send(frameOfSize(1000));
    await tick();
    expect(end.settled()).toBe(false); // grew by 2000 <= 2500
    void stream.send(frameOfSize(1000));
    expect(await end.promise).toBe('slow_client'); // grew by 3000 > 2500
    expect(res.destroyed).toBe(true);
    expect(stream.readerCount).toBe(0);
  });

  it('a client that takes data in time is never cut off, however much the answer grows', async () => {
    const stream = turnWith([]);
    const res = new FakeResponse(false);
    const end = track(streamFrames(res.asServerResponse(), stream.reader(), 0, { maxBacklogBytes: 2500, stallMs: 0 }));
    for (let i = 0; i < 50; i++) {
      void stream.send(frameOfSize(1000));
      await tick();
      res.take(); // takes what was written...
      res.refuse(); // ...then refuses again
      await tick();
      expect(end.settled()).toBe(false);
    }
    stream.end();
    res.take();
    expect(await end.promise).toBe('complete');
    expect(res.written).toBe(eventsOf(stream, 0));
  });

  it("returns 'client_gone' when the connection closes while blocked on a full socket", async () => {
    const stream = turnWith(['a', 'b']);
    const res = new FakeResponse(false);
    const end = track(streamFrames(res.asServerResponse(), stream.reader(), 0, NO_LIMITS));
    await tick();
    expect(end.settled()).toBe(false);
    res.destroy();
    expect(await end.promise).toBe('client_gone');
    expect(stream.readerCount).toBe(0);
  });

  it('waiting for the turn with nothing to send is not a stall', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const stream = turnWith(['a']);
    const res = new FakeResponse(true);
    const end = track(streamFrames(res.asServerResponse(), stream.reader(), 0, { maxBacklogBytes: 2 ** 40, stallMs: 1000 }));
    await vi.advanceTimersByTimeAsync(10_000);
    expect(end.settled()).toBe(false);
    expect(res.written).toBe(eventsOf(stream, 0));
    stream.end();
    expect(await end.promise).toBe('complete');
    expect(stream.readerCount).toBe(0);
  });

  it("cuts off a client whose socket refuses data for stallMs ('slow_client'), not earlier", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const stream = turnWith(['a', 'b']);
    const res = new FakeResponse(false);
    const end = track(streamFrames(res.asServerResponse(), stream.reader(), 0, { maxBacklogBytes: 2 ** 40, stallMs: 1000 }));
    await vi.advanceTimersByTimeAsync(999);
    expect(end.settled()).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await end.promise).toBe('slow_client');
    expect(res.destroyed).toBe(true);
    expect(stream.readerCount).toBe(0);
  });

  it('the stall timer restarts with every drain', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const stream = turnWith(['a', 'b', 'c']);
    stream.end();
    const res = new FakeResponse(false);
    const end = track(streamFrames(res.asServerResponse(), stream.reader(), 0, { maxBacklogBytes: 2 ** 40, stallMs: 1000 }));
    for (let i = 0; i < 2; i++) {
      await vi.advanceTimersByTimeAsync(800);
      res.take(); // drains frame i + 1 ...
      res.refuse(); // ... and blocks again on the next one
      await vi.advanceTimersByTimeAsync(0);
    }
    await vi.advanceTimersByTimeAsync(800);
    expect(end.settled()).toBe(false); // 2400 ms in total, never 1000 ms without a drain
    res.take();
    expect(await end.promise).toBe('complete');
    expect(res.written).toBe(eventsOf(stream, 0));
  });

  it('stallMs 0 never cuts a blocked client off by time', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const stream = turnWith(['a', 'b']);
    stream.end();
    const res = new FakeResponse(false);
    const end = track(streamFrames(res.asServerResponse(), stream.reader(), 0, { maxBacklogBytes: 2 ** 40, stallMs: 0 }));
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(end.settled()).toBe(false);
    res.take();
    expect(await end.promise).toBe('complete');
  });

  // STREAM_CLIENT_MAX_BACKLOG_BYTES: "A client that takes nothing while its answer grows by this many bytes
  // is disconnected". Once the log trims past a blocked client's position, it can never be served again
  // (its next read is a gap), yet the backlog it is measured by stops growing.
  it('cuts off a blocked client when the answer grows past the bound even after the log trimmed past its position', async () => {
    const stream = new TurnStream('t1', 's1', 16);
    for (let i = 0; i < 16; i++) void stream.send(frameOfSize(1000)); // a 16-frame replay
    const res = new FakeResponse(false);
    const end = track(streamFrames(res.asServerResponse(), stream.reader(), 0, { maxBacklogBytes: 4000, stallMs: 0 }));
    await tick();
    expect(res.written.split('\n\n').filter(Boolean)).toHaveLength(1); // blocked at seq 1

    for (let i = 0; i < 40 && !end.settled(); i++) {
      void stream.send(frameOfSize(1000)); // 40 kB of growth: ten times the bound
      await tick();
    }
    expect(stream.canResumeAfter(1)).toBe(false);
    expect(end.settled()).toBe(true);
    expect(await end.promise).toBe('slow_client');
  });
});
