import type { CircuitBreakerConfig, SlidingWindowConfig } from './types.js';

/**
 * Checks a config once, at construction, and returns a frozen copy: a bad threshold is a startup bug,
 * and the breaker must not change behaviour if the caller later mutates the object it passed in.
 */
export function normalizeConfig(config: CircuitBreakerConfig): Readonly<CircuitBreakerConfig> {
  requireInteger('failureThreshold', config.failureThreshold, 1);
  requireInteger('successThreshold', config.successThreshold, 1);
  requireInteger('halfOpenMaxCalls', config.halfOpenMaxCalls, 1);
  requireNumber('timeoutSeconds', config.timeoutSeconds, 0);
  const copy: CircuitBreakerConfig = {
    failureThreshold: config.failureThreshold,
    successThreshold: config.successThreshold,
    timeoutSeconds: config.timeoutSeconds,
    halfOpenMaxCalls: config.halfOpenMaxCalls,
  };
  if (config.slidingWindow) copy.slidingWindow = normalizeWindow(config.slidingWindow);
  return Object.freeze(copy);
}

function normalizeWindow(window: SlidingWindowConfig): Readonly<SlidingWindowConfig> {
  if (window.type !== 'count' && window.type !== 'time') {
    throw new RangeError(`slidingWindow.type must be 'count' or 'time', got ${String(window.type)}`);
  }
  if (window.type === 'count') requireInteger('slidingWindow.size', window.size, 1);
  else requireNumber('slidingWindow.size', window.size, 1); // seconds; buckets are one second wide
  requireInteger('slidingWindow.minimumCalls', window.minimumCalls, 1);
  // A count window can never hold more than `size` calls: a larger minimum would silently never open.
  if (window.type === 'count' && window.minimumCalls > window.size) {
    throw new RangeError(`slidingWindow.minimumCalls (${window.minimumCalls}) exceeds the window size (${window.size})`);
  }
  requirePercent('slidingWindow.failureRateThreshold', window.failureRateThreshold);
  const copy: SlidingWindowConfig = {
    type: window.type,
    size: window.size,
    minimumCalls: window.minimumCalls,
    failureRateThreshold: window.failureRateThreshold,
  };
  if (window.slowCallDurationMs !== undefined) {
    requireNumber('slidingWindow.slowCallDurationMs', window.slowCallDurationMs, 0);
    copy.slowCallDurationMs = window.slowCallDurationMs;
  }
  if (window.slowCallRateThreshold !== undefined) {
    requirePercent('slidingWindow.slowCallRateThreshold', window.slowCallRateThreshold);
    copy.slowCallRateThreshold = window.slowCallRateThreshold;
  }
  return Object.freeze(copy);
}

/** Field-by-field equality, so re-registering an equal config (any object identity) is not a conflict. */
export function sameConfig(a: CircuitBreakerConfig, b: CircuitBreakerConfig): boolean {
  if (
    a.failureThreshold !== b.failureThreshold ||
    a.successThreshold !== b.successThreshold ||
    a.timeoutSeconds !== b.timeoutSeconds ||
    a.halfOpenMaxCalls !== b.halfOpenMaxCalls
  ) {
    return false;
  }
  const x = a.slidingWindow;
  const y = b.slidingWindow;
  if (!x || !y) return !x && !y;
  return (
    x.type === y.type &&
    x.size === y.size &&
    x.minimumCalls === y.minimumCalls &&
    x.failureRateThreshold === y.failureRateThreshold &&
    (x.slowCallDurationMs ?? 0) === (y.slowCallDurationMs ?? 0) &&
    (x.slowCallRateThreshold ?? 0) === (y.slowCallRateThreshold ?? 0)
  );
}

function requireNumber(field: string, value: number, min: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new RangeError(`${field} must be a finite number ≥ ${min}, got ${String(value)}`);
  }
}

function requireInteger(field: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`${field} must be an integer ≥ ${min}, got ${String(value)}`);
  }
}

function requirePercent(field: string, value: number): void {
  // 0 % would open on the first verdict whatever happened, so it is refused rather than obeyed.
  if (typeof value !== 'number' || !(value > 0 && value <= 100)) {
    throw new RangeError(`${field} must be a percentage in (0, 100], got ${String(value)}`);
  }
}
