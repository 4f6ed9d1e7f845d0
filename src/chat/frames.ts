/** The SSE frames of POST /api/chat (design.md wire contract). Every frame also carries `session_id`. */

/** Where an answer came from: Claude (`live`), the simulator, or one of the fallbacks. */
export type Mode = 'live' | 'simulated' | 'cached' | 'mock' | 'degraded' | 'alternative' | 'queued';

export type Frame =
  | { type: 'processing'; message_id: string; mode: Mode }
  | { type: 'text_chunk'; content: string }
  | { type: 'tool_use'; tool_use_id: string; name: string; input: unknown }
  | { type: 'tool_result'; tool_use_id: string; content: unknown; is_error: boolean }
  | {
      type: 'result';
      /** The stored reply; null for a queued turn (its job stores the answer later). */
      message_id: string | null;
      input_tokens: number;
      output_tokens: number;
      cost_usd: number;
      model: string;
      mode: Mode;
      stop_reason: string | null;
      /** For alternative answers: which upstream served it. */
      provider?: string;
      /** For queued turns: the job that will answer. */
      job_id?: string;
    }
  | { type: 'error'; error: string; error_type: string; recoverable: boolean; message_id?: string; retry_after_ms?: number }
  | { type: 'done'; mode?: Mode };

/** Where a turn writes its frames. Never throws; after the client is gone, sends are dropped. */
export interface FrameSink {
  send(frame: Frame): Promise<void>;
  /** Names the fallback that answered (sent as the X-Fallback-Strategy trailer). */
  setFallbackStrategy?(strategy: string): void;
  end(): void;
  /** True once the client can no longer receive frames. */
  readonly closed: boolean;
}
