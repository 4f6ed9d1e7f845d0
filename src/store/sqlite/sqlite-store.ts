import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { decodeCursor, encodeCursor, type SessionKey } from '../session-cursor.js';
import type {
  FinishMessageFields,
  ListMessagesOptions,
  ListSessionsOptions,
  MessageRecord,
  MessageRole,
  MessageStatus,
  NewMessage,
  NewSession,
  Page,
  SessionConfig,
  SessionRecord,
  SessionStore,
  ToolEventRecord,
} from '../types.js';
import { SERVER_RESTARTED_ERROR } from '../types.js';
import { migrate } from './migrations.js';

/** Thrown by listSessions for a cursor it did not issue; the HTTP layer maps it to 422. */
export { InvalidCursorError } from '../session-cursor.js';

interface SessionRow {
  id: string;
  owner: string | null;
  config: string;
  created_at: string;
  updated_at: string;
  last_seq: number;
  message_count: number;
  total_input_tokens: number;
  total_output_tokens: number;
  total_cost_usd: number;
}

interface MessageRow {
  id: string;
  session_id: string;
  seq: number;
  role: MessageRole;
  content: string;
  status: MessageStatus;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  model: string | null;
  stop_reason: string | null;
  error: string | null;
  tool_events: string;
  mode: string;
  /** 1 while the turn producing the message is running, else 0. */
  in_progress: number;
  created_at: string;
  updated_at: string;
}

interface FinishParams {
  id: string;
  session_id: string;
  content: string;
  status: MessageStatus;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  model: string | null;
  stop_reason: string | null;
  error: string | null;
  tool_events: string;
  mode: string;
  updated_at: string;
}

/** Position of the last item of a page in the (created_at DESC, id DESC) order. */
const now = (): string => new Date().toISOString();

function toSessionRecord(row: SessionRow): SessionRecord {
  return {
    id: row.id,
    owner: row.owner,
    config: JSON.parse(row.config) as SessionConfig,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    messageCount: row.message_count,
    totalInputTokens: row.total_input_tokens,
    totalOutputTokens: row.total_output_tokens,
    totalCostUsd: row.total_cost_usd,
  };
}

function toMessageRecord(row: MessageRow): MessageRecord {
  return {
    id: row.id,
    sessionId: row.session_id,
    seq: row.seq,
    role: row.role,
    content: row.content,
    status: row.status,
    inputTokens: row.input_tokens,
    outputTokens: row.output_tokens,
    costUsd: row.cost_usd,
    model: row.model,
    stopReason: row.stop_reason,
    error: row.error,
    toolEvents: JSON.parse(row.tool_events) as ToolEventRecord[],
    mode: row.mode,
    inProgress: row.in_progress === 1,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Shallow merge where `undefined` in the patch means "leave as is", not "erase". */
function mergeConfig(base: SessionConfig, patch: SessionConfig): SessionConfig {
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    if (value !== undefined) merged[key] = value;
  }
  return merged as SessionConfig;
}


interface OwnerParam {
  owner: string | null;
}
interface KeyParams {
  createdAt: string;
  id: string;
  limit: number;
}

/**
 * Every statement is prepared once per connection. `owner IS @owner` matches both NULL and a
 * string and still uses the (owner, created_at, id) index; row-value comparison keeps keyset
 * pagination index-driven.
 */
function prepareStatements(db: Database.Database) {
  const sessionOrder = 'ORDER BY created_at DESC, id DESC LIMIT @limit';
  return {
    ping: db.prepare<[string]>('INSERT INTO store_health (id, checked_at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at'),

    insertSession: db.prepare<[SessionRow]>(
      `INSERT INTO sessions (id, owner, config, created_at, updated_at)
       VALUES (@id, @owner, @config, @created_at, @updated_at)`,
    ),
    selectSession: db.prepare<[string], SessionRow>('SELECT * FROM sessions WHERE id = ?'),
    updateConfig: db.prepare<[string, string, string]>(
      'UPDATE sessions SET config = ?, updated_at = ? WHERE id = ?',
    ),
    deleteSession: db.prepare<[string]>('DELETE FROM sessions WHERE id = ?'),
    resetCounters: db.prepare<[string, string]>(
      `UPDATE sessions SET message_count = 0, total_input_tokens = 0, total_output_tokens = 0,
         total_cost_usd = 0, updated_at = ? WHERE id = ?`,
    ),
    bumpSequence: db.prepare<
      [{ id: string; inputTokens: number; outputTokens: number; costUsd: number; now: string }],
      number
    >(
      `UPDATE sessions SET last_seq = last_seq + 1, message_count = message_count + 1,
         total_input_tokens = total_input_tokens + @inputTokens,
         total_output_tokens = total_output_tokens + @outputTokens,
         total_cost_usd = total_cost_usd + @costUsd, updated_at = @now
       WHERE id = @id RETURNING last_seq`,
    ).pluck(),

    listAll: db.prepare<[{ limit: number }], SessionRow>(`SELECT * FROM sessions ${sessionOrder}`),
    listAllAfter: db.prepare<[KeyParams], SessionRow>(
      `SELECT * FROM sessions WHERE (created_at, id) < (@createdAt, @id) ${sessionOrder}`,
    ),
    listByOwner: db.prepare<[OwnerParam & { limit: number }], SessionRow>(
      `SELECT * FROM sessions WHERE owner IS @owner ${sessionOrder}`,
    ),
    listByOwnerAfter: db.prepare<[OwnerParam & KeyParams], SessionRow>(
      `SELECT * FROM sessions WHERE owner IS @owner AND (created_at, id) < (@createdAt, @id) ${sessionOrder}`,
    ),
    // Kept by triggers (migration 6): O(1) whatever the number of sessions.
    countAll: db.prepare<[], number>("SELECT sessions FROM session_counts WHERE owner_key = '*'").pluck(),
    countByOwner: db.prepare<[string], number>('SELECT sessions FROM session_counts WHERE owner_key = ?').pluck(),

    insertMessage: db.prepare<[MessageRow]>(
      `INSERT INTO messages (id, session_id, seq, role, content, status, input_tokens, output_tokens,
         cost_usd, model, stop_reason, error, tool_events, mode, in_progress, created_at, updated_at)
       VALUES (@id, @session_id, @seq, @role, @content, @status, @input_tokens, @output_tokens,
         @cost_usd, @model, @stop_reason, @error, @tool_events, @mode, @in_progress, @created_at, @updated_at)`,
    ),
    checkpointMessage: db.prepare<[string, string, string, string, string]>(
      `UPDATE messages SET content = ?, tool_events = ?, updated_at = ?
       WHERE id = ? AND session_id = ? AND in_progress = 1`,
    ),
    selectInProgress: db.prepare<
      [string, string],
      Pick<MessageRow, 'input_tokens' | 'output_tokens' | 'cost_usd'>
    >(
      `SELECT input_tokens, output_tokens, cost_usd FROM messages
       WHERE id = ? AND session_id = ? AND in_progress = 1`,
    ),
    addToTotals: db.prepare<[{ id: string; inputTokens: number; outputTokens: number; costUsd: number; now: string }]>(
      `UPDATE sessions SET total_input_tokens = total_input_tokens + @inputTokens,
         total_output_tokens = total_output_tokens + @outputTokens,
         total_cost_usd = total_cost_usd + @costUsd, updated_at = @now
       WHERE id = @id`,
    ),
    finishMessage: db.prepare<[FinishParams], MessageRow>(
      `UPDATE messages SET content = @content, status = @status, input_tokens = @input_tokens,
         output_tokens = @output_tokens, cost_usd = @cost_usd, model = @model, stop_reason = @stop_reason,
         error = @error, tool_events = @tool_events, mode = @mode, in_progress = 0, updated_at = @updated_at
       WHERE id = @id AND session_id = @session_id AND in_progress = 1
       RETURNING *`,
    ),
    // WHERE in_progress = 1 matches the partial index, so this never scans finished messages.
    recoverInProgress: db.prepare<[{ error: string; now: string }]>(
      `UPDATE messages SET in_progress = 0,
         status = CASE WHEN content <> '' OR tool_events <> '[]' THEN 'incomplete' ELSE 'error' END,
         error = COALESCE(error, @error), updated_at = @now
       WHERE in_progress = 1`,
    ),
    deleteMessages: db.prepare<[string]>('DELETE FROM messages WHERE session_id = ?'),
    listMessages: db.prepare<[string, number, number], MessageRow>(
      'SELECT * FROM messages WHERE session_id = ? AND seq > ? ORDER BY seq ASC LIMIT ?',
    ),
    allMessages: db.prepare<[string], MessageRow>(
      'SELECT * FROM messages WHERE session_id = ? ORDER BY seq ASC',
    ),
    hasMessage: db.prepare<[string, string], { found: number }>('SELECT 1 AS found FROM messages WHERE session_id = ? AND id = ?'),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

export class SqliteSessionStore implements SessionStore {
  readonly kind = 'sqlite';
  private readonly stmts: Statements;
  private readonly appendTx: (input: NewMessage) => MessageRecord | null;
  private readonly updateConfigTx: (id: string, patch: SessionConfig) => SessionRecord | null;
  private readonly clearTx: (id: string) => { deleted: number } | null;
  private readonly finishTx: (sessionId: string, messageId: string, fields: FinishMessageFields) => MessageRecord | null;

  /** Takes an open, configured connection (see openSqliteStore) and brings its schema up to date. */
  constructor(private readonly db: Database.Database) {
    migrate(db);
    this.stmts = prepareStatements(db);
    this.appendTx = db.transaction((input: NewMessage) => this.appendInTx(input));
    this.updateConfigTx = db.transaction((id: string, patch: SessionConfig) => this.updateConfigInTx(id, patch));
    this.clearTx = db.transaction((id: string) => this.clearInTx(id));
    this.finishTx = db.transaction((sessionId: string, messageId: string, fields: FinishMessageFields) =>
      this.finishInTx(sessionId, messageId, fields),
    );
  }

  createSession(input: NewSession): SessionRecord {
    const timestamp = now();
    const row: SessionRow = {
      id: input.id,
      owner: input.owner,
      config: JSON.stringify(input.config),
      created_at: timestamp,
      updated_at: timestamp,
      last_seq: 0,
      message_count: 0,
      total_input_tokens: 0,
      total_output_tokens: 0,
      total_cost_usd: 0,
    };
    this.stmts.insertSession.run(row);
    return toSessionRecord(row);
  }

  getSession(id: string): SessionRecord | null {
    const row = this.stmts.selectSession.get(id);
    return row ? toSessionRecord(row) : null;
  }

  updateSessionConfig(id: string, patch: SessionConfig): SessionRecord | null {
    return this.updateConfigTx(id, patch);
  }

  deleteSession(id: string): boolean {
    // Messages go with it through ON DELETE CASCADE (foreign_keys is on for this connection).
    return this.stmts.deleteSession.run(id).changes > 0;
  }

  clearMessages(id: string): { deleted: number } | null {
    return this.clearTx(id);
  }

  listSessions(options: ListSessionsOptions): Page<SessionRecord> {
    const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
    // One extra row tells whether another page exists without a COUNT.
    const rows = this.selectSessionPage(options.owner, options.limit + 1, after);
    const items = rows.slice(0, options.limit).map(toSessionRecord);
    const last = items.at(-1);
    const hasMore = rows.length > options.limit;
    return { items, nextCursor: hasMore && last ? encodeCursor(last) : null };
  }

  countSessions(owner?: string | null): number {
    const count = owner === undefined ? this.stmts.countAll.get() : this.stmts.countByOwner.get(owner === null ? 'n' : `o:${owner}`);
    return count ?? 0;
  }

  appendMessage(input: NewMessage): MessageRecord | null {
    return this.appendTx(input);
  }

  checkpointMessage(sessionId: string, messageId: string, content: string, toolEvents: ToolEventRecord[]): boolean {
    return (
      this.stmts.checkpointMessage.run(content, JSON.stringify(toolEvents), now(), messageId, sessionId).changes > 0
    );
  }

  finishMessage(sessionId: string, messageId: string, fields: FinishMessageFields): MessageRecord | null {
    return this.finishTx(sessionId, messageId, fields);
  }

  recoverInProgressMessages(): number {
    return this.stmts.recoverInProgress.run({ error: SERVER_RESTARTED_ERROR, now: now() }).changes;
  }

  listMessages(sessionId: string, options: ListMessagesOptions): MessageRecord[] {
    return this.stmts.listMessages.all(sessionId, options.afterSeq ?? 0, options.limit).map(toMessageRecord);
  }

  allMessages(sessionId: string): MessageRecord[] {
    return this.stmts.allMessages.all(sessionId).map(toMessageRecord);
  }

  hasMessage(sessionId: string, messageId: string): boolean {
    return this.stmts.hasMessage.get(sessionId, messageId) !== undefined;
  }

  /** The underlying connection, for stores sharing it (e.g. SqliteJobStore). Owned and closed by this store. */
  get database(): Database.Database {
    return this.db;
  }

  ping(): boolean {
    try {
      // A real (one-row) write: a store that can only be read is not healthy.
      return this.db.open && !this.db.readonly && this.stmts.ping.run(new Date().toISOString()).changes === 1;
    } catch {
      return false;
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private selectSessionPage(owner: string | null | undefined, limit: number, after?: SessionKey): SessionRow[] {
    if (owner === undefined) {
      return after ? this.stmts.listAllAfter.all({ ...after, limit }) : this.stmts.listAll.all({ limit });
    }
    return after
      ? this.stmts.listByOwnerAfter.all({ owner, ...after, limit })
      : this.stmts.listByOwner.all({ owner, limit });
  }

  /** Reserves the next seq on the session row itself, so appends never scan or count messages. */
  private appendInTx(input: NewMessage): MessageRecord | null {
    const timestamp = now();
    const inputTokens = input.inputTokens ?? 0;
    const outputTokens = input.outputTokens ?? 0;
    const costUsd = input.costUsd ?? 0;
    const seq = this.stmts.bumpSequence.get({ id: input.sessionId, inputTokens, outputTokens, costUsd, now: timestamp });
    if (seq === undefined) return null;

    const row: MessageRow = {
      id: input.id,
      session_id: input.sessionId,
      seq,
      role: input.role,
      content: input.content,
      status: input.status,
      input_tokens: inputTokens,
      output_tokens: outputTokens,
      cost_usd: costUsd,
      model: input.model ?? null,
      stop_reason: input.stopReason ?? null,
      error: input.error ?? null,
      tool_events: JSON.stringify(input.toolEvents ?? []),
      mode: input.mode ?? 'live',
      in_progress: input.inProgress ? 1 : 0,
      created_at: timestamp,
      updated_at: timestamp,
    };
    this.stmts.insertMessage.run(row);
    return toMessageRecord(row);
  }

  private updateConfigInTx(id: string, patch: SessionConfig): SessionRecord | null {
    const row = this.stmts.selectSession.get(id);
    if (!row) return null;
    const updated: SessionRow = {
      ...row,
      config: JSON.stringify(mergeConfig(JSON.parse(row.config) as SessionConfig, patch)),
      updated_at: now(),
    };
    this.stmts.updateConfig.run(updated.config, updated.updated_at, id);
    return toSessionRecord(updated);
  }

  /** The session totals move by the difference, so tokens counted at the start are not counted twice. */
  private finishInTx(sessionId: string, messageId: string, fields: FinishMessageFields): MessageRecord | null {
    const old = this.stmts.selectInProgress.get(messageId, sessionId);
    if (!old) return null;
    const timestamp = now();
    const totals = this.stmts.addToTotals.run({
      id: sessionId,
      inputTokens: fields.inputTokens - old.input_tokens,
      outputTokens: fields.outputTokens - old.output_tokens,
      costUsd: fields.costUsd - old.cost_usd,
      now: timestamp,
    });
    if (totals.changes === 0) return null;
    const row = this.stmts.finishMessage.get({
      id: messageId,
      session_id: sessionId,
      content: fields.content,
      status: fields.status,
      input_tokens: fields.inputTokens,
      output_tokens: fields.outputTokens,
      cost_usd: fields.costUsd,
      model: fields.model,
      stop_reason: fields.stopReason,
      error: fields.error,
      tool_events: JSON.stringify(fields.toolEvents),
      mode: fields.mode,
      updated_at: timestamp,
    });
    return row ? toMessageRecord(row) : null;
  }

  /** last_seq is deliberately kept: seq must never be reused within a session. */
  private clearInTx(id: string): { deleted: number } | null {
    if (this.stmts.resetCounters.run(now(), id).changes === 0) return null;
    return { deleted: this.stmts.deleteMessages.run(id).changes };
  }
}

function configureConnection(db: Database.Database): void {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
}

/** Opens (creating if needed) the database file at `filePath`, configured and migrated. */
export function openSqliteStore(filePath: string): SqliteSessionStore {
  if (filePath !== ':memory:') fs.mkdirSync(path.dirname(filePath), { recursive: true });
  const db = new Database(filePath);
  try {
    configureConnection(db);
    return new SqliteSessionStore(db);
  } catch (err) {
    db.close();
    throw err;
  }
}
