import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { LogEvent } from '../observability/events.js';
import type { MessageRecord, NewSession, Page, SessionConfig, SessionRecord, SessionStore } from '../store/types.js';
import type { FallbackChain } from '../resilience/fallback/fallback-chain.js';
import { errorTypeOf } from '../resilience/fallback/eligibility.js';
import { noopTelemetry, type Telemetry } from '../observability/telemetry.js';
import type { SessionScope } from '../auth/identity.js';
import type { ActiveTurns } from './active-turns.js';
import { SessionNotFoundError, TurnInProgressError } from './errors.js';
import type { TurnAbortKind } from './turn-abort.js';
import { settlesWithin } from './settles-within.js';

export interface CreatedSession {
  session: SessionRecord;
  /** The fallback that created it when the store could not, else null. */
  fallbackStrategy: string | null;
}

/** Turns running on other instances (with Redis): asked to stop before clear, config change, delete. */
export interface RemoteTurns {
  stopElsewhere(sessionId: string, kind: TurnAbortKind, timeoutMs: number): Promise<'idle' | 'stopped' | 'busy'>;
}

/** Runs a synchronous store write under a breaker (the `session_operations` circuit). */
export interface WriteGuard {
  executeSync<T>(fn: () => T): T;
}

/**
 * Session lifecycle over the store. Writes go through the guard so a failing store is given room to
 * recover instead of being hammered. Owner checks arrive with authentication (null = auth off).
 */
export interface SessionServiceDeps {
  store: SessionStore;
  turns: ActiveTurns;
  log: Logger;
  guard: WriteGuard;
  /** The session_creation fallbacks. */
  fallbacks?: FallbackChain<NewSession, SessionRecord> | undefined;
  telemetry?: Telemetry | undefined;
  /** Longest wait for an interrupted turn to settle before clear/config/delete go ahead. Default 10 s. */
  settleTimeoutMs?: number | undefined;
  /** Turns of other instances; without it only this instance's turns are seen. */
  remote?: RemoteTurns | undefined;
}

export class SessionService {
  private readonly store: SessionStore;
  private readonly turns: ActiveTurns;
  private readonly log: Logger;
  private readonly guard: WriteGuard;
  private readonly fallbacks: FallbackChain<NewSession, SessionRecord> | undefined;
  private readonly telemetry: Telemetry;
  private readonly settleTimeoutMs: number;
  private readonly remote: RemoteTurns | undefined;

  constructor(deps: SessionServiceDeps) {
    this.remote = deps.remote;
    this.settleTimeoutMs = deps.settleTimeoutMs ?? 10_000;
    ({ store: this.store, turns: this.turns, log: this.log, guard: this.guard, fallbacks: this.fallbacks } = deps);
    this.telemetry = deps.telemetry ?? noopTelemetry;
  }

  /**
   * Creates a session in the store; when the store cannot take it, the session_creation fallbacks may
   * still hand out a real session (held in memory until the store recovers).
   */
  async create(scope: SessionScope, config: SessionConfig = {}): Promise<CreatedSession> {
    const input: NewSession = { id: randomUUID(), owner: scope.owner, config };
    let session: SessionRecord;
    try {
      session = this.guard.executeSync(() => this.store.createSession(input));
    } catch (error) {
      const outcome = await this.fallbacks?.recover(input, error);
      if (!outcome) throw error;
      this.log.warn({ event: LogEvent.fallbackUsed, operation: 'session_creation', strategy: outcome.strategy, reason: errorTypeOf(error), session_id: outcome.result.id });
      this.telemetry.fallbackUsed('session_creation', outcome.strategy);
      this.telemetry.sessionCreated(true);
      return { session: outcome.result, fallbackStrategy: outcome.strategy };
    }
    this.fallbacks?.recordPrimarySuccess();
    this.telemetry.sessionCreated(false);
    this.log.info({ event: LogEvent.sessionCreated, session_id: session.id });
    return { session, fallbackStrategy: null };
  }

  /** Another caller's session answers exactly like a missing one: its existence is not revealed. */
  get(id: string, scope: SessionScope): SessionRecord {
    const session = this.store.getSession(id);
    if (!session || (!scope.all && session.owner !== scope.owner)) throw new SessionNotFoundError(id);
    return session;
  }

  isActive(id: string): boolean {
    return this.turns.isActive(id);
  }

  /** A config change applies to the next turn; one streaming now is interrupted first (it stores what it has). */
  async updateConfig(id: string, patch: SessionConfig, scope: SessionScope): Promise<SessionRecord> {
    this.get(id, scope);
    await this.stopRunningTurn(id, 'session_reconfigured');
    const session = this.guard.executeSync(() => this.store.updateSessionConfig(id, patch));
    if (!session) throw new SessionNotFoundError(id);
    this.log.info({ event: LogEvent.sessionUpdated, session_id: id, fields: Object.keys(patch) });
    return session;
  }

  /** Deleting a session that is answering interrupts that answer first. */
  async delete(id: string, scope: SessionScope): Promise<void> {
    this.get(id, scope);
    await this.stopRunningTurn(id, 'session_deleted');
    if (!this.guard.executeSync(() => this.store.deleteSession(id))) throw new SessionNotFoundError(id);
    this.log.info({ event: LogEvent.sessionDeleted, session_id: id });
  }

  /** A turn streaming while the history is cleared is interrupted and settled first, so it cannot write into the cleared history. */
  async clear(id: string, scope: SessionScope): Promise<number> {
    this.get(id, scope);
    await this.stopRunningTurn(id, 'session_cleared');
    const result = this.guard.executeSync(() => this.store.clearMessages(id));
    if (!result) throw new SessionNotFoundError(id);
    this.log.info({ event: LogEvent.sessionCleared, session_id: id, deleted_messages: result.deleted });
    return result.deleted;
  }

  /**
   * Interrupts the session's running turn and waits until it has stored its answer and sent its last
   * frame. A turn that will not settle in time leaves the session busy (409) rather than racing it.
   */
  private async stopRunningTurn(id: string, kind: TurnAbortKind): Promise<boolean> {
    const turn = this.turns.current(id);
    if (turn) {
      this.turns.abort(id, kind);
      if (!(await settlesWithin(turn.settled, this.settleTimeoutMs))) throw new TurnInProgressError(id);
      return true;
    }
    const elsewhere = (await this.remote?.stopElsewhere(id, kind, this.settleTimeoutMs)) ?? 'idle';
    if (elsewhere === 'busy') throw new TurnInProgressError(id);
    return elsewhere === 'stopped';
  }

  /** True when a running turn (here or, with Redis, on another instance) was cancelled, false when the session was idle. */
  async interrupt(id: string, scope: SessionScope): Promise<boolean> {
    this.get(id, scope);
    if (this.turns.abort(id, 'interrupted')) return true;
    return (await this.remote?.stopElsewhere(id, 'interrupted', this.settleTimeoutMs)) === 'stopped';
  }

  /** One's own sessions; every session for the admin (or with authentication off). */
  list(scope: SessionScope, limit: number, cursor: string | undefined): { page: Page<SessionRecord>; total: number } {
    const owner = scope.all ? undefined : scope.owner;
    return {
      page: this.store.listSessions({ owner, limit, cursor }),
      total: this.store.countSessions(owner),
    };
  }

  history(id: string, scope: SessionScope, limit: number, afterSeq: number): { session: SessionRecord; messages: MessageRecord[]; nextAfter: number | null } {
    const session = this.get(id, scope);
    const rows = this.store.listMessages(id, { limit: limit + 1, afterSeq });
    const messages = rows.slice(0, limit);
    const last = messages[messages.length - 1];
    return { session, messages, nextAfter: rows.length > limit && last ? last.seq : null };
  }
}
