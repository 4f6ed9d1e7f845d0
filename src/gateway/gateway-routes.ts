import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { toHttpError } from '../http/error-handler.js';
import { sendAnthropicError, statusForErrorType } from './anthropic-errors.js';
import { Cancellation } from './cancellation.js';
import type { GatewayOutcome, MessagesGateway } from './messages-gateway.js';

/** Request headers passed on to the upstream (API version and beta flags). */
function passthroughHeaders(request: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['anthropic-version', 'anthropic-beta']) {
    const value = request.headers[name];
    if (typeof value === 'string') out[name] = value;
  }
  return out;
}

function gatewayHeaders(outcome: Extract<GatewayOutcome, { kind: 'json' | 'stream' }>, model: string): Record<string, string> {
  return {
    'x-gateway-attempts': String(outcome.attempts),
    'x-gateway-target': outcome.target.name,
    ...(outcome.fallback ? { 'x-gateway-fallback-model': outcome.target.model ?? model } : {}),
  };
}

function validBody(body: unknown): body is Record<string, unknown> & { model: string; messages: unknown[] } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  const b = body as Record<string, unknown>;
  return typeof b.model === 'string' && b.model.length > 0 && Array.isArray(b.messages) && typeof b.max_tokens === 'number';
}

/** An error from the gateway: the upstream's own body when it answered, else an Anthropic-shaped one. */
function sendFailure(reply: FastifyReply, outcome: Extract<GatewayOutcome, { kind: 'error' }>) {
  const headers = { 'x-gateway-attempts': String(outcome.attempts) };
  if (outcome.upstreamStatus !== undefined && outcome.upstreamBody && outcome.upstreamBody.length > 0) {
    return reply.code(outcome.upstreamStatus).headers(headers).type('application/json').send(outcome.upstreamBody);
  }
  const error = outcome.error as { errorType?: string; message?: string; status?: number; retryAfterMs?: number };
  const type = error.errorType ?? 'api_error';
  const all: Record<string, string> = { ...headers };
  if (error.retryAfterMs !== undefined) all['retry-after'] = String(Math.max(1, Math.ceil(error.retryAfterMs / 1000)));
  return sendAnthropicError(reply, error.status ?? statusForErrorType(type), type, error.message ?? 'The upstream failed', all);
}

/** Anthropic's Messages API, so SDK users can point `baseURL` at this server. */
export function gatewayRoutes(gateway: MessagesGateway | null): FastifyPluginAsync {
  return async (app) => {
    if (!gateway) {
      // Without a key or a routing file no model has a route (the simulator speaks /api/chat only).
      const unconfigured = async (_request: FastifyRequest, reply: FastifyReply) =>
        sendAnthropicError(reply, 404, 'not_found_error', 'No upstream is configured for /v1/messages: set ANTHROPIC_API_KEY or CONFIG_FILE');
      app.post('/v1/messages', unconfigured);
      app.post('/v1/messages/count_tokens', unconfigured);
      app.get('/v1/models', unconfigured);
      return;
    }
    // The body as the client sent it, so /v1/messages forwards those bytes instead of serialising its
    // parse again (which costs more the longer the conversation). Same parsing rules as the rest.
    const rawBodies = new WeakMap<FastifyRequest, string>();
    const parseJson = app.getDefaultJsonParser('error', 'error');
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
      const text = typeof body === 'string' ? body : body.toString('utf8');
      // As in http/app.ts: an empty body sent as JSON counts as no body.
      if (text.trim() === '') {
        done(null, undefined);
        return;
      }
      rawBodies.set(request, text);
      parseJson(request, text, done);
    });

    // Errors on these routes (auth, limits, validation) keep Anthropic's shape, as SDKs expect.
    app.setErrorHandler((error, _request, reply) => {
      const httpError = toHttpError(error);
      return sendAnthropicError(reply, httpError.statusCode === 422 ? 400 : httpError.statusCode, httpError.type, httpError.message, httpError.headers);
    });

    app.post('/v1/messages', async (request, reply) => {
      if (!validBody(request.body)) {
        return sendAnthropicError(reply, 400, 'invalid_request_error', 'The body needs model (string), messages (array) and max_tokens (number)');
      }
      const body = request.body;
      const stream = body.stream === true;
      const cancel = new Cancellation();
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) cancel.abort(new Error('client went away'));
      });
      const outcome = await gateway.run(body, stream, passthroughHeaders(request), cancel, rawBodies.get(request));
      if (outcome.kind === 'error') return sendFailure(reply, outcome);
      if (outcome.kind === 'json') {
        return reply.code(200).headers(gatewayHeaders(outcome, body.model)).type('application/json').send(outcome.body);
      }
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        'x-request-id': String(request.id),
        ...gatewayHeaders(outcome, body.model),
      });
      await gateway.forward(outcome.primed, res);
      if (!res.destroyed && !res.writableEnded) res.end();
    });

    app.post('/v1/messages/count_tokens', async (request, reply) => {
      const model = typeof (request.body as { model?: unknown } | undefined)?.model === 'string' ? String((request.body as { model: string }).model) : '*';
      const upstream = gateway.passthroughUpstream(model);
      if (!upstream) return sendAnthropicError(reply, 404, 'not_found_error', `No route for model ${model}`);
      const response = await upstream.send('/v1/messages/count_tokens', JSON.stringify(request.body ?? {}), { signal: AbortSignal.timeout(30_000), headers: passthroughHeaders(request) });
      return reply.code(response.status).type('application/json').send(Buffer.from(await response.body.text()));
    });

    app.get('/v1/models', async (request, reply) => {
      const upstream = gateway.passthroughUpstream('*');
      if (!upstream) return sendAnthropicError(reply, 404, 'not_found_error', 'No default route');
      const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';
      const response = await upstream.get(`/v1/models${query}`, AbortSignal.timeout(30_000), passthroughHeaders(request));
      return reply.code(response.status).type('application/json').send(Buffer.from(await response.body.text()));
    });
  };
}
