import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SessionNotFoundError, TurnInProgressError } from '../chat/errors.js';
import { LogEvent } from '../observability/events.js';
import { CircuitOpenError } from '../resilience/errors.js';
import { InvalidCursorError } from '../store/sqlite/sqlite-store.js';
import { HttpError, type ErrorBody } from './http-error.js';

/** Fastify's own error codes that are the client's fault, with the type we report for them. */
const FASTIFY_CLIENT_ERRORS: Record<string, { status: number; type: string }> = {
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, type: 'invalid_json' },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, type: 'payload_too_large' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, type: 'unsupported_media_type' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, type: 'invalid_request' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, type: 'invalid_json' },
};

export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof SessionNotFoundError) return new HttpError(404, 'not_found', error.message);
  if (error instanceof TurnInProgressError) return new HttpError(409, 'turn_in_progress', error.message);
  if (error instanceof InvalidCursorError) return new HttpError(422, 'validation_error', error.message);
  if (error instanceof CircuitOpenError) {
    const seconds = Math.max(1, Math.ceil(error.retryAfterMs / 1000));
    return new HttpError(503, 'circuit_open', error.message, { circuit: error.circuitName, retry_after_ms: error.retryAfterMs }, { 'retry-after': String(seconds) });
  }
  const fastifyError = error as Partial<FastifyError>;
  const known = fastifyError.code ? FASTIFY_CLIENT_ERRORS[fastifyError.code] : undefined;
  if (known) return new HttpError(known.status, known.type, fastifyError.message ?? 'Bad request');
  if (error instanceof SyntaxError) return new HttpError(400, 'invalid_json', `Malformed JSON body: ${error.message}`);
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new HttpError(status, 'invalid_request', fastifyError.message ?? 'Bad request');
  }
  return new HttpError(500, 'internal_error', 'Internal server error');
}

export function sendError(reply: FastifyReply, request: FastifyRequest, error: HttpError): FastifyReply {
  const body: ErrorBody = {
    error: { type: error.type, message: error.message, ...(error.details !== undefined ? { details: error.details } : {}) },
    request_id: String(request.id),
  };
  return reply.code(error.statusCode).headers(error.headers).type('application/json').send(body);
}

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => {
    const httpError = toHttpError(error);
    if (httpError.statusCode >= 500) {
      request.log.error({ event: LogEvent.requestError, err: error }, 'request failed');
    }
    return sendError(reply, request, httpError);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, request, new HttpError(404, 'not_found', `No route for ${request.method} ${request.url.split('?')[0]}`)),
  );
}
