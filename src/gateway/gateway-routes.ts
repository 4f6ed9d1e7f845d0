import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { toHttpError } from '../http/error-handler.js';
import { sendAnthropicError } from './anthropic-errors.js';
import type { MessagesGateway } from './messages-gateway.js';
import { passthroughHeaders, serveMessages } from './messages-endpoint.js';
import { messagesRequestOf } from './messages-request.js';

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

    // The same call as the direct route's (http/direct-route.ts), for the requests it hands on to Fastify
    // (browsers, chunked bodies): the headers the hooks gathered (CORS, rate limit) go out with the answer.
    app.post('/v1/messages', async (request, reply) => {
      reply.hijack();
      const head: string[] = [];
      for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) head.push(name, String(value));
      head.push('x-request-id', String(request.id));
      await serveMessages(gateway, { res: reply.raw, head, requestId: String(request.id), headers: request.headers, request: messagesRequestOf(request.body, rawBodies.get(request)) });
    });

    app.post('/v1/messages/count_tokens', async (request, reply) => {
      const model = typeof (request.body as { model?: unknown } | undefined)?.model === 'string' ? String((request.body as { model: string }).model) : '*';
      const upstream = gateway.passthroughUpstream(model);
      if (!upstream) return sendAnthropicError(reply, 404, 'not_found_error', `No route for model ${model}`);
      const response = await upstream.send('/v1/messages/count_tokens', JSON.stringify(request.body ?? {}), { signal: AbortSignal.timeout(30_000), headers: passthroughHeaders(request.headers) });
      return reply.code(response.status).type('application/json').send(Buffer.from(await response.body.text()));
    });

    app.get('/v1/models', async (request, reply) => {
      const upstream = gateway.passthroughUpstream('*');
      if (!upstream) return sendAnthropicError(reply, 404, 'not_found_error', 'No default route');
      const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';
      const response = await upstream.get(`/v1/models${query}`, AbortSignal.timeout(30_000), passthroughHeaders(request.headers));
      return reply.code(response.status).type('application/json').send(Buffer.from(await response.body.text()));
    });
  };
}
