import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { SqliteSessionStore } from '../store/sqlite/sqlite-store.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import type { JobRunnerEvent, JobRunnerOptions } from './job-runner.js';
import { JobRunner } from './job-runner.js';
import { SqliteJobStore } from './sqlite-job-store.js';
import type { JobRecord } from './types.js';

let tmpDir: string;
let dbPath: string;
let sessions: SqliteSessionStore;
let jobs: SqliteJobStore;
const runners: JobRunner[] = [];

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
  vi.setSystemTime(new Date('2024-01-01T00:00:00.000Z'));
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-job-runner-'));
  dbPath = path.join(tmpDir, 'chat.db');
  sessions = openSqliteStore(dbPath);
  sessions.createSession({ id: 's1', owner: null, config: {} });
  jobs = new SqliteJobStore(sessions.database);
});

afterEach(async () => {
  await Promise.all(runners.splice(0).map((runner) => runner.stop()));
  vi.useRealTimers();
  sessions.close();
  fs.rmSync(tmpDir, { recursive: true, force: true });
});

function reopen(): void {
  sessions.close();
  sessions = openSqliteStore(dbPath);
  jobs = new SqliteJobStore(sessions.database);
}

type Event = { event: JobRunnerEvent; fields: Record<string, unknown> };

function makeRunner(options: Partial<JobRunnerOptions> = {}): { runner: JobRunner; events: Event[] } {
  const events: Event[] = [];
  const runner = new JobRunner(jobs, {
    execute: async (job) => ({ resultMessageId: `answer-${job.id}` }),
    pollIntervalMs: 10,
    delaysMs: [0],
    clock: () => Date.now(),
    onEvent: (event, fields) => events.push({ event, fields }),
    ...options,
  });
  runners.push(runner);
  return { runner, events };
}

/** An execute that never settles on its own, only when its signal is aborted. */
function hangUntilAborted(_job: JobRecord, signal: AbortSignal): Promise<{ resultMessageId: string }> {
  return new Promise((_resolve, reject) => {
    signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
  });
}

describe('JobRunner', () => {
  it('runs a due job and completes it', async () => {
    const execute = vi.fn(async (job: JobRecord, signal: AbortSignal) => {
      expect(job.status).toBe('running');
      expect(signal.aborted).toBe(false);
      return { resultMessageId: 'a1' };
    });
    const { runner, events } = makeRunner({ execute });
    const job = runner.enqueue('s1', 'm1');
    expect(job).toMatchObject({ sessionId: 's1', userMessageId: 'm1', status: 'queued', attempts: 0 });
    expect(job.id).toMatch(/^[0-9a-f-]{36}$/);

    runner.start();
    await vi.advanceTimersByTimeAsync(0);

    expect(execute).toHaveBeenCalledTimes(1);
    expect(jobs.getJob(job.id)).toMatchObject({ status: 'done', resultMessageId: 'a1', attempts: 0 });
    expect(events.map((e) => e.event)).toEqual(['job_started', 'job_completed']);
    expect(events[1]?.fields).toMatchObject({ jobId: job.id, sessionId: 's1', resultMessageId: 'a1', attempt: 1 });
  });

  it('waits the first delay after enqueue before running', async () => {
    const execute = vi.fn(async () => ({ resultMessageId: 'a1' }));
    const { runner } = makeRunner({ execute, delaysMs: [1000, 2000] });
    runner.start();
    const job = runner.enqueue('s1', 'm1');
    expect(job.nextRunAt).toBe(Date.now() + 1000);

    await vi.advanceTimersByTimeAsync(990);
    expect(execute).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(10);
    expect(execute).toHaveBeenCalledTimes(1);
  });

  it('enqueue kicks an immediate poll instead of waiting for the interval', async () => {
    const execute = vi.fn(async () => ({ resultMessageId: 'a1' }));
    const { runner } = makeRunner({ execute, pollIntervalMs: 60_000 });
    runner.start();
    await vi.advanceTimersByTimeAsync(0);

    const job = runner.enqueue('s1', 'm1');
    await vi.advanceTimersByTimeAsync(0);
    expect(jobs.getJob(job.id)?.status).toBe('done');
  });

  it('holds jobs while canRun is false and runs them once it turns true', async () => {
    let open = false;
    const canRun = vi.fn(() => open);
    const execute = vi.fn(async () => ({ resultMessageId: 'a1' }));
    const { runner } = makeRunner({ execute, canRun });
    const job = runner.enqueue('s1', 'm1');
    runner.start();

    await vi.advanceTimersByTimeAsync(5000);
    expect(canRun).toHaveBeenCalled();
    expect(execute).not.toHaveBeenCalled();
    expect(jobs.getJob(job.id)).toMatchObject({ status: 'queued', attempts: 0 });

    open = true;
    runner.kick();
    await vi.advanceTimersByTimeAsync(0);
    expect(execute).toHaveBeenCalledTimes(1);
    expect(jobs.getJob(job.id)?.status).toBe('done');
  });

  it('reschedules failures with backoff (last delay repeats) and gives up after maxAttempts', async () => {
    const start = Date.now();
    const calledAt: number[] = [];
    const execute = vi.fn(async () => {
      calledAt.push(Date.now() - start);
      throw new Error(`upstream down #${calledAt.length}`);
    });
    const { runner, events } = makeRunner({ execute, delaysMs: [100, 200, 400], maxAttempts: 4 });
    const job = runner.enqueue('s1', 'm1');
    runner.start();

    await vi.advanceTimersByTimeAsync(100);
    expect(calledAt).toEqual([100]);
    expect(jobs.getJob(job.id)).toMatchObject({
      status: 'queued',
      attempts: 1,
      lastError: 'Error: upstream down #1',
      nextRunAt: start + 300,
    });

    // Never before nextRunAt; picked up by the next poll (every 10 ms) after it.
    await vi.advanceTimersByTimeAsync(199);
    expect(calledAt).toEqual([100]);
    await vi.advanceTimersByTimeAsync(20);
    expect(calledAt).toHaveLength(2);

    await vi.advanceTimersByTimeAsync(10_000);
    expect(calledAt).toHaveLength(4);
    // Delays 100, then 200, 400, 400 after each failure, each within one poll interval.
    const gaps = calledAt.map((at, i) => at - (i === 0 ? 0 : calledAt[i - 1]!));
    [100, 200, 400, 400].forEach((delay, i) => {
      expect(gaps[i]).toBeGreaterThanOrEqual(delay);
      expect(gaps[i]).toBeLessThan(delay + 20);
    });
    expect(jobs.getJob(job.id)).toMatchObject({ status: 'failed', attempts: 4, lastError: 'Error: upstream down #4' });

    const retries = events.filter((e) => e.event === 'job_retry_scheduled').map((e) => e.fields);
    expect(retries.map((f) => [f.attempt, f.delayMs])).toEqual([
      [1, 200],
      [2, 400],
      [3, 400],
    ]);
    const failed = events.filter((e) => e.event === 'job_failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]?.fields).toMatchObject({ jobId: job.id, attempts: 4, error: 'Error: upstream down #4' });
  });

  it('treats a synchronous throw or a malformed result as a failed attempt', async () => {
    let call = 0;
    const execute = vi.fn((() => {
      call += 1;
      if (call === 1) throw new Error('sync boom');
      return Promise.resolve({} as { resultMessageId: string });
    }) as JobRunnerOptions['execute']);
    const { runner } = makeRunner({ execute, maxAttempts: 2 });
    const job = runner.enqueue('s1', 'm1');
    runner.start();

    await vi.advanceTimersByTimeAsync(100);
    expect(execute).toHaveBeenCalledTimes(2);
    expect(jobs.getJob(job.id)).toMatchObject({ status: 'failed', attempts: 2, lastError: expect.stringMatching(/resultMessageId/) });
  });

  it('never runs more than `concurrency` jobs at once', async () => {
    let inFlight = 0;
    let peak = 0;
    const execute = vi.fn(async (job: JobRecord) => {
      inFlight += 1;
      peak = Math.max(peak, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 50));
      inFlight -= 1;
      return { resultMessageId: `a-${job.id}` };
    });
    const { runner } = makeRunner({ execute, concurrency: 2 });
    for (let i = 0; i < 5; i++) runner.enqueue('s1', `m${i}`);
    runner.start();

    await vi.advanceTimersByTimeAsync(1000);
    expect(execute).toHaveBeenCalledTimes(5);
    expect(peak).toBe(2);
    expect(jobs.countJobs('done')).toBe(5);
  });

  it('survives a throwing onEvent observer', async () => {
    const { runner } = makeRunner({
      onEvent: () => {
        throw new Error('observer bug');
      },
    });
    const job = runner.enqueue('s1', 'm1');
    runner.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(jobs.getJob(job.id)?.status).toBe('done');
  });

  it('reports store failures as job_runner_error and keeps going', async () => {
    const { runner, events } = makeRunner();
    runner.start();
    await vi.advanceTimersByTimeAsync(0);
    sessions.close();

    await vi.advanceTimersByTimeAsync(30);
    const errors = events.filter((e) => e.event === 'job_runner_error');
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]?.fields).toMatchObject({ phase: 'poll' });
    await runner.stop();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps a job enqueued before a restart and completes it after reopening the database', async () => {
    const first = makeRunner({ canRun: () => false, delaysMs: [1000] });
    const job = first.runner.enqueue('s1', 'm1');
    first.runner.start();
    await vi.advanceTimersByTimeAsync(5000);
    await first.runner.stop();
    expect(jobs.getJob(job.id)?.status).toBe('queued');

    reopen();
    const execute = vi.fn(async (_job: JobRecord, _signal: AbortSignal) => ({ resultMessageId: 'after-restart' }));
    const second = makeRunner({ execute });
    expect(second.runner.start()).toBe(0);
    await vi.advanceTimersByTimeAsync(0);

    expect(execute).toHaveBeenCalledTimes(1);
    expect(execute.mock.calls[0]?.[0]).toMatchObject({ id: job.id, sessionId: 's1', userMessageId: 'm1' });
    expect(jobs.getJob(job.id)).toMatchObject({ status: 'done', resultMessageId: 'after-restart' });
  });

  it('requeues a job a crash left running and completes it', async () => {
    const job = jobs.createJob({ id: 'j1', sessionId: 's1', userMessageId: 'm1', nextRunAt: Date.now() });
    expect(jobs.claimJob(job.id)).toBe(true);
    reopen(); // the "crash": the claim reached the file, the completion never did

    expect(jobs.getJob(job.id)?.status).toBe('running');
    const { runner, events } = makeRunner();
    expect(runner.start()).toBe(1);
    await vi.advanceTimersByTimeAsync(0);

    expect(jobs.getJob(job.id)).toMatchObject({ status: 'done', resultMessageId: 'answer-j1', attempts: 0 });
    expect(events.map((e) => e.event)).toEqual(['job_started', 'job_completed']);
  });

  it('stop() aborts a running execution, waits for it and leaves no timers', async () => {
    let seenSignal: AbortSignal | undefined;
    const execute = vi.fn((job: JobRecord, signal: AbortSignal) => {
      seenSignal = signal;
      return hangUntilAborted(job, signal);
    });
    const { runner, events } = makeRunner({ execute });
    const job = runner.enqueue('s1', 'm1');
    runner.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(execute).toHaveBeenCalledTimes(1);
    expect(runner.runningCount).toBe(1);

    await runner.stop();

    expect(seenSignal?.aborted).toBe(true);
    expect(runner.runningCount).toBe(0);
    expect(runner.isStarted).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
    // Interrupted, not failed: no attempt counted, requeued by the next start.
    expect(jobs.getJob(job.id)).toMatchObject({ status: 'running', attempts: 0 });
    expect(events.map((e) => e.event)).toEqual(['job_started']);

    await vi.advanceTimersByTimeAsync(10_000);
    expect(execute).toHaveBeenCalledTimes(1);

    const next = makeRunner();
    expect(next.runner.start()).toBe(1);
    await vi.advanceTimersByTimeAsync(0);
    expect(jobs.getJob(job.id)?.status).toBe('done');
  });

  it('stop() with nothing running resolves, and start() after stop() resumes', async () => {
    const { runner } = makeRunner();
    runner.start();
    expect(vi.getTimerCount()).toBe(1);
    await runner.stop();
    expect(vi.getTimerCount()).toBe(0);

    const job = runner.enqueue('s1', 'm1');
    await vi.advanceTimersByTimeAsync(100);
    expect(jobs.getJob(job.id)?.status).toBe('queued');

    runner.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(jobs.getJob(job.id)?.status).toBe('done');
  });

  it('keeps a single poll timer however often it is kicked', async () => {
    const { runner } = makeRunner();
    runner.start();
    for (let i = 0; i < 10; i++) runner.kick();
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(vi.getTimerCount()).toBe(1);
  });

  it('validates its options', () => {
    const execute: JobRunnerOptions['execute'] = async () => ({ resultMessageId: 'x' });
    expect(() => new JobRunner(jobs, { execute, delaysMs: [] })).toThrow(RangeError);
    expect(() => new JobRunner(jobs, { execute, delaysMs: [-1] })).toThrow(RangeError);
    expect(() => new JobRunner(jobs, { execute, concurrency: 0 })).toThrow(RangeError);
    expect(() => new JobRunner(jobs, { execute, maxAttempts: 1.5 })).toThrow(RangeError);
    expect(() => new JobRunner(jobs, { execute, pollIntervalMs: 0 })).toThrow(RangeError);
  });
});
