import { randomUUID } from 'node:crypto';
import type { JobRecord, JobStore } from './types.js';

/** The four lifecycle events, plus `job_runner_error` when the store itself fails (poll or bookkeeping). */
export type JobRunnerEvent =
  | 'job_started'
  | 'job_completed'
  | 'job_retry_scheduled'
  | 'job_failed'
  | 'job_runner_error';

export interface JobExecutionResult {
  resultMessageId: string;
}

export interface JobRunnerOptions {
  /** Answers the job's user message; should honour `signal` (aborted by stop()). */
  execute: (job: JobRecord, signal: AbortSignal) => Promise<JobExecutionResult>;
  /** Gate checked before every claim, e.g. "the circuit breaker admits calls". Default: always. */
  canRun?: () => boolean;
  /** Default 1000. */
  pollIntervalMs?: number;
  /**
   * Delay before try n+1 is `delaysMs[min(n, length - 1)]`; try 1 (set by enqueue) waits `delaysMs[0]`.
   * Default 1, 2, 5, 10, 30, 60 s.
   */
  delaysMs?: readonly number[];
  /** Tries before a job is marked failed. Default 20. */
  maxAttempts?: number;
  /** Jobs executed at the same time. Default 1. */
  concurrency?: number;
  /** Epoch ms. Default Date.now. */
  clock?: () => number;
  onEvent?: (event: JobRunnerEvent, fields: Record<string, unknown>) => void;
}

export const DEFAULT_JOB_DELAYS_MS: readonly number[] = Object.freeze([1000, 2000, 5000, 10000, 30000, 60000]);
export const DEFAULT_JOB_POLL_INTERVAL_MS = 1000;
export const DEFAULT_JOB_MAX_ATTEMPTS = 20;

/** Longest last_error kept in the store. */
const MAX_ERROR_LENGTH = 2000;

interface RunningJob {
  controller: AbortController;
  done: Promise<void>;
}

function errorMessage(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH - 1)}…` : text;
}

function requirePositiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be an integer >= 1, got ${value}`);
  return value;
}

/**
 * Runs durable jobs from a JobStore: polls on one unref'ed setTimeout chain (polls are synchronous, so
 * they never overlap), claims due jobs up to `concurrency`, and completes or reschedules them with backoff.
 *
 * A job interrupted by stop() is left `running` in the store and goes back to `queued` (without
 * counting an attempt) at the next start(), exactly like a job interrupted by a crash. This assumes
 * one runner per database: start() requeues every running job.
 */
export class JobRunner {
  private readonly execute: JobRunnerOptions['execute'];
  private readonly canRun: () => boolean;
  private readonly pollIntervalMs: number;
  private readonly delaysMs: readonly number[];
  private readonly maxAttempts: number;
  private readonly concurrency: number;
  private readonly clock: () => number;
  private readonly onEvent: JobRunnerOptions['onEvent'];

  private active = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly running = new Map<string, RunningJob>();

  constructor(
    private readonly store: JobStore,
    options: JobRunnerOptions,
  ) {
    const delaysMs = options.delaysMs ?? DEFAULT_JOB_DELAYS_MS;
    if (delaysMs.length === 0) throw new RangeError('delaysMs must not be empty');
    for (const delay of delaysMs) {
      if (!(Number.isFinite(delay) && delay >= 0)) throw new RangeError(`each of delaysMs must be >= 0, got ${delay}`);
    }
    const pollIntervalMs = options.pollIntervalMs ?? DEFAULT_JOB_POLL_INTERVAL_MS;
    if (!(Number.isFinite(pollIntervalMs) && pollIntervalMs > 0)) {
      throw new RangeError(`pollIntervalMs must be > 0, got ${pollIntervalMs}`);
    }

    this.execute = options.execute;
    this.canRun = options.canRun ?? (() => true);
    this.pollIntervalMs = pollIntervalMs;
    this.delaysMs = [...delaysMs];
    this.maxAttempts = requirePositiveInteger('maxAttempts', options.maxAttempts ?? DEFAULT_JOB_MAX_ATTEMPTS);
    this.concurrency = requirePositiveInteger('concurrency', options.concurrency ?? 1);
    this.clock = options.clock ?? Date.now;
    this.onEvent = options.onEvent;
  }

  /** Number of executions in flight. */
  get runningCount(): number {
    return this.running.size;
  }

  get isStarted(): boolean {
    return this.active;
  }

  /**
   * Requeues jobs a crash (or a previous stop()) left running, then starts polling.
   * Returns how many jobs were requeued; a second call while started does nothing and returns 0.
   */
  start(): number {
    if (this.active) return 0;
    this.active = true;
    let requeued = 0;
    try {
      requeued = this.store.requeueRunningJobs();
    } catch (error) {
      this.emit('job_runner_error', { phase: 'requeue', error: errorMessage(error) });
    }
    this.schedule(0);
    return requeued;
  }

  /** Polls soon: a job was just enqueued, or upstream recovered. No-op when not started. */
  kick(): void {
    if (this.active) this.schedule(0);
  }

  /** Stops polling, aborts running executions and waits for them to settle. Leaves no timer behind. */
  async stop(): Promise<void> {
    this.active = false;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const inFlight = [...this.running.values()];
    for (const { controller } of inFlight) controller.abort();
    await Promise.allSettled(inFlight.map((entry) => entry.done));
  }

  /** Stores a new job for a committed user message, first due after `delaysMs[0]`, and kicks. */
  enqueue(sessionId: string, userMessageId: string): JobRecord {
    const job = this.store.createJob({
      id: randomUUID(),
      sessionId,
      userMessageId,
      nextRunAt: this.clock() + this.delayAfter(0),
    });
    this.kick();
    return job;
  }

  /** Delay before the next try once `attempts` tries have been made. */
  private delayAfter(attempts: number): number {
    return this.delaysMs[Math.min(attempts, this.delaysMs.length - 1)]!;
  }

  /** Replaces any pending poll, so there is at most one timer and polls never overlap. */
  private schedule(delayMs: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.poll();
      // A kick during the poll (e.g. from onEvent) already scheduled the next one.
      if (this.active && this.timer === undefined) this.schedule(this.pollIntervalMs);
    }, delayMs);
    this.timer.unref();
  }

  private poll(): void {
    if (!this.active) return;
    try {
      const free = this.concurrency - this.running.size;
      if (free <= 0 || !this.canRun()) return;
      for (const job of this.store.dueJobs(this.clock(), free)) {
        // Re-checked per job: a half-open breaker may admit only one probe.
        if (!this.active || this.running.size >= this.concurrency || !this.canRun()) return;
        if (this.running.has(job.id) || !this.store.claimJob(job.id)) continue;
        this.launch({ ...job, status: 'running' });
      }
    } catch (error) {
      this.emit('job_runner_error', { phase: 'poll', error: errorMessage(error) });
    }
  }

  private launch(job: JobRecord): void {
    const controller = new AbortController();
    const entry: RunningJob = { controller, done: Promise.resolve() };
    this.running.set(job.id, entry);
    this.emit('job_started', {
      jobId: job.id,
      sessionId: job.sessionId,
      userMessageId: job.userMessageId,
      attempt: job.attempts + 1,
    });
    entry.done = this.run(job, controller.signal).finally(() => {
      this.running.delete(job.id);
      // A slot is free: pick up the next due job without waiting a full interval.
      this.kick();
    });
  }

  /** Never rejects. */
  private async run(job: JobRecord, signal: AbortSignal): Promise<void> {
    const startedAt = this.clock();
    const attempt = job.attempts + 1;
    let result: JobExecutionResult | undefined;
    let failure: unknown;
    try {
      result = await this.execute(job, signal);
      if (typeof result?.resultMessageId !== 'string') {
        throw new TypeError('execute must resolve to { resultMessageId: string }');
      }
    } catch (error) {
      result = undefined;
      failure = error;
    }

    try {
      if (result !== undefined) {
        this.store.completeJob(job.id, result.resultMessageId);
        this.emit('job_completed', {
          jobId: job.id,
          sessionId: job.sessionId,
          resultMessageId: result.resultMessageId,
          attempt,
          durationMs: this.clock() - startedAt,
        });
        return;
      }
      // Only stop() aborts: leave the job running, the next start() requeues it without a penalty.
      if (signal.aborted) return;

      const error = errorMessage(failure);
      const final = attempt >= this.maxAttempts;
      if (final) {
        this.store.rescheduleJob(job.id, error, this.clock(), true);
        this.emit('job_failed', { jobId: job.id, sessionId: job.sessionId, attempts: attempt, error });
        return;
      }
      const delayMs = this.delayAfter(attempt);
      const nextRunAt = this.clock() + delayMs;
      this.store.rescheduleJob(job.id, error, nextRunAt, false);
      this.emit('job_retry_scheduled', {
        jobId: job.id,
        sessionId: job.sessionId,
        attempt,
        delayMs,
        nextRunAt,
        error,
      });
    } catch (error) {
      this.emit('job_runner_error', { phase: 'record', jobId: job.id, error: errorMessage(error) });
    }
  }

  /** A throwing observer must not break the runner. */
  private emit(event: JobRunnerEvent, fields: Record<string, unknown>): void {
    if (!this.onEvent) return;
    try {
      this.onEvent(event, fields);
    } catch {
      // ignored on purpose
    }
  }
}
