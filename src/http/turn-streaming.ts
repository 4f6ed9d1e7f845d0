import type { FastifyReply, FastifyRequest } from 'fastify';
import { TurnAbort } from '../chat/turn-abort.js';
import type { PreparedTurn, TurnRunner } from '../chat/turn-runner.js';
import { LogEvent } from '../observability/events.js';
import { requestContext } from '../observability/request-context.js';
import type { Telemetry } from '../observability/telemetry.js';
import type { SessionRecord, SessionStore } from '../store/types.js';
import { parseEventId, type EventId } from '../streams/event-id.js';
import type { FrameSource } from '../streams/frame-source.js';
import { replayFromHistory } from '../streams/history-replay.js';
import type { StreamHub } from '../streams/stream-hub.js';
import { HttpError } from './http-error.js';
import { openEventStream, streamFrames, type ClientBufferLimits } from './sse-stream.js';
import type { TurnStream } from '../streams/turn-stream.js';

export interface StreamingSettings {
  hub: StreamHub;
  /** Keep generating when the client goes away (it can resume), or cancel the upstream call. */
  continueOnDisconnect: boolean;
  limits: ClientBufferLimits;
  telemetry: Telemetry;
}

/**
 * Opens the stream log of a prepared turn and starts the turn writing into it (on its own, at
 * upstream speed). Returns the log; `streamTurn` then sends it to this connection.
 */
export function startTurn(request: FastifyRequest, turns: TurnRunner, settings: StreamingSettings, turn: PreparedTurn) {
  const stream = settings.hub.open(turn.userMessageId, turn.session.id);
  if (!settings.continueOnDisconnect) {
    // Abort on disconnect: when the last client reading this answer goes away, the turn stops.
    stream.abandon = () => {
      if (!turn.active.controller.signal.aborted) turn.active.controller.abort(new TurnAbort('client_disconnected'));
    };
  }
  // The turn may outlive its response (a client gone, generation going on): its lines still name the request.
  const release = requestContext.hold();
  turns
    .run(turn, stream)
    .catch((err: unknown) => request.log.error({ event: LogEvent.chatTurnFailed, session_id: turn.session.id, err }, 'turn crashed'))
    .finally(release);
  return stream;
}

/** Streams a started turn's log to this connection from its first frame. */
export async function streamTurn(request: FastifyRequest, reply: FastifyReply, settings: StreamingSettings, stream: TurnStream): Promise<void> {
  await sendStream(request, reply, stream.reader(), 0, settings);
}

/**
 * Streams a turn's frames after the client's last event id (GET /api/session/{id}/stream, or a
 * repeated POST with the same Idempotency-Key): a replay of what was logged, then live frames while
 * the turn runs. `historyReplay` lets a whole-answer request fall back to the stored answer once the
 * log has expired or been trimmed. Everything that can be refused is refused before the stream opens.
 */
export async function resumeStream(
  request: FastifyRequest,
  reply: FastifyReply,
  settings: StreamingSettings,
  store: SessionStore,
  session: SessionRecord,
  turnId: string | null,
  historyReplay: boolean,
): Promise<void> {
  const last = lastEventIdOf(request);
  if (last && turnId && last.turnId !== turnId) {
    throw new HttpError(400, 'invalid_last_event_id', 'Last-Event-ID belongs to another answer than this request');
  }
  const target = last?.turnId ?? turnId ?? (await settings.hub.latestTurn(session.id));
  if (!target) {
    throw new HttpError(404, 'no_stream', `Session ${session.id} has no answer streaming or recently finished; read its history instead`);
  }
  // A cleared or deleted conversation is not served again from a log that outlived it.
  if (!store.hasMessage(session.id, target)) {
    throw last && !turnId ? new HttpError(404, 'stream_not_found', `No stream ${target} in session ${session.id}`) : expired(session.id, 'the conversation was cleared');
  }
  const afterSeq = last?.seq ?? 0;
  let source: FrameSource | null = await settings.hub.reader(target);
  if (source && source.sessionId !== session.id) {
    source.release();
    throw new HttpError(404, 'stream_not_found', `No stream ${target} in session ${session.id}`);
  }
  const position = source ? await source.position(afterSeq) : null;
  if (position === 'ahead') {
    source?.release();
    throw new HttpError(400, 'invalid_last_event_id', `Last-Event-ID ${target}:${afterSeq} is ahead of this stream`);
  }
  if (position === 'gap') {
    source?.release();
    source = null;
  }
  if (!source && historyReplay && afterSeq === 0) source = replayFromHistory(store, session.id, target)?.reader() ?? null;
  if (!source) throw expired(session.id, position === 'gap' ? 'the events after Last-Event-ID were trimmed from the stream log' : 'the stream is no longer kept');
  request.log.info({ event: LogEvent.streamResumed, session_id: session.id, turn_id: target, after_seq: afterSeq });
  settings.telemetry.streamEvent(turnId === null ? 'resumed' : 'idempotent_replay');
  await sendStream(request, reply, source, afterSeq, settings);
}

function expired(sessionId: string, why: string): HttpError {
  return new HttpError(410, 'stream_expired', `Cannot resume: ${why}; the answer is in GET /api/session-history/${sessionId}`);
}

/** The client's Last-Event-ID (header, or `last_event_id` in the query for clients that cannot set headers). */
export function lastEventIdOf(request: FastifyRequest): EventId | null {
  const header = request.headers['last-event-id'];
  const query = (request.query as Record<string, unknown> | undefined)?.last_event_id;
  const raw = (Array.isArray(header) ? header[0] : header) ?? (typeof query === 'string' ? query : undefined);
  if (raw === undefined || raw.trim() === '') return null;
  const parsed = parseEventId(raw);
  if (!parsed) throw new HttpError(400, 'invalid_last_event_id', 'Last-Event-ID must be an id from this stream, like <turn_id>:<n>');
  return parsed;
}

async function sendStream(request: FastifyRequest, reply: FastifyReply, source: FrameSource, afterSeq: number, settings: StreamingSettings): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  // Headers set by the hooks (CORS, security, RateLimit) must reach the hijacked stream too.
  openEventStream(res, {
    ...stringHeaders(reply.getHeaders()),
    'x-session-id': source.sessionId,
    'x-turn-id': source.turnId,
    'x-request-id': String(request.id),
  });
  const end = await streamFrames(res, source, afterSeq, settings.limits);
  if (end === 'slow_client' || end === 'gap') {
    request.log.warn({ event: LogEvent.streamClientCutOff, session_id: source.sessionId, turn_id: source.turnId, reason: end });
    settings.telemetry.streamEvent('client_cut_off');
  }
  const local = settings.hub.local(source.turnId);
  if (end === 'client_gone' && local && !local.ended) {
    // The client went away mid-answer. By default the answer goes on into the log and the history.
    const abort = local.abandon !== undefined && local.readerCount === 0;
    request.log.info({ event: LogEvent.clientDisconnected, session_id: source.sessionId, turn_id: source.turnId, generation: abort ? 'aborted' : 'continues' });
    settings.telemetry.streamEvent('client_disconnected');
    if (abort) local.abandon?.();
  }
}

function stringHeaders(headers: Record<string, number | string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return out;
}
