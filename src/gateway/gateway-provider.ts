import { abortedError, ProviderError } from '../providers/errors.js';
import { AnthropicEventTranslator, type RawEvent } from '../providers/anthropic-event-translator.js';
import type { Provider, ProviderEvent, ProviderRequest } from '../providers/types.js';
import { upstreamErrorFrom } from './upstream/anthropic-upstream.js';
import type { MessagesGateway } from './messages-gateway.js';

/**
 * Chat sessions through the gateway's routing: the same targets, breakers and failover as
 * `/v1/messages`, translated into provider events for the turn runner.
 */
export class GatewayProvider implements Provider {
  readonly name = 'gateway';
  readonly simulated = false;

  constructor(private readonly gateway: MessagesGateway) {}

  async probe(signal: AbortSignal): Promise<void> {
    const upstream = this.gateway.passthroughUpstream('*');
    if (!upstream) return;
    const response = await upstream.get('/v1/models?limit=1', signal);
    const text = await response.body.text();
    if (response.status !== 200) throw upstreamErrorFrom(response.status, response.headers, text);
  }

  async *stream(request: ProviderRequest, signal: AbortSignal): AsyncIterable<ProviderEvent> {
    const body: Record<string, unknown> = {
      model: request.model,
      max_tokens: request.maxTokens,
      messages: request.messages,
      stream: true,
      ...(request.system ? { system: request.system } : {}),
      ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
    };
    const outcome = await this.gateway.run({ model: request.model, stream: true, raw: undefined, body: () => body }, {}, signal);
    if (outcome.kind === 'error') {
      if (signal.aborted) throw abortedError(signal.reason);
      const error = outcome.error;
      if (outcome.upstreamStatus !== undefined && outcome.upstreamBody) {
        throw upstreamErrorFrom(outcome.upstreamStatus, {}, outcome.upstreamBody.toString('utf8'));
      }
      throw error;
    }
    if (outcome.kind !== 'stream') throw new ProviderError('api_error', 'The gateway answered without a stream', 'retryable');
    const translator = new AnthropicEventTranslator();
    try {
      for await (const event of this.gateway.events(outcome.primed)) {
        if (!event.hasData || event.event === 'ping') continue;
        yield* translator.translate(JSON.parse(event.data) as RawEvent);
      }
    } catch (error) {
      if (signal.aborted) throw abortedError(signal.reason);
      throw error;
    }
  }
}
