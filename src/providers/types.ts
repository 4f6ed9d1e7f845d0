/** The small interface every upstream (Anthropic, simulated, …) implements. */

export interface ConversationMessage {
  role: 'user' | 'assistant';
  content: string;
}

export interface ProviderRequest {
  model: string;
  system?: string | undefined;
  messages: ConversationMessage[];
  maxTokens: number;
  temperature?: number | undefined;
}

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  cacheCreationInputTokens?: number;
  cacheReadInputTokens?: number;
}

export type ProviderEvent =
  | { type: 'start'; model: string }
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id: string; name: string; input: unknown }
  | { type: 'tool_result'; toolUseId: string; content: unknown; isError: boolean }
  | { type: 'usage'; usage: Usage }
  | { type: 'stop'; stopReason: string | null; model: string };

export interface Provider {
  /** Short name shown in logs and health (`anthropic`, `simulated`). */
  readonly name: string;
  /** True when answers are not from Claude; frames then carry mode "simulated". */
  readonly simulated: boolean;
  /**
   * Streams one reply. Ends with a `usage` then a `stop` event on success; throws a ProviderError
   * otherwise (including when `signal` aborts). Never returns normally without `stop`.
   */
  stream(request: ProviderRequest, signal: AbortSignal): AsyncIterable<ProviderEvent>;
  /**
   * Checks the upstream is reachable and accepts our credentials without a paid completion (for
   * health checks). Resolves when healthy; throws a ProviderError otherwise.
   */
  probe(signal: AbortSignal): Promise<void>;
}
