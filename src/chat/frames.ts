/** The SSE frames of POST /api/chat (design.md wire contract). Every frame also carries `session_id`. */

export type Mode = 'live' | 'simulated';

export type Frame =
  | { type: 'processing'; message_id: string; mode: Mode }
  | { type: 'text_chunk'; content: string }
  | { type: 'tool_use'; tool_use_id: string; name: string; input: unknown }
  | { type: 'tool_result'; tool_use_id: string; content: unknown; is_error: boolean }
  | {
      type: 'result';
      message_id: string;
      input_tokens: number;
      output_tokens: number;
      cost_usd: number;
      model: string;
      mode: Mode;
      stop_reason: string | null;
    }
  | { type: 'error'; error: string; error_type: string; recoverable: boolean; message_id?: string; retry_after_ms?: number }
  | { type: 'done' };

/** Where a turn writes its frames. Never throws; after the client is gone, sends are dropped. */
export interface FrameSink {
  send(frame: Frame): Promise<void>;
  end(): void;
  /** True once the client can no longer receive frames. */
  readonly closed: boolean;
}
