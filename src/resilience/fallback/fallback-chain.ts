import { monotonicClock, type Clock } from '../clock.js';
import { failureClassOf } from '../outcome.js';
import { defaultShouldFallback, errorTypeOf } from './eligibility.js';
import type {
  FallbackConfig,
  FallbackHandler,
  FallbackOperationStats,
  FallbackOutcome,
  FallbackReason,
  FallbackStepEvent,
  FallbackStrategy,
} from './types.js';

interface Step<I, R> {
  config: FallbackConfig;
  handler: FallbackHandler<I, R>;
}

export interface FallbackChainOptions {
  shouldFallback?: (error: unknown) => boolean;
  onStep?: (event: FallbackStepEvent) => void;
  clock?: Clock;
}

class StepTimeout extends Error {}

/**
 * The fallbacks of one operation, run in priority order after its primary failed. Each step gets the
 * failure reason, is timed and may be bounded by `timeoutSeconds`; a step that throws, times out or
 * cannot answer passes to the next. Stats count every call, whoever answered it.
 */
export class FallbackChain<I, R> {
  private steps: Step<I, R>[] = [];
  private readonly shouldFallback: (error: unknown) => boolean;
  private readonly clock: Clock;
  private readonly counts = {
    total_calls: 0,
    primary_success: 0,
    fallback_used: 0,
    cache_hits: 0,
    cache_misses: 0,
    total_failures: 0,
    not_eligible: 0,
  };
  private readonly strategyCounts: Partial<Record<FallbackStrategy, number>> = {};

  constructor(
    readonly operation: string,
    private readonly options: FallbackChainOptions = {},
  ) {
    this.shouldFallback = options.shouldFallback ?? defaultShouldFallback;
    this.clock = options.clock ?? monotonicClock;
  }

  /** Adds (or replaces, by strategy) a step; steps stay sorted by priority. */
  register(config: FallbackConfig, handler: FallbackHandler<I, R>): void {
    this.steps = [...this.steps.filter((s) => s.config.strategy !== config.strategy), { config, handler }].sort(
      (a, b) => a.config.priority - b.config.priority,
    );
  }

  get hasSteps(): boolean {
    return this.steps.some((s) => s.config.enabled);
  }

  /** For callers that run the primary themselves (streams): count one call that succeeded. */
  recordPrimarySuccess(): void {
    this.counts.total_calls++;
    this.counts.primary_success++;
  }

  /** Runs the primary, then the fallbacks if it failed in a way that may fall back. */
  async execute(input: I, primary: () => Promise<R>, signal?: AbortSignal): Promise<FallbackOutcome<R> | { strategy: 'primary'; result: R }> {
    let result: R;
    try {
      result = await primary();
    } catch (error) {
      const outcome = await this.recover(input, error, signal);
      if (outcome) return outcome;
      throw error;
    }
    this.recordPrimarySuccess();
    return { strategy: 'primary', result };
  }

  /**
   * Counts one call whose primary failed with `error` and tries the fallbacks. Undefined when the error
   * may not fall back or no step could answer; the caller then reports the original error.
   */
  async recover(input: I, error: unknown, signal?: AbortSignal): Promise<FallbackOutcome<R> | undefined> {
    this.counts.total_calls++;
    // A cancelled call is neither a success nor a failure, and nobody is left to answer.
    if (signal?.aborted || failureClassOf(error) === 'aborted') return undefined;
    if (!this.shouldFallback(error)) {
      this.counts.not_eligible++;
      this.counts.total_failures++;
      return undefined;
    }
    const reason: FallbackReason = { error, type: errorTypeOf(error) };
    for (const step of this.steps) {
      if (!step.config.enabled) continue;
      if (signal?.aborted) break;
      const result = await this.runStep(step, input, reason, signal);
      if (step.config.strategy === 'cached_response') {
        if (result === undefined) this.counts.cache_misses++;
        else this.counts.cache_hits++;
      }
      if (result !== undefined) {
        this.counts.fallback_used++;
        this.strategyCounts[step.config.strategy] = (this.strategyCounts[step.config.strategy] ?? 0) + 1;
        return { strategy: step.config.strategy, result };
      }
    }
    this.counts.total_failures++;
    return undefined;
  }

  stats(): FallbackOperationStats {
    return {
      ...this.counts,
      strategies: { ...this.strategyCounts },
      steps: this.steps.map((s) => ({ strategy: s.config.strategy, priority: s.config.priority, enabled: s.config.enabled })),
    };
  }

  private async runStep(step: Step<I, R>, input: I, reason: FallbackReason, outer?: AbortSignal): Promise<R | undefined> {
    const started = this.clock.now();
    const controller = new AbortController();
    const forward = () => controller.abort(outer?.reason);
    outer?.addEventListener('abort', forward, { once: true });
    const limitMs = (step.config.timeoutSeconds ?? 0) * 1000;
    let timer: NodeJS.Timeout | undefined;
    const report = (outcome: FallbackStepEvent['outcome'], error?: unknown) =>
      this.options.onStep?.({
        operation: this.operation,
        strategy: step.config.strategy,
        reason: reason.type,
        durationMs: this.clock.now() - started,
        outcome,
        ...(error !== undefined ? { error } : {}),
      });
    try {
      const run = step.handler(input, reason, controller.signal);
      const result =
        limitMs > 0
          ? await Promise.race([
              run,
              new Promise<never>((_, reject) => {
                timer = setTimeout(() => {
                  controller.abort(new StepTimeout());
                  reject(new StepTimeout());
                }, limitMs);
              }),
            ])
          : await run;
      report(result === undefined ? 'no_answer' : 'answered');
      return result;
    } catch (error) {
      report(error instanceof StepTimeout ? 'timeout' : 'failed', error);
      return undefined;
    } finally {
      if (timer) clearTimeout(timer);
      outer?.removeEventListener('abort', forward);
    }
  }
}
