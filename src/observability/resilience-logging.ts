import type { Logger } from 'pino';
import type { CircuitTransition } from '../resilience/circuit-breaker/types.js';
import type { RetryAttemptInfo } from '../resilience/retry/types.js';
import { LogEvent } from './events.js';

const TRANSITION_EVENTS = {
  open: LogEvent.circuitBreakerOpened,
  half_open: LogEvent.circuitBreakerHalfOpened,
  closed: LogEvent.circuitBreakerClosed,
} as const;

/** Breakers only publish transitions; this turns them into the documented log events. */
export function logCircuitTransition(log: Logger, transition: CircuitTransition): void {
  const fields = {
    event: TRANSITION_EVENTS[transition.to],
    component: 'resilience',
    circuit_name: transition.circuitName,
    failure_count: transition.failureCount,
    from: transition.from,
    reason: transition.reason,
  };
  if (transition.to === 'open') log.warn(fields);
  else log.info(fields);
}

export function logRetryAttempt(log: Logger, info: RetryAttemptInfo & { circuitName?: string }): void {
  log.warn({
    event: LogEvent.reconnectionAttempt,
    component: 'resilience',
    circuit_name: info.circuitName,
    attempt: info.attempt,
    delay_ms: Math.round(info.delayMs),
    reason: info.reason,
  });
}
