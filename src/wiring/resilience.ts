import type { Logger } from 'pino';
import { ResilientProvider } from '../chat/resilient-provider.js';
import type { AppConfig } from '../config.js';
import { logCircuitTransition, logRetryAttempt } from '../observability/resilience-logging.js';
import type { Provider } from '../providers/types.js';
import { noopTelemetry, type Telemetry } from '../observability/telemetry.js';
import type { CircuitBreaker } from '../resilience/circuit-breaker/circuit-breaker.js';
import { CircuitBreakerRegistry, registerDefaultBreakers } from '../resilience/circuit-breaker/registry.js';
import { RetryBudget } from '../resilience/retry/retry-budget.js';
import { RetryPolicy } from '../resilience/retry/retry-policy.js';

export interface Resilience {
  registry: CircuitBreakerRegistry;
  /** A provider behind its own breaker, with timers and no retries (fallback upstreams use this). */
  guard(name: string, provider: Provider): Provider;
  claudeBreaker: CircuitBreaker;
  sessionBreaker: CircuitBreaker;
  retryBudget: RetryBudget;
  /** The provider with breaker, retry and timers around every call. */
  provider: Provider;
  /** The same breaker and timers without retries, for callers that back off themselves (queued jobs). */
  unretriedProvider: Provider;
}

/** Builds the breakers, retry policy and timers from the config and puts them around the provider. */
/**
 * `chatProvider` builds the provider chat sessions use from the breaker registry (the gateway needs it
 * for its per-target breakers). When that provider retries and fails over by itself (`retriesInside`),
 * the chat wrapper only adds the claude_sdk breaker and the timers, so attempts are not multiplied.
 */
export function wireResilience(
  config: AppConfig,
  provider: Provider,
  logger: Logger,
  telemetry: Telemetry = noopTelemetry,
  chatProvider: (registry: CircuitBreakerRegistry) => { provider: Provider; retriesInside: boolean } = () => ({ provider, retriesInside: false }),
): Resilience {
  const registry = new CircuitBreakerRegistry();
  registry.onTransition((transition) => logCircuitTransition(logger, transition));
  registerDefaultBreakers(registry, {
    claude_sdk: config.breakers.claude,
    session_operations: config.breakers.session,
  });
  const claudeBreaker = registry.require('claude_sdk');
  const sessionBreaker = registry.require('session_operations');
  const retryBudget = new RetryBudget({ ratio: config.retry.budgetRatio });
  const policy = new RetryPolicy({
    maxRetries: config.retry.maxRetries,
    delaysMs: config.retry.delaysMs,
    jitter: config.retry.jitter,
    maxRetryAfterMs: config.retry.maxRetryAfterMs,
    ...(config.retry.deadlineMs > 0 ? { deadlineMs: config.retry.deadlineMs } : {}),
    budget: retryBudget,
  });
  const noRetry = { decide: () => ({ retry: false as const, reason: 'max_retries' }), recordCall: () => undefined };
  const chat = chatProvider(registry);
  const resilient = new ResilientProvider(chat.provider, {
    breaker: claudeBreaker,
    retry: chat.retriesInside
      ? noRetry
      : { decide: (error, n, startedAt) => policy.decide(error, n, startedAt), recordCall: () => retryBudget.recordCall() },
    timers: config.timeouts,
    onRetry: (info) => {
      logRetryAttempt(logger, info);
      telemetry.retryAttempt(info.circuitName, info.reason);
    },
  });
  const guard = (name: string, inner: Provider): Provider =>
    new ResilientProvider(inner, {
      breaker: registry.register(name, { ...claudeBreaker.config }),
      retry: noRetry,
      timers: config.timeouts,
    });
  const unretriedProvider = new ResilientProvider(provider, { breaker: claudeBreaker, retry: noRetry, timers: config.timeouts });
  return { registry, guard, claudeBreaker, sessionBreaker, retryBudget, provider: resilient, unretriedProvider };
}
