import type Anthropic from '@anthropic-ai/sdk';
import { loadedAnthropicSdk } from './anthropic-sdk.js';
import {
  ProviderError,
  abortedError,
  errorTypeForStatus,
  isRetryableErrorType,
  isRetryableStatus,
  parseRetryAfterMs,
} from './errors.js';

const CONTEXT_TOO_LONG = /prompt is too long|context (window|length)|too many (input )?tokens/i;

/** Maps anything the SDK (or the socket under it) throws to a classified ProviderError. */
export function toProviderError(error: unknown, signal: AbortSignal): ProviderError {
  if (error instanceof ProviderError) return error;
  const sdk = loadedAnthropicSdk();
  if (signal.aborted || (sdk && error instanceof sdk.APIUserAbortError)) return abortedError(signal.reason ?? error);
  if (sdk && error instanceof sdk.APIConnectionTimeoutError) {
    return new ProviderError('timeout', 'The upstream request timed out', 'retryable', { cause: error });
  }
  if (sdk && error instanceof sdk.APIConnectionError) {
    return new ProviderError('connection_error', 'Could not reach the Claude API', 'retryable', { cause: error });
  }
  if (sdk && error instanceof sdk.APIError) return fromApiError(error);
  if (error instanceof SyntaxError) {
    return new ProviderError('malformed_event', 'The upstream sent an unreadable stream event', 'retryable', { cause: error });
  }
  // undici reports a socket closed mid-body as a TypeError ("terminated") or a socket error.
  return new ProviderError('stream_cut', 'The upstream connection broke off', 'retryable', { cause: error });
}

function fromApiError(error: InstanceType<typeof Anthropic.APIError>): ProviderError {
  const message = error.apiMessage ?? error.message;
  const status = error.status;
  if (status === undefined) {
    // An `event: error` inside a stream that had already started.
    const errorType = error.type ?? 'api_error';
    const failureClass = isRetryableErrorType(errorType) ? 'retryable' : 'non_retryable';
    return new ProviderError(errorType, message, failureClass, { cause: error });
  }
  let errorType: string = error.type ?? errorTypeForStatus(status);
  if (status === 400 && CONTEXT_TOO_LONG.test(message)) errorType = 'context_too_long';
  const retryAfterMs = error.headers ? parseRetryAfterMs((name) => error.headers?.get(name)) : undefined;
  return new ProviderError(errorType, message, isRetryableStatus(status) ? 'retryable' : 'non_retryable', {
    status,
    retryAfterMs,
    cause: error,
  });
}
