/** Why a running turn was cancelled; carried as the AbortSignal's reason so the runner can tell. */
const KINDS = ['interrupted', 'client_disconnected', 'session_deleted', 'session_cleared', 'session_reconfigured', 'server_shutting_down'] as const;
export type TurnAbortKind = (typeof KINDS)[number];

export function isTurnAbortKind(value: string): value is TurnAbortKind {
  return (KINDS as readonly string[]).includes(value);
}

export class TurnAbort {
  constructor(readonly kind: TurnAbortKind) {}
}

export function abortKindOf(signal: AbortSignal): TurnAbortKind | null {
  return signal.aborted && signal.reason instanceof TurnAbort ? signal.reason.kind : null;
}
