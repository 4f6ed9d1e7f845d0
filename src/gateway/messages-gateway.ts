import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { ProviderError } from '../providers/errors.js';
import type { CircuitBreaker } from '../resilience/circuit-breaker/circuit-breaker.js';
import type { CircuitBreakerRegistry } from '../resilience/circuit-breaker/registry.js';
import type { BreakerPermit } from '../resilience/circuit-breaker/types.js';
import { CircuitOpenError, UpstreamTimeoutError } from '../resilience/errors.js';
import { CallTimers, type CallTimerLimits } from '../resilience/timers/call-timers.js';
import { anthropicErrorEvent } from './anthropic-errors.js';
import { Cancellation, type CancelSignal } from './cancellation.js';
import { abortableSleep } from '../providers/abortable-sleep.js';
import type { RoutingConfig, Target } from './routing/routing-config.js';
import { AnthropicUpstream, type BufferedResponse, type StreamingResponse } from './upstream/anthropic-upstream.js';
import { BatchQueue } from './upstream/batch-queue.js';
import { EventFeed } from './upstream/event-feed.js';
import { isJsonBytes, TopLevelMembers } from './upstream/json-bytes.js';
import type { ScannedEvent } from './upstream/sse-scanner.js';
import { joinBytes } from './joined-bytes.js';
import type { MessagesRequest } from './messages-request.js';

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

/** A stream that already produced its first content. */
export interface PrimedStream {
  /** The events read up to the first content (or message_stop), with their exact bytes. */
  buffered: ScannedEvent[];
  /** Events that came in the same upstream chunk after it, not yet looked at. */
  pending: ScannedEvent[];
  /** The rest, one batch per upstream chunk (so a chunk's events go out in one write); paused till listened to. */
  feed: EventFeed;
  sawStop: boolean;
  timers: CallTimers;
  /** Cancels this attempt's upstream call (timers, client gone, or a stream broken off). */
  cancel: Cancellation;
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
  /** Without streaming the headers come with the whole answer: only the total timer applies. */
  private readonly jsonLimits: CallTimerLimits;

  constructor(
    private readonly routing: RoutingConfig,
    private readonly breakers: CircuitBreakerRegistry,
    private readonly settings: GatewaySettings,
    private readonly log: Logger,
  ) {
    this.jsonLimits = { connectMs: 0, firstTokenMs: 0, idleMs: 0, totalMs: settings.timers.totalMs };
  }

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

  /**
   * The request's body as sent (`raw`) is forwarded as is rather than serialised again, unless a target
   * asks for another model. `requestId` names the call in the log lines written for it, where no
   * request context does (the direct route).
   */
  async run(request: MessagesRequest, headers: Record<string, string>, signal: CancelSignal, requestId?: string): Promise<GatewayOutcome> {
    const { model, stream } = request;
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
        const outcome = await this.attempt(target, request, headers, signal, attempts, index > 0);
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
            const answer = await this.attempt(bigger, request, headers, signal, attempts, true);
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
          const fields = { event: 'reconnection_attempt', component: 'gateway', target: target.name, attempt: attempts, delay_ms: Math.round(delay), reason: errorType ?? 'unknown' };
          // Without a request id given, the request context's (if any) is added by the logger.
          this.log.warn(requestId === undefined ? fields : { ...fields, request_id: requestId });
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
    request: MessagesRequest,
    headers: Record<string, string>,
    outer: CancelSignal,
    attempts: number,
    fallback: boolean,
  ): Promise<GatewayOutcome> {
    const { stream } = request;
    let permit: BreakerPermit;
    try {
      permit = target.breaker.acquire();
    } catch (error) {
      return { kind: 'error', error, attempts };
    }
    const cancel = new Cancellation();
    const forward = () => cancel.abort(outer.reason);
    outer.addEventListener('abort', forward, { once: true });
    const timers = new CallTimers(stream ? this.settings.timers : this.jsonLimits, (timeout) => cancel.abort(timeout));
    const payload = target.model ? JSON.stringify({ ...request.body(), model: target.model }) : (request.raw ?? JSON.stringify(request.body()));
    const started = performance.now();
    timers.start();
    let handedOver = false;
    try {
      if (!stream) {
        let whole: BufferedResponse;
        try {
          whole = await target.upstream.sendBuffered('/v1/messages', payload, { signal: cancel, headers });
        } catch (error) {
          throw this.reason(cancel, error);
        }
        if (whole.status !== 200) {
          const error = target.upstream.errorFrom(whole.status, whole.headers, whole.body.toString('utf8'));
          permit.failure(error);
          return { kind: 'error', error, upstreamStatus: whole.status, upstreamBody: whole.body, attempts };
        }
        // A 200 is only an answer if it is a whole message: garbage or a message cut short (no
        // stop_reason) is a failure to retry or fail over, never something to hand the caller.
        const problem = incompleteMessage(whole.body);
        if (problem) throw problem;
        permit.success(performance.now() - started);
        return { kind: 'json', status: 200, body: whole.body, target, attempts, fallback };
      }
      let response: StreamingResponse;
      try {
        response = await target.upstream.sendStreaming('/v1/messages', payload, { signal: cancel, headers });
      } catch (error) {
        throw this.reason(cancel, error);
      }
      timers.connected();
      if (response.status !== 200) {
        const text = Buffer.from(await response.body.text().catch(() => ''));
        const error = target.upstream.errorFrom(response.status, response.headers, text.toString('utf8'));
        permit.failure(error);
        return { kind: 'error', error, upstreamStatus: response.status, upstreamBody: text, attempts };
      }
      const primed = await this.prime(response, timers, cancel, permit);
      handedOver = true;
      return { kind: 'stream', primed, target, attempts, fallback };
    } catch (error) {
      const reason = this.typed(cancel, error);
      if (outer.aborted) permit.release();
      else permit.failure(reason);
      return { kind: 'error', error: reason, attempts };
    } finally {
      outer.removeEventListener('abort', forward);
      if (!handedOver) {
        timers.stop();
        // A stream given up before its hand-over (an error event, cut, malformed) still holds its socket.
        if (stream) cancel.abort(new Error('attempt abandoned'));
      }
    }
  }

  /** Reads events until the first content, keeping their exact bytes; a failure here is still invisible. */
  private prime(response: StreamingResponse, timers: CallTimers, cancel: Cancellation, permit: BreakerPermit): Promise<PrimedStream> {
    const feed = new EventFeed(response.body);
    return new Promise((resolve, reject) => {
      const buffered: ScannedEvent[] = [];
      let sawStop = false;
      feed.listen({
        events: (batch) => {
          timers.activity();
          for (let i = 0; i < batch.length; i++) {
            const event = batch[i] as ScannedEvent;
            if (event.event === 'error') {
              feed.detach();
              reject(this.streamError(event));
              return;
            }
            buffered.push(event);
            if (event.event === 'message_stop') sawStop = true;
            if (isContentEvent(event) || sawStop) {
              timers.content();
              feed.detach();
              resolve({ buffered, pending: batch.slice(i + 1), feed, sawStop, timers, cancel, permit });
              return;
            }
          }
        },
        end: () => reject(new ProviderError('stream_cut', 'The upstream stream ended before any content', 'retryable')),
        fail: (error) => reject(error instanceof ProviderError ? error : this.reason(cancel, error)),
      });
    });
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

  /** An error already typed (ours, or a timer's) as it is; anything else explained by `reason`. */
  private typed(cancel: CancelSignal, error: unknown): ProviderError | UpstreamTimeoutError {
    return error instanceof ProviderError || error instanceof UpstreamTimeoutError ? error : this.reason(cancel, error);
  }

  /** Why an attempt's transport failed: our own timer, the client, or the network. */
  reason(cancel: CancelSignal, error: unknown): ProviderError | UpstreamTimeoutError {
    const why: unknown = cancel.reason;
    if (why instanceof UpstreamTimeoutError) return why;
    if (error instanceof ProviderError) return error;
    return new ProviderError('stream_cut', 'The upstream connection broke off', 'retryable', { cause: error });
  }

  /**
   * Forwards a primed stream byte for byte — what priming read first, then each upstream chunk's
   * events in one write, by callback (no promise per chunk), pausing the upstream while the client
   * drains. A failure now can no longer be hidden: the stream ends with a typed `event: error`. A client
   * that goes away cancels the upstream call. Resolves with whether the answer was complete.
   */
  forward(primed: PrimedStream, res: ServerResponse): Promise<boolean> {
    const { timers, cancel, permit, feed } = primed;
    let complete = primed.sawStop;
    const started = performance.now();
    return new Promise((resolve) => {
      let finished = false;
      const finish = (ok: boolean) => {
        if (finished) return;
        finished = true;
        res.off('drain', onDrain);
        res.off('close', onClose);
        feed.detach();
        timers.stop();
        // Only a broken-off stream needs cancelling: aborting a finished request costs time for nothing.
        if (!complete) cancel.abort(new Error('the stream was not finished'));
        resolve(ok);
      };
      const fail = (error: unknown) => {
        if (finished) return;
        const reason = this.typed(cancel, error);
        if (res.destroyed) permit.release();
        else {
          permit.failure(reason);
          res.write(anthropicErrorEvent(reason.errorType, reason.message));
        }
        finish(false);
      };
      /** Writes a batch in one write; false once the stream is over (an `error` event). */
      const send = (out: Buffer[], batch: readonly ScannedEvent[]): boolean => {
        let failed: ScannedEvent | undefined;
        for (const event of batch) {
          if (event.event === 'message_stop') complete = true;
          out.push(event.raw);
          if (event.event === 'error') {
            failed = event;
            break;
          }
        }
        if (out.length > 0 && !res.destroyed && !res.write(joinBytes(out))) feed.pause();
        if (failed) {
          permit.failure(this.streamError(failed));
          finish(false);
          return false;
        }
        return true;
      };
      const onDrain = () => feed.resume();
      const onClose = () => {
        if (res.writableFinished) return;
        complete = false; // the client did not get it all: the upstream call is cancelled
        permit.release();
        finish(false);
      };
      res.on('drain', onDrain);
      res.once('close', onClose);
      // Gone before the hand-over ('close' already emitted): nothing to relay.
      if (res.destroyed) return onClose();
      const opening = send(primed.buffered.map((event) => event.raw), primed.pending);
      // Sent: let the opening events go, rather than hold them for the stream's life.
      primed.buffered = [];
      primed.pending = [];
      if (!opening) return;
      feed.listen({
        events: (batch) => {
          if (finished) return;
          timers.activity();
          send([], batch);
        },
        end: () => {
          if (finished) return;
          if (!complete) return fail(new ProviderError('stream_cut', 'The upstream stream ended before message_stop', 'retryable'));
          permit.success(performance.now() - started);
          finish(true);
        },
        fail,
      });
    });
  }

  /**
   * The events of a primed stream, for callers that translate rather than forward (chat sessions).
   * Same rules as `forward`: a stream without message_stop or with an `error` event throws.
   */
  async *events(primed: PrimedStream): AsyncGenerator<ScannedEvent> {
    const { timers, cancel, permit, feed } = primed;
    let complete = primed.sawStop;
    const started = performance.now();
    let finished = false;
    const batches = new BatchQueue(feed);
    try {
      yield* primed.buffered;
      let batch: readonly ScannedEvent[] | null = primed.pending;
      while (batch !== null) {
        for (const event of batch) {
          if (event.event === 'error') throw this.streamError(event);
          if (event.event === 'message_stop') complete = true;
          yield event;
        }
        batch = await batches.next();
        if (batch) timers.activity();
      }
      if (!complete) throw new ProviderError('stream_cut', 'The upstream stream ended before message_stop', 'retryable');
      permit.success(performance.now() - started);
      finished = true;
    } catch (error) {
      const reason = this.typed(cancel, error);
      permit.failure(reason);
      finished = true;
      throw reason;
    } finally {
      feed.detach();
      timers.stop();
      if (!finished) permit.release(); // the consumer stopped early (client gone)
      if (!complete) cancel.abort();
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.upstreams.values()].map((u) => u.destroy()));
  }
}

/** The members of a message that say whether it is whole. */
const MESSAGE_MEMBERS = new TopLevelMembers(['type', 'stop_reason']);
const TYPE = 0;
const STOP_REASON = 1;

function incompleteMessage(body: Buffer): ProviderError | undefined {
  const members = MESSAGE_MEMBERS;
  members.clear();
  if (!isJsonBytes(body, 0, body.length, members)) {
    return new ProviderError('malformed_event', 'The upstream answered with an unreadable body', 'retryable');
  }
  // Read as written; anything unusual (an escaped key, an unexpected value) is parsed to be sure.
  if (!members.escaped && members.is(TYPE, body, '"message"') && members.has(STOP_REASON) && !members.is(STOP_REASON, body, 'null')) return undefined;
  const message = JSON.parse(body.toString('utf8')) as { type?: unknown; stop_reason?: unknown } | null;
  if (message?.type !== 'message' || message.stop_reason === null || message.stop_reason === undefined) {
    return new ProviderError('stream_cut', 'The upstream answered with an incomplete message', 'retryable');
  }
  return undefined;
}
