import { abortableSleep } from '../providers/abortable-sleep.js';
import { abortedError } from '../providers/errors.js';
import type { Provider, ProviderEvent, ProviderRequest } from '../providers/types.js';
import { monotonicClock, type Clock } from '../resilience/clock.js';
import type { BreakerPermit } from '../resilience/circuit-breaker/types.js';
import { UpstreamTimeoutError } from '../resilience/errors.js';
import type { RetryAttemptInfo } from '../resilience/retry/types.js';
import { CallTimers, type CallTimerLimits } from '../resilience/timers/call-timers.js';
import type { DeadlineTicker } from '../resilience/timers/deadline-ticker.js';

/** The parts of a breaker and a retry policy this wrapper needs. */
export interface BreakerLike {
  readonly name: string;
  acquire(): BreakerPermit;
}

export interface RetryPolicyLike {
  decide(error: unknown, retryNumber: number, startedAt: number): { retry: true; delayMs: number } | { retry: false; reason: string };
  /** Counts one call against the retry budget. */
  recordCall(): void;
}

export interface ResilientProviderOptions {
  breaker: BreakerLike;
  retry: RetryPolicyLike;
  timers: CallTimerLimits;
  onRetry?: (info: RetryAttemptInfo & { circuitName: string }) => void;
  clock?: Clock;
  /** Checks the call timers; the process-wide one by default. */
  ticker?: DeadlineTicker;
}

function isContent(event: ProviderEvent): boolean {
  return event.type === 'text' || event.type === 'tool_use' || event.type === 'tool_result';
}

function reasonOf(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const { errorType, name } = error as { errorType?: unknown; name?: unknown };
    if (typeof errorType === 'string') return errorType;
    if (typeof name === 'string') return name;
  }
  return 'unknown';
}

/**
 * Puts every upstream call behind the breaker, the retry policy and the four timers. Retries happen
 * only while nothing has reached the client: once a content event has been handed on, a failure ends
 * the stream (the caller turns it into an `error` frame) instead of replaying the answer.
 */
export class ResilientProvider implements Provider {
  readonly name: string;
  readonly simulated: boolean;
  private readonly clock: Clock;

  constructor(
    private readonly inner: Provider,
    private readonly options: ResilientProviderOptions,
  ) {
    this.name = inner.name;
    this.simulated = inner.simulated;
    this.clock = options.clock ?? monotonicClock;
  }

  /** Health probes go straight to the upstream: they must not open or close the breaker. */
  probe(signal: AbortSignal): Promise<void> {
    return this.inner.probe(signal);
  }

  async *stream(request: ProviderRequest, signal: AbortSignal): AsyncIterable<ProviderEvent> {
    const startedAt = this.clock.now();
    this.options.retry.recordCall();
    const delivery = { delivered: false };
    for (let retryNumber = 1; ; retryNumber++) {
      try {
        yield* this.attempt(request, signal, delivery);
        return;
      } catch (error) {
        if (delivery.delivered || signal.aborted) throw error;
        const decision = this.options.retry.decide(error, retryNumber, startedAt);
        if (!decision.retry) throw error;
        this.options.onRetry?.({
          attempt: retryNumber,
          delayMs: decision.delayMs,
          reason: reasonOf(error),
          error,
          circuitName: this.options.breaker.name,
        });
        try {
          await abortableSleep(decision.delayMs, signal);
        } catch (reason) {
          throw abortedError(reason);
        }
      }
    }
  }

  /** One upstream call: admitted by the breaker, bounded by the timers, its outcome reported once. */
  private async *attempt(request: ProviderRequest, outer: AbortSignal, delivery: { delivered: boolean }): AsyncGenerator<ProviderEvent> {
    const permit = this.options.breaker.acquire();
    const controller = new AbortController();
    const forwardAbort = () => controller.abort(outer.reason);
    outer.addEventListener('abort', forwardAbort, { once: true });
    const timers = new CallTimers(this.options.timers, (timeout) => controller.abort(timeout), this.options.ticker);
    const started = this.clock.now();
    let seenEvent = false;
    timers.start();
    try {
      for await (const event of this.inner.stream(request, controller.signal)) {
        if (!seenEvent) {
          seenEvent = true;
          timers.connected();
        }
        if (isContent(event)) {
          timers.content();
          delivery.delivered = true;
        } else {
          timers.activity();
        }
        yield event;
        // Time spent by the consumer (a slow client under backpressure) is not upstream silence.
        timers.activity();
      }
      permit.success(this.clock.now() - started);
    } catch (error) {
      const reason: unknown = controller.signal.reason;
      if (reason instanceof UpstreamTimeoutError && !outer.aborted) {
        permit.failure(reason);
        throw reason;
      }
      if (outer.aborted) permit.release();
      else permit.failure(error);
      throw error;
    } finally {
      timers.stop();
      outer.removeEventListener('abort', forwardAbort);
      // The consumer stopped early (return/throw into the generator): neither success nor failure.
      permit.release();
    }
  }
}
