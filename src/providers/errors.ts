/**
 * Classified upstream failures. Every provider throws only ProviderError so the layers above decide
 * on retry, fallback and what the client sees from `failureClass` and `errorType`, never from text.
 */

/** retryable: may succeed if tried again; non_retryable: the request itself is wrong; aborted: we cancelled it. */
export type FailureClass = 'retryable' | 'non_retryable' | 'aborted';

export interface ProviderErrorOptions {
  status?: number | undefined;
  retryAfterMs?: number | undefined;
  cause?: unknown;
}

export class ProviderError extends Error {
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(
    readonly errorType: string,
    message: string,
    readonly failureClass: FailureClass,
    options: ProviderErrorOptions = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'ProviderError';
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }

  get retryable(): boolean {
    return this.failureClass === 'retryable';
  }
}

const RETRYABLE_STATUSES = new Set([408, 409, 429, 500, 502, 503, 504, 529]);

export function isRetryableStatus(status: number): boolean {
  return RETRYABLE_STATUSES.has(status) || status >= 500;
}

/** Anthropic's error type for a status when the body names none. */
export function errorTypeForStatus(status: number): string {
  switch (status) {
    case 400: return 'invalid_request_error';
    case 401: return 'authentication_error';
    case 403: return 'permission_error';
    case 404: return 'not_found_error';
    case 413: return 'request_too_large';
    case 429: return 'rate_limit_error';
    case 529: return 'overloaded_error';
    default: return status >= 500 ? 'api_error' : 'invalid_request_error';
  }
}

/** Error types that mean "try later" even when no HTTP status came with them (e.g. an SSE `error` event). */
const RETRYABLE_TYPES = new Set(['overloaded_error', 'rate_limit_error', 'api_error', 'timeout_error']);

export function isRetryableErrorType(errorType: string): boolean {
  return RETRYABLE_TYPES.has(errorType);
}

/** Parses `retry-after-ms` (preferred) or `retry-after` (seconds or HTTP date) into milliseconds. */
export function parseRetryAfterMs(get: (name: string) => string | null | undefined, now = Date.now()): number | undefined {
  const ms = get('retry-after-ms');
  if (ms) {
    const value = Number(ms);
    if (Number.isFinite(value) && value >= 0) return value;
  }
  const after = get('retry-after')?.trim();
  if (!after) return undefined;
  // Numeric means seconds; a negative or odd number is ignored rather than read as a date.
  if (/^[-+]?[\d.]/.test(after)) {
    const seconds = Number(after);
    return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
  }
  const date = Date.parse(after);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export function abortedError(reason?: unknown): ProviderError {
  return new ProviderError('aborted', 'The request was cancelled', 'aborted', { cause: reason });
}
