import { TurnInProgressError } from './errors.js';
import { TurnAbort, type TurnAbortKind } from './turn-abort.js';

/** A turn holding its session's lock; `controller` cancels the upstream call. */
export interface ActiveTurn {
  readonly sessionId: string;
  readonly controller: AbortController;
  readonly startedAt: number;
  /** Resolves once the turn has sent its last frame and stored its answer (see `settle`). */
  readonly settled: Promise<void>;
  /** Called by the runner when nothing more will happen for this turn. */
  readonly settle: () => void;
}

/** One running turn per session: a second message to a busy session is refused, never interleaved. */
export class ActiveTurns {
  private readonly turns = new Map<string, ActiveTurn>();
  /** Turns not yet settled (a turn releases its session lock a moment before it settles). */
  private readonly running = new Set<ActiveTurn>();

  begin(sessionId: string): ActiveTurn {
    if (this.turns.has(sessionId)) throw new TurnInProgressError(sessionId);
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => {
      settle = resolve;
    });
    const turn: ActiveTurn = { sessionId, controller: new AbortController(), startedAt: Date.now(), settled, settle };
    this.turns.set(sessionId, turn);
    this.running.add(turn);
    void settled.then(() => this.running.delete(turn));
    return turn;
  }

  end(turn: ActiveTurn): void {
    if (this.turns.get(turn.sessionId) === turn) this.turns.delete(turn.sessionId);
  }

  /** The session's running turn, if any. */
  current(sessionId: string): ActiveTurn | undefined {
    return this.turns.get(sessionId);
  }

  isActive(sessionId: string): boolean {
    return this.turns.has(sessionId);
  }

  /** Aborts the session's running turn; false when none was running. */
  abort(sessionId: string, kind: TurnAbortKind): boolean {
    const turn = this.turns.get(sessionId);
    if (!turn || turn.controller.signal.aborted) return false;
    turn.controller.abort(new TurnAbort(kind));
    return true;
  }

  /** Ids of sessions answering right now (for admins' health view). */
  sessionIds(limit: number): string[] {
    return [...this.turns.keys()].slice(0, limit);
  }

  /** Every turn that has not settled yet, for shutdown. */
  unsettled(): ActiveTurn[] {
    return [...this.running];
  }

  get size(): number {
    return this.turns.size;
  }
}
