import type { FastifyRequest } from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { SessionScope } from '../auth/identity.js';
import { MemoryIdempotencyStore } from '../coordination/idempotency/memory-idempotency.js';
import { HttpError } from './http-error.js';
import { claimIdempotencyKey, idempotencyKeyOf, type IdempotencyClaim, type IdempotencySettings } from './idempotency.js';
import { track } from '../../test/support/track-promise.js';

const ROUTE = 'POST /api/chat';
const alice: SessionScope = { owner: 'alice', all: false };
const bob: SessionScope = { owner: 'bob', all: false };

function settingsWith(overrides: Partial<IdempotencySettings> = {}): IdempotencySettings {
  return { store: new MemoryIdempotencyStore(), ttlMs: 86_400_000, waitMs: 1000, ...overrides };
}

function expectNew(claim: IdempotencyClaim): asserts claim is Extract<IdempotencyClaim, { kind: 'new' }> {
  expect(claim.kind).toBe('new');
}

async function rejection(promise: Promise<unknown>): Promise<HttpError> {
  const error = await promise.then(
    () => expect.unreachable('expected a rejection'),
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(HttpError);
  return error as HttpError;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('claimIdempotencyKey', () => {
  it('the first claim is new; a repeat after complete gets the stored outcome', async () => {
    const settings = settingsWith();
    const first = await claimIdempotencyKey(settings, alice, ROUTE, 'key-1', { message: 'hi' });
    expectNew(first);
    await first.complete({ session_id: 's1', turn_id: 'u1' });
    expect(await claimIdempotencyKey(settings, alice, ROUTE, 'key-1', { message: 'hi' })).toEqual({ kind: 'repeat', result: { session_id: 's1', turn_id: 'u1' } });
  });

  it('a concurrent repeat waits while the first is pending, then gets its outcome', async () => {
    vi.useFakeTimers();
    const settings = settingsWith({ waitMs: 5000 });
    const first = await claimIdempotencyKey(settings, alice, ROUTE, 'key-1', { message: 'hi' });
    expectNew(first);

    const second = track(claimIdempotencyKey(settings, alice, ROUTE, 'key-1', { message: 'hi' }));
    await vi.advanceTimersByTimeAsync(500);
    expect(second.settled()).toBe(false);

    await first.complete('outcome');
    await vi.advanceTimersByTimeAsync(20);
    expect(second.settled()).toBe(true);
    expect(await second.promise).toEqual({ kind: 'repeat', result: 'outcome' });
  });

  it('stores the reservation with a pending TTL and the outcome with settings.ttlMs', async () => {
    const store = new MemoryIdempotencyStore();
    const reserve = vi.spyOn(store, 'reserve');
    const complete = vi.spyOn(store, 'complete');
    const claim = await claimIdempotencyKey(settingsWith({ store, ttlMs: 1234 }), alice, ROUTE, 'key-1', {});
    expectNew(claim);
    await claim.complete('r');
    const [scoped, fingerprint, pendingTtl] = reserve.mock.calls[0]!;
    expect(pendingTtl).toBeGreaterThan(0);
    expect(complete).toHaveBeenCalledWith(scoped, fingerprint, 'r', 1234);
    // The store sees a scoped digest, never the raw client key.
    expect(scoped).toMatch(/^[0-9a-f]{64}$/);
  });

  it('the same key with another body is a 422, whether the first is pending or done', async () => {
    const settings = settingsWith();
    const first = await claimIdempotencyKey(settings, alice, ROUTE, 'key-1', { message: 'hi' });
    expectNew(first);
    const pending = await rejection(claimIdempotencyKey(settings, alice, ROUTE, 'key-1', { message: 'other' }));
    expect(pending.statusCode).toBe(422);
    expect(pending.type).toBe('idempotency_key_reused');

    await first.complete('r');
    const done = await rejection(claimIdempotencyKey(settings, alice, ROUTE, 'key-1', { message: 'hi', extra: 1 }));
    expect(done.statusCode).toBe(422);
    expect(done.type).toBe('idempotency_key_reused');
  });

  it('fingerprints bodies stably: key order and undefined fields do not matter, array order and values do', async () => {
    const settings = settingsWith();
    const first = await claimIdempotencyKey(settings, alice, ROUTE, 'key-1', { a: 1, b: { c: 'x', d: [1, { y: 2, z: null }] }, e: undefined });
    expectNew(first);
    await first.complete('r');
    expect(await claimIdempotencyKey(settings, alice, ROUTE, 'key-1', { b: { d: [1, { z: null, y: 2 }], c: 'x' }, a: 1 })).toEqual({ kind: 'repeat', result: 'r' });

    for (const other of [
      { a: 1, b: { c: 'x', d: [{ y: 2, z: null }, 1] } },
      { a: '1', b: { c: 'x', d: [1, { y: 2, z: null }] } },
      { a: 1, b: { c: 'x', d: [1, { y: 2 }] } },
      { a: 1, b: { c: 'x', d: [1, { y: 2, z: null }] }, e: null },
    ]) {
      expect((await rejection(claimIdempotencyKey(settings, alice, ROUTE, 'key-1', other))).statusCode).toBe(422);
    }
  });

  it('keys are scoped by owner and by route', async () => {
    const settings = settingsWith();
    const claims = [
      await claimIdempotencyKey(settings, alice, ROUTE, 'key-1', { m: 1 }),
      await claimIdempotencyKey(settings, bob, ROUTE, 'key-1', { m: 2 }),
      await claimIdempotencyKey(settings, { owner: null, all: true }, ROUTE, 'key-1', { m: 3 }),
      await claimIdempotencyKey(settings, alice, 'POST /api/new-session', 'key-1', { m: 4 }),
    ];
    expect(claims.map((c) => c.kind)).toEqual(['new', 'new', 'new', 'new']);
    for (const [i, claim] of claims.entries()) {
      expectNew(claim);
      await claim.complete(`r${i}`);
    }
    expect(await claimIdempotencyKey(settings, bob, ROUTE, 'key-1', { m: 2 })).toEqual({ kind: 'repeat', result: 'r1' });
    expect(await claimIdempotencyKey(settings, alice, 'POST /api/new-session', 'key-1', { m: 4 })).toEqual({ kind: 'repeat', result: 'r3' });
    // Another key of the same caller and route is a new request.
    expect((await claimIdempotencyKey(settings, alice, ROUTE, 'key-2', { m: 1 })).kind).toBe('new');
  });

  it('a key still pending after waitMs is a 409 with Retry-After', async () => {
    vi.useFakeTimers();
    const settings = settingsWith({ waitMs: 300 });
    expectNew(await claimIdempotencyKey(settings, alice, ROUTE, 'key-1', { m: 1 }));

    const repeat = track(claimIdempotencyKey(settings, alice, ROUTE, 'key-1', { m: 1 }));
    const error = rejection(repeat.promise);
    await vi.advanceTimersByTimeAsync(250);
    expect(repeat.settled()).toBe(false);
    await vi.advanceTimersByTimeAsync(100);
    expect(repeat.settled()).toBe(true);
    const conflict = await error;
    expect(conflict.statusCode).toBe(409);
    expect(conflict.type).toBe('idempotency_key_in_progress');
    expect(conflict.headers).toEqual({ 'retry-after': '1' });
  });

  it('with waitMs 0 a pending key is a 409 at once', async () => {
    const settings = settingsWith({ waitMs: 0 });
    expectNew(await claimIdempotencyKey(settings, alice, ROUTE, 'key-1', {}));
    expect((await rejection(claimIdempotencyKey(settings, alice, ROUTE, 'key-1', {}))).statusCode).toBe(409);
  });

  it('release lets a retry claim the key as new, also one that was waiting', async () => {
    vi.useFakeTimers();
    const settings = settingsWith({ waitMs: 5000 });
    const first = await claimIdempotencyKey(settings, alice, ROUTE, 'key-1', { m: 1 });
    expectNew(first);
    const waiting = track(claimIdempotencyKey(settings, alice, ROUTE, 'key-1', { m: 1 }));
    await vi.advanceTimersByTimeAsync(100);
    expect(waiting.settled()).toBe(false);

    await first.release();
    await vi.advanceTimersByTimeAsync(20);
    const retry = await waiting.promise;
    expectNew(retry);
    await retry.complete('second try');
    expect(await claimIdempotencyKey(settings, alice, ROUTE, 'key-1', { m: 1 })).toEqual({ kind: 'repeat', result: 'second try' });
  });

  it('after a release a retry with another body is new too', async () => {
    const settings = settingsWith();
    const first = await claimIdempotencyKey(settings, alice, ROUTE, 'key-1', { m: 1 });
    expectNew(first);
    await first.release();
    expect((await claimIdempotencyKey(settings, alice, ROUTE, 'key-1', { m: 2 })).kind).toBe('new');
  });
});

describe('idempotencyKeyOf', () => {
  const requestWith = (headers: Record<string, string | string[] | undefined>) => ({ headers }) as unknown as FastifyRequest;

  function invalid(headers: Record<string, string | string[] | undefined>): HttpError {
    let caught: unknown;
    try {
      idempotencyKeyOf(requestWith(headers));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(HttpError);
    return caught as HttpError;
  }

  it('is undefined without the header', () => {
    expect(idempotencyKeyOf(requestWith({}))).toBeUndefined();
    expect(idempotencyKeyOf(requestWith({ 'idempotency-key': undefined }))).toBeUndefined();
  });

  it('returns a well-formed key as is', () => {
    expect(idempotencyKeyOf(requestWith({ 'idempotency-key': '6f1c2a9e-8b4d-4c3e-9f7a-1b2c3d4e5f60' }))).toBe('6f1c2a9e-8b4d-4c3e-9f7a-1b2c3d4e5f60');
    expect(idempotencyKeyOf(requestWith({ 'idempotency-key': 'k' }))).toBe('k');
    expect(idempotencyKeyOf(requestWith({ 'idempotency-key': '!~'.repeat(127) + 'x' }))).toHaveLength(255);
  });

  it('takes the first of repeated headers', () => {
    expect(idempotencyKeyOf(requestWith({ 'idempotency-key': ['first', 'second'] }))).toBe('first');
  });

  it.each([
    ['empty', ''],
    ['too long', 'k'.repeat(256)],
    ['with a space', 'my key'],
    ['with a tab', 'my\tkey'],
    ['non-ASCII', 'clé'],
    ['with a control character', 'key\x7f'],
  ])('rejects a key that is %s with a 400', (_why, key) => {
    const error = invalid({ 'idempotency-key': key });
    expect(error.statusCode).toBe(400);
    expect(error.type).toBe('invalid_idempotency_key');
  });

  it('rejects an empty list of headers with a 400', () => {
    expect(invalid({ 'idempotency-key': [] }).statusCode).toBe(400);
  });
});
