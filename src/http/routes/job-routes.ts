import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { scopeOf } from '../../auth/identity.js';
import { identityOf } from '../auth.js';
import { HttpError } from '../http-error.js';
import type { ServicesOptions } from '../services.js';
import { validate } from '../validate.js';

const jobParams = z.object({ id: z.guid({ message: 'must be a UUID' }).transform((id) => id.toLowerCase()) });

/** Status of turns accepted by the queue_for_retry fallback. */
export const jobRoutes: FastifyPluginAsync<ServicesOptions> = async (app, { services }) => {
  app.get('/api/jobs/:id', async (request) => {
    const { id } = validate(jobParams, request.params, 'path');
    const job = services.jobs.getJob(id);
    if (!job) throw new HttpError(404, 'not_found', `Job ${id} not found`);
    // A job is visible to whoever may see its session.
    try {
      services.sessions.get(job.sessionId, scopeOf(identityOf(request)));
    } catch {
      throw new HttpError(404, 'not_found', `Job ${id} not found`);
    }
    return {
      job_id: job.id,
      session_id: job.sessionId,
      message_id: job.userMessageId,
      status: job.status,
      attempts: job.attempts,
      next_run_at: new Date(job.nextRunAt).toISOString(),
      last_error: job.lastError,
      result_message_id: job.resultMessageId,
      created_at: job.createdAt,
      updated_at: job.updatedAt,
    };
  });
};
