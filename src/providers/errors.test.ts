import { describe, it, expect } from 'vitest';
import {
  ProviderError,
  abortedError,
  errorTypeForStatus,
  isRetryableErrorType,
  isRetryableStatus,
  parseRetryAfterMs,
} from './errors.js';

/** A header getter over a plain object, the shape parseRetryAfterMs expects. */
function headers(values: Record<string, string>): (name: string) => string | undefined {
  return (name) => values[name];
}

describe('parseRetryAfterMs', () => {
  const now = Date.parse('2025-06-01T12:00:00Z');

  it('returns undefined when neither header is present', () => {
    expect(parseRetryAfterMs(headers({}), now)).toBeUndefined();
    expect(parseRetryAfterMs(() => null, now)).toBeUndefined();
  });

  it('reads retry-after-ms as milliseconds', () => {
    expect(parseRetryAfterMs(headers({ 'retry-after-ms': '1500' }), now)).toBe(1500);
    expect(parseRetryAfterMs(headers({ 'retry-after-ms': '0' }), now)).toBe(0);
    expect(parseRetryAfterMs(headers({ 'retry-after-ms': '12.5' }), now)).toBe(12.5);
  });

  it('prefers retry-after-ms over retry-after', () => {
    expect(parseRetryAfterMs(headers({ 'retry-after-ms': '250', 'retry-after': '30' }), now)).toBe(250);
  });

  it('falls back to retry-after when retry-after-ms is unusable', () => {
    expect(parseRetryAfterMs(headers({ 'retry-after-ms': 'soon', 'retry-after': '3' }), now)).toBe(3000);
    expect(parseRetryAfterMs(headers({ 'retry-after-ms': '-100', 'retry-after': '2' }), now)).toBe(2000);
  });

  it('reads retry-after seconds as milliseconds', () => {
    expect(parseRetryAfterMs(headers({ 'retry-after': '7' }), now)).toBe(7000);
    expect(parseRetryAfterMs(headers({ 'retry-after': '0' }), now)).toBe(0);
    expect(parseRetryAfterMs(headers({ 'retry-after': '1.5' }), now)).toBe(1500);
  });

  it('reads an HTTP date relative to the given now', () => {
    const in30s = new Date(now + 30_000).toUTCString();
    expect(parseRetryAfterMs(headers({ 'retry-after': in30s }), now)).toBe(30_000);
    expect(parseRetryAfterMs(headers({ 'retry-after': 'Sun, 01 Jun 2025 12:01:00 GMT' }), now)).toBe(60_000);
  });

  it('clamps an HTTP date in the past to 0', () => {
    const past = new Date(now - 60_000).toUTCString();
    expect(parseRetryAfterMs(headers({ 'retry-after': past }), now)).toBe(0);
  });

  it('returns undefined for garbage', () => {
    expect(parseRetryAfterMs(headers({ 'retry-after': 'soon' }), now)).toBeUndefined();
    expect(parseRetryAfterMs(headers({ 'retry-after': 'not a date at all' }), now)).toBeUndefined();
    expect(parseRetryAfterMs(headers({ 'retry-after-ms': 'abc' }), now)).toBeUndefined();
  });

  it('ignores a negative retry-after-ms', () => {
    expect(parseRetryAfterMs(headers({ 'retry-after-ms': '-5' }), now)).toBeUndefined();
  });

  it.each(['-5', '-1', '  ', 'soon'])('ignores the invalid retry-after %j instead of reading it as a date', (value) => {
    expect(parseRetryAfterMs(headers({ 'retry-after': value }), now)).toBeUndefined();
  });
});

describe('isRetryableStatus', () => {
  it.each([408, 409, 429, 500, 502, 503, 504, 529, 501, 599])('%i is retryable', (status) => {
    expect(isRetryableStatus(status)).toBe(true);
  });

  it.each([400, 401, 403, 404, 413, 422])('%i is not retryable', (status) => {
    expect(isRetryableStatus(status)).toBe(false);
  });
});

describe('errorTypeForStatus', () => {
  it.each([
    [400, 'invalid_request_error'],
    [401, 'authentication_error'],
    [403, 'permission_error'],
    [404, 'not_found_error'],
    [413, 'request_too_large'],
    [429, 'rate_limit_error'],
    [529, 'overloaded_error'],
    [500, 'api_error'],
    [503, 'api_error'],
    [418, 'invalid_request_error'],
  ])('%i → %s', (status, type) => {
    expect(errorTypeForStatus(status)).toBe(type);
  });
});

describe('isRetryableErrorType', () => {
  it('treats overload, rate limit, api and timeout errors as retryable', () => {
    for (const type of ['overloaded_error', 'rate_limit_error', 'api_error', 'timeout_error']) {
      expect(isRetryableErrorType(type)).toBe(true);
    }
  });

  it('treats request and auth errors as final', () => {
    for (const type of ['invalid_request_error', 'authentication_error', 'permission_error', 'unknown']) {
      expect(isRetryableErrorType(type)).toBe(false);
    }
  });
});

describe('ProviderError', () => {
  it('is an Error carrying its classification', () => {
    const cause = new Error('socket hang up');
    const error = new ProviderError('rate_limit_error', 'slow down', 'retryable', { status: 429, retryAfterMs: 7000, cause });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('ProviderError');
    expect(error.message).toBe('slow down');
    expect(error.errorType).toBe('rate_limit_error');
    expect(error.failureClass).toBe('retryable');
    expect(error.status).toBe(429);
    expect(error.retryAfterMs).toBe(7000);
    expect(error.cause).toBe(cause);
  });

  it('leaves status and retryAfterMs undefined by default', () => {
    const error = new ProviderError('stream_cut', 'cut', 'retryable');
    expect(error.status).toBeUndefined();
    expect(error.retryAfterMs).toBeUndefined();
  });

  it('is retryable only for failureClass retryable', () => {
    expect(new ProviderError('api_error', 'x', 'retryable').retryable).toBe(true);
    expect(new ProviderError('invalid_request_error', 'x', 'non_retryable').retryable).toBe(false);
    expect(new ProviderError('aborted', 'x', 'aborted').retryable).toBe(false);
  });

  it('abortedError builds a non-retryable aborted error keeping the reason', () => {
    const reason = new Error('client went away');
    const error = abortedError(reason);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error.errorType).toBe('aborted');
    expect(error.failureClass).toBe('aborted');
    expect(error.retryable).toBe(false);
    expect(error.cause).toBe(reason);
  });
});
