import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { scopeOf } from '../../auth/identity.js';
import { identityOf } from '../auth.js';
import { historyQuerySchema, idParamsSchema, listSessionsQuerySchema, sessionConfigSchema, sessionRefSchema } from '../../chat/schemas.js';
import type { CreatedSession } from '../../chat/session-service.js';
import { presentMessage, presentSession, presentSessionSummary } from '../presenters.js';
import type { ServicesOptions } from '../services.js';
import { validate } from '../validate.js';
import { claimIdempotencyKey, idempotencyKeyOf } from '../idempotency.js';

/** A creation response, as sent and as remembered for a repeated Idempotency-Key. */
interface CreatedResponse {
  body: Record<string, unknown>;
  fallback_strategy: string | null;
}

/** 201 with the id; a session created by a fallback says so (header and `provisional`). */
function describeCreated(created: CreatedSession, extra: Record<string, unknown> = {}): CreatedResponse {
  return {
    body: { session_id: created.session.id, ...extra, ...(created.fallbackStrategy ? { provisional: true } : {}) },
    fallback_strategy: created.fallbackStrategy,
  };
}

function sendCreated(reply: FastifyReply, response: CreatedResponse) {
  if (response.fallback_strategy) reply.header('x-fallback-strategy', response.fallback_strategy);
  return reply.code(201).send(response.body);
}

const scope = (request: FastifyRequest) => scopeOf(identityOf(request));

export const sessionRoutes: FastifyPluginAsync<ServicesOptions> = async (app, { services }) => {
  const { sessions } = services;
  const configSchema = sessionConfigSchema(services.sessionPolicy);
  const optionalConfigSchema = configSchema.optional().nullable();

  /** With an Idempotency-Key, a repeat gets the first response (the same session) instead of a new session. */
  const createOnce = async (request: FastifyRequest, reply: FastifyReply, route: string, body: unknown, create: () => Promise<CreatedResponse>) => {
    const key = idempotencyKeyOf(request);
    if (key === undefined) return sendCreated(reply, await create());
    const claim = await claimIdempotencyKey(services.idempotency, scope(request), route, key, body);
    if (claim.kind === 'repeat') {
      reply.header('idempotent-replayed', 'true');
      return sendCreated(reply, claim.result as CreatedResponse);
    }
    let response: CreatedResponse;
    try {
      response = await create();
    } catch (error) {
      await claim.release();
      throw error;
    }
    await claim.complete(response);
    return sendCreated(reply, response);
  };

  app.post('/api/new-session', async (request, reply) => {
    const config = validate(optionalConfigSchema, request.body, 'body') ?? {};
    return createOnce(request, reply, 'POST /api/new-session', config, async () => describeCreated(await sessions.create(scope(request), config)));
  });

  app.post('/api/session-with-config', async (request, reply) => {
    const config = validate(configSchema, request.body ?? {}, 'body');
    return createOnce(request, reply, 'POST /api/session-with-config', config, async () => {
      const created = await sessions.create(scope(request), config);
      return describeCreated(created, { config: created.session.config });
    });
  });

  app.put('/api/session/:id/config', async (request) => {
    const { id } = validate(idParamsSchema, request.params, 'path');
    const patch = validate(configSchema, request.body ?? {}, 'body');
    const session = await sessions.updateConfig(id, patch, scope(request));
    return { status: 'updated', session_id: id, config: session.config };
  });

  app.get('/api/session/:id', async (request) => {
    const { id } = validate(idParamsSchema, request.params, 'path');
    return presentSession(sessions.get(id, scope(request)), sessions.isActive(id));
  });

  app.get('/api/sessions', async (request) => {
    const { limit, cursor } = validate(listSessionsQuerySchema, request.query, 'query');
    const { page, total } = sessions.list(scope(request), limit, cursor);
    return { sessions: page.items.map(presentSessionSummary), total, next_cursor: page.nextCursor };
  });

  app.get('/api/session-history/:id', async (request) => {
    const { id } = validate(idParamsSchema, request.params, 'path');
    const { limit, after } = validate(historyQuerySchema, request.query, 'query');
    const { session, messages, nextAfter } = sessions.history(id, scope(request), limit, after);
    return {
      session_id: id,
      messages: messages.map(presentMessage),
      total_messages: session.messageCount,
      next_cursor: nextAfter === null ? null : String(nextAfter),
    };
  });

  app.delete('/api/session/:id', async (request) => {
    const { id } = validate(idParamsSchema, request.params, 'path');
    await sessions.delete(id, scope(request));
    return { status: 'deleted', session_id: id };
  });

  app.post('/api/interrupt', async (request) => {
    const { session_id } = validate(sessionRefSchema, request.body, 'body');
    const interrupted = await sessions.interrupt(session_id, scope(request));
    return { status: interrupted ? 'interrupted' : 'idle', session_id, interrupted };
  });

  app.post('/api/clear', async (request) => {
    const { session_id } = validate(sessionRefSchema, request.body, 'body');
    const deleted = await sessions.clear(session_id, scope(request));
    return { status: 'cleared', session_id, deleted_messages: deleted };
  });
};
