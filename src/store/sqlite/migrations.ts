import type Database from 'better-sqlite3';

export interface Migration {
  version: number;
  name: string;
  up: string;
}

/** Ordered, append-only: never edit a released migration, add a new version instead. */
export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'create_sessions_and_messages',
    up: `
      CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        owner TEXT NULL,
        config TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        last_seq INTEGER NOT NULL DEFAULT 0,
        message_count INTEGER NOT NULL DEFAULT 0,
        total_input_tokens INTEGER NOT NULL DEFAULT 0,
        total_output_tokens INTEGER NOT NULL DEFAULT 0,
        total_cost_usd REAL NOT NULL DEFAULT 0
      );
      CREATE INDEX sessions_owner_created_idx ON sessions(owner, created_at DESC, id DESC);
      CREATE INDEX sessions_created_idx ON sessions(created_at DESC, id DESC);

      CREATE TABLE messages (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
        content TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('complete', 'incomplete', 'error')),
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd REAL NOT NULL DEFAULT 0,
        model TEXT,
        stop_reason TEXT,
        error TEXT,
        tool_events TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (session_id, seq)
      );
    `,
  },
  {
    version: 2,
    name: 'create_jobs',
    up: `
      CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        user_message_id TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_run_at INTEGER NOT NULL,
        last_error TEXT,
        result_message_id TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE INDEX jobs_status_next_run_idx ON jobs(status, next_run_at);
    `,
  },
  {
    version: 3,
    name: 'message_mode',
    // Who produced a message: live, simulated, or a fallback (cached, mock, degraded, alternative, queued).
    up: `ALTER TABLE messages ADD COLUMN mode TEXT NOT NULL DEFAULT 'live';`,
  },
  {
    version: 4,
    name: 'store_health',
    // One row rewritten by the health check: proves the database takes writes, not just reads.
    up: `CREATE TABLE store_health (id INTEGER PRIMARY KEY CHECK (id = 1), checked_at TEXT NOT NULL);`,
  },
  {
    version: 5,
    name: 'message_in_progress',
    // Assistant messages are created when a turn starts and finished when it ends; the partial
    // index keeps start-up recovery of messages left in progress by a crash cheap.
    up: `
      ALTER TABLE messages ADD COLUMN in_progress INTEGER NOT NULL DEFAULT 0;
      CREATE INDEX messages_in_progress_idx ON messages(in_progress) WHERE in_progress = 1;
    `,
  },
  {
    version: 6,
    name: 'session_counts',
    // Listing pages carry a total; COUNT(*) walks every session of the owner (~6 ms at 100,000), so
    // triggers keep the totals: '*' for all sessions, 'o:<owner>' per owner, 'n' for no owner.
    up: `
      CREATE TABLE session_counts (owner_key TEXT PRIMARY KEY, sessions INTEGER NOT NULL) WITHOUT ROWID;
      INSERT INTO session_counts SELECT '*', COUNT(*) FROM sessions;
      INSERT INTO session_counts
        SELECT CASE WHEN owner IS NULL THEN 'n' ELSE 'o:' || owner END, COUNT(*) FROM sessions GROUP BY owner;
      CREATE TRIGGER sessions_counted_insert AFTER INSERT ON sessions BEGIN
        INSERT OR IGNORE INTO session_counts VALUES (CASE WHEN NEW.owner IS NULL THEN 'n' ELSE 'o:' || NEW.owner END, 0);
        UPDATE session_counts SET sessions = sessions + 1
          WHERE owner_key IN ('*', CASE WHEN NEW.owner IS NULL THEN 'n' ELSE 'o:' || NEW.owner END);
      END;
      CREATE TRIGGER sessions_counted_delete AFTER DELETE ON sessions BEGIN
        UPDATE session_counts SET sessions = sessions - 1
          WHERE owner_key IN ('*', CASE WHEN OLD.owner IS NULL THEN 'n' ELSE 'o:' || OLD.owner END);
      END;
    `,
  },
];

function ensureMigrationsTable(db: Database.Database): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY,
      name TEXT,
      applied_at TEXT
    )
  `);
}

function appliedVersions(db: Database.Database): Set<number> {
  const rows = db.prepare<[], { version: number }>('SELECT version FROM schema_migrations').all();
  return new Set(rows.map((row) => row.version));
}

/**
 * Applies pending migrations in version order, each in its own transaction so a failing
 * migration leaves the schema at the last good version. Safe to call on every open.
 * Returns the versions applied by this call.
 */
export function migrate(db: Database.Database, list: readonly Migration[] = migrations): number[] {
  ensureMigrationsTable(db);
  const done = appliedVersions(db);
  const record = db.prepare<[number, string, string]>(
    'INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)',
  );
  const pending = [...list].filter((m) => !done.has(m.version)).sort((a, b) => a.version - b.version);

  const applied: number[] = [];
  for (const migration of pending) {
    // IMMEDIATE takes the write lock up front, so two processes opening the same file
    // cannot both apply the same migration.
    db.transaction(() => {
      if (appliedVersions(db).has(migration.version)) return;
      db.exec(migration.up);
      record.run(migration.version, migration.name, new Date().toISOString());
      applied.push(migration.version);
    }).immediate();
  }
  return applied;
}
