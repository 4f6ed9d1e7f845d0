import type { Logger } from 'pino';
import { ChatFallbacks, type ChatFallbackInput } from '../chat/fallbacks/chat-fallbacks.js';
import type { FallbackAnswer } from '../chat/fallbacks/fallback-answer.js';
import type { AppConfig } from '../config.js';
import { createResponseCache } from '../coordination/cache/resilient-cache.js';
import type { ResponseCache } from '../coordination/cache/types.js';
import { LogEvent } from '../observability/events.js';
import { AnthropicProvider } from '../providers/anthropic.js';
import type { Provider } from '../providers/types.js';
import { FallbackRegistry } from '../resilience/fallback/registry.js';
import type { Resilience } from './resilience.js';

export interface Fallbacks {
  registry: FallbackRegistry;
  cache: ResponseCache;
  chat: ChatFallbacks;
}

/** Builds the response cache and the chat fallback chain (cache, alternatives, degraded, queue, mock). */
export function wireFallbacks(
  config: AppConfig,
  rawProvider: Provider,
  resilience: Resilience,
  logger: Logger,
  enqueue?: (input: ChatFallbackInput) => string,
): Fallbacks {
  const cache = createResponseCache({
    redisUrl: config.redisUrl,
    maxEntries: config.fallbacks.cacheMaxEntries,
    maxBytes: config.fallbacks.cacheMaxBytes,
    log: (event, fields) => logger.warn({ event, component: 'cache', ...fields }),
  });
  const registry = new FallbackRegistry({
    onStep: (step) =>
      logger.info({
        event: LogEvent.fallbackStep,
        operation: step.operation,
        strategy: step.strategy,
        reason: step.reason,
        outcome: step.outcome,
        duration_ms: Math.round(step.durationMs),
      }),
  });
  const alternatives = config.fallbacks.alternatives.map((alternative) => ({
    name: alternative.name,
    model: alternative.model,
    provider: resilience.guard(
      `alternative:${alternative.name}`,
      new AnthropicProvider({ apiKey: alternative.apiKey, baseUrl: alternative.baseUrl }),
    ),
  }));
  const chat = new ChatFallbacks({
    chain: registry.chain<ChatFallbackInput, FallbackAnswer>('chat'),
    settings: {
      order: config.fallbacks.chat,
      cacheTtlSeconds: config.fallbacks.cacheTtlSeconds,
      stepTimeoutSeconds: config.fallbacks.stepTimeoutSeconds,
      mockText: config.fallbacks.mockText,
      degradedModel: config.fallbacks.degradedModel,
      degradedMaxTokens: config.fallbacks.degradedMaxTokens,
    },
    cache,
    degradedProvider: rawProvider.simulated ? undefined : resilience.guard('claude_degraded', rawProvider),
    alternatives,
    enqueue,
    log: logger,
  });
  return { registry, cache, chat };
}
