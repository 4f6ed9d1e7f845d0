export type FallbackStrategy = 'cached_response' | 'mock_response' | 'degraded_service' | 'queue_for_retry' | 'alternative_provider';

export const FALLBACK_STRATEGIES: readonly FallbackStrategy[] = [
  'cached_response',
  'mock_response',
  'degraded_service',
  'queue_for_retry',
  'alternative_provider',
];

export interface FallbackConfig {
  strategy: FallbackStrategy;
  /** Lower runs first. */
  priority: number;
  enabled: boolean;
  /** How long a step may take before the chain moves on (0 / absent: no limit). */
  timeoutSeconds?: number;
  /** For cached_response: how long answers stay cached. */
  cacheTtlSeconds?: number;
  /** Any strategy-specific settings (mock text, degraded model, …). */
  [setting: string]: unknown;
}

/** Why the primary failed, as handed to every step. */
export interface FallbackReason {
  error: unknown;
  /** The error's errorType or name, for logs and stats. */
  type: string;
}

/** A step answers with a result, or `undefined` when it cannot (e.g. a cache miss) so the next one runs. */
export type FallbackHandler<I, R> = (input: I, reason: FallbackReason, signal: AbortSignal) => Promise<R | undefined>;

export interface FallbackOutcome<R> {
  strategy: FallbackStrategy;
  result: R;
}

export interface FallbackOperationStats {
  total_calls: number;
  primary_success: number;
  fallback_used: number;
  cache_hits: number;
  cache_misses: number;
  total_failures: number;
  strategies: Partial<Record<FallbackStrategy, number>>;
  /** Failures not eligible for a fallback (client errors shown to the caller). */
  not_eligible: number;
  steps: { strategy: FallbackStrategy; priority: number; enabled: boolean }[];
}

export interface FallbackStepEvent {
  operation: string;
  strategy: FallbackStrategy;
  reason: string;
  durationMs: number;
  outcome: 'answered' | 'no_answer' | 'failed' | 'timeout';
  error?: unknown;
}
