import { randomUUID } from 'node:crypto';
import type { JobRecord } from '../jobs/types.js';
import { costUsd } from '../providers/pricing.js';
import type { Provider, Usage } from '../providers/types.js';
import type { SessionStore, ToolEventRecord } from '../store/types.js';
import { buildTurnRequest, type TurnDefaults } from './turn-request.js';

/** The answer to a queued turn can never succeed: the job is dropped rather than retried. */
export class QueuedTurnGoneError extends Error {
  readonly failureClass = 'non_retryable';
}

/**
 * Answers a turn accepted by the queue_for_retry fallback: asks Claude with the history up to that
 * user message and appends the answer (mode "queued") to the session. Throws to let the job runner
 * back off and try again.
 */
export async function answerQueuedTurn(
  job: JobRecord,
  signal: AbortSignal,
  deps: { store: SessionStore; provider: Provider; defaults: TurnDefaults },
): Promise<{ resultMessageId: string }> {
  const session = deps.store.getSession(job.sessionId);
  if (!session) throw new QueuedTurnGoneError(`Session ${job.sessionId} no longer exists`);
  const history = deps.store.allMessages(job.sessionId);
  const upTo = history.findIndex((m) => m.id === job.userMessageId);
  if (upTo < 0) throw new QueuedTurnGoneError(`Message ${job.userMessageId} no longer exists`);
  const request = buildTurnRequest(session, history.slice(0, upTo + 1), deps.defaults);

  let text = '';
  let model = request.model;
  let stopReason: string | null = null;
  let usage: Usage = { inputTokens: 0, outputTokens: 0 };
  const tools: ToolEventRecord[] = [];
  for await (const event of deps.provider.stream(request, signal)) {
    if (event.type === 'text') text += event.text;
    else if (event.type === 'tool_use') tools.push({ type: 'tool_use', id: event.id, name: event.name, input: event.input });
    else if (event.type === 'tool_result') tools.push({ type: 'tool_result', tool_use_id: event.toolUseId, content: event.content, is_error: event.isError });
    else if (event.type === 'usage') usage = event.usage;
    else if (event.type === 'stop') {
      stopReason = event.stopReason;
      model = event.model || model;
    }
  }
  const stored = deps.store.appendMessage({
    id: randomUUID(),
    sessionId: job.sessionId,
    role: 'assistant',
    content: text,
    status: 'complete',
    inputTokens: usage.inputTokens,
    outputTokens: usage.outputTokens,
    costUsd: deps.provider.simulated ? 0 : costUsd(model, usage),
    model,
    stopReason,
    toolEvents: tools,
    mode: 'queued',
  });
  if (!stored) throw new QueuedTurnGoneError(`Session ${job.sessionId} was deleted while answering`);
  return { resultMessageId: stored.id };
}
