import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { abortableSleep } from '../providers/abortable-sleep.js';
import { ProviderError } from '../providers/errors.js';
import type { CircuitBreaker } from '../resilience/circuit-breaker/circuit-breaker.js';
import type { CircuitBreakerRegistry } from '../resilience/circuit-breaker/registry.js';
import type { BreakerPermit } from '../resilience/circuit-breaker/types.js';
import { CircuitOpenError, UpstreamTimeoutError } from '../resilience/errors.js';
import { CallTimers, type CallTimerLimits } from '../resilience/timers/call-timers.js';
import { anthropicErrorEvent } from './anthropic-errors.js';
import type { RoutingConfig, Target } from './routing/routing-config.js';
import { AnthropicUpstream, type UpstreamResponse } from './upstream/anthropic-upstream.js';
import { parseEvent, SseScanner, type ScannedEvent } from './upstream/sse-scanner.js';

interface GatewayTarget {
  name: string;
  model: string | undefined;
  upstream: AnthropicUpstream;
  breaker: CircuitBreaker;
}

export interface GatewaySettings {
  timers: CallTimerLimits;
  /** Backoff before retry n on the same target (the last value repeats); retry-after wins when given. */
  delaysMs: readonly number[];
  maxRetryAfterMs: number;
}

/** What the handler answers: a complete JSON body, or a primed stream to forward, or an error. */
export type GatewayOutcome =
  | { kind: 'json'; status: number; body: Buffer; target: GatewayTarget; attempts: number; fallback: boolean }
  | { kind: 'stream'; primed: PrimedStream; target: GatewayTarget; attempts: number; fallback: boolean }
  | { kind: 'error'; error: unknown; upstreamStatus?: number | undefined; upstreamBody?: Buffer | undefined; attempts: number };

/** A stream that already produced its first content; `buffered` holds the exact bytes so far. */
export interface PrimedStream {
  buffered: Buffer[];
  rest: AsyncIterator<ScannedEvent>;
  sawStop: boolean;
  timers: CallTimers;
  controller: AbortController;
  permit: BreakerPermit;
}

/** The first generated content: until then nothing the client cannot get again has been sent. */
function isContentEvent(event: ScannedEvent): boolean {
  return event.event === 'content_block_delta';
}

/**
 * `/v1/messages` through the same protection as chat: per target a breaker, retries with backoff
 * (retry-after honoured), the four timers, then the next target of the route. Before the first content
 * reaches the client a failed or silent stream restarts invisibly on the next attempt; after that the
 * caller ends it with a typed `event: error` — never a silently truncated message.
 */
export class MessagesGateway {
  private readonly upstreams = new Map<string, AnthropicUpstream>();
  private readonly targets = new Map<string, GatewayTarget>();

  constructor(
    private readonly routing: RoutingConfig,
    private readonly breakers: CircuitBreakerRegistry,
    private readonly settings: GatewaySettings,
    private readonly log: Logger,
  ) {}

  /** One upstream pool per base URL and key, one breaker per route target. */
  private target(routeModel: string, target: Target): GatewayTarget {
    const id = `${routeModel}/${target.name}`;
    let built = this.targets.get(id);
    if (!built) {
      const poolKey = `${target.baseUrl} ${target.apiKey}`;
      let upstream = this.upstreams.get(poolKey);
      if (!upstream) {
        upstream = new AnthropicUpstream({ baseUrl: target.baseUrl, apiKey: target.apiKey });
        this.upstreams.set(poolKey, upstream);
      }
      built = { name: target.name, model: target.model, upstream, breaker: this.breakers.register(`gateway:${id}`, target.breaker) };
      this.targets.set(id, built);
    }
    return built;
  }

  /** The upstream for pass-through routes (count_tokens, models): the first target of the route. */
  passthroughUpstream(model: string): AnthropicUpstream | undefined {
    const route = this.routing.resolve(model);
    const first = route?.targets[0];
    return route && first ? this.target(route.model, first).upstream : undefined;
  }

  async run(body: Record<string, unknown>, stream: boolean, headers: Record<string, string>, signal: AbortSignal): Promise<GatewayOutcome> {
    const model = String(body.model);
    const route = this.routing.resolve(model);
    if (!route) {
      return { kind: 'error', error: new ProviderError('not_found_error', `No route for model ${model}`, 'non_retryable', { status: 404 }), attempts: 0 };
    }
    const plan = route.targets.map((t) => this.target(route.model, t));
    let attempts = 0;
    let lastFailure: GatewayOutcome | undefined;
    /** The primary's own failure: what the caller hears when no target could answer. */
    let primaryFailure: GatewayOutcome | undefined;
    let usedContextFallback = false;
    for (let index = 0; index < plan.length; index++) {
      const target = plan[index] as GatewayTarget;
      for (let retry = 0; retry <= route.retries; retry++) {
        if (signal.aborted) return { kind: 'error', error: new ProviderError('aborted', 'The client went away', 'aborted'), attempts };
        attempts++;
        const outcome = await this.attempt(target, body, stream, headers, signal, attempts, index > 0);
        if (outcome.kind !== 'error') return outcome;
        lastFailure = outcome;
        if (index === 0) primaryFailure = outcome;
        const error = outcome.error;
        if (error instanceof CircuitOpenError) break; // this target is resting: next one
        const failureClass = (error as { failureClass?: string }).failureClass;
        const errorType = (error as { errorType?: string }).errorType;
        if (failureClass === 'aborted') return outcome;
        if (failureClass === 'non_retryable') {
          if (errorType === 'context_too_long' && route.contextFallback && !usedContextFallback) {
            usedContextFallback = true;
            attempts++;
            const bigger = this.target(route.model, route.contextFallback);
            const answer = await this.attempt(bigger, body, stream, headers, signal, attempts, true);
            return answer;
          }
          // On the primary a client error is the caller's to see: never retried, never hidden behind
          // another model. On a fallback it only says that target cannot take this request (e.g. an
          // assistant prefill): move on, and report the primary's failure if nothing answers.
          if (index === 0) return outcome;
          break;
        }
        // A silent upstream is not retried: the next target is tried at once. (Without streaming the
        // headers only come with the whole answer, so there the total timer is the silence detector.)
        if (error instanceof UpstreamTimeoutError && (error.timer === 'connect' || (!stream && error.timer === 'total'))) break;
        if (retry < route.retries) {
          const retryAfter = (error as { retryAfterMs?: number }).retryAfterMs;
          const base = this.settings.delaysMs[Math.min(retry, this.settings.delaysMs.length - 1)] ?? 1000;
          const delay = retryAfter !== undefined ? Math.min(retryAfter, this.settings.maxRetryAfterMs) : base * (0.8 + Math.random() * 0.4);
          this.log.warn({ event: 'reconnection_attempt', component: 'gateway', target: target.name, attempt: attempts, delay_ms: Math.round(delay), reason: errorType ?? 'unknown' });
          try {
            await abortableSleep(delay, signal);
          } catch {
            return { kind: 'error', error: new ProviderError('aborted', 'The client went away', 'aborted'), attempts };
          }
        }
      }
    }
    const failure = primaryFailure ?? lastFailure;
    if (failure && failure.kind === 'error') return { ...failure, attempts };
    return { kind: 'error', error: new ProviderError('api_error', 'No target could answer', 'retryable'), attempts };
  }

  /** One call to one target: admitted by its breaker, bounded by the timers, outcome reported once. */
  private async attempt(
    target: GatewayTarget,
    body: Record<string, unknown>,
    stream: boolean,
    headers: Record<string, string>,
    outer: AbortSignal,
    attempts: number,
    fallback: boolean,
  ): Promise<GatewayOutcome> {
    let permit: BreakerPermit;
    try {
      permit = target.breaker.acquire();
    } catch (error) {
      return { kind: 'error', error, attempts };
    }
    const controller = new AbortController();
    const forward = () => controller.abort(outer.reason);
    outer.addEventListener('abort', forward, { once: true });
    const limits = stream ? this.settings.timers : { connectMs: 0, firstTokenMs: 0, idleMs: 0, totalMs: this.settings.timers.totalMs };
    const timers = new CallTimers(limits, (timeout) => controller.abort(timeout));
    const payload = JSON.stringify(target.model ? { ...body, model: target.model } : body);
    const started = performance.now();
    timers.start();
    let handedOver = false;
    try {
      let response: UpstreamResponse;
      try {
        response = await target.upstream.send('/v1/messages', payload, { signal: controller.signal, headers });
      } catch (error) {
        throw this.reason(controller, error);
      }
      timers.connected();
      if (response.status !== 200) {
        const text = Buffer.from(await response.body.text().catch(() => ''));
        const error = target.upstream.errorFrom(response.status, response.headers, text.toString('utf8'));
        permit.failure(error);
        return { kind: 'error', error, upstreamStatus: response.status, upstreamBody: text, attempts };
      }
      if (!stream) {
        const chunks: Buffer[] = [];
        try {
          for await (const chunk of response.body) chunks.push(chunk);
        } catch (error) {
          throw this.reason(controller, error);
        }
        const json = Buffer.concat(chunks);
        // A 200 is only an answer if it is a whole message: garbage or a message cut short (no
        // stop_reason) is a failure to retry or fail over, never something to hand the caller.
        const problem = incompleteMessage(json);
        if (problem) throw problem;
        permit.success(performance.now() - started);
        return { kind: 'json', status: 200, body: json, target, attempts, fallback };
      }
      const primed = await this.prime(response, timers, controller, permit);
      handedOver = true;
      return { kind: 'stream', primed, target, attempts, fallback };
    } catch (error) {
      const reason = error instanceof ProviderError || error instanceof UpstreamTimeoutError ? error : this.reason(controller, error);
      if (outer.aborted) permit.release();
      else permit.failure(reason);
      return { kind: 'error', error: reason, attempts };
    } finally {
      outer.removeEventListener('abort', forward);
      if (!handedOver) timers.stop();
    }
  }

  /** Reads events until the first content, keeping their exact bytes; a failure here is still invisible. */
  private async prime(response: UpstreamResponse, timers: CallTimers, controller: AbortController, permit: BreakerPermit): Promise<PrimedStream> {
    const events = this.scan(response, controller);
    const buffered: Buffer[] = [];
    let sawStop = false;
    for (;;) {
      const next = await events.next();
      if (next.done) throw new ProviderError('stream_cut', 'The upstream stream ended before any content', 'retryable');
      const event = next.value;
      timers.activity();
      if (event.event === 'error') throw this.streamError(event);
      buffered.push(event.raw);
      if (event.event === 'message_stop') sawStop = true;
      if (isContentEvent(event) || sawStop) {
        timers.content();
        return { buffered, rest: events, sawStop, timers, controller, permit };
      }
    }
  }

  /** Upstream bytes as SSE events; transport errors and malformed data become ProviderErrors. */
  private async *scan(response: UpstreamResponse, controller: AbortController): AsyncGenerator<ScannedEvent> {
    const scanner = new SseScanner();
    try {
      for await (const chunk of response.body) {
        for (const event of scanner.push(chunk)) {
          if (event.hasData && event.event !== 'ping' && !isJson(event.data)) {
            throw new ProviderError('malformed_event', 'The upstream sent an unreadable stream event', 'retryable');
          }
          yield event;
        }
      }
      for (const event of scanner.end()) yield event;
    } catch (error) {
      if (error instanceof ProviderError) throw error;
      throw this.reason(controller, error);
    }
  }

  streamError(event: ScannedEvent): ProviderError {
    try {
      const parsed = JSON.parse(event.data) as { error?: { type?: string; message?: string } };
      const type = parsed.error?.type ?? 'api_error';
      const retryable = ['overloaded_error', 'api_error', 'rate_limit_error', 'timeout_error'].includes(type);
      return new ProviderError(type, parsed.error?.message ?? 'Upstream error', retryable ? 'retryable' : 'non_retryable');
    } catch {
      return new ProviderError('api_error', 'Upstream error', 'retryable');
    }
  }

  /** Why an attempt's transport failed: our own timer, the client, or the network. */
  reason(controller: AbortController, error: unknown): ProviderError | UpstreamTimeoutError {
    const why: unknown = controller.signal.reason;
    if (why instanceof UpstreamTimeoutError) return why;
    if (error instanceof ProviderError) return error;
    return new ProviderError('stream_cut', 'The upstream connection broke off', 'retryable', { cause: error });
  }

  /**
   * Forwards the rest of a primed stream byte for byte. A failure now can no longer be hidden: the
   * stream ends with a typed `event: error`. Returns whether the answer was complete.
   */
  async forward(primed: PrimedStream, res: ServerResponse): Promise<boolean> {
    const { timers, controller, permit } = primed;
    let complete = primed.sawStop;
    const started = performance.now();
    try {
      for (;;) {
        const next = await primed.rest.next();
        if (next.done) break;
        const event = next.value;
        timers.activity();
        if (event.event === 'message_stop') complete = true;
        await write(res, event.raw);
        if (event.event === 'error') {
          permit.failure(this.streamError(event));
          return false;
        }
      }
      if (!complete) throw new ProviderError('stream_cut', 'The upstream stream ended before message_stop', 'retryable');
      permit.success(performance.now() - started);
      return true;
    } catch (error) {
      const reason = error instanceof ProviderError || error instanceof UpstreamTimeoutError ? error : this.reason(controller, error);
      if (res.destroyed) permit.release();
      else {
        permit.failure(reason);
        await write(res, Buffer.from(anthropicErrorEvent(reason.errorType, reason.message)));
      }
      return false;
    } finally {
      timers.stop();
      // Only a broken-off stream needs cancelling: aborting a finished request costs time for nothing.
      if (!complete) controller.abort();
    }
  }

  /**
   * The events of a primed stream, for callers that translate rather than forward (chat sessions).
   * Same rules as `forward`: a stream without message_stop or with an `error` event throws.
   */
  async *events(primed: PrimedStream): AsyncGenerator<ScannedEvent> {
    const { timers, controller, permit } = primed;
    let complete = primed.sawStop;
    const started = performance.now();
    let finished = false;
    try {
      for (const raw of primed.buffered) yield parseEvent(raw);
      for (;;) {
        const next = await primed.rest.next();
        if (next.done) break;
        const event = next.value;
        timers.activity();
        if (event.event === 'error') throw this.streamError(event);
        if (event.event === 'message_stop') complete = true;
        yield event;
      }
      if (!complete) throw new ProviderError('stream_cut', 'The upstream stream ended before message_stop', 'retryable');
      permit.success(performance.now() - started);
      finished = true;
    } catch (error) {
      const reason = error instanceof ProviderError || error instanceof UpstreamTimeoutError ? error : this.reason(controller, error);
      permit.failure(reason);
      finished = true;
      throw reason;
    } finally {
      timers.stop();
      if (!finished) permit.release(); // the consumer stopped early (client gone)
      if (!complete) controller.abort();
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.upstreams.values()].map((u) => u.destroy()));
  }
}

function incompleteMessage(body: Buffer): ProviderError | undefined {
  let message: { type?: unknown; stop_reason?: unknown };
  try {
    message = JSON.parse(body.toString('utf8')) as typeof message;
  } catch {
    return new ProviderError('malformed_event', 'The upstream answered with an unreadable body', 'retryable');
  }
  if (message.type !== 'message' || message.stop_reason === null || message.stop_reason === undefined) {
    return new ProviderError('stream_cut', 'The upstream answered with an incomplete message', 'retryable');
  }
  return undefined;
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Writes with backpressure; resolves at once when the client is gone. */
export function write(res: ServerResponse, bytes: Buffer): Promise<void> {
  if (res.destroyed || res.writableEnded) return Promise.resolve();
  if (res.write(bytes)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
