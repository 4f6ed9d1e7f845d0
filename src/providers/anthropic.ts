import Anthropic from '@anthropic-ai/sdk';
import { ProviderError } from './errors.js';
import { toProviderError } from './anthropic-errors.js';
import type { Provider, ProviderEvent, ProviderRequest, Usage } from './types.js';

export interface AnthropicProviderOptions {
  apiKey: string;
  baseUrl: string;
}

type RawEvent = Anthropic.Messages.RawMessageStreamEvent;

/** A tool call being streamed: its input arrives as JSON fragments until the block stops. */
interface OpenToolUse {
  id: string;
  name: string;
  json: string;
}

/** Claude through the official SDK. The SDK's own retries are off: the resilience layer owns retries. */
export class AnthropicProvider implements Provider {
  readonly name = 'anthropic';
  readonly simulated = false;
  private readonly client: Anthropic;

  constructor(options: AnthropicProviderOptions) {
    this.client = new Anthropic({
      apiKey: options.apiKey,
      baseURL: options.baseUrl,
      maxRetries: 0,
      logLevel: 'off',
    });
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
    const state = new StreamState();
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

/** Turns Anthropic's raw SSE events into the provider's typed events. */
class StreamState {
  stopped = false;
  private model = '';
  private stopReason: string | null = null;
  private usage: Usage = { inputTokens: 0, outputTokens: 0 };
  private readonly tools = new Map<number, OpenToolUse>();

  *translate(event: RawEvent): Generator<ProviderEvent> {
    switch (event.type) {
      case 'message_start': {
        const u = event.message.usage;
        this.model = event.message.model;
        this.usage = {
          inputTokens: u.input_tokens,
          outputTokens: u.output_tokens,
          cacheCreationInputTokens: u.cache_creation_input_tokens ?? 0,
          cacheReadInputTokens: u.cache_read_input_tokens ?? 0,
        };
        yield { type: 'start', model: this.model };
        break;
      }
      case 'content_block_start':
        yield* this.blockStart(event.index, event.content_block);
        break;
      case 'content_block_delta':
        if (event.delta.type === 'text_delta') {
          yield { type: 'text', text: event.delta.text };
        } else if (event.delta.type === 'input_json_delta') {
          const tool = this.tools.get(event.index);
          if (tool) tool.json += event.delta.partial_json;
        }
        break;
      case 'content_block_stop': {
        const tool = this.tools.get(event.index);
        if (tool) {
          this.tools.delete(event.index);
          yield { type: 'tool_use', id: tool.id, name: tool.name, input: parseToolInput(tool.json) };
        }
        break;
      }
      case 'message_delta':
        this.stopReason = event.delta.stop_reason ?? this.stopReason;
        this.usage = { ...this.usage, outputTokens: event.usage.output_tokens };
        if (event.usage.input_tokens != null) this.usage.inputTokens = event.usage.input_tokens;
        break;
      case 'message_stop':
        this.stopped = true;
        yield { type: 'usage', usage: this.usage };
        yield { type: 'stop', stopReason: this.stopReason, model: this.model };
        break;
    }
  }

  private *blockStart(index: number, block: RawBlock): Generator<ProviderEvent> {
    if (block.type === 'tool_use' || block.type === 'server_tool_use') {
      this.tools.set(index, { id: block.id, name: block.name, json: '' });
    } else if ('tool_use_id' in block && typeof block.tool_use_id === 'string') {
      const isError = 'is_error' in block && block.is_error === true;
      yield { type: 'tool_result', toolUseId: block.tool_use_id, content: 'content' in block ? block.content : null, isError };
    }
  }
}

type RawBlock = Extract<RawEvent, { type: 'content_block_start' }>['content_block'];

function parseToolInput(json: string): unknown {
  if (json.trim() === '') return {};
  try {
    return JSON.parse(json);
  } catch {
    return { _raw: json };
  }
}
