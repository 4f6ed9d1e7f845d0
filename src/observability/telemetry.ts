/**
 * What the chat and resilience code report for metrics. The metrics module implements it; code that
 * reports knows nothing of prom-client, and tests may pass `noopTelemetry`.
 */
export type TurnOutcome = 'success' | 'fallback' | 'error' | 'interrupted' | 'queued';

export interface TurnReport {
  /** Model that answered (or was asked, when none did). */
  model: string;
  /** live, simulated, cached, mock, degraded, alternative, queued. */
  mode: string;
  outcome: TurnOutcome;
  durationMs: number;
  /** Time from the start of the turn to the first content sent to the client; null when none was. */
  timeToFirstTokenMs: number | null;
  inputTokens: number;
  outputTokens: number;
  /** Set when outcome is error / interrupted. */
  errorType?: string | undefined;
}

/** What happened to a chat stream's connection (the turn itself is reported by turnFinished). */
export const STREAM_EVENTS = ['resumed', 'idempotent_replay', 'client_disconnected', 'client_cut_off'] as const;
export type StreamEvent = (typeof STREAM_EVENTS)[number];

export interface Telemetry {
  /** A chat stream opened (counts as active until turnFinished). */
  turnStarted(): void;
  turnFinished(report: TurnReport): void;
  retryAttempt(circuit: string, reason: string): void;
  fallbackUsed(operation: string, strategy: string): void;
  sessionCreated(provisional: boolean): void;
  streamEvent(event: StreamEvent): void;
}

export const noopTelemetry: Telemetry = {
  turnStarted: () => undefined,
  turnFinished: () => undefined,
  retryAttempt: () => undefined,
  fallbackUsed: () => undefined,
  sessionCreated: () => undefined,
  streamEvent: () => undefined,
};
