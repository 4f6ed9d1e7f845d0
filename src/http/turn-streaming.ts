import type { FastifyReply, FastifyRequest } from 'fastify';
import { TurnAbort } from '../chat/turn-abort.js';
import type { PreparedTurn, TurnRunner } from '../chat/turn-runner.js';
import { LogEvent } from '../observability/events.js';
import type { Telemetry } from '../observability/telemetry.js';
import type { SessionRecord, SessionStore } from '../store/types.js';
import { parseEventId, type EventId } from '../streams/event-id.js';
import type { FrameSource } from '../streams/frame-source.js';
import { replayFromHistory } from '../streams/history-replay.js';
import type { StreamHub } from '../streams/stream-hub.js';
import { HttpError } from './http-error.js';
import { openEventStream, streamFrames, type ClientBufferLimits, type StreamEnd } from './sse-stream.js';

export interface StreamingSettings {
  hub: StreamHub;
  /** Keep generating when the client goes away (it can resume), or cancel the upstream call. */
  continueOnDisconnect: boolean;
  limits: ClientBufferLimits;
  telemetry: Telemetry;
}

/**
 * Starts a prepared turn writing into a new stream log (the turn runs on its own, at upstream speed)
 * and streams that log to this connection from the first frame.
 */
export async function startAndStream(request: FastifyRequest, reply: FastifyReply, turns: TurnRunner, settings: StreamingSettings, turn: PreparedTurn): Promise<void> {
  const stream = settings.hub.open(turn.userMessageId, turn.session.id);
  const reader = stream.reader();
  turns.run(turn, stream).catch((err: unknown) => request.log.error({ event: LogEvent.chatTurnFailed, session_id: turn.session.id, err }, 'turn crashed'));
  const end = await sendStream(request, reply, reader, 0, settings);
  if (end === 'complete' || end === 'slow_client' || stream.ended) return;
  // The client went away mid-answer. By default the answer goes on into the log and the history.
  const abort = !settings.continueOnDisconnect && stream.readerCount === 0;
  request.log.info({ event: LogEvent.clientDisconnected, session_id: turn.session.id, turn_id: turn.userMessageId, generation: abort ? 'aborted' : 'continues' });
  settings.telemetry.streamEvent('client_disconnected');
  if (abort && !turn.active.controller.signal.aborted) turn.active.controller.abort(new TurnAbort('client_disconnected'));
}

/**
 * Streams a turn's frames after the client's last event id (GET /api/session/{id}/stream, or a
 * repeated POST with the same Idempotency-Key): a replay of what was logged, then live frames while
 * the turn runs. `historyReplay` lets a whole-answer request fall back to the stored answer once the
 * log has expired.
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
  const afterSeq = last?.seq ?? 0;
  const local = settings.hub.local(target);
  if (local && local.sessionId === session.id) {
    if (afterSeq > local.lastSeq) throw new HttpError(400, 'invalid_last_event_id', `Last-Event-ID is ahead of this stream (its last event is ${target}:${local.lastSeq})`);
    if (!local.canResumeAfter(afterSeq)) throw expired(session.id, 'the events after Last-Event-ID were trimmed from the stream log');
  }
  let source: FrameSource | null = await settings.hub.reader(target);
  if (source && source.sessionId !== session.id) {
    source.release();
    throw new HttpError(404, 'stream_not_found', `No stream ${target} in session ${session.id}`);
  }
  if (!source && historyReplay && afterSeq === 0) source = replayFromHistory(store, session.id, target)?.reader() ?? null;
  if (!source) throw expired(session.id, 'the stream is no longer kept');
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

async function sendStream(request: FastifyRequest, reply: FastifyReply, source: FrameSource, afterSeq: number, settings: StreamingSettings): Promise<StreamEnd> {
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
  return end;
}

function stringHeaders(headers: Record<string, number | string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return out;
}
