/**
 * TTLs are checked with real (short) time: lru-cache reads the clock through the `performance` object
 * it captured when it was loaded, which vi.useFakeTimers() replaces rather than patches, so fake timers
 * do not move its clock. Expiry is only asserted well past the TTL, and "still there" only with TTLs of
 * minutes, so no test depends on how fast the machine is.
 */
import { describe, expect, it } from 'vitest';
import { MemoryIdempotencyStore } from './memory-idempotency.js';

const MINUTE = 60_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('MemoryIdempotencyStore', () => {
  it('reserves a new key once; later reservations get the pending record', async () => {
    const store = new MemoryIdempotencyStore();
    expect(store.backend).toBe('memory');
    expect(await store.reserve('k', 'fp1', MINUTE)).toBeNull();
    expect(await store.reserve('k', 'fp1', MINUTE)).toEqual({ state: 'pending', fingerprint: 'fp1' });
    // Another fingerprint does not take the key over: it sees the first one's record.
    expect(await store.reserve('k', 'fp2', MINUTE)).toEqual({ state: 'pending', fingerprint: 'fp1' });
    expect(await store.get('k')).toEqual({ state: 'pending', fingerprint: 'fp1' });
  });

  it('keeps keys apart', async () => {
    const store = new MemoryIdempotencyStore();
    expect(await store.reserve('a', 'fp', MINUTE)).toBeNull();
    expect(await store.reserve('b', 'fp', MINUTE)).toBeNull();
    expect(await store.get('c')).toBeNull();
  });

  it('complete stores the outcome, which reserve and get then return', async () => {
    const store = new MemoryIdempotencyStore();
    await store.reserve('k', 'fp', MINUTE);
    const result = { status: 201, body: { session_id: 's1' } };
    await store.complete('k', 'fp', result, MINUTE);
    expect(await store.get('k')).toEqual({ state: 'done', fingerprint: 'fp', result });
    expect(await store.reserve('k', 'fp', MINUTE)).toEqual({ state: 'done', fingerprint: 'fp', result });
    // A reservation of a done key does not turn it back into pending.
    expect(await store.get('k')).toEqual({ state: 'done', fingerprint: 'fp', result });
  });

  it('complete works without a prior reservation (the Redis store mirrors outcomes into memory)', async () => {
    const store = new MemoryIdempotencyStore();
    store.completeSync('k', 'fp', 'r', MINUTE);
    expect(store.reserveSync('k', 'fp', MINUTE)).toEqual({ state: 'done', fingerprint: 'fp', result: 'r' });
  });

  it('release forgets the key so that a retry can reserve it again', async () => {
    const store = new MemoryIdempotencyStore();
    await store.reserve('k', 'fp', MINUTE);
    await store.release('k');
    expect(await store.get('k')).toBeNull();
    expect(await store.reserve('k', 'fp', MINUTE)).toBeNull();
    await store.release('never-reserved');
    expect(await store.get('never-reserved')).toBeNull();
  });

  it('a pending reservation expires after its pending TTL', async () => {
    const store = new MemoryIdempotencyStore();
    expect(await store.reserve('short', 'fp', 20)).toBeNull();
    expect(await store.reserve('long', 'fp', 10 * MINUTE)).toBeNull();
    await sleep(80);
    expect(await store.get('short')).toBeNull();
    expect(await store.reserve('short', 'fp2', MINUTE)).toBeNull();
    expect(await store.get('short')).toEqual({ state: 'pending', fingerprint: 'fp2' });
    expect(await store.get('long')).toEqual({ state: 'pending', fingerprint: 'fp' });
  });

  it('complete replaces the pending TTL with the outcome TTL', async () => {
    const store = new MemoryIdempotencyStore();
    await store.reserve('kept', 'fp', 20);
    await store.complete('kept', 'fp', 'r1', 10 * MINUTE);
    await store.reserve('dropped', 'fp', 10 * MINUTE);
    await store.complete('dropped', 'fp', 'r2', 20);
    await sleep(80);
    expect(await store.get('kept')).toEqual({ state: 'done', fingerprint: 'fp', result: 'r1' });
    expect(await store.get('dropped')).toBeNull();
  });

  it('holds at most maxKeys, evicting the least recently used', async () => {
    const store = new MemoryIdempotencyStore(2);
    await store.reserve('a', 'fp', MINUTE);
    await store.reserve('b', 'fp', MINUTE);
    await store.get('a'); // a is now more recent than b
    await store.reserve('c', 'fp', MINUTE);
    expect(await store.get('b')).toBeNull();
    expect(await store.get('a')).not.toBeNull();
    expect(await store.get('c')).not.toBeNull();
  });

  it('close forgets every key', async () => {
    const store = new MemoryIdempotencyStore();
    await store.reserve('a', 'fp', MINUTE);
    await store.complete('b', 'fp', 1, MINUTE);
    await store.close();
    expect(await store.get('a')).toBeNull();
    expect(await store.get('b')).toBeNull();
  });
});
