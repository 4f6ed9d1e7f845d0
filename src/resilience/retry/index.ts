export { retry, withRetry } from './retry.js';
export { RetryPolicy, DEFAULT_RETRY_DELAYS_MS, type RetryDecision, type RetryStopReason } from './retry-policy.js';
export { RetryBudget, type RetryBudgetOptions, type RetryBudgetStats } from './retry-budget.js';
export { sleep } from './sleep.js';
export type { RetryOptions, RetryAttemptInfo, RetryBudgetLike } from './types.js';
