import { afterEach, describe, expect, it, vi } from 'vitest';
import { CircuitOpenError } from '../errors.js';
import { FallbackChain } from './fallback-chain.js';
import { FallbackRegistry } from './registry.js';
import type { FallbackStepEvent } from './types.js';

const upstreamDown = Object.assign(new Error('overloaded'), { failureClass: 'retryable', errorType: 'overloaded_error' });
const badRequest = Object.assign(new Error('bad'), { failureClass: 'non_retryable', errorType: 'invalid_request_error' });
const aborted = Object.assign(new Error('gone'), { failureClass: 'aborted' });

function chainWith(events: FallbackStepEvent[] = []) {
  const chain = new FallbackChain<string, string>('chat', { onStep: (e) => events.push(e) });
  return chain;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('FallbackChain', () => {
  it('returns the primary result and counts it', async () => {
    const chain = chainWith();
    chain.register({ strategy: 'mock_response', priority: 2, enabled: true }, async () => 'mock');
    await expect(chain.execute('q', async () => 'live')).resolves.toEqual({ strategy: 'primary', result: 'live' });
    expect(chain.stats()).toMatchObject({ total_calls: 1, primary_success: 1, fallback_used: 0 });
  });

  it('runs steps in priority order, passing the reason, until one answers', async () => {
    const events: FallbackStepEvent[] = [];
    const chain = chainWith(events);
    const seen: string[] = [];
    chain.register({ strategy: 'mock_response', priority: 2, enabled: true }, async (input, reason) => {
      seen.push(`mock:${input}:${reason.type}`);
      return 'mock answer';
    });
    chain.register({ strategy: 'cached_response', priority: 1, enabled: true }, async () => {
      seen.push('cache');
      return undefined;
    });
    const outcome = await chain.execute('q', async () => {
      throw upstreamDown;
    });
    expect(outcome).toEqual({ strategy: 'mock_response', result: 'mock answer' });
    expect(seen).toEqual(['cache', 'mock:q:overloaded_error']);
    expect(events.map((e) => [e.strategy, e.outcome, e.reason])).toEqual([
      ['cached_response', 'no_answer', 'overloaded_error'],
      ['mock_response', 'answered', 'overloaded_error'],
    ]);
    expect(events.every((e) => e.durationMs >= 0)).toBe(true);
    expect(chain.stats()).toMatchObject({
      total_calls: 1,
      primary_success: 0,
      fallback_used: 1,
      cache_hits: 0,
      cache_misses: 1,
      total_failures: 0,
      strategies: { mock_response: 1 },
    });
  });

  it('counts a cache hit', async () => {
    const chain = chainWith();
    chain.register({ strategy: 'cached_response', priority: 1, enabled: true }, async () => 'cached');
    await chain.recover('q', upstreamDown);
    expect(chain.stats()).toMatchObject({ cache_hits: 1, cache_misses: 0, strategies: { cached_response: 1 } });
  });

  it('never falls back on a client error (a failure) or an abort (neither), and rethrows from execute', async () => {
    const chain = chainWith();
    const mock = vi.fn(async () => 'mock');
    chain.register({ strategy: 'mock_response', priority: 1, enabled: true }, mock);
    await expect(chain.execute('q', async () => Promise.reject(badRequest))).rejects.toBe(badRequest);
    await expect(chain.recover('q', aborted)).resolves.toBeUndefined();
    expect(mock).not.toHaveBeenCalled();
    expect(chain.stats()).toMatchObject({ total_calls: 2, total_failures: 1, not_eligible: 1 });
  });

  it('falls back on an open circuit', async () => {
    const chain = chainWith();
    chain.register({ strategy: 'mock_response', priority: 1, enabled: true }, async () => 'mock');
    await expect(chain.recover('q', new CircuitOpenError('claude_sdk', 1000))).resolves.toEqual({ strategy: 'mock_response', result: 'mock' });
  });

  it('skips disabled steps, survives a throwing step and reports total failure when none answers', async () => {
    const events: FallbackStepEvent[] = [];
    const chain = chainWith(events);
    chain.register({ strategy: 'alternative_provider', priority: 1, enabled: true }, async () => {
      throw new Error('also down');
    });
    chain.register({ strategy: 'mock_response', priority: 2, enabled: false }, async () => 'mock');
    await expect(chain.recover('q', upstreamDown)).resolves.toBeUndefined();
    expect(events.map((e) => [e.strategy, e.outcome])).toEqual([['alternative_provider', 'failed']]);
    expect(chain.stats()).toMatchObject({ total_failures: 1, fallback_used: 0 });
  });

  it('moves on when a step exceeds its timeout, aborting it', async () => {
    vi.useFakeTimers();
    const events: FallbackStepEvent[] = [];
    const chain = chainWith(events);
    let stepSignal: AbortSignal | undefined;
    chain.register({ strategy: 'alternative_provider', priority: 1, enabled: true, timeoutSeconds: 1 }, (_i, _r, signal) => {
      stepSignal = signal;
      return new Promise(() => undefined);
    });
    chain.register({ strategy: 'mock_response', priority: 2, enabled: true }, async () => 'mock');
    const pending = chain.recover('q', upstreamDown);
    await vi.advanceTimersByTimeAsync(1000);
    await expect(pending).resolves.toEqual({ strategy: 'mock_response', result: 'mock' });
    expect(stepSignal?.aborted).toBe(true);
    expect(events[0]).toMatchObject({ strategy: 'alternative_provider', outcome: 'timeout' });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('replaces a step registered again with the same strategy', async () => {
    const chain = chainWith();
    chain.register({ strategy: 'mock_response', priority: 1, enabled: true }, async () => 'old');
    chain.register({ strategy: 'mock_response', priority: 1, enabled: true }, async () => 'new');
    expect(chain.stats().steps).toHaveLength(1);
    await expect(chain.recover('q', upstreamDown)).resolves.toMatchObject({ result: 'new' });
  });
});

describe('FallbackRegistry', () => {
  it('keeps one chain per operation and reports stats for each', async () => {
    const registry = new FallbackRegistry();
    registry.register<string, string>('chat', { strategy: 'mock_response', priority: 1, enabled: true }, async () => 'm');
    registry.register<string, string>('session_creation', { strategy: 'mock_response', priority: 1, enabled: true }, async () => 's');
    await registry.chain<string, string>('chat').recover('q', upstreamDown);
    expect(Object.keys(registry.stats())).toEqual(['chat', 'session_creation']);
    expect(registry.stats().chat).toMatchObject({ fallback_used: 1 });
    expect(registry.stats().session_creation).toMatchObject({ total_calls: 0 });
  });
});
