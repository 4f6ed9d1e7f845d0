import type { Logger } from 'pino';
import type { ActiveTurn } from '../chat/active-turns.js';
import { TurnAbort } from '../chat/turn-abort.js';
import { settlesWithin } from '../chat/settles-within.js';
import { LogEvent } from '../observability/events.js';
import type { Readiness } from './readiness.js';

export interface ShutdownSettings {
  /** Keep serving (with Connection: close) this long after the signal, so balancers notice /readyz. */
  drainDelayMs: number;
  /** Running streams may finish on their own until this long after the drain. */
  graceMs: number;
  /** Sessions closed at once. */
  batchSize: number;
  sessionTimeoutMs: number;
  batchTimeoutMs: number;
}

export interface ShutdownDeps {
  readiness: Readiness;
  /** Turns that have not settled yet. */
  unsettledTurns(): ActiveTurn[];
  /** Stops periodic work, clears caches, closes Redis, the HTTP server and the database. */
  releaseResources(): Promise<void>;
  log: Logger;
  settings: ShutdownSettings;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/**
 * The staged shutdown: stop being ready at once, keep serving through the drain delay, then refuse new
 * turns and let running streams finish until the grace deadline, then close what is left in batches
 * (each closed turn ends with a `server_shutting_down` error frame and `done` and is stored
 * incomplete), then release every resource. Every step is logged.
 */
export async function gracefulShutdown(deps: ShutdownDeps, signal: string): Promise<void> {
  const { readiness, log, settings } = deps;
  const started = Date.now();
  log.info({ event: LogEvent.appShutdownStart, signal, active_turns: deps.unsettledTurns().length });
  readiness.markDraining();

  if (settings.drainDelayMs > 0) await sleep(settings.drainDelayMs);
  readiness.stopAcceptingTurns();
  log.info({ event: LogEvent.turnsRefused, active_turns: deps.unsettledTurns().length });

  const running = deps.unsettledTurns();
  if (running.length > 0 && settings.graceMs > 0) {
    await settlesWithin(Promise.all(running.map((t) => t.settled)), settings.graceMs);
  }

  await closeSessionsInBatches(deps);
  log.info({ event: LogEvent.stabilityCleanupStart });
  await deps.releaseResources();
  log.info({ event: LogEvent.stabilityCleanup });
  log.info({ event: LogEvent.appShutdownComplete, duration_ms: Date.now() - started });
}

async function closeSessionsInBatches(deps: ShutdownDeps): Promise<void> {
  const { log, settings } = deps;
  const remaining = deps.unsettledTurns();
  let closed = 0;
  let timedOut = 0;
  for (let i = 0; i < remaining.length; i += settings.batchSize) {
    const batch = remaining.slice(i, i + settings.batchSize);
    const batchNumber = i / settings.batchSize + 1;
    log.info({ event: LogEvent.sessionsCleanup, batch: batchNumber, sessions: batch.length });
    const closing = batch.map(async (turn) => {
      if (!turn.controller.signal.aborted) turn.controller.abort(new TurnAbort('server_shutting_down'));
      if (await settlesWithin(turn.settled, settings.sessionTimeoutMs)) {
        closed++;
      } else {
        timedOut++;
        log.warn({ event: LogEvent.sessionShutdownTimeout, session_id: turn.sessionId, timeout_ms: settings.sessionTimeoutMs });
      }
    });
    if (!(await settlesWithin(Promise.all(closing), settings.batchTimeoutMs))) {
      log.warn({ event: LogEvent.sessionShutdownTimeout, batch: batchNumber, timeout_ms: settings.batchTimeoutMs });
    }
  }
  log.info({ event: LogEvent.sessionsCleanup, closed, timed_out: timedOut, batches: Math.ceil(remaining.length / settings.batchSize), done: true });
}
