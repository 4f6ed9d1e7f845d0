import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { scopeOf } from '../../auth/identity.js';
import { identityOf } from '../auth.js';
import { historyQuerySchema, idParamsSchema, listSessionsQuerySchema, sessionConfigSchema, sessionRefSchema } from '../../chat/schemas.js';
import type { CreatedSession } from '../../chat/session-service.js';
import type { SessionConfig } from '../../store/types.js';
import { presentMessage, presentSession, presentSessionSummary } from '../presenters.js';
import type { ServicesOptions } from '../services.js';
import { validate } from '../validate.js';
import { claimIdempotencyKey, idempotencyKeyOf } from '../idempotency.js';

/** What a creation's Idempotency-Key remembers: small, whatever the config (the response is rebuilt). */
interface CreatedRecord {
  session_id: string;
  fallback_strategy: string | null;
}

/** 201 with the id (and the stored config); a session created by a fallback says so (header and `provisional`). */
function sendCreated(reply: FastifyReply, record: CreatedRecord, config: SessionConfig | undefined) {
  if (record.fallback_strategy) reply.header('x-fallback-strategy', record.fallback_strategy);
  return reply.code(201).send({
    session_id: record.session_id,
    ...(config ? { config } : {}),
    ...(record.fallback_strategy ? { provisional: true } : {}),
  });
}

function recordOf(created: CreatedSession): CreatedRecord {
  return { session_id: created.session.id, fallback_strategy: created.fallbackStrategy };
}

const scope = (request: FastifyRequest) => scopeOf(identityOf(request));

export const sessionRoutes: FastifyPluginAsync<ServicesOptions> = async (app, { services }) => {
  const { sessions } = services;
  const configSchema = sessionConfigSchema(services.sessionPolicy);
  const optionalConfigSchema = configSchema.optional().nullable();

  /**
   * With an Idempotency-Key, a repeat gets the first response (the same session, its config read
   * back from the store) instead of a new session.
   */
  const createOnce = async (request: FastifyRequest, reply: FastifyReply, route: string, config: SessionConfig, withConfig: boolean) => {
    const key = idempotencyKeyOf(request);
    const claim = key === undefined ? null : await claimIdempotencyKey(services.idempotency, scope(request), route, key, config);
    if (claim?.kind === 'repeat') {
      const record = claim.result as CreatedRecord;
      const session = sessions.get(record.session_id, scope(request));
      reply.header('idempotent-replayed', 'true');
      return sendCreated(reply, record, withConfig ? session.config : undefined);
    }
    let created: CreatedSession;
    try {
      created = await sessions.create(scope(request), config);
    } catch (error) {
      await claim?.release();
      throw error;
    }
    await claim?.complete(recordOf(created));
    return sendCreated(reply, recordOf(created), withConfig ? created.session.config : undefined);
  };

  app.post('/api/new-session', async (request, reply) => {
    const config = validate(optionalConfigSchema, request.body, 'body') ?? {};
    return createOnce(request, reply, 'POST /api/new-session', config, false);
  });

  app.post('/api/session-with-config', async (request, reply) => {
    const config = validate(configSchema, request.body ?? {}, 'body');
    return createOnce(request, reply, 'POST /api/session-with-config', config, true);
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
