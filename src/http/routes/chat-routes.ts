import type { FastifyPluginAsync } from 'fastify';
import { scopeOf } from '../../auth/identity.js';
import { identityOf } from '../auth.js';
import { chatRequestSchema } from '../../chat/schemas.js';
import { TurnAbort } from '../../chat/turn-abort.js';
import { LogEvent } from '../../observability/events.js';
import type { ServicesOptions } from '../services.js';
import { SseWriter } from '../sse-writer.js';
import { validate } from '../validate.js';
import { HttpError } from '../http-error.js';

export const chatRoutes: FastifyPluginAsync<ServicesOptions> = async (app, { services }) => {
  const { sessions, turns } = services;

  app.post('/api/chat', async (request, reply) => {
    if (!services.readiness.acceptingTurns) {
      throw new HttpError(503, 'server_shutting_down', 'The server is shutting down; send the message to another instance or retry shortly', undefined, { 'retry-after': '5' });
    }
    const body = validate(chatRequestSchema, request.body, 'body');
    // Everything that can be refused (bad input, unknown or busy session) is refused as JSON before
    // the stream opens; after that, failures travel as frames.
    const scope = scopeOf(identityOf(request));
    const session = body.session_id ? sessions.get(body.session_id, scope) : (await sessions.create(scope)).session;
    const turn = turns.prepare(session, body.message);

    reply.hijack();
    const res = reply.raw;
    const sse = new SseWriter(res, session.id);
    res.once('close', () => {
      if (!res.writableFinished && turn.active.controller.signal.aborted === false) {
        request.log.info({ event: LogEvent.clientDisconnected, session_id: session.id });
        turn.active.controller.abort(new TurnAbort('client_disconnected'));
      }
    });
    // Headers set by the hooks (CORS, security, RateLimit) must reach the hijacked stream too.
    sse.open({ ...stringHeaders(reply.getHeaders()), 'x-session-id': session.id, 'x-request-id': String(request.id) });
    await turns.run(turn, sse);
  });
};

function stringHeaders(headers: Record<string, number | string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return out;
}
