import { describe, expect, it } from 'vitest';
import { MemoryResponseCache } from './memory-cache.js';
import type { CachedAnswer } from './types.js';

function answer(text: string): CachedAnswer {
  return {
    text,
    model: 'claude-test',
    stopReason: 'end_turn',
    inputTokens: 3,
    outputTokens: 5,
    toolEvents: [{ type: 'tool_use', name: 'search', input: { q: 'x' } }],
    cachedAt: 1_700_000_000_000,
  };
}

const bytesOf = (value: CachedAnswer) => Buffer.byteLength(JSON.stringify(value), 'utf8');

function fakeClock(start = 0) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

describe('MemoryResponseCache', () => {
  it('hits, misses and counts', async () => {
    const cache = new MemoryResponseCache();
    expect(await cache.get('k')).toBeUndefined();
    await cache.set('k', answer('hello'), 60_000);
    expect(await cache.get('k')).toEqual(answer('hello'));
    expect(cache.stats()).toEqual({
      backend: 'memory',
      entries: 1,
      bytes: bytesOf(answer('hello')),
      hits: 1,
      misses: 1,
      sets: 1,
      backendErrors: 0,
    });
  });

  it('returns copies, not the stored object', async () => {
    const cache = new MemoryResponseCache();
    const value = answer('a');
    await cache.set('k', value, 1000);
    value.text = 'mutated';
    const got = await cache.get('k');
    expect(got?.text).toBe('a');
    got!.text = 'mutated again';
    expect((await cache.get('k'))?.text).toBe('a');
  });

  it('expires entries by TTL using the injected clock', async () => {
    const clock = fakeClock(0); // a clock starting at 0 must still expire entries
    const cache = new MemoryResponseCache({ clock: clock.now });
    await cache.set('short', answer('s'), 1000);
    await cache.set('long', answer('l'), 5000);
    clock.advance(999);
    expect(await cache.get('short')).toBeDefined();
    clock.advance(2);
    expect(await cache.get('short')).toBeUndefined();
    expect(await cache.get('long')).toBeDefined();
    expect(cache.stats().entries).toBe(1);
    clock.advance(4000);
    expect(await cache.get('long')).toBeUndefined();
    expect(cache.stats()).toMatchObject({ entries: 0, bytes: 0 });
  });

  it('ignores unusable TTLs', async () => {
    const cache = new MemoryResponseCache();
    await cache.set('a', answer('a'), 0);
    await cache.set('b', answer('b'), Number.NaN);
    await cache.set('c', answer('c'), -5);
    expect(cache.stats()).toMatchObject({ entries: 0, sets: 0 });
  });

  it('evicts the least recently used entry beyond maxEntries', async () => {
    const cache = new MemoryResponseCache({ maxEntries: 3 });
    await cache.set('a', answer('a'), 60_000);
    await cache.set('b', answer('b'), 60_000);
    await cache.set('c', answer('c'), 60_000);
    await cache.get('a'); // a is now most recently used; b is the LRU
    await cache.set('d', answer('d'), 60_000);
    expect(await cache.get('b')).toBeUndefined();
    expect(await cache.get('a')).toBeDefined();
    expect(await cache.get('c')).toBeDefined();
    expect(await cache.get('d')).toBeDefined();
    expect(cache.stats().entries).toBe(3);
  });

  it('keeps total bytes within maxBytes', async () => {
    const one = bytesOf(answer('x'.repeat(100)));
    const maxBytes = one * 3 + 10;
    const cache = new MemoryResponseCache({ maxEntries: 100, maxBytes });
    for (let i = 0; i < 20; i++) {
      await cache.set(`k${i}`, answer(String(i % 10).repeat(100)), 60_000);
      expect(cache.stats().bytes).toBeLessThanOrEqual(maxBytes);
    }
    expect(cache.stats().entries).toBe(3);
    expect(await cache.get('k19')).toBeDefined();
    expect(await cache.get('k0')).toBeUndefined();

    // a value larger than the whole budget is refused and does not evict others
    await cache.set('huge', answer('y'.repeat(maxBytes)), 60_000);
    expect(await cache.get('huge')).toBeUndefined();
    expect(cache.stats()).toMatchObject({ entries: 3 });
    expect(cache.stats().bytes).toBeLessThanOrEqual(maxBytes);
  });

  it('counts multi-byte characters by their UTF-8 length', async () => {
    const cache = new MemoryResponseCache();
    const value = answer('héllo → 世界 🎉');
    await cache.set('u', value, 1000);
    expect(cache.stats().bytes).toBe(bytesOf(value));
    expect(cache.stats().bytes).toBeGreaterThan(JSON.stringify(value).length);
  });

  it('clear returns the number of entries removed and empties the cache', async () => {
    const cache = new MemoryResponseCache();
    await cache.set('a', answer('a'), 1000);
    await cache.set('b', answer('b'), 1000);
    expect(await cache.clear()).toBe(2);
    expect(cache.stats()).toMatchObject({ entries: 0, bytes: 0 });
    expect(await cache.get('a')).toBeUndefined();
    expect(await cache.clear()).toBe(0);
  });

  it('validates its bounds', () => {
    expect(() => new MemoryResponseCache({ maxEntries: 0 })).toThrow(RangeError);
    expect(() => new MemoryResponseCache({ maxBytes: -1 })).toThrow(RangeError);
  });
});
