import { RetryPolicy } from './retry-policy.js';
import { sleep } from './sleep.js';
import type { RetryOptions } from './types.js';

/**
 * Runs `fn` and retries it as the policy allows. When retrying stops, the last error is rethrown
 * unchanged so callers still see what upstream said; an abort during a wait rejects with the signal's
 * reason, so callers see that they cancelled it.
 */
export async function retry<T>(
  fn: (attempt: number, signal?: AbortSignal) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  return runWithRetry(fn, options, new RetryPolicy(options));
}

/** Wraps a function so every call goes through `retry`; options are validated once, here. */
export function withRetry(options: RetryOptions = {}) {
  const policy = new RetryPolicy(options);
  return <A extends unknown[], T>(fn: (...args: A) => Promise<T>) =>
    (...args: A): Promise<T> =>
      runWithRetry(() => fn(...args), options, policy);
}

async function runWithRetry<T>(
  fn: (attempt: number, signal?: AbortSignal) => Promise<T>,
  { signal, budget, onRetry }: RetryOptions,
  policy: RetryPolicy,
): Promise<T> {
  // Already cancelled: do not spend an upstream call (or the budget) on it.
  signal?.throwIfAborted();
  const startedAt = policy.clock.now();
  budget?.recordCall();
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt, signal);
    } catch (error) {
      const decision = policy.decide(error, attempt + 1, startedAt);
      if (!decision.retry) throw error;
      onRetry?.({ attempt: attempt + 1, delayMs: decision.delayMs, reason: reasonOf(error), error });
      await sleep(decision.delayMs, signal);
    }
  }
}

/** errorType (e.g. `overloaded_error`) is what the logs group by; an error's name is the fallback. */
function reasonOf(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const { errorType, name } = error as { errorType?: unknown; name?: unknown };
    if (typeof errorType === 'string' && errorType) return errorType;
    if (typeof name === 'string' && name) return name;
  }
  return 'unknown';
}
