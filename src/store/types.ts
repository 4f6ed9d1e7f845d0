/** Persistence contract for sessions and their messages. Implementations: sqlite (default), postgres (later). */

export type MessageRole = 'user' | 'assistant';
export type MessageStatus = 'complete' | 'incomplete' | 'error';

/** Per-session settings a client chooses; stored as JSON. */
export interface SessionConfig {
  system_prompt?: string;
  model?: string;
  max_tokens?: number;
  temperature?: number;
  allowed_tools?: string[];
  max_turns?: number;
  permission_mode?: string;
  cwd?: string;
}

export interface SessionRecord {
  id: string;
  /** Who created the session (an API key id); null while auth is off. */
  owner: string | null;
  config: SessionConfig;
  createdAt: string;
  updatedAt: string;
  messageCount: number;
  totalInputTokens: number;
  totalOutputTokens: number;
  totalCostUsd: number;
}

/** Tool activity recorded alongside an assistant message. */
export interface ToolEventRecord {
  type: 'tool_use' | 'tool_result';
  [key: string]: unknown;
}

export interface MessageRecord {
  id: string;
  sessionId: string;
  /** 1-based position in the session, strictly increasing. */
  seq: number;
  role: MessageRole;
  content: string;
  status: MessageStatus;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  model: string | null;
  stopReason: string | null;
  /** Why a message is not complete (error type or interruption), null when complete. */
  error: string | null;
  toolEvents: ToolEventRecord[];
  /** Who produced it: live, simulated, or a fallback (cached, mock, degraded, alternative, queued). */
  mode: string;
  /** True while the turn that produces it is still running (created at start, checkpointed, then finished). */
  inProgress: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface NewSession {
  id: string;
  owner: string | null;
  config: SessionConfig;
}

export interface NewMessage {
  id: string;
  sessionId: string;
  role: MessageRole;
  content: string;
  status: MessageStatus;
  inputTokens?: number;
  outputTokens?: number;
  costUsd?: number;
  model?: string | null;
  stopReason?: string | null;
  error?: string | null;
  toolEvents?: ToolEventRecord[];
  /** Who produced it: live, simulated, or a fallback (cached, mock, degraded, alternative, queued). */
  mode?: string;
  /** Created at the start of a turn, to be checkpointed and finished; default false. */
  inProgress?: boolean;
}

/** Final state of an in-progress message, written by finishMessage. */
export interface FinishMessageFields {
  content: string;
  status: MessageStatus;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  model: string | null;
  stopReason: string | null;
  error: string | null;
  toolEvents: ToolEventRecord[];
  mode: string;
}

/** Error recorded on messages that were still in progress when the server stopped. */
export const SERVER_RESTARTED_ERROR = 'server_restarted';

export interface Page<T> {
  items: T[];
  /** Opaque cursor for the next page, null at the end. */
  nextCursor: string | null;
}

export interface ListSessionsOptions {
  /** Only sessions of this owner; undefined = all owners. */
  owner?: string | null;
  limit: number;
  cursor?: string | undefined;
}

export interface ListMessagesOptions {
  limit: number;
  /** Return messages with seq strictly greater than this. */
  afterSeq?: number;
}

export interface SessionStore {
  readonly kind: string;
  createSession(input: NewSession): SessionRecord;
  getSession(id: string): SessionRecord | null;
  /** Shallow-merges the patch into the stored config; null when the session does not exist. */
  updateSessionConfig(id: string, patch: SessionConfig): SessionRecord | null;
  /** Deletes the session and all its messages; false when it did not exist. */
  deleteSession(id: string): boolean;
  /** Deletes all messages of a session and resets its counters; null when the session does not exist. */
  clearMessages(id: string): { deleted: number } | null;
  listSessions(options: ListSessionsOptions): Page<SessionRecord>;
  countSessions(owner?: string | null): number;
  /** Appends in O(1) and updates the session's counters; null when the session does not exist. */
  appendMessage(input: NewMessage): MessageRecord | null;
  listMessages(sessionId: string, options: ListMessagesOptions): MessageRecord[];
  /** All messages of a session in order (used to build the upstream conversation). */
  allMessages(sessionId: string): MessageRecord[];
  /** Whether the session still holds this message (not cleared or deleted). */
  hasMessage(sessionId: string, messageId: string): boolean;
  /**
   * Saves the partial content and tool events of a message while it is in progress (one UPDATE);
   * false when the message does not exist, belongs to another session or is no longer in progress.
   */
  checkpointMessage(sessionId: string, messageId: string, content: string, toolEvents: ToolEventRecord[]): boolean;
  /**
   * Writes the final state of an in-progress message (clearing inProgress) and adds the token and
   * cost differences (new - old) to the session's totals, atomically. Null when the message or
   * session does not exist or the message is no longer in progress (finished or recovered).
   */
  finishMessage(sessionId: string, messageId: string, fields: FinishMessageFields): MessageRecord | null;
  /**
   * Start-up recovery: every message left in progress becomes status 'incomplete' (it has content
   * or tool events) or 'error' (empty), with error 'server_restarted' unless it already had one.
   * Returns how many messages were marked.
   */
  recoverInProgressMessages(): number;
  /** Cheap probe for health checks: true when the store can write (one tiny row). */
  ping(): boolean;
  close(): void;
}
