import type { FastifyReply } from 'fastify';

/** Anthropic's error body, so SDK clients raise their usual typed errors. */
export function anthropicErrorBody(type: string, message: string, requestId: string) {
  return { type: 'error', error: { type, message }, request_id: requestId };
}

/** Status for an error type when the upstream gave none (or it came from the gateway itself). */
export function statusForErrorType(type: string): number {
  switch (type) {
    case 'invalid_request_error':
    case 'context_too_long':
      return 400;
    case 'authentication_error':
      return 401;
    case 'permission_error':
      return 403;
    case 'not_found_error':
      return 404;
    case 'request_too_large':
      return 413;
    case 'rate_limit_error':
    case 'rate_limit_exceeded':
      return 429;
    case 'overloaded_error':
      return 529;
    case 'connect_timeout':
    case 'first_token_timeout':
    case 'idle_timeout':
    case 'total_timeout':
    case 'timeout':
      return 504;
    case 'circuit_open':
      return 503;
    default:
      return 502;
  }
}

/** Our internal error types mapped onto the ones Anthropic's SDKs know. */
export function anthropicErrorType(type: string): string {
  switch (type) {
    case 'context_too_long':
    case 'validation_error':
    case 'invalid_json':
      return 'invalid_request_error';
    case 'rate_limit_exceeded':
      return 'rate_limit_error';
    case 'circuit_open':
      return 'overloaded_error';
    case 'connect_timeout':
    case 'first_token_timeout':
    case 'idle_timeout':
    case 'total_timeout':
      return 'timeout_error';
    case 'connection_error':
    case 'stream_cut':
    case 'malformed_event':
    case 'unknown':
      return 'api_error';
    default:
      return type;
  }
}

export function sendAnthropicError(reply: FastifyReply, status: number, type: string, message: string, headers: Record<string, string> = {}) {
  return reply.code(status).headers(headers).type('application/json').send(anthropicErrorBody(anthropicErrorType(type), message, String(reply.request.id)));
}

/** An SSE `error` event for a stream that already started. */
export function anthropicErrorEvent(type: string, message: string): string {
  return `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: anthropicErrorType(type), message } })}\n\n`;
}
