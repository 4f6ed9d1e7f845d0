/** A chat turn accepted for later (queue_for_retry fallback): durable, resumed after a restart. */
export type JobStatus = 'queued' | 'running' | 'done' | 'failed';

export interface JobRecord {
  id: string;
  sessionId: string;
  /** The committed user message this job answers. */
  userMessageId: string;
  status: JobStatus;
  attempts: number;
  /** Epoch ms before which the job must not run (backoff). */
  nextRunAt: number;
  lastError: string | null;
  /** The assistant message stored when the job succeeded. */
  resultMessageId: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface NewJob {
  id: string;
  sessionId: string;
  userMessageId: string;
  nextRunAt: number;
}

export interface JobStore {
  createJob(job: NewJob): JobRecord;
  getJob(id: string): JobRecord | null;
  /** Jobs that may run now (queued, nextRunAt ≤ now), oldest first. */
  dueJobs(now: number, limit: number): JobRecord[];
  /** Atomically marks a queued job running; false if another runner took it or it is not queued. */
  claimJob(id: string): boolean;
  completeJob(id: string, resultMessageId: string): void;
  /** Back to queued with attempts+1 and a new nextRunAt, or failed when `final`. */
  rescheduleJob(id: string, error: string, nextRunAt: number, final: boolean): void;
  /** At start-up: jobs left `running` by a crash go back to `queued`. Returns how many. */
  requeueRunningJobs(): number;
  countJobs(status?: JobStatus): number;
}
