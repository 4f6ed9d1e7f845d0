import type { ProviderRequest } from '../providers/types.js';
import type { MessageRecord, SessionRecord } from '../store/types.js';
import { buildConversation } from './conversation.js';

export interface TurnDefaults {
  model: string;
  maxTokens: number;
}

/** The upstream request for a session: its settings and its whole stored history. */
export function buildTurnRequest(session: SessionRecord, history: readonly MessageRecord[], defaults: TurnDefaults): ProviderRequest {
  const config = session.config;
  return {
    model: config.model ?? defaults.model,
    maxTokens: config.max_tokens ?? defaults.maxTokens,
    system: config.system_prompt,
    temperature: config.temperature,
    messages: buildConversation(history),
  };
}
