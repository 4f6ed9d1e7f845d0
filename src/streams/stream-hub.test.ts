import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { StreamHub, type StreamHubOptions } from './stream-hub.js';
import type { TurnStream } from './turn-stream.js';

const RETENTION_MS = 60_000;

function hubWith(options: Partial<StreamHubOptions> = {}): StreamHub {
  return new StreamHub({ retentionMs: RETENTION_MS, maxFrames: 100, maxRetainedBytes: 1_000_000, shared: null, ...options });
}

/**
 * Opens a turn and writes one text frame of `size` characters into it (all ASCII: one byte each). The
 * frame carries the session id, so turns compared by size use session ids of the same length.
 */
function openWith(hub: StreamHub, turnId: string, sessionId: string, size = 10): TurnStream {
  const stream = hub.open(turnId, sessionId);
  void stream.send({ type: 'text_chunk', content: 'x'.repeat(size) });
  return stream;
}

let hub: StreamHub;

afterEach(() => {
  hub?.close();
  vi.useRealTimers();
});

describe('StreamHub lookups', () => {
  it('open registers the turn: local, latestTurn and reader find it', async () => {
    hub = hubWith();
    const stream = hub.open('t1', 's1');
    expect(stream.turnId).toBe('t1');
    expect(stream.sessionId).toBe('s1');
    expect(hub.local('t1')).toBe(stream);
    expect(await hub.latestTurn('s1')).toBe('t1');

    const reader = await hub.reader('t1');
    expect(reader?.turnId).toBe('t1');
    expect(reader?.sessionId).toBe('s1');
    expect(stream.readerCount).toBe(1);
    reader!.release();
    expect(stream.readerCount).toBe(0);
  });

  it('the latest turn is per session and follows the last opened turn', async () => {
    hub = hubWith();
    hub.open('a1', 'sa');
    hub.open('b1', 'sb');
    hub.open('a2', 'sa');
    expect(await hub.latestTurn('sa')).toBe('a2');
    expect(await hub.latestTurn('sb')).toBe('b1');
    expect(hub.stats()).toEqual({ turns: 3, finishedTurns: 0, finishedBytes: 0 });
  });

  it('without a shared log, unknown turns and sessions are null and every writer claim succeeds', async () => {
    hub = hubWith({ shared: null });
    expect(hub.local('nope')).toBeUndefined();
    expect(await hub.latestTurn('nope')).toBeNull();
    expect(await hub.reader('nope')).toBeNull();
    expect(await hub.claim('s1', 't1')).toBe(true);
    expect(await hub.claim('s1', 't2')).toBe(true);
    hub.release('s1', 't1');
  });

  it('a reader of a stream reads what the turn writes', async () => {
    hub = hubWith();
    const stream = openWith(hub, 't1', 's1', 3);
    const reader = (await hub.reader('t1'))!;
    const batch = await reader.read(0, new AbortController().signal);
    expect(batch.frames).toEqual([{ seq: 1, data: JSON.stringify({ type: 'text_chunk', session_id: 's1', content: 'xxx' }) }]);
    stream.end();
    expect((await reader.read(1, new AbortController().signal)).ended).toBe(true);
    reader.release();
  });
});

describe('StreamHub retention', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });

  it('keeps a finished turn for retentionMs after it ends, then forgets it', async () => {
    hub = hubWith();
    const stream = openWith(hub, 't1', 's1', 10);
    vi.advanceTimersByTime(RETENTION_MS * 3); // running: never expires
    expect(hub.local('t1')).toBe(stream);

    stream.end();
    expect(hub.stats()).toEqual({ turns: 1, finishedTurns: 1, finishedBytes: stream.byteSize });
    vi.advanceTimersByTime(RETENTION_MS - 1);
    expect(hub.local('t1')).toBe(stream);
    expect(await hub.latestTurn('s1')).toBe('t1');

    vi.advanceTimersByTime(1);
    expect(hub.local('t1')).toBeUndefined();
    expect(await hub.reader('t1')).toBeNull();
    expect(await hub.latestTurn('s1')).toBeNull();
    expect(hub.stats()).toEqual({ turns: 0, finishedTurns: 0, finishedBytes: 0 });
  });

  it('an expiring older turn leaves the session pointing at its newer turn', async () => {
    hub = hubWith();
    const first = openWith(hub, 't1', 's1');
    first.end();
    vi.advanceTimersByTime(1000);
    const second = openWith(hub, 't2', 's1');
    expect(await hub.latestTurn('s1')).toBe('t2');

    vi.advanceTimersByTime(RETENTION_MS);
    expect(hub.local('t1')).toBeUndefined();
    expect(hub.local('t2')).toBe(second);
    expect(await hub.latestTurn('s1')).toBe('t2');

    second.end();
    vi.advanceTimersByTime(RETENTION_MS);
    expect(await hub.latestTurn('s1')).toBeNull();
  });

  it('expiry of one session leaves the other sessions alone', async () => {
    hub = hubWith();
    openWith(hub, 'a1', 'sa').end();
    vi.advanceTimersByTime(RETENTION_MS / 2);
    openWith(hub, 'b1', 'sb').end();
    vi.advanceTimersByTime(RETENTION_MS / 2);
    expect(await hub.latestTurn('sa')).toBeNull();
    expect(await hub.latestTurn('sb')).toBe('b1');
    vi.advanceTimersByTime(RETENTION_MS / 2);
    expect(await hub.latestTurn('sb')).toBeNull();
  });

  it('a reader taken before expiry keeps reading the whole answer', async () => {
    hub = hubWith();
    const stream = openWith(hub, 't1', 's1', 4);
    const reader = (await hub.reader('t1'))!;
    stream.end();
    vi.advanceTimersByTime(RETENTION_MS);
    expect(hub.local('t1')).toBeUndefined();
    const batch = await reader.read(0, new AbortController().signal);
    expect(batch.frames).toHaveLength(1);
    expect(batch.ended).toBe(true);
    reader.release();
  });

  it('close cancels the pending expiries', () => {
    hub = hubWith();
    openWith(hub, 't1', 's1').end();
    openWith(hub, 't2', 's2').end();
    expect(vi.getTimerCount()).toBe(2);
    hub.close();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('StreamHub maxRetainedBytes', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });

  it('drops the oldest finished turns first once finished turns exceed the bound', async () => {
    const size = openWith(hubWith(), 'probe', 'sp', 100).byteSize;
    hub = hubWith({ maxRetainedBytes: size * 2 + size / 2 });
    const a = openWith(hub, 'a', 'sa', 100);
    const b = openWith(hub, 'b', 'sb', 100);
    const c = openWith(hub, 'c', 'sc', 100);
    const d = openWith(hub, 'd', 'sd', 100);
    a.end();
    b.end();
    expect(hub.stats()).toEqual({ turns: 4, finishedTurns: 2, finishedBytes: 2 * size });

    c.end(); // 3 finished turns do not fit: the oldest finished (a) goes
    expect(hub.local('a')).toBeUndefined();
    expect(await hub.latestTurn('sa')).toBeNull();
    expect([hub.local('b'), hub.local('c'), hub.local('d')]).toEqual([b, c, d]);
    expect(hub.stats()).toEqual({ turns: 3, finishedTurns: 2, finishedBytes: 2 * size });

    d.end();
    expect(hub.local('b')).toBeUndefined();
    expect([hub.local('c'), hub.local('d')]).toEqual([c, d]);
    expect(hub.stats()).toEqual({ turns: 2, finishedTurns: 2, finishedBytes: 2 * size });
  });

  it('evicts by end order, not by open order', () => {
    const size = openWith(hubWith(), 'probe', 'sp', 100).byteSize;
    hub = hubWith({ maxRetainedBytes: size * 2 });
    const a = openWith(hub, 'a', 'sa', 100);
    const b = openWith(hub, 'b', 'sb', 100);
    const c = openWith(hub, 'c', 'sc', 100);
    b.end();
    a.end();
    c.end();
    expect(hub.local('b')).toBeUndefined();
    expect(hub.local('a')).toBe(a);
    expect(hub.local('c')).toBe(c);
  });

  it('never evicts running turns, however large', () => {
    const size = openWith(hubWith(), 'probe', 'sp', 100).byteSize;
    hub = hubWith({ maxRetainedBytes: size });
    const running = openWith(hub, 'big', 's0', 50_000);
    const a = openWith(hub, 'a', 'sa', 100);
    const b = openWith(hub, 'b', 'sb', 100);
    a.end();
    b.end();
    expect(hub.local('big')).toBe(running);
    expect(hub.local('a')).toBeUndefined();
    expect(hub.local('b')).toBe(b);
    expect(hub.stats()).toEqual({ turns: 2, finishedTurns: 1, finishedBytes: size });
  });

  it('a turn that alone exceeds the bound is kept (until its retention) and pushes out all older finished turns', async () => {
    const size = openWith(hubWith(), 'probe', 'sp', 100).byteSize;
    hub = hubWith({ maxRetainedBytes: size * 3 });
    const a = openWith(hub, 'a', 'sa', 100);
    const b = openWith(hub, 'b', 'sb', 100);
    const big = openWith(hub, 'big', 'sbig', 10_000);
    a.end();
    b.end();
    big.end();
    expect(hub.local('a')).toBeUndefined();
    expect(hub.local('b')).toBeUndefined();
    expect(hub.local('big')).toBe(big);
    expect(hub.stats()).toEqual({ turns: 1, finishedTurns: 1, finishedBytes: big.byteSize });
    // Evicted turns' expiry timers are gone; the kept one still expires on time.
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(RETENTION_MS);
    expect(hub.local('big')).toBeUndefined();
    expect(await hub.latestTurn('sbig')).toBeNull();
    expect(hub.stats()).toEqual({ turns: 0, finishedTurns: 0, finishedBytes: 0 });
  });

  it('bytes of expired turns are given back to the budget', () => {
    const size = openWith(hubWith(), 'probe', 'sp', 100).byteSize;
    hub = hubWith({ maxRetainedBytes: size * 2 });
    openWith(hub, 'a', 'sa', 100).end();
    openWith(hub, 'b', 'sb', 100).end();
    vi.advanceTimersByTime(RETENTION_MS);
    expect(hub.stats()).toEqual({ turns: 0, finishedTurns: 0, finishedBytes: 0 });
    const c = openWith(hub, 'c', 'sc', 100);
    const d = openWith(hub, 'd', 'sd', 100);
    c.end();
    d.end();
    expect([hub.local('c'), hub.local('d')]).toEqual([c, d]);
    expect(hub.stats().finishedBytes).toBe(2 * size);
  });
});
