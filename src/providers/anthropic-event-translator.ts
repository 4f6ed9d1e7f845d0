import type Anthropic from '@anthropic-ai/sdk';
import type { ProviderEvent, Usage } from './types.js';

export type RawEvent = Anthropic.Messages.RawMessageStreamEvent;

/** A tool call being streamed: its input arrives as JSON fragments until the block stops. */
interface OpenToolUse {
  id: string;
  name: string;
  json: string;
}

/** Turns Anthropic's raw SSE events into the provider's typed events. */
export class AnthropicEventTranslator {
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
