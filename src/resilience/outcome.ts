/**
 * How the resilience layer reads an error, without knowing who threw it. Any error may carry these
 * fields (providers' errors do); an error without them counts as a retryable failure.
 */
export type FailureClass = 'retryable' | 'non_retryable' | 'aborted';

export interface ClassifiedError {
  failureClass?: FailureClass;
  /** Server-requested wait before the next attempt (from retry-after / retry-after-ms). */
  retryAfterMs?: number | undefined;
}

export function failureClassOf(error: unknown): FailureClass {
  if (typeof error === 'object' && error !== null) {
    const failureClass = (error as ClassifiedError).failureClass;
    if (failureClass === 'retryable' || failureClass === 'non_retryable' || failureClass === 'aborted') return failureClass;
    if ((error as { name?: unknown }).name === 'AbortError') return 'aborted';
  }
  return 'retryable';
}

export function retryAfterOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const value = (error as ClassifiedError).retryAfterMs;
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}
