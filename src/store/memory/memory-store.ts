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
import { SERVER_RESTARTED_ERROR } from '../types.js';
import { decodeCursor, encodeCursor, type SessionKey } from '../session-cursor.js';

/**
 * In-process SessionStore with the same semantics as SqliteSessionStore: O(1) appends that
 * update the session counters, seq never reused after clearMessages, keyset pagination over
 * (createdAt DESC, id DESC) with the same cursor encoding, owner filter undefined/null/string.
 * Nothing survives the process; FailoverSessionStore uses it to hold provisional sessions.
 */

interface Entry {
  session: SessionRecord;
  /** Last seq handed out; kept across clearMessages so seq never repeats. */
  lastSeq: number;
  messages: MessageRecord[];
}

const now = (): string => new Date().toISOString();

/** Same shape a JSON column round-trip gives (drops undefined, detaches from the caller's objects). */
function jsonClone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function copySession(session: SessionRecord): SessionRecord {
  return { ...session, config: jsonClone(session.config) };
}

function copyMessage(message: MessageRecord): MessageRecord {
  return { ...message, toolEvents: jsonClone(message.toolEvents) };
}

function mergeConfig(base: SessionConfig, patch: SessionConfig): SessionConfig {
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    if (value !== undefined) merged[key] = value;
  }
  return jsonClone(merged as SessionConfig);
}


/** Negative when a comes first in (createdAt DESC, id DESC) order. */
function compareKeys(a: SessionKey, b: SessionKey): number {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? 1 : -1;
  if (a.id !== b.id) return a.id < b.id ? 1 : -1;
  return 0;
}

export class MemorySessionStore implements SessionStore {
  readonly kind = 'memory';
  private readonly sessions = new Map<string, Entry>();
  /** Message ids are unique across sessions, as in the SQLite primary key. */
  private readonly messageIds = new Set<string>();
  private closed = false;

  createSession(input: NewSession): SessionRecord {
    this.assertOpen();
    if (this.sessions.has(input.id)) throw new Error(`Session ${input.id} already exists`);
    const timestamp = now();
    const session: SessionRecord = {
      id: input.id,
      owner: input.owner,
      config: jsonClone(input.config),
      createdAt: timestamp,
      updatedAt: timestamp,
      messageCount: 0,
      totalInputTokens: 0,
      totalOutputTokens: 0,
      totalCostUsd: 0,
    };
    this.sessions.set(input.id, { session, lastSeq: 0, messages: [] });
    return copySession(session);
  }

  getSession(id: string): SessionRecord | null {
    this.assertOpen();
    const entry = this.sessions.get(id);
    return entry ? copySession(entry.session) : null;
  }

  updateSessionConfig(id: string, patch: SessionConfig): SessionRecord | null {
    this.assertOpen();
    const entry = this.sessions.get(id);
    if (!entry) return null;
    entry.session = { ...entry.session, config: mergeConfig(entry.session.config, patch), updatedAt: now() };
    return copySession(entry.session);
  }

  deleteSession(id: string): boolean {
    this.assertOpen();
    const entry = this.sessions.get(id);
    if (!entry) return false;
    this.forgetMessages(entry);
    this.sessions.delete(id);
    return true;
  }

  clearMessages(id: string): { deleted: number } | null {
    this.assertOpen();
    const entry = this.sessions.get(id);
    if (!entry) return null;
    const deleted = entry.messages.length;
    this.forgetMessages(entry);
    entry.messages = [];
    entry.session = {
      ...entry.session,
      messageCount: 0,
      totalInputTokens: 0,
      totalOutputTokens: 0,
      totalCostUsd: 0,
      updatedAt: now(),
    };
    return { deleted };
  }

  listSessions(options: ListSessionsOptions): Page<SessionRecord> {
    this.assertOpen();
    const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
    const matching: SessionRecord[] = [];
    for (const { session } of this.sessions.values()) {
      if (options.owner !== undefined && session.owner !== options.owner) continue;
      if (after && compareKeys(session, after) <= 0) continue;
      matching.push(session);
    }
    matching.sort(compareKeys);
    const items = matching.slice(0, options.limit).map(copySession);
    const last = items.at(-1);
    const hasMore = matching.length > options.limit;
    return { items, nextCursor: hasMore && last ? encodeCursor(last) : null };
  }

  countSessions(owner?: string | null): number {
    this.assertOpen();
    if (owner === undefined) return this.sessions.size;
    let count = 0;
    for (const { session } of this.sessions.values()) if (session.owner === owner) count++;
    return count;
  }

  appendMessage(input: NewMessage): MessageRecord | null {
    this.assertOpen();
    const entry = this.sessions.get(input.sessionId);
    if (!entry) return null;
    if (this.messageIds.has(input.id)) throw new Error(`Message ${input.id} already exists`);
    const timestamp = now();
    const inputTokens = input.inputTokens ?? 0;
    const outputTokens = input.outputTokens ?? 0;
    const costUsd = input.costUsd ?? 0;
    const message: MessageRecord = {
      id: input.id,
      sessionId: input.sessionId,
      seq: entry.lastSeq + 1,
      role: input.role,
      content: input.content,
      status: input.status,
      inputTokens,
      outputTokens,
      costUsd,
      model: input.model ?? null,
      stopReason: input.stopReason ?? null,
      error: input.error ?? null,
      toolEvents: jsonClone(input.toolEvents ?? []),
      mode: input.mode ?? 'live',
      inProgress: input.inProgress ?? false,
      createdAt: timestamp,
      updatedAt: timestamp,
    };
    entry.lastSeq = message.seq;
    entry.messages.push(message);
    this.messageIds.add(message.id);
    entry.session = {
      ...entry.session,
      messageCount: entry.session.messageCount + 1,
      totalInputTokens: entry.session.totalInputTokens + inputTokens,
      totalOutputTokens: entry.session.totalOutputTokens + outputTokens,
      totalCostUsd: entry.session.totalCostUsd + costUsd,
      updatedAt: timestamp,
    };
    return copyMessage(message);
  }

  checkpointMessage(sessionId: string, messageId: string, content: string, toolEvents: ToolEventRecord[]): boolean {
    this.assertOpen();
    const found = this.findInProgress(sessionId, messageId);
    if (!found) return false;
    found.message.content = content;
    found.message.toolEvents = jsonClone(toolEvents);
    found.message.updatedAt = now();
    return true;
  }

  finishMessage(sessionId: string, messageId: string, fields: FinishMessageFields): MessageRecord | null {
    this.assertOpen();
    const found = this.findInProgress(sessionId, messageId);
    if (!found) return null;
    const { entry, message } = found;
    const timestamp = now();
    entry.session = {
      ...entry.session,
      totalInputTokens: entry.session.totalInputTokens + fields.inputTokens - message.inputTokens,
      totalOutputTokens: entry.session.totalOutputTokens + fields.outputTokens - message.outputTokens,
      totalCostUsd: entry.session.totalCostUsd + (fields.costUsd - message.costUsd),
      updatedAt: timestamp,
    };
    Object.assign(message, {
      content: fields.content,
      status: fields.status,
      inputTokens: fields.inputTokens,
      outputTokens: fields.outputTokens,
      costUsd: fields.costUsd,
      model: fields.model,
      stopReason: fields.stopReason,
      error: fields.error,
      toolEvents: jsonClone(fields.toolEvents),
      mode: fields.mode,
      inProgress: false,
      updatedAt: timestamp,
    } satisfies Partial<MessageRecord>);
    return copyMessage(message);
  }

  recoverInProgressMessages(): number {
    this.assertOpen();
    const timestamp = now();
    let count = 0;
    for (const entry of this.sessions.values()) {
      for (const message of entry.messages) {
        if (!message.inProgress) continue;
        message.inProgress = false;
        message.status = message.content !== '' || message.toolEvents.length > 0 ? 'incomplete' : 'error';
        message.error ??= SERVER_RESTARTED_ERROR;
        message.updatedAt = timestamp;
        count++;
      }
    }
    return count;
  }

  listMessages(sessionId: string, options: ListMessagesOptions): MessageRecord[] {
    this.assertOpen();
    const entry = this.sessions.get(sessionId);
    if (!entry) return [];
    const afterSeq = options.afterSeq ?? 0;
    const result: MessageRecord[] = [];
    // Messages are kept in seq order, so stop as soon as the page is full.
    for (const message of entry.messages) {
      if (result.length >= options.limit) break;
      if (message.seq > afterSeq) result.push(copyMessage(message));
    }
    return result;
  }

  allMessages(sessionId: string): MessageRecord[] {
    this.assertOpen();
    return (this.sessions.get(sessionId)?.messages ?? []).map(copyMessage);
  }

  hasMessage(sessionId: string, messageId: string): boolean {
    this.assertOpen();
    return this.messageIds.has(messageId) && (this.sessions.get(sessionId)?.messages.some((m) => m.id === messageId) ?? false);
  }

  ping(): boolean {
    return !this.closed;
  }

  close(): void {
    this.closed = true;
  }

  /** Whether a session with this id is held here. */
  has(id: string): boolean {
    return this.sessions.has(id);
  }

  /** Removes the session and returns it with its messages in seq order; null when absent. */
  takeSession(id: string): { session: SessionRecord; messages: MessageRecord[] } | null {
    const entry = this.sessions.get(id);
    if (!entry) return null;
    this.forgetMessages(entry);
    this.sessions.delete(id);
    return { session: copySession(entry.session), messages: entry.messages.map(copyMessage) };
  }

  /** Ids of the sessions held here, in insertion order (a snapshot). */
  ids(): string[] {
    return [...this.sessions.keys()];
  }

  /** Searches from the end: the message a turn is streaming into is (almost always) the last one. */
  private findInProgress(sessionId: string, messageId: string): { entry: Entry; message: MessageRecord } | null {
    const entry = this.sessions.get(sessionId);
    if (!entry) return null;
    for (let i = entry.messages.length - 1; i >= 0; i--) {
      const message = entry.messages[i]!;
      if (message.id === messageId) return message.inProgress ? { entry, message } : null;
    }
    return null;
  }

  private forgetMessages(entry: Entry): void {
    for (const message of entry.messages) this.messageIds.delete(message.id);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('The memory session store is closed');
  }
}
