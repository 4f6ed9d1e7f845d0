export type ReadinessState = 'starting' | 'ready' | 'draining';

/** Whether the process should receive new traffic; /readyz reports it, shutdown flips it. */
export class Readiness {
  private current: ReadinessState = 'starting';
  private turnsAccepted = true;
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

  get draining(): boolean {
    return this.current === 'draining';
  }

  /** After the drain delay: new chat turns get 503 while running ones finish. */
  stopAcceptingTurns(): void {
    this.turnsAccepted = false;
  }

  get acceptingTurns(): boolean {
    return this.turnsAccepted;
  }

  uptimeSeconds(): number {
    return (Date.now() - this.startedAt) / 1000;
  }
}
