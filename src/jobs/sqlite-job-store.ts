import type Database from 'better-sqlite3';
import { migrate } from '../store/sqlite/migrations.js';
import type { JobRecord, JobStatus, JobStore, NewJob } from './types.js';

interface JobRow {
  id: string;
  session_id: string;
  user_message_id: string;
  status: JobStatus;
  attempts: number;
  next_run_at: number;
  last_error: string | null;
  result_message_id: string | null;
  created_at: string;
  updated_at: string;
}

const now = (): string => new Date().toISOString();

function toJobRecord(row: JobRow): JobRecord {
  return {
    id: row.id,
    sessionId: row.session_id,
    userMessageId: row.user_message_id,
    status: row.status,
    attempts: row.attempts,
    nextRunAt: row.next_run_at,
    lastError: row.last_error,
    resultMessageId: row.result_message_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/**
 * Prepared once per connection. Only queued/running jobs can change state: a job that is already
 * done or failed is never revived or overwritten by a late complete/reschedule.
 */
function prepareStatements(db: Database.Database) {
  return {
    insert: db.prepare<[JobRow]>(
      `INSERT INTO jobs (id, session_id, user_message_id, status, attempts, next_run_at, last_error,
         result_message_id, created_at, updated_at)
       VALUES (@id, @session_id, @user_message_id, @status, @attempts, @next_run_at, @last_error,
         @result_message_id, @created_at, @updated_at)`,
    ),
    select: db.prepare<[string], JobRow>('SELECT * FROM jobs WHERE id = ?'),
    // Served by jobs_status_next_run_idx: equality on status, range and order on next_run_at; the index
    // entries carry the rowid, so the rowid tie-break (insertion order) needs no extra sort either.
    due: db.prepare<[number, number], JobRow>(
      `SELECT * FROM jobs WHERE status = 'queued' AND next_run_at <= ?
       ORDER BY next_run_at ASC, rowid ASC LIMIT ?`,
    ),
    claim: db.prepare<[string, string]>(
      `UPDATE jobs SET status = 'running', updated_at = ? WHERE id = ? AND status = 'queued'`,
    ),
    complete: db.prepare<[{ id: string; resultMessageId: string; now: string }]>(
      `UPDATE jobs SET status = 'done', result_message_id = @resultMessageId, last_error = NULL, updated_at = @now
       WHERE id = @id AND status IN ('queued', 'running')`,
    ),
    reschedule: db.prepare<[{ id: string; error: string; nextRunAt: number; status: JobStatus; now: string }]>(
      `UPDATE jobs SET status = @status, attempts = attempts + 1, last_error = @error,
         next_run_at = @nextRunAt, updated_at = @now
       WHERE id = @id AND status IN ('queued', 'running')`,
    ),
    requeueRunning: db.prepare<[string]>(
      `UPDATE jobs SET status = 'queued', updated_at = ? WHERE status = 'running'`,
    ),
    countAll: db.prepare<[], number>('SELECT COUNT(*) FROM jobs').pluck(),
    countByStatus: db.prepare<[JobStatus], number>('SELECT COUNT(*) FROM jobs WHERE status = ?').pluck(),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

/**
 * Durable job queue on the session store's SQLite connection (`new SqliteJobStore(sessionStore.database)`).
 * The connection is borrowed: whoever opened it (SqliteSessionStore) closes it.
 */
export class SqliteJobStore implements JobStore {
  private readonly stmts: Statements;

  constructor(db: Database.Database) {
    // Normally a no-op (SqliteSessionStore already migrated); makes a bare connection usable too.
    migrate(db);
    this.stmts = prepareStatements(db);
  }

  createJob(job: NewJob): JobRecord {
    const timestamp = now();
    const row: JobRow = {
      id: job.id,
      session_id: job.sessionId,
      user_message_id: job.userMessageId,
      status: 'queued',
      attempts: 0,
      next_run_at: job.nextRunAt,
      last_error: null,
      result_message_id: null,
      created_at: timestamp,
      updated_at: timestamp,
    };
    this.stmts.insert.run(row);
    return toJobRecord(row);
  }

  getJob(id: string): JobRecord | null {
    const row = this.stmts.select.get(id);
    return row ? toJobRecord(row) : null;
  }

  dueJobs(now: number, limit: number): JobRecord[] {
    if (limit <= 0) return [];
    return this.stmts.due.all(now, limit).map(toJobRecord);
  }

  claimJob(id: string): boolean {
    return this.stmts.claim.run(now(), id).changes === 1;
  }

  /** Returns whether the job was updated (false if unknown or already done/failed). */
  completeJob(id: string, resultMessageId: string): boolean {
    return this.stmts.complete.run({ id, resultMessageId, now: now() }).changes === 1;
  }

  /** Returns whether the job was updated (false if unknown or already done/failed). */
  rescheduleJob(id: string, error: string, nextRunAt: number, final: boolean): boolean {
    const status: JobStatus = final ? 'failed' : 'queued';
    return this.stmts.reschedule.run({ id, error, nextRunAt, status, now: now() }).changes === 1;
  }

  requeueRunningJobs(): number {
    return this.stmts.requeueRunning.run(now()).changes;
  }

  countJobs(status?: JobStatus): number {
    return status === undefined ? this.stmts.countAll.get()! : this.stmts.countByStatus.get(status)!;
  }
}
