import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { SqliteSessionStore } from '../store/sqlite/sqlite-store.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import { SqliteJobStore } from './sqlite-job-store.js';

let tmpDir: string;
let dbPath: string;
let sessions: SqliteSessionStore;
let jobs: SqliteJobStore;

beforeEach(() => {
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-jobs-'));
  dbPath = path.join(tmpDir, 'chat.db');
  sessions = openSqliteStore(dbPath);
  sessions.createSession({ id: 's1', owner: null, config: {} });
  jobs = new SqliteJobStore(sessions.database);
});

afterEach(() => {
  vi.useRealTimers();
  sessions.close();
  fs.rmSync(tmpDir, { recursive: true, force: true });
});

function reopen(): void {
  sessions.close();
  sessions = openSqliteStore(dbPath);
  jobs = new SqliteJobStore(sessions.database);
}

describe('SqliteJobStore', () => {
  it('creates and gets a job', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2024-01-01T00:00:00.000Z'));
    const created = jobs.createJob({ id: 'j1', sessionId: 's1', userMessageId: 'm1', nextRunAt: 1234 });

    expect(created).toEqual({
      id: 'j1',
      sessionId: 's1',
      userMessageId: 'm1',
      status: 'queued',
      attempts: 0,
      nextRunAt: 1234,
      lastError: null,
      resultMessageId: null,
      createdAt: '2024-01-01T00:00:00.000Z',
      updatedAt: '2024-01-01T00:00:00.000Z',
    });
    expect(jobs.getJob('j1')).toEqual(created);
    expect(jobs.getJob('missing')).toBeNull();
  });

  it('rejects a job for an unknown session and a duplicate id', () => {
    expect(() => jobs.createJob({ id: 'j1', sessionId: 'nope', userMessageId: 'm1', nextRunAt: 0 })).toThrow(
      /FOREIGN KEY/,
    );
    jobs.createJob({ id: 'j1', sessionId: 's1', userMessageId: 'm1', nextRunAt: 0 });
    expect(() => jobs.createJob({ id: 'j1', sessionId: 's1', userMessageId: 'm2', nextRunAt: 0 })).toThrow(/UNIQUE/);
  });

  it('claims a queued job exactly once', () => {
    jobs.createJob({ id: 'j1', sessionId: 's1', userMessageId: 'm1', nextRunAt: 0 });

    expect(jobs.claimJob('j1')).toBe(true);
    expect(jobs.claimJob('j1')).toBe(false);
    expect(jobs.claimJob('missing')).toBe(false);
    expect(jobs.getJob('j1')?.status).toBe('running');
    expect(jobs.dueJobs(Number.MAX_SAFE_INTEGER, 10)).toEqual([]);
  });

  it('a second connection cannot claim a job the first one claimed', () => {
    jobs.createJob({ id: 'j1', sessionId: 's1', userMessageId: 'm1', nextRunAt: 0 });
    const other = openSqliteStore(dbPath);
    try {
      const otherJobs = new SqliteJobStore(other.database);
      expect(otherJobs.claimJob('j1')).toBe(true);
      expect(jobs.claimJob('j1')).toBe(false);
    } finally {
      other.close();
    }
  });

  it('lists due jobs oldest first, filtering by nextRunAt and status, up to the limit', () => {
    jobs.createJob({ id: 'late', sessionId: 's1', userMessageId: 'm', nextRunAt: 300 });
    jobs.createJob({ id: 'b', sessionId: 's1', userMessageId: 'm', nextRunAt: 100 });
    jobs.createJob({ id: 'a', sessionId: 's1', userMessageId: 'm', nextRunAt: 100 });
    jobs.createJob({ id: 'first', sessionId: 's1', userMessageId: 'm', nextRunAt: 50 });
    jobs.createJob({ id: 'claimed', sessionId: 's1', userMessageId: 'm', nextRunAt: 10 });
    jobs.claimJob('claimed');

    // Same nextRunAt: insertion order, not id order.
    expect(jobs.dueJobs(100, 10).map((j) => j.id)).toEqual(['first', 'b', 'a']);
    expect(jobs.dueJobs(100, 2).map((j) => j.id)).toEqual(['first', 'b']);
    expect(jobs.dueJobs(49, 10)).toEqual([]);
    expect(jobs.dueJobs(300, 10).map((j) => j.id)).toEqual(['first', 'b', 'a', 'late']);
    expect(jobs.dueJobs(300, 0)).toEqual([]);
  });

  it('serves dueJobs from the (status, next_run_at) index without sorting', () => {
    const plan = sessions.database
      .prepare(
        `EXPLAIN QUERY PLAN SELECT * FROM jobs WHERE status = 'queued' AND next_run_at <= ?
         ORDER BY next_run_at ASC, rowid ASC LIMIT ?`,
      )
      .all(0, 1) as { detail: string }[];
    const details = plan.map((row) => row.detail).join('\n');
    expect(details).toMatch(/USING INDEX jobs_status_next_run_idx/);
    expect(details).not.toMatch(/TEMP B-TREE/);
  });

  it('completes a job, keeping terminal jobs untouched afterwards', () => {
    jobs.createJob({ id: 'j1', sessionId: 's1', userMessageId: 'm1', nextRunAt: 0 });
    jobs.claimJob('j1');

    expect(jobs.completeJob('j1', 'a1')).toBe(true);
    expect(jobs.getJob('j1')).toMatchObject({ status: 'done', resultMessageId: 'a1', lastError: null });
    expect(jobs.rescheduleJob('j1', 'late failure', 999, false)).toBe(false);
    expect(jobs.completeJob('j1', 'a2')).toBe(false);
    expect(jobs.getJob('j1')).toMatchObject({ status: 'done', resultMessageId: 'a1', attempts: 0 });
    expect(jobs.completeJob('missing', 'a')).toBe(false);
  });

  it('reschedules with attempts + 1, or fails when final', () => {
    jobs.createJob({ id: 'j1', sessionId: 's1', userMessageId: 'm1', nextRunAt: 0 });
    jobs.claimJob('j1');

    jobs.rescheduleJob('j1', 'boom', 5000, false);
    expect(jobs.getJob('j1')).toMatchObject({ status: 'queued', attempts: 1, lastError: 'boom', nextRunAt: 5000 });
    expect(jobs.dueJobs(4999, 10)).toEqual([]);
    expect(jobs.dueJobs(5000, 10).map((j) => j.id)).toEqual(['j1']);

    jobs.claimJob('j1');
    jobs.rescheduleJob('j1', 'boom again', 6000, true);
    expect(jobs.getJob('j1')).toMatchObject({ status: 'failed', attempts: 2, lastError: 'boom again' });
    expect(jobs.claimJob('j1')).toBe(false);
    expect(jobs.dueJobs(Number.MAX_SAFE_INTEGER, 10)).toEqual([]);
  });

  it('requeues running jobs, leaving the others alone', () => {
    for (const id of ['q', 'r1', 'r2', 'd', 'f']) {
      jobs.createJob({ id, sessionId: 's1', userMessageId: 'm', nextRunAt: 0 });
    }
    for (const id of ['r1', 'r2', 'd', 'f']) jobs.claimJob(id);
    jobs.completeJob('d', 'a');
    jobs.rescheduleJob('f', 'x', 0, true);

    expect(jobs.requeueRunningJobs()).toBe(2);
    expect(jobs.requeueRunningJobs()).toBe(0);
    expect(jobs.getJob('r1')).toMatchObject({ status: 'queued', attempts: 0 });
    expect(jobs.countJobs('queued')).toBe(3);
    expect(jobs.countJobs('running')).toBe(0);
    expect(jobs.countJobs('done')).toBe(1);
    expect(jobs.countJobs('failed')).toBe(1);
    expect(jobs.countJobs()).toBe(5);
  });

  it('deletes jobs with their session', () => {
    sessions.createSession({ id: 's2', owner: null, config: {} });
    jobs.createJob({ id: 'j1', sessionId: 's1', userMessageId: 'm1', nextRunAt: 0 });
    jobs.createJob({ id: 'j2', sessionId: 's2', userMessageId: 'm2', nextRunAt: 0 });

    expect(sessions.deleteSession('s1')).toBe(true);
    expect(jobs.getJob('j1')).toBeNull();
    expect(jobs.getJob('j2')).not.toBeNull();
    expect(jobs.countJobs()).toBe(1);
  });

  it('persists jobs across close and reopen', () => {
    jobs.createJob({ id: 'j1', sessionId: 's1', userMessageId: 'm1', nextRunAt: 42 });
    jobs.claimJob('j1');
    reopen();
    expect(jobs.getJob('j1')).toMatchObject({ status: 'running', nextRunAt: 42 });
    expect(jobs.requeueRunningJobs()).toBe(1);
    expect(jobs.dueJobs(42, 10).map((j) => j.id)).toEqual(['j1']);
  });
});
