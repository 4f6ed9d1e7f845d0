export type ReadinessState = 'starting' | 'ready' | 'draining';

/** Whether the process should receive new traffic; /readyz reports it, shutdown flips it. */
export class Readiness {
  private current: ReadinessState = 'starting';
  readonly startedAt = Date.now();

  get state(): ReadinessState {
    return this.current;
  }

  markReady(): void {
    if (this.current === 'starting') this.current = 'ready';
  }

  markDraining(): void {
    this.current = 'draining';
  }

  uptimeSeconds(): number {
    return (Date.now() - this.startedAt) / 1000;
  }
}
