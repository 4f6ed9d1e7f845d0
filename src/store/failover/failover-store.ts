import type {
  FinishMessageFields,
  ListMessagesOptions,
  ListSessionsOptions,
  MessageRecord,
  NewMessage,
  NewSession,
  Page,
  SessionConfig,
  SessionRecord,
  SessionStore,
  ToolEventRecord,
} from '../types.js';
import { InvalidCursorError } from '../sqlite/sqlite-store.js';
import { MemorySessionStore } from '../memory/memory-store.js';

/**
 * Cursor shapes of the merged listing. Primary cursors pass through unchanged; ours start with
 * '~', which is outside the base64url alphabet, so they never collide with a primary cursor.
 */
const MEMORY_CURSOR_PREFIX = '~m.';
const PRIMARY_START_CURSOR = '~p';

export interface ReconcileResult {
  /** Provisional sessions written to the primary and removed from memory. */
  moved: number;
  /** Provisional sessions still in memory, to be retried by a later reconcile. */
  failed: number;
}

/**
 * Wraps the real store (the primary) with an in-memory store for provisional sessions: sessions
 * created with createProvisional while the primary cannot take writes. Every operation on an id
 * held in memory goes to memory, everything else to the primary; reconcile() moves provisional
 * sessions to the primary once it recovers. All calls are synchronous, so a session is in memory
 * until the move has fully succeeded and no read can observe it half-moved.
 */
export class FailoverSessionStore implements SessionStore {
  readonly kind: string;
  /** Ids whose partial copy in the primary could not be deleted; deleted before the next attempt. */
  private readonly needsCleanup = new Set<string>();

  constructor(
    readonly primary: SessionStore,
    private readonly memory: MemorySessionStore = new MemorySessionStore(),
  ) {
    this.kind = primary.kind;
  }

  /** Creates the session in the primary; throws whatever the primary throws. */
  createSession(input: NewSession): SessionRecord {
    if (this.memory.has(input.id)) throw new Error(`Session ${input.id} already exists`);
    return this.primary.createSession(input);
  }

  /** Creates the session in memory, to be written to the primary by reconcile(). */
  createProvisional(input: NewSession): SessionRecord {
    return this.memory.createSession(input);
  }

  /** Whether the session is currently held in memory (not yet written to the primary). */
  isProvisional(id: string): boolean {
    return this.memory.has(id);
  }

  provisionalCount(): number {
    return this.memory.ids().length;
  }

  getSession(id: string): SessionRecord | null {
    return this.storeFor(id).getSession(id);
  }

  updateSessionConfig(id: string, patch: SessionConfig): SessionRecord | null {
    return this.storeFor(id).updateSessionConfig(id, patch);
  }

  deleteSession(id: string): boolean {
    if (this.memory.has(id)) {
      this.needsCleanup.delete(id);
      return this.memory.deleteSession(id);
    }
    return this.primary.deleteSession(id);
  }

  clearMessages(id: string): { deleted: number } | null {
    return this.storeFor(id).clearMessages(id);
  }

  /**
   * Provisional sessions come first (newest first), then the primary's sessions. The cursor
   * says which phase the next page is in: a memory cursor, the start of the primary, or a
   * primary cursor passed through as is.
   */
  listSessions(options: ListSessionsOptions): Page<SessionRecord> {
    const { owner, limit, cursor } = options;
    if (cursor !== undefined && !cursor.startsWith(MEMORY_CURSOR_PREFIX)) {
      if (cursor === PRIMARY_START_CURSOR) return this.primary.listSessions({ owner, limit });
      if (cursor.startsWith('~')) throw new InvalidCursorError();
      return this.primary.listSessions({ owner, limit, cursor });
    }

    const memoryCursor = cursor === undefined ? undefined : cursor.slice(MEMORY_CURSOR_PREFIX.length);
    if (memoryCursor === '') throw new InvalidCursorError();
    const provisional = this.memory.listSessions({ owner, limit, cursor: memoryCursor });
    if (provisional.nextCursor !== null) {
      return { items: provisional.items, nextCursor: MEMORY_CURSOR_PREFIX + provisional.nextCursor };
    }
    const remaining = limit - provisional.items.length;
    if (remaining > 0) {
      const stored = this.primary.listSessions({ owner, limit: remaining });
      return { items: [...provisional.items, ...stored.items], nextCursor: stored.nextCursor };
    }
    // The page is full of provisional sessions: point at the primary only if it has any.
    const probe = this.primary.listSessions({ owner, limit: 1 });
    return { items: provisional.items, nextCursor: probe.items.length > 0 ? PRIMARY_START_CURSOR : null };
  }

  countSessions(owner?: string | null): number {
    return this.memory.countSessions(owner) + this.primary.countSessions(owner);
  }

  appendMessage(input: NewMessage): MessageRecord | null {
    return this.storeFor(input.sessionId).appendMessage(input);
  }

  checkpointMessage(sessionId: string, messageId: string, content: string, toolEvents: ToolEventRecord[]): boolean {
    return this.storeFor(sessionId).checkpointMessage(sessionId, messageId, content, toolEvents);
  }

  finishMessage(sessionId: string, messageId: string, fields: FinishMessageFields): MessageRecord | null {
    return this.storeFor(sessionId).finishMessage(sessionId, messageId, fields);
  }

  /** Both stores; memory is normally empty at start-up, but a recover later must not miss it. */
  recoverInProgressMessages(): number {
    return this.memory.recoverInProgressMessages() + this.primary.recoverInProgressMessages();
  }

  listMessages(sessionId: string, options: ListMessagesOptions): MessageRecord[] {
    return this.storeFor(sessionId).listMessages(sessionId, options);
  }

  allMessages(sessionId: string): MessageRecord[] {
    return this.storeFor(sessionId).allMessages(sessionId);
  }

  hasMessage(sessionId: string, messageId: string): boolean {
    return this.storeFor(sessionId).hasMessage(sessionId, messageId);
  }

  /**
   * Writes every provisional session, with its messages in order, to the primary and removes
   * it from memory on success. A session that fails stays in memory (and any partial copy is
   * removed from the primary) for the next attempt. Never throws.
   */
  reconcile(): ReconcileResult {
    const result: ReconcileResult = { moved: 0, failed: 0 };
    let ids: string[];
    try {
      ids = this.memory.ids();
    } catch {
      return result;
    }
    for (const id of ids) {
      if (this.moveToPrimary(id)) result.moved++;
      else result.failed++;
    }
    return result;
  }

  ping(): boolean {
    return this.primary.ping();
  }

  /** Gives provisional sessions a last chance to reach the primary, then closes both stores. */
  close(): void {
    try {
      if (this.memory.ping() && this.provisionalCount() > 0) this.reconcile();
    } finally {
      this.memory.close();
      this.primary.close();
    }
  }

  private storeFor(id: string): SessionStore {
    return this.memory.has(id) ? this.memory : this.primary;
  }

  private moveToPrimary(id: string): boolean {
    let session: SessionRecord | null;
    let messages: MessageRecord[];
    try {
      session = this.memory.getSession(id);
      messages = this.memory.allMessages(id);
    } catch {
      return false;
    }
    if (!session) return true;

    if (this.needsCleanup.has(id)) {
      try {
        this.primary.deleteSession(id);
        this.needsCleanup.delete(id);
      } catch {
        return false;
      }
    }

    try {
      this.primary.createSession({ id, owner: session.owner, config: session.config });
    } catch {
      return false;
    }

    try {
      for (const message of messages) {
        const written = this.primary.appendMessage({
          id: message.id,
          sessionId: id,
          role: message.role,
          content: message.content,
          status: message.status,
          inputTokens: message.inputTokens,
          outputTokens: message.outputTokens,
          costUsd: message.costUsd,
          model: message.model,
          stopReason: message.stopReason,
          error: message.error,
          toolEvents: message.toolEvents,
          mode: message.mode,
          // A turn still streaming into a provisional session keeps checkpointing/finishing it in the primary.
          inProgress: message.inProgress,
        });
        if (written === null) throw new Error(`Session ${id} vanished from the primary during reconcile`);
      }
    } catch {
      try {
        this.primary.deleteSession(id);
      } catch {
        this.needsCleanup.add(id);
      }
      return false;
    }

    this.memory.takeSession(id);
    return true;
  }
}
