import { describe, expect, it, vi } from 'vitest';
import { CircuitOpenError } from '../errors.js';
import { CircuitBreaker } from './circuit-breaker.js';
import { CircuitBreakerRegistry, DEFAULT_BREAKERS, registerDefaultBreakers } from './registry.js';
import type { CircuitBreakerConfig, CircuitTransition } from './types.js';

const CONFIG: CircuitBreakerConfig = { failureThreshold: 2, timeoutSeconds: 10, successThreshold: 1, halfOpenMaxCalls: 1 };

function manualClock() {
  const clock = { ms: 0, now: () => clock.ms };
  return clock;
}

const trip = (breaker: CircuitBreaker) => {
  for (let i = 0; i < breaker.config.failureThreshold; i++) breaker.acquire().failure(new Error('down'));
};

describe('CircuitBreakerRegistry', () => {
  it('registers, gets and lists breakers by name', () => {
    const registry = new CircuitBreakerRegistry();
    const a = registry.register('a', CONFIG);
    const b = registry.register('b', { ...CONFIG, failureThreshold: 5 });
    expect(a).toBeInstanceOf(CircuitBreaker);
    expect(a.name).toBe('a');
    expect(registry.get('a')).toBe(a);
    expect(registry.get('missing')).toBeUndefined();
    expect(registry.list()).toEqual([a, b]);
  });

  it('returns the existing breaker when the same config is registered again', () => {
    const registry = new CircuitBreakerRegistry();
    const first = registry.register('a', CONFIG);
    trip(first);
    expect(registry.register('a', { ...CONFIG })).toBe(first);
    expect(registry.get('a')!.state).toBe('open');
  });

  it('refuses a different config for an existing name unless asked to replace', () => {
    const clock = manualClock();
    const registry = new CircuitBreakerRegistry({ clock });
    const first = registry.register('a', CONFIG);
    expect(() => registry.register('a', { ...CONFIG, failureThreshold: 9 })).toThrow(/'a' is already registered with a different config/);
    expect(registry.get('a')).toBe(first);

    const seen: CircuitTransition[] = [];
    registry.onTransition((t) => seen.push(t));
    const second = registry.register('a', { ...CONFIG, failureThreshold: 9 }, { replace: true });
    expect(second).not.toBe(first);
    expect(registry.get('a')).toBe(second);
    expect(second.config.failureThreshold).toBe(9);
    expect(registry.list()).toEqual([second]);
    // The replaced breaker is detached: its transitions no longer reach the registry's listeners.
    trip(first);
    expect(seen).toEqual([]);
    trip(second);
    expect(seen).toEqual([{ circuitName: 'a', from: 'closed', to: 'open', failureCount: 9, reason: 'threshold' }]);
  });

  it('compares sliding-window settings too', () => {
    const registry = new CircuitBreakerRegistry();
    const sliding: CircuitBreakerConfig = { ...CONFIG, slidingWindow: { type: 'count', size: 10, minimumCalls: 5, failureRateThreshold: 50 } };
    const breaker = registry.register('a', sliding);
    expect(registry.register('a', { ...sliding, slidingWindow: { ...sliding.slidingWindow! } })).toBe(breaker);
    expect(() => registry.register('a', CONFIG)).toThrow();
    expect(() => registry.register('a', { ...sliding, slidingWindow: { ...sliding.slidingWindow!, type: 'time' } })).toThrow();
  });

  it('require throws a clear error for an unknown name', () => {
    const registry = new CircuitBreakerRegistry();
    expect(() => registry.require('claude_sdk')).toThrow("No circuit breaker registered as 'claude_sdk' (registered: none)");
    const a = registry.register('a', CONFIG);
    expect(registry.require('a')).toBe(a);
    expect(() => registry.require('b')).toThrow("(registered: 'a')");
  });

  it('stats gives a pure snapshot of every breaker by name', () => {
    const clock = manualClock();
    const registry = new CircuitBreakerRegistry({ clock });
    trip(registry.register('a', CONFIG));
    registry.register('b', CONFIG);
    clock.ms = 10_000;
    const stats = registry.stats();
    expect(Object.keys(stats)).toEqual(['a', 'b']);
    expect(stats.a).toMatchObject({ name: 'a', state: 'open', canExecute: true });
    expect(stats.b).toMatchObject({ name: 'b', state: 'closed' });
    expect(registry.get('a')!.state).toBe('open');
  });

  it('reset closes one breaker and reports whether it existed; resetAll closes all', () => {
    const registry = new CircuitBreakerRegistry();
    const a = registry.register('a', CONFIG);
    const b = registry.register('b', CONFIG);
    trip(a);
    trip(b);
    expect(registry.reset('a')).toBe(true);
    expect(registry.reset('nope')).toBe(false);
    expect([a.state, b.state]).toEqual(['closed', 'open']);
    b.forceOpen();
    registry.resetAll();
    expect([a.state, b.state]).toEqual(['closed', 'closed']);
  });

  it('hears transitions of breakers registered before and after subscribing, until unsubscribed', () => {
    const registry = new CircuitBreakerRegistry();
    const before = registry.register('before', CONFIG);
    const seen: string[] = [];
    const off = registry.onTransition((t) => seen.push(`${t.circuitName}:${t.to}:${t.reason}`));
    const after = registry.register('after', CONFIG);
    trip(before);
    trip(after);
    expect(seen).toEqual(['before:open:threshold', 'after:open:threshold']);
    off();
    registry.resetAll();
    expect(seen).toHaveLength(2);
  });

  it('a throwing listener keeps neither the others nor the breaker from working', () => {
    const registry = new CircuitBreakerRegistry();
    registry.onTransition(() => {
      throw new Error('listener bug');
    });
    const other = vi.fn();
    registry.onTransition(other);
    const breaker = registry.register('a', CONFIG);
    trip(breaker);
    expect(other).toHaveBeenCalledTimes(1);
    expect(() => breaker.acquire()).toThrow(CircuitOpenError);
  });

  it('passes default options to breakers, overridable per breaker', () => {
    const shared = manualClock();
    const own = manualClock();
    const registry = new CircuitBreakerRegistry({ clock: shared });
    const a = registry.register('a', CONFIG);
    const b = registry.register('b', CONFIG, { clock: own });
    trip(a);
    trip(b);
    shared.ms = 10_000;
    expect(a.stats().canExecute).toBe(true);
    expect(b.stats().canExecute).toBe(false);
  });
});

describe('registerDefaultBreakers', () => {
  it('registers claude_sdk and session_operations with the documented defaults', () => {
    expect(DEFAULT_BREAKERS).toEqual({
      claude_sdk: { failureThreshold: 3, timeoutSeconds: 30, successThreshold: 2, halfOpenMaxCalls: 1 },
      session_operations: { failureThreshold: 5, timeoutSeconds: 60, successThreshold: 2, halfOpenMaxCalls: 1 },
    });
    expect(Object.isFrozen(DEFAULT_BREAKERS.claude_sdk)).toBe(true);
    const registry = new CircuitBreakerRegistry();
    const { claude_sdk, session_operations } = registerDefaultBreakers(registry);
    expect(registry.require('claude_sdk')).toBe(claude_sdk);
    expect(registry.require('session_operations')).toBe(session_operations);
    expect(claude_sdk.config).toEqual(DEFAULT_BREAKERS.claude_sdk);
    expect(session_operations.config).toEqual(DEFAULT_BREAKERS.session_operations);
  });

  it('applies partial overrides on top of the defaults; undefined keeps the default', () => {
    const registry = new CircuitBreakerRegistry();
    registerDefaultBreakers(registry, {
      claude_sdk: { failureThreshold: 10 },
      session_operations: { timeoutSeconds: 5, failureThreshold: undefined },
    });
    expect(registry.require('claude_sdk').config).toEqual({ ...DEFAULT_BREAKERS.claude_sdk, failureThreshold: 10 });
    expect(registry.require('session_operations').config).toEqual({ ...DEFAULT_BREAKERS.session_operations, timeoutSeconds: 5 });
  });

  it('is idempotent with the same overrides and refuses conflicting ones', () => {
    const registry = new CircuitBreakerRegistry();
    const first = registerDefaultBreakers(registry);
    expect(registerDefaultBreakers(registry)).toEqual(first);
    expect(() => registerDefaultBreakers(registry, { claude_sdk: { failureThreshold: 1 } })).toThrow(/claude_sdk/);
  });
});
