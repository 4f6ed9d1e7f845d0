import { failureClassOf } from '../outcome.js';

/**
 * Errors that are the caller's to see and fix: answering them from a cache or a mock would hide a
 * broken request behind a plausible reply.
 */
export const CLIENT_ERROR_TYPES: ReadonlySet<string> = new Set([
  'invalid_request_error',
  'context_too_long',
  'request_too_large',
  'content_refused',
]);

export function errorTypeOf(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const { errorType, name } = error as { errorType?: unknown; name?: unknown };
    if (typeof errorType === 'string' && errorType) return errorType;
    if (typeof name === 'string' && name) return name;
  }
  return 'unknown';
}

/** Default rule: fall back on upstream trouble, never on client errors or cancellations. */
export function defaultShouldFallback(error: unknown): boolean {
  if (failureClassOf(error) === 'aborted') return false;
  return !CLIENT_ERROR_TYPES.has(errorTypeOf(error));
}
