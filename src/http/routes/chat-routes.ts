import type { FastifyPluginAsync } from 'fastify';
import { scopeOf, type SessionScope } from '../../auth/identity.js';
import { identityOf } from '../auth.js';
import { chatRequestSchema, idParamsSchema } from '../../chat/schemas.js';
import type { PreparedTurn } from '../../chat/turn-runner.js';
import { LogEvent } from '../../observability/events.js';
import type { ServicesOptions } from '../services.js';
import { validate } from '../validate.js';
import { HttpError } from '../http-error.js';
import { claimIdempotencyKey, idempotencyKeyOf } from '../idempotency.js';
import { resumeStream, startTurn, streamTurn } from '../turn-streaming.js';

/** What an Idempotency-Key of POST /api/chat remembers: the turn it started. */
interface ChatKeyRecord {
  session_id: string;
  turn_id: string;
}

export const chatRoutes: FastifyPluginAsync<ServicesOptions> = async (app, { services }) => {
  const { sessions, turns, streaming, idempotency, store } = services;

  /** Everything that can be refused (bad input, unknown or busy session) is refused as JSON before the stream opens. */
  const beginTurn = async (scope: SessionScope, body: { session_id?: string | null | undefined; message: string }): Promise<PreparedTurn> => {
    const session = body.session_id ? sessions.get(body.session_id, scope) : (await sessions.create(scope)).session;
    return turns.prepare(session, body.message, streaming.hub);
  };

  app.post('/api/chat', async (request, reply) => {
    const body = validate(chatRequestSchema, request.body, 'body');
    const scope = scopeOf(identityOf(request));
    const key = idempotencyKeyOf(request);
    const claim = key === undefined ? null : await claimIdempotencyKey(idempotency, scope, 'POST /api/chat', key, body);
    if (claim?.kind === 'repeat') {
      // The same request again: attach to the turn the first one started (replay, then live), no new upstream call.
      const record = claim.result as ChatKeyRecord;
      const session = sessions.get(record.session_id, scope);
      request.log.info({ event: LogEvent.idempotentReplay, session_id: session.id, turn_id: record.turn_id });
      return resumeStream(request, reply, streaming, store, session, record.turn_id, true);
    }
    let turn: PreparedTurn;
    try {
      if (!services.readiness.acceptingTurns) {
        throw new HttpError(503, 'server_shutting_down', 'The server is shutting down; send the message to another instance or retry shortly', undefined, { 'retry-after': '5' });
      }
      turn = await beginTurn(scope, body);
    } catch (error) {
      // Nothing started: a retry with the same key may try again.
      await claim?.release();
      throw error;
    }
    // The log exists (and, with Redis, its shared copy was begun) before a repeat can look for it.
    const stream = startTurn(request, turns, streaming, turn);
    await claim?.complete({ session_id: turn.session.id, turn_id: turn.userMessageId } satisfies ChatKeyRecord);
    return streamTurn(request, reply, streaming, stream);
  });

  /** Resume: the frames after Last-Event-ID (or the latest answer from its start), then live ones while it runs. */
  app.get('/api/session/:id/stream', async (request, reply) => {
    const { id } = validate(idParamsSchema, request.params, 'path');
    const session = sessions.get(id, scopeOf(identityOf(request)));
    return resumeStream(request, reply, streaming, store, session, null, false);
  });
};
