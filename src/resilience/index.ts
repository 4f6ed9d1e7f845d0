/**
 * The programmatic API of the resilience layer, usable on its own (it imports nothing from the HTTP,
 * chat, provider or store layers). Functions without an explicit registry use `defaultRegistry`.
 *
 *   registerCircuitBreaker('payments', { failureThreshold: 3, timeoutSeconds: 30, successThreshold: 2, halfOpenMaxCalls: 1 });
 *   const charge = withCircuitBreaker('payments')(async (id: string) => api.charge(id));
 *   const fetchUser = withRetry({ maxRetries: 3, delaysMs: [200, 500, 1000] })(loadUser);
 *   const reply = await protectedExecuteWithRetry('claude_sdk', () => callClaude(), { maxRetries: 2 });
 *   registerFallback('search', { strategy: 'mock_response', priority: 1, enabled: true }, async () => []);
 *   const results = await executeWithFallback('search', query, () => search(query));
 */
import { CircuitBreaker } from './circuit-breaker/circuit-breaker.js';
import { CircuitBreakerRegistry, DEFAULT_BREAKERS } from './circuit-breaker/registry.js';
import type { CircuitBreakerConfig, CircuitBreakerOptions, CircuitBreakerStats } from './circuit-breaker/types.js';
import { retry, withRetry } from './retry/retry.js';
import type { RetryOptions } from './retry/types.js';
import { FallbackRegistry } from './fallback/registry.js';
import type { FallbackConfig, FallbackHandler, FallbackOutcome } from './fallback/types.js';

export { CircuitBreaker, CircuitBreakerRegistry, DEFAULT_BREAKERS };
export { registerDefaultBreakers } from './circuit-breaker/registry.js';
export type * from './circuit-breaker/types.js';
export { retry, withRetry };
export { RetryPolicy, DEFAULT_RETRY_DELAYS_MS } from './retry/retry-policy.js';
export { RetryBudget } from './retry/retry-budget.js';
export type * from './retry/types.js';
export { CallTimers, type CallTimerLimits } from './timers/call-timers.js';
export { CircuitOpenError, UpstreamTimeoutError, type TimerKind } from './errors.js';
export { failureClassOf, retryAfterOf, type FailureClass, type ClassifiedError } from './outcome.js';
export { monotonicClock, type Clock } from './clock.js';
export { FallbackChain, type FallbackChainOptions } from './fallback/fallback-chain.js';
export { FallbackRegistry } from './fallback/registry.js';
export { CLIENT_ERROR_TYPES, defaultShouldFallback } from './fallback/eligibility.js';
export type * from './fallback/types.js';

/** The process-wide registry used by the functions below when no registry is passed. */
export const defaultRegistry = new CircuitBreakerRegistry();

export function registerCircuitBreaker(
  name: string,
  config: Partial<CircuitBreakerConfig> = {},
  options: CircuitBreakerOptions = {},
  registry: CircuitBreakerRegistry = defaultRegistry,
): CircuitBreaker {
  const base = DEFAULT_BREAKERS[name as keyof typeof DEFAULT_BREAKERS] ?? DEFAULT_BREAKERS.claude_sdk;
  return registry.register(name, { ...base, ...config }, options);
}

export function getCircuitBreaker(name: string, registry: CircuitBreakerRegistry = defaultRegistry): CircuitBreaker | undefined {
  return registry.get(name);
}

export function listCircuitBreakers(registry: CircuitBreakerRegistry = defaultRegistry): Record<string, CircuitBreakerStats> {
  return registry.stats();
}

export function resetCircuitBreaker(name: string, registry: CircuitBreakerRegistry = defaultRegistry): boolean {
  return registry.reset(name);
}

/** Wraps a function so every call goes through the named breaker (registered with defaults if missing). */
export function withCircuitBreaker(name: string, registry: CircuitBreakerRegistry = defaultRegistry) {
  return <A extends unknown[], T>(fn: (...args: A) => T | Promise<T>) =>
    (...args: A): Promise<T> =>
      (registry.get(name) ?? registerCircuitBreaker(name, {}, {}, registry)).execute(() => fn(...args));
}

/**
 * Breaker inside retry: every attempt asks the breaker, and an open circuit ends the retries at once
 * (a breaker rejection is never retried).
 */
export function protectedExecuteWithRetry<T>(
  name: string,
  fn: (attempt: number, signal?: AbortSignal) => T | Promise<T>,
  options: RetryOptions = {},
  registry: CircuitBreakerRegistry = defaultRegistry,
): Promise<T> {
  const breaker = registry.get(name) ?? registerCircuitBreaker(name, {}, {}, registry);
  return retry((attempt, signal) => breaker.execute(() => fn(attempt, signal)), options);
}

/** The process-wide fallback registry used by the functions below when none is passed. */
export const defaultFallbackRegistry = new FallbackRegistry();

/** Adds a fallback step to an operation's chain (run in priority order when the primary fails). */
export function registerFallback<I, R>(
  operation: string,
  config: FallbackConfig,
  handler: FallbackHandler<I, R>,
  registry: FallbackRegistry = defaultFallbackRegistry,
): void {
  registry.register(operation, config, handler);
}

/** Runs `primary`; if it fails in a way that may fall back, the operation's fallbacks answer instead. */
export function executeWithFallback<I, R>(
  operation: string,
  input: I,
  primary: () => Promise<R>,
  registry: FallbackRegistry = defaultFallbackRegistry,
): Promise<FallbackOutcome<R> | { strategy: 'primary'; result: R }> {
  return registry.chain<I, R>(operation).execute(input, primary);
}
