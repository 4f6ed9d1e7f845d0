import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { DirectRoute, ResponseHead } from '../http/direct-route.js';
import type { HttpError } from '../http/http-error.js';
import { anthropicErrorBody, anthropicErrorType, statusForErrorType } from './anthropic-errors.js';
import { Cancellation } from './cancellation.js';
import type { GatewayOutcome, MessagesGateway } from './messages-gateway.js';
import { messagesRequestOf, readMessagesRequest, type MessagesRequest } from './messages-request.js';

/** One `/v1/messages` call, framework-free: the direct route and Fastify's route both hand it over. */
export interface MessagesCall {
  res: ServerResponse;
  /** Headers every answer carries (security, request id, rate limit, CORS), flat. */
  head: ResponseHead;
  requestId: string;
  headers: IncomingHttpHeaders;
  /** The call; undefined when the body is not a Messages API body. */
  request: MessagesRequest | undefined;
}

/** Request headers passed on to the upstream (API version and beta flags). */
export function passthroughHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  const version = headers['anthropic-version'];
  if (typeof version === 'string') out['anthropic-version'] = version;
  const beta = headers['anthropic-beta'];
  if (typeof beta === 'string') out['anthropic-beta'] = beta;
  return out;
}

/**
 * `head` then `more`, as a new list (`head` stays as it was, should this answer fail and another be
 * written instead). Not `concat`: given strings rather than arrays it takes V8's slow path (~7× slower).
 */
function extended(head: ResponseHead, ...more: string[]): ResponseHead {
  const all = head.slice();
  for (let i = 0; i < more.length; i++) all.push(more[i] as string);
  return all;
}

/** `head` and the gateway's headers (a new list), then `more`. */
function withGatewayHeaders(head: ResponseHead, outcome: Extract<GatewayOutcome, { kind: 'json' | 'stream' }>, model: string, ...more: string[]): ResponseHead {
  const all = extended(head, 'x-gateway-attempts', String(outcome.attempts), 'x-gateway-target', outcome.target.name);
  if (outcome.fallback) all.push('x-gateway-fallback-model', outcome.target.model ?? model);
  for (const value of more) all.push(value);
  return all;
}

/** Anthropic's error body (as Fastify would serialise it), so SDK clients raise their usual typed errors. */
export function writeAnthropicError(res: ServerResponse, head: ResponseHead, status: number, type: string, message: string, requestId: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(anthropicErrorBody(anthropicErrorType(type), message, requestId));
  const all = extended(head, ...Object.entries(headers).flat(), 'content-type', 'application/json; charset=utf-8', 'content-length', String(Buffer.byteLength(body)));
  res.writeHead(status, all);
  res.end(body);
}

/** An error from the gateway: the upstream's own body when it answered, else an Anthropic-shaped one. */
function writeFailure(res: ServerResponse, head: ResponseHead, requestId: string, outcome: Extract<GatewayOutcome, { kind: 'error' }>): void {
  const attempts = String(outcome.attempts);
  if (outcome.upstreamStatus !== undefined && outcome.upstreamBody && outcome.upstreamBody.length > 0) {
    res.writeHead(outcome.upstreamStatus, extended(head, 'x-gateway-attempts', attempts, 'content-type', 'application/json', 'content-length', String(outcome.upstreamBody.length)));
    res.end(outcome.upstreamBody);
    return;
  }
  const error = outcome.error as { errorType?: string; message?: string; status?: number; retryAfterMs?: number };
  const type = error.errorType ?? 'api_error';
  const headers: Record<string, string> = { 'x-gateway-attempts': attempts };
  if (error.retryAfterMs !== undefined) headers['retry-after'] = String(Math.max(1, Math.ceil(error.retryAfterMs / 1000)));
  writeAnthropicError(res, head, error.status ?? statusForErrorType(type), type, error.message ?? 'The upstream failed', requestId, headers);
}

/**
 * Node builds the header block by appending line after line and keeps it as long as the response
 * lives: a tree of ~100 string pieces (~3 KB) per open stream. Converting it to a number makes V8
 * flatten it in place into one ~1 KB string, and the pieces become garbage. (`_header` is Node's,
 * undocumented but long stable; without it this does nothing.)
 */
function flattenHeaderText(res: ServerResponse): void {
  const text = (res as unknown as { _header?: unknown })._header;
  if (typeof text === 'string') Number(text);
}

/** Anthropic's Messages API on a raw response, through the gateway's breakers, retries and timers. */
export async function serveMessages(gateway: MessagesGateway, call: MessagesCall): Promise<void> {
  const { res, head, requestId, request } = call;
  if (!request) {
    writeAnthropicError(res, head, 400, 'invalid_request_error', 'The body needs model (string), messages (array) and max_tokens (number)', requestId);
    return;
  }
  const cancel = new Cancellation();
  res.once('close', () => {
    if (!res.writableFinished) cancel.abort(new Error('client went away'));
  });
  const outcome = await gateway.run(request, passthroughHeaders(call.headers), cancel, requestId);
  if (outcome.kind === 'error') {
    writeFailure(res, head, requestId, outcome);
    return;
  }
  if (outcome.kind === 'json') {
    res.writeHead(200, withGatewayHeaders(head, outcome, request.model, 'content-type', 'application/json', 'content-length', String(outcome.body.length)));
    res.end(outcome.body);
    return;
  }
  res.writeHead(200, withGatewayHeaders(head, outcome, request.model, 'content-type', 'text/event-stream; charset=utf-8', 'cache-control', 'no-cache'));
  flattenHeaderText(res);
  await gateway.forward(outcome.primed, res);
  if (!res.destroyed && !res.writableEnded) res.end();
}

/** `/v1/messages` as a direct route: served ahead of Fastify when the request is plain. */
export function messagesDirectRoute(gateway: MessagesGateway): DirectRoute {
  return {
    path: '/v1/messages',
    group: 'chat',
    sendError: (res: ServerResponse, head: ResponseHead, error: HttpError, requestId: string) =>
      writeAnthropicError(res, head, error.statusCode === 422 ? 400 : error.statusCode, error.type, error.message, requestId, error.headers),
    serve: ({ req, res, head, requestId, raw, parse }) => {
      // Read off the bytes when plainly valid (nearly always); else parsed, for the parser's own errors
      // (thrown at once: the direct route answers those too).
      const request = readMessagesRequest(raw) ?? messagesRequestOf(parse(), raw);
      return serveMessages(gateway, { res, head, requestId, headers: req.headers, request });
    },
  };
}
