import { describe, expect, it } from 'vitest';
import {
  executeWithFallback,
  FallbackRegistry,
  registerFallback,
  CircuitBreakerRegistry,
  CircuitOpenError,
  getCircuitBreaker,
  listCircuitBreakers,
  protectedExecuteWithRetry,
  registerCircuitBreaker,
  resetCircuitBreaker,
  withCircuitBreaker,
  withRetry,
} from './index.js';

const failing = (failureClass: 'retryable' | 'non_retryable') => Object.assign(new Error(failureClass), { failureClass });

describe('programmatic API', () => {
  it('registerCircuitBreaker fills missing settings from the defaults and is listed', () => {
    const registry = new CircuitBreakerRegistry();
    const breaker = registerCircuitBreaker('payments', { failureThreshold: 2 }, {}, registry);
    expect(breaker.config).toMatchObject({ failureThreshold: 2, timeoutSeconds: 30, successThreshold: 2 });
    expect(getCircuitBreaker('payments', registry)).toBe(breaker);
    expect(Object.keys(listCircuitBreakers(registry))).toEqual(['payments']);
  });

  it('withCircuitBreaker opens after the threshold and then rejects without calling', async () => {
    const registry = new CircuitBreakerRegistry();
    registerCircuitBreaker('search', { failureThreshold: 2 }, {}, registry);
    let calls = 0;
    const search = withCircuitBreaker('search', registry)(async (q: string) => {
      calls++;
      throw failing('retryable');
      return q;
    });
    await expect(search('a')).rejects.toThrow('retryable');
    await expect(search('b')).rejects.toThrow('retryable');
    await expect(search('c')).rejects.toBeInstanceOf(CircuitOpenError);
    expect(calls).toBe(2);
    expect(resetCircuitBreaker('search', registry)).toBe(true);
    await expect(search('d')).rejects.toThrow('retryable');
    expect(calls).toBe(3);
  });

  it('withCircuitBreaker registers an unknown name with default settings and passes arguments', async () => {
    const registry = new CircuitBreakerRegistry();
    const add = withCircuitBreaker('math', registry)((a: number, b: number) => a + b);
    await expect(add(2, 3)).resolves.toBe(5);
    expect(getCircuitBreaker('math', registry)?.state).toBe('closed');
  });

  it('withRetry retries a retryable failure and returns the value', async () => {
    let calls = 0;
    const flaky = withRetry({ maxRetries: 2, delaysMs: [1], jitter: 0 })(async (x: number) => {
      calls++;
      if (calls < 2) throw failing('retryable');
      return x * 2;
    });
    await expect(flaky(21)).resolves.toBe(42);
    expect(calls).toBe(2);
  });

  it('protectedExecuteWithRetry retries through the breaker and stops retrying once it opens', async () => {
    const registry = new CircuitBreakerRegistry();
    registerCircuitBreaker('upstream', { failureThreshold: 2 }, {}, registry);
    let calls = 0;
    const attempt = protectedExecuteWithRetry(
      'upstream',
      async () => {
        calls++;
        throw failing('retryable');
      },
      { maxRetries: 5, delaysMs: [1], jitter: 0 },
      registry,
    );
    await expect(attempt).rejects.toBeInstanceOf(CircuitOpenError);
    expect(calls).toBe(2);
  });

  it('protectedExecuteWithRetry never retries a non-retryable failure', async () => {
    const registry = new CircuitBreakerRegistry();
    let calls = 0;
    await expect(
      protectedExecuteWithRetry(
        'strict',
        async () => {
          calls++;
          throw failing('non_retryable');
        },
        { maxRetries: 3, delaysMs: [1] },
        registry,
      ),
    ).rejects.toThrow('non_retryable');
    expect(calls).toBe(1);
  });
});

describe('programmatic fallbacks', () => {
  it('registerFallback + executeWithFallback answer from the fallback when the primary fails', async () => {
    const registry = new FallbackRegistry();
    registerFallback<string, string>('search', { strategy: 'mock_response', priority: 1, enabled: true }, async (q) => `no results for ${q}`, registry);
    const down = executeWithFallback('search', 'cats', async () => Promise.reject(failing('retryable')), registry);
    await expect(down).resolves.toEqual({ strategy: 'mock_response', result: 'no results for cats' });
    const up = executeWithFallback('search', 'cats', async () => 'cats!', registry);
    await expect(up).resolves.toEqual({ strategy: 'primary', result: 'cats!' });
    expect(registry.stats().search).toMatchObject({ total_calls: 2, primary_success: 1, fallback_used: 1 });
  });
});
