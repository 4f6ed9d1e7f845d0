import type { Frame, Mode } from '../chat/frames.js';
import type { SessionStore } from '../store/types.js';
import { TurnStream } from './turn-stream.js';

/**
 * Rebuilds a finished turn's frames from the stored answer, for a repeated request whose stream log
 * has expired: the same answer, sent in one piece (text, then tools, then the result or the error).
 * Null when the turn is unknown or its answer is not stored (yet).
 */
export function replayFromHistory(store: SessionStore, sessionId: string, turnId: string): TurnStream | null {
  const messages = store.allMessages(sessionId);
  const index = messages.findIndex((m) => m.id === turnId && m.role === 'user');
  const answer = index >= 0 ? messages[index + 1] : undefined;
  if (!answer || answer.role !== 'assistant' || answer.inProgress) return null;
  const mode = answer.mode as Mode;
  const frames: Frame[] = [{ type: 'processing', message_id: turnId, mode }];
  if (answer.content !== '') frames.push({ type: 'text_chunk', content: answer.content });
  for (const event of answer.toolEvents) {
    if (event.type === 'tool_use') {
      frames.push({ type: 'tool_use', tool_use_id: String(event.id), name: String(event.name), input: event.input });
    } else {
      frames.push({ type: 'tool_result', tool_use_id: String(event.tool_use_id), content: event.content, is_error: event.is_error === true });
    }
  }
  if (answer.status === 'complete') {
    frames.push({
      type: 'result',
      message_id: answer.id,
      input_tokens: answer.inputTokens,
      output_tokens: answer.outputTokens,
      cost_usd: answer.costUsd,
      model: answer.model ?? '',
      mode,
      stop_reason: answer.stopReason,
    });
  } else {
    frames.push({
      type: 'error',
      error: 'This answer did not complete; the stored part was replayed',
      error_type: answer.error ?? 'incomplete',
      recoverable: true,
      message_id: turnId,
    });
  }
  frames.push({ type: 'done', mode });
  const stream = new TurnStream(turnId, sessionId, frames.length);
  for (const frame of frames) void stream.send(frame);
  stream.end();
  return stream;
}
