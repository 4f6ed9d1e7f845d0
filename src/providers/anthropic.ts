import type Anthropic from '@anthropic-ai/sdk';
import { anthropicSdk } from './anthropic-sdk.js';
import { ProviderError } from './errors.js';
import { toProviderError } from './anthropic-errors.js';
import { AnthropicEventTranslator } from './anthropic-event-translator.js';
import type { Provider, ProviderEvent, ProviderRequest } from './types.js';

export interface AnthropicProviderOptions {
  apiKey: string;
  baseUrl: string;
}


/** Claude through the official SDK. The SDK's own retries are off: the resilience layer owns retries. */
export class AnthropicProvider implements Provider {
  readonly name = 'anthropic';
  readonly simulated = false;
  private built: Anthropic | undefined;

  constructor(private readonly options: AnthropicProviderOptions) {}

  /** Built on first use, so that the SDK is only loaded where Claude is called through it. */
  private get client(): Anthropic {
    if (!this.built) {
      const Sdk = anthropicSdk();
      this.built = new Sdk({ apiKey: this.options.apiKey, baseURL: this.options.baseUrl, maxRetries: 0, logLevel: 'off' });
    }
    return this.built;
  }

  /** Lists one model: free, and proves both reachability and a valid key. */
  async probe(signal: AbortSignal): Promise<void> {
    try {
      await this.client.models.list({ limit: 1 }, { signal });
    } catch (error) {
      throw toProviderError(error, signal);
    }
  }

  async *stream(request: ProviderRequest, signal: AbortSignal): AsyncIterable<ProviderEvent> {
    const state = new AnthropicEventTranslator();
    try {
      const stream = await this.client.messages.create(
        {
          model: request.model,
          max_tokens: request.maxTokens,
          messages: request.messages,
          stream: true,
          ...(request.system ? { system: request.system } : {}),
          ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
        },
        { signal },
      );
      for await (const event of stream) {
        yield* state.translate(event);
      }
    } catch (error) {
      throw toProviderError(error, signal);
    }
    // The SDK ends iteration quietly on abort, and a cut connection can look like a clean end:
    // only a message_stop proves the answer is whole.
    if (signal.aborted) throw toProviderError(signal.reason, signal);
    if (!state.stopped) {
      throw new ProviderError('stream_cut', 'The upstream stream ended before message_stop', 'retryable');
    }
  }
}
