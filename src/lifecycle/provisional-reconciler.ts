import type { Logger } from 'pino';
import { LogEvent } from '../observability/events.js';
import type { FailoverSessionStore } from '../store/failover/failover-store.js';

/**
 * Moves sessions created in memory during a store outage into the store once it takes writes again.
 * Polls only while such sessions exist; one unref'ed timer, never overlapping, stopped on close.
 */
export class ProvisionalReconciler {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly store: FailoverSessionStore,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  /** Call after a provisional session was created. */
  wake(): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    this.timer = undefined;
    const { moved, failed } = this.store.reconcile();
    if (moved > 0 || failed > 0) {
      this.log[failed > 0 ? 'warn' : 'info']({ event: LogEvent.provisionalSessionsReconciled, moved, failed, remaining: this.store.provisionalCount() });
    }
    if (this.store.provisionalCount() > 0) this.wake();
  }
}
