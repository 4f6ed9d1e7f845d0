import type { MessageRecord, SessionRecord } from '../store/types.js';

/** Wire shapes of sessions and messages (snake_case, as the original clients expect). */

export function presentSessionSummary(s: SessionRecord) {
  return {
    session_id: s.id,
    created_at: s.createdAt,
    updated_at: s.updatedAt,
    message_count: s.messageCount,
    total_tokens: s.totalInputTokens + s.totalOutputTokens,
    total_cost: s.totalCostUsd,
  };
}

export function presentSession(s: SessionRecord, active: boolean) {
  return {
    session_id: s.id,
    active,
    config: { ...s.config, created_at: s.createdAt, updated_at: s.updatedAt },
    history: {
      message_count: s.messageCount,
      total_tokens: s.totalInputTokens + s.totalOutputTokens,
      input_tokens: s.totalInputTokens,
      output_tokens: s.totalOutputTokens,
      total_cost: s.totalCostUsd,
    },
  };
}

export function presentMessage(m: MessageRecord) {
  return {
    id: m.id,
    seq: m.seq,
    role: m.role,
    content: m.content,
    status: m.status,
    /** True while the answer is still streaming (content is the last checkpoint). */
    in_progress: m.inProgress,
    mode: m.mode,
    timestamp: m.createdAt,
    model: m.model,
    input_tokens: m.inputTokens,
    output_tokens: m.outputTokens,
    cost_usd: m.costUsd,
    stop_reason: m.stopReason,
    error: m.error,
    tool_events: m.toolEvents,
  };
}
