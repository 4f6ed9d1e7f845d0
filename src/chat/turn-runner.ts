import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { LogEvent } from '../observability/events.js';
import { ProviderError } from '../providers/errors.js';
import { costUsd } from '../providers/pricing.js';
import { CircuitOpenError, UpstreamTimeoutError } from '../resilience/errors.js';
import { failureClassOf, retryAfterOf } from '../resilience/outcome.js';
import { errorTypeOf } from '../resilience/fallback/eligibility.js';
import type { ChatFallbackInput, ChatFallbacks } from './fallbacks/chat-fallbacks.js';
import { noopTelemetry, type Telemetry, type TurnOutcome } from '../observability/telemetry.js';
import type { Provider, ProviderEvent, ProviderRequest, Usage } from '../providers/types.js';
import type { FinishMessageFields, MessageStatus, SessionRecord, SessionStore, ToolEventRecord } from '../store/types.js';
import type { ActiveTurn, ActiveTurns } from './active-turns.js';
import { buildTurnRequest, type TurnDefaults } from './turn-request.js';
import type { Frame, FrameSink, Mode } from './frames.js';
import { abortKindOf, type TurnAbortKind } from './turn-abort.js';
import { TurnInProgressError } from './errors.js';


/** The shared one-turn-per-session lock across instances (the local one is ActiveTurns). */
export interface WriterLock {
  /** False when another instance runs a turn on the session. */
  claim(sessionId: string, turnId: string): Promise<boolean>;
  /** Gives the lock back when the turn did not start; a started turn releases it as its stream ends. */
  release(sessionId: string, turnId: string): void;
}

/** A turn whose user message is committed and whose session lock is held, ready to stream. */
export interface PreparedTurn {
  readonly session: SessionRecord;
  readonly userMessageId: string;
  readonly active: ActiveTurn;
  readonly request: ProviderRequest;
}

/** What the assistant produced so far; stored whatever way the turn ends. */
interface Reply {
  text: string;
  tools: ToolEventRecord[];
  usage: Usage;
  model: string;
  stopReason: string | null;
  /** Who answered: live/simulated, or the fallback that did. */
  mode: Mode;
  /** Whether the answer cost upstream tokens (cache and mock answers do not). */
  billable: boolean;
  provider?: string | undefined;
  jobId?: string | undefined;
  /** Date.now() when the first content frame was sent. */
  firstContentAt?: number | undefined;
  /** The assistant row created at the first content and checkpointed while the answer grows. */
  messageId?: string | undefined;
  checkpointedAt?: number | undefined;
  outcome: TurnOutcome;
  errorType?: string | undefined;
}

interface Failure {
  errorType: string;
  message: string;
  recoverable: boolean;
  status: MessageStatus;
  retryAfterMs?: number | undefined;
}

const ABORT_FAILURES: Record<TurnAbortKind, Omit<Failure, 'status'>> = {
  interrupted: { errorType: 'interrupted', message: 'The reply was interrupted at your request', recoverable: true },
  client_disconnected: { errorType: 'client_disconnected', message: 'The client went away', recoverable: true },
  session_deleted: { errorType: 'session_deleted', message: 'The session was deleted', recoverable: false },
  server_shutting_down: { errorType: 'server_shutting_down', message: 'The server is restarting; send the message again', recoverable: true },
  session_cleared: { errorType: 'session_cleared', message: 'The conversation was cleared while this reply was streaming', recoverable: false },
  session_reconfigured: { errorType: 'session_reconfigured', message: "The session's configuration changed while this reply was streaming; send the message again", recoverable: true },
};

/**
 * Runs one chat turn: user message committed before the upstream call, the reply streamed as frames,
 * the assistant message committed when the turn ends (complete, incomplete or error), then exactly one
 * `done`. A failure always reaches the client as an `error` frame before `done`.
 */
export interface TurnRunnerDeps {
  store: SessionStore;
  provider: Provider;
  turns: ActiveTurns;
  defaults: TurnDefaults;
  log: Logger;
  /** The chat operation's fallbacks; without them a failure is simply reported. */
  fallbacks?: ChatFallbacks | undefined;
  telemetry?: Telemetry | undefined;
  /** How often a growing answer is saved (crash safety); default 500 ms. */
  checkpointIntervalMs?: number | undefined;
}

export class TurnRunner {
  private readonly store: SessionStore;
  private readonly provider: Provider;
  private readonly turns: ActiveTurns;
  private readonly defaults: TurnDefaults;
  private readonly log: Logger;
  private readonly fallbacks: ChatFallbacks | undefined;
  private readonly telemetry: Telemetry;
  private readonly checkpointIntervalMs: number;

  constructor(deps: TurnRunnerDeps) {
    this.checkpointIntervalMs = deps.checkpointIntervalMs ?? 500;
    ({ store: this.store, provider: this.provider, turns: this.turns, defaults: this.defaults, log: this.log, fallbacks: this.fallbacks } = deps);
    this.telemetry = deps.telemetry ?? noopTelemetry;
  }

  get mode(): Mode {
    return this.provider.simulated ? 'simulated' : 'live';
  }

  /**
   * Takes the session lock (and, across instances, the shared `writer` lock) and commits the user
   * message, whose id is the turn's id. Throws before anything is streamed, releasing both locks.
   */
  async prepare(session: SessionRecord, message: string, writer?: WriterLock): Promise<PreparedTurn> {
    const active = this.turns.begin(session.id);
    const turnId = randomUUID();
    let claimed = false;
    try {
      if (writer && !(claimed = await writer.claim(session.id, turnId))) throw new TurnInProgressError(session.id);
      const userMessage = this.store.appendMessage({
        id: turnId,
        sessionId: session.id,
        role: 'user',
        content: message,
        status: 'complete',
      });
      if (!userMessage) throw new Error(`Session ${session.id} vanished before its message was stored`);
      const request = buildTurnRequest(session, this.store.allMessages(session.id), this.defaults);
      return { session, userMessageId: userMessage.id, active, request };
    } catch (error) {
      if (claimed) writer?.release(session.id, turnId);
      this.turns.end(active);
      active.settle();
      throw error;
    }
  }

  async run(turn: PreparedTurn, sink: FrameSink): Promise<void> {
    const { session, active, request } = turn;
    const started = Date.now();
    const reply: Reply = {
      text: '',
      tools: [],
      usage: { inputTokens: 0, outputTokens: 0 },
      model: request.model,
      stopReason: null,
      mode: this.mode,
      billable: !this.provider.simulated,
      outcome: 'success',
    };
    this.telemetry.turnStarted();
    const log = this.log.child({ session_id: session.id });
    log.info({ event: LogEvent.chatTurnStarted, mode: this.mode, model: request.model, history_messages: request.messages.length });
    try {
      await sink.send({ type: 'processing', message_id: turn.userMessageId, mode: this.mode });
      let failure: Failure | undefined;
      try {
        await this.streamReply(turn, this.provider.stream(request, active.controller.signal), reply, sink);
        await this.fallbacks?.primarySucceeded(this.fallbackInput(turn), {
          text: reply.text,
          model: reply.model,
          stopReason: reply.stopReason,
          inputTokens: reply.usage.inputTokens,
          outputTokens: reply.usage.outputTokens,
          toolEvents: reply.tools,
        });
      } catch (error) {
        failure = await this.recover(turn, error, reply, sink, log);
      }
      if (failure) await this.finishFailed(turn, reply, failure, sink, log, started);
      else if (reply.jobId) await this.finishQueued(turn, reply, sink, log, started);
      else await this.finishComplete(turn, reply, sink, log, started);
    } finally {
      this.turns.end(active);
      await sink.send({ type: 'done', mode: reply.mode });
      sink.end();
      this.telemetry.turnFinished({
        model: reply.model,
        mode: reply.mode,
        outcome: reply.outcome,
        durationMs: Date.now() - started,
        timeToFirstTokenMs: reply.firstContentAt === undefined ? null : reply.firstContentAt - started,
        inputTokens: reply.usage.inputTokens,
        outputTokens: reply.usage.outputTokens,
        errorType: reply.errorType,
      });
      active.settle();
    }
  }

  /**
   * A failure before any output may be answered by a fallback (cache, alternative, degraded, queue,
   * mock). Returns the failure to report, or undefined when a fallback answered.
   */
  private async recover(turn: PreparedTurn, error: unknown, reply: Reply, sink: FrameSink, log: Logger): Promise<Failure | undefined> {
    const signal = turn.active.controller.signal;
    if (!this.fallbacks || hasOutput(reply) || signal.aborted) return this.describeFailure(error, signal, reply);
    const outcome = await this.fallbacks.recover(this.fallbackInput(turn), error, signal);
    if (!outcome) return this.describeFailure(error, signal, reply);
    const answer = outcome.result;
    log.warn({ event: LogEvent.fallbackUsed, operation: 'chat', strategy: answer.strategy, reason: errorTypeOf(error), mode: answer.mode });
    this.telemetry.fallbackUsed('chat', answer.strategy);
    reply.outcome = answer.kind === 'queued' ? 'queued' : 'fallback';
    sink.setFallbackStrategy?.(answer.strategy);
    reply.mode = answer.mode;
    if (answer.kind === 'queued') {
      reply.jobId = answer.jobId;
      return undefined;
    }
    reply.billable = answer.billable;
    reply.provider = answer.provider;
    try {
      await this.streamReply(turn, answer.events, reply, sink);
      return undefined;
    } catch (fallbackError) {
      return this.describeFailure(fallbackError, signal, reply);
    }
  }

  private fallbackInput(turn: PreparedTurn): ChatFallbackInput {
    return { sessionId: turn.session.id, userMessageId: turn.userMessageId, request: turn.request };
  }

  private async streamReply(turn: PreparedTurn, events: AsyncIterable<ProviderEvent>, reply: Reply, sink: FrameSink): Promise<void> {
    for await (const event of events) {
      if (event.type === 'text' || event.type === 'tool_use' || event.type === 'tool_result') this.afterContent(turn, reply, event);
      switch (event.type) {
        case 'start':
          reply.model = event.model;
          break;
        case 'text':
          reply.firstContentAt ??= Date.now();
          reply.text += event.text;
          await sink.send({ type: 'text_chunk', content: event.text });
          break;
        case 'tool_use':
          reply.firstContentAt ??= Date.now();
          reply.tools.push({ type: 'tool_use', id: event.id, name: event.name, input: event.input });
          await sink.send({ type: 'tool_use', tool_use_id: event.id, name: event.name, input: event.input });
          break;
        case 'tool_result':
          reply.tools.push({ type: 'tool_result', tool_use_id: event.toolUseId, content: event.content, is_error: event.isError });
          await sink.send({ type: 'tool_result', tool_use_id: event.toolUseId, content: event.content, is_error: event.isError });
          break;
        case 'usage':
          reply.usage = event.usage;
          break;
        case 'stop':
          reply.stopReason = event.stopReason;
          reply.model = event.model || reply.model;
          break;
      }
    }
  }

  private async finishComplete(turn: PreparedTurn, reply: Reply, sink: FrameSink, log: Logger, started: number): Promise<void> {
    const cost = reply.billable ? costUsd(reply.model, reply.usage) : 0;
    const stored = this.storeReply(turn, reply, 'complete', null, cost, log);
    if (!stored) {
      reply.outcome = 'error';
      reply.errorType = 'storage_error';
      await sink.send(this.errorFrame(turn, { errorType: 'storage_error', message: 'The reply could not be saved', recoverable: true }));
      return;
    }
    await sink.send({
      type: 'result',
      message_id: stored,
      input_tokens: reply.usage.inputTokens,
      output_tokens: reply.usage.outputTokens,
      cost_usd: cost,
      model: reply.model,
      mode: reply.mode,
      stop_reason: reply.stopReason,
      ...(reply.provider ? { provider: reply.provider } : {}),
    });
    log.info({
      event: LogEvent.chatTurnCompleted,
      duration_ms: Date.now() - started,
      model: reply.model,
      input_tokens: reply.usage.inputTokens,
      output_tokens: reply.usage.outputTokens,
      cost_usd: cost,
      stop_reason: reply.stopReason,
      mode: reply.mode,
    });
  }

  /** The turn was accepted as a job: nothing is stored now; the job appends the answer later. */
  private async finishQueued(turn: PreparedTurn, reply: Reply, sink: FrameSink, log: Logger, started: number): Promise<void> {
    await sink.send({
      type: 'result',
      message_id: null,
      input_tokens: 0,
      output_tokens: 0,
      cost_usd: 0,
      model: turn.request.model,
      mode: 'queued',
      stop_reason: null,
      ...(reply.jobId ? { job_id: reply.jobId } : {}),
    });
    log.info({ event: LogEvent.jobQueued, job_id: reply.jobId, duration_ms: Date.now() - started });
  }

  private async finishFailed(turn: PreparedTurn, reply: Reply, failure: Failure, sink: FrameSink, log: Logger, started: number): Promise<void> {
    reply.outcome = failure.errorType in ABORT_FAILURES ? 'interrupted' : 'error';
    reply.errorType = failure.errorType;
    const cost = reply.billable ? costUsd(reply.model, reply.usage) : 0;
    this.storeReply(turn, reply, failure.status, failure.errorType, cost, log);
    await sink.send(this.errorFrame(turn, failure));
    const interrupted = failure.errorType in ABORT_FAILURES;
    log[interrupted ? 'info' : 'warn']({
      event: interrupted ? LogEvent.chatTurnInterrupted : LogEvent.chatTurnFailed,
      duration_ms: Date.now() - started,
      error_type: failure.errorType,
      stored_status: failure.status,
      partial_chars: reply.text.length,
    });
  }

  private errorFrame(turn: PreparedTurn, failure: Omit<Failure, 'status'>): Frame {
    return {
      type: 'error',
      error: failure.message,
      error_type: failure.errorType,
      recoverable: failure.recoverable,
      message_id: turn.userMessageId,
      ...(failure.retryAfterMs !== undefined ? { retry_after_ms: Math.ceil(failure.retryAfterMs) } : {}),
    };
  }

  private describeFailure(error: unknown, signal: AbortSignal, reply: Reply): Failure {
    const partialStatus: MessageStatus = hasOutput(reply) ? 'incomplete' : 'error';
    const abortKind = abortKindOf(signal);
    if (abortKind) return { ...ABORT_FAILURES[abortKind], status: 'incomplete' };
    if (error instanceof CircuitOpenError) {
      // Not retried (it never reached upstream), but the same message will work once the circuit closes.
      return { errorType: error.errorType, message: error.message, recoverable: true, status: partialStatus, retryAfterMs: error.retryAfterMs };
    }
    if (error instanceof ProviderError || error instanceof UpstreamTimeoutError) {
      return {
        errorType: error.errorType,
        message: error.message,
        recoverable: failureClassOf(error) === 'retryable',
        status: partialStatus,
        retryAfterMs: retryAfterOf(error),
      };
    }
    this.log.error({ event: LogEvent.chatTurnFailed, err: error }, 'unexpected turn failure');
    return { errorType: 'internal_error', message: 'The server failed while answering', recoverable: true, status: partialStatus };
  }

  /**
   * Crash safety: the first content creates the assistant row (in progress); later content is saved
   * at most every checkpoint interval, so a kill -9 loses only the last moments of the answer.
   */
  private afterContent(turn: PreparedTurn, reply: Reply, event: ProviderEvent): void {
    const now = Date.now();
    try {
      if (!reply.messageId) {
        const text = event.type === 'text' ? reply.text + event.text : reply.text;
        const started = this.store.appendMessage({
          id: randomUUID(),
          sessionId: turn.session.id,
          role: 'assistant',
          content: text,
          status: 'incomplete',
          model: reply.model,
          mode: reply.mode,
          inProgress: true,
        });
        reply.messageId = started?.id;
        reply.checkpointedAt = now;
      } else if (now - (reply.checkpointedAt ?? 0) >= this.checkpointIntervalMs) {
        this.store.checkpointMessage(turn.session.id, reply.messageId, reply.text, reply.tools);
        reply.checkpointedAt = now;
      }
    } catch (err) {
      // A failed checkpoint must not break the stream; the final write still runs.
      this.log.warn({ event: LogEvent.messageStoreFailed, session_id: turn.session.id, reason: 'checkpoint', err });
    }
  }

  /** Returns the stored message id, or null when it could not be stored (session gone, store failing). */
  private storeReply(turn: PreparedTurn, reply: Reply, status: MessageStatus, error: string | null, cost: number, log: Logger): string | null {
    const fields: FinishMessageFields = {
      content: reply.text,
      status,
      inputTokens: reply.usage.inputTokens,
      outputTokens: reply.usage.outputTokens,
      costUsd: cost,
      model: reply.model,
      stopReason: reply.stopReason,
      error,
      toolEvents: reply.tools,
      mode: reply.mode,
    };
    try {
      // The row started at the first content is finished; an answer without content gets its row now.
      const stored = reply.messageId
        ? this.store.finishMessage(turn.session.id, reply.messageId, fields)
        : this.store.appendMessage({ id: randomUUID(), sessionId: turn.session.id, role: 'assistant', ...fields });
      if (!stored) log.warn({ event: LogEvent.messageStoreFailed, reason: 'session_missing' });
      return stored?.id ?? null;
    } catch (err) {
      log.error({ event: LogEvent.messageStoreFailed, err }, 'could not store the assistant message');
      return null;
    }
  }
}

function hasOutput(reply: Reply): boolean {
  return reply.text !== '' || reply.tools.length > 0;
}
