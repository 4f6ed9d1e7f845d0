import type { Logger } from 'pino';
import { cacheKey } from '../../coordination/cache/cache-key.js';
import type { CachedAnswer, ResponseCache } from '../../coordination/cache/types.js';
import { LogEvent } from '../../observability/events.js';
import type { Provider, ProviderEvent, ProviderRequest } from '../../providers/types.js';
import type { FallbackChain } from '../../resilience/fallback/fallback-chain.js';
import type { FallbackConfig, FallbackStrategy } from '../../resilience/fallback/types.js';
import type { ToolEventRecord } from '../../store/types.js';
import { eventsFromText, primeStream, type FallbackAnswer } from './fallback-answer.js';

export interface ChatFallbackInput {
  sessionId: string;
  userMessageId: string;
  request: ProviderRequest;
}

/** A named upstream to try when the primary fails (its provider has its own breaker). */
export interface AlternativeUpstream {
  name: string;
  provider: Provider;
  /** Model to ask for instead of the session's, if set. */
  model?: string | undefined;
}

export interface ChatFallbackSettings {
  /** Strategies in the order they are tried. */
  order: FallbackStrategy[];
  cacheTtlSeconds: number;
  stepTimeoutSeconds: number;
  mockText: string;
  degradedModel: string;
  degradedMaxTokens: number;
}

export interface ChatFallbackDeps {
  chain: FallbackChain<ChatFallbackInput, FallbackAnswer>;
  settings: ChatFallbackSettings;
  cache?: ResponseCache | undefined;
  /** Upstream for degraded answers (the primary's provider, behind its own breaker). */
  degradedProvider?: Provider | undefined;
  alternatives?: AlternativeUpstream[];
  /** Accepts the turn as a durable job; returns its id. */
  enqueue?: ((input: ChatFallbackInput) => string) | undefined;
  log: Logger;
}

/** Answers worth replaying: finished normally, not cut by max_tokens nor refused. */
const CACHEABLE_STOPS = new Set(['end_turn', 'stop_sequence', 'tool_use']);

/** The chat operation's fallbacks: builds the configured steps and keeps the response cache fed. */
export class ChatFallbacks {
  constructor(private readonly deps: ChatFallbackDeps) {
    deps.settings.order.forEach((strategy, index) => this.register(strategy, index + 1));
  }

  get chain(): FallbackChain<ChatFallbackInput, FallbackAnswer> {
    return this.deps.chain;
  }

  /** After a complete primary answer: count it and cache it for replay while upstream is down. */
  async primarySucceeded(input: ChatFallbackInput, answer: Omit<CachedAnswer, 'cachedAt'>): Promise<void> {
    this.deps.chain.recordPrimarySuccess();
    const cache = this.deps.cache;
    if (!cache || !this.deps.settings.order.includes('cached_response')) return;
    if (!answer.stopReason || !CACHEABLE_STOPS.has(answer.stopReason)) return;
    await cache.set(this.keyOf(input.request), { ...answer, cachedAt: Date.now() }, this.deps.settings.cacheTtlSeconds * 1000);
  }

  recover(input: ChatFallbackInput, error: unknown, signal: AbortSignal): Promise<{ strategy: FallbackStrategy; result: FallbackAnswer } | undefined> {
    return this.deps.chain.recover(input, error, signal);
  }

  private keyOf(request: ProviderRequest): string {
    const last = request.messages[request.messages.length - 1];
    return cacheKey({
      config: { model: request.model, system: request.system ?? null, max_tokens: request.maxTokens, temperature: request.temperature ?? null },
      conversation: request.messages.slice(0, -1),
      message: last?.content ?? '',
    });
  }

  private register(strategy: FallbackStrategy, priority: number): void {
    const { settings } = this.deps;
    const config: FallbackConfig = { strategy, priority, enabled: true, timeoutSeconds: settings.stepTimeoutSeconds };
    switch (strategy) {
      case 'cached_response':
        if (this.deps.cache) this.deps.chain.register({ ...config, cacheTtlSeconds: settings.cacheTtlSeconds, timeoutSeconds: 0 }, (input) => this.fromCache(input));
        break;
      case 'mock_response':
        this.deps.chain.register({ ...config, timeoutSeconds: 0 }, async () => ({
          kind: 'stream',
          mode: 'mock',
          strategy,
          billable: false,
          events: eventsFromText(settings.mockText, 'mock'),
        }));
        break;
      case 'degraded_service':
        if (this.deps.degradedProvider) {
          const provider = this.deps.degradedProvider;
          this.deps.chain.register(config, async (input, _reason, signal) => ({
            kind: 'stream',
            mode: 'degraded',
            strategy,
            billable: true,
            events: await primeStream(
              provider.stream({ ...input.request, model: settings.degradedModel, maxTokens: Math.min(input.request.maxTokens, settings.degradedMaxTokens) }, signal),
            ),
          }));
        }
        break;
      case 'alternative_provider':
        if (this.deps.alternatives?.length) this.deps.chain.register(config, (input, _reason, signal) => this.fromAlternatives(input, signal));
        break;
      case 'queue_for_retry':
        if (this.deps.enqueue) {
          const enqueue = this.deps.enqueue;
          this.deps.chain.register({ ...config, timeoutSeconds: 0 }, async (input) => ({ kind: 'queued', mode: 'queued', strategy, jobId: enqueue(input) }));
        }
        break;
    }
  }

  private async fromCache(input: ChatFallbackInput): Promise<FallbackAnswer | undefined> {
    const cached = await this.deps.cache?.get(this.keyOf(input.request));
    this.deps.log.info({ event: cached ? LogEvent.cacheHit : LogEvent.cacheMiss, operation: 'chat', session_id: input.sessionId });
    if (!cached) return undefined;
    return {
      kind: 'stream',
      mode: 'cached',
      strategy: 'cached_response',
      billable: false,
      events: eventsFromText(cached.text, cached.model, {
        toolEvents: cached.toolEvents.map(toProviderEvent).filter((e): e is ProviderEvent => e !== undefined),
        inputTokens: cached.inputTokens,
        outputTokens: cached.outputTokens,
        stopReason: cached.stopReason,
      }),
    };
  }

  /** Tries each alternative in order; the first that starts answering serves the turn. */
  private async fromAlternatives(input: ChatFallbackInput, signal: AbortSignal): Promise<FallbackAnswer | undefined> {
    let lastError: unknown;
    for (const alternative of this.deps.alternatives ?? []) {
      try {
        const request = alternative.model ? { ...input.request, model: alternative.model } : input.request;
        const events = await primeStream(alternative.provider.stream(request, signal));
        return { kind: 'stream', mode: 'alternative', strategy: 'alternative_provider', billable: true, provider: alternative.name, events };
      } catch (error) {
        lastError = error;
        this.deps.log.warn({ event: LogEvent.alternativeProviderFailed, provider: alternative.name, error_type: (error as { errorType?: string }).errorType ?? 'unknown' });
      }
    }
    if (lastError) throw lastError;
    return undefined;
  }
}

function toProviderEvent(record: ToolEventRecord): ProviderEvent | undefined {
  if (record.type === 'tool_use') {
    return { type: 'tool_use', id: String(record.id ?? ''), name: String(record.name ?? ''), input: record.input };
  }
  return { type: 'tool_result', toolUseId: String(record.tool_use_id ?? ''), content: record.content, isError: record.is_error === true };
}
