import type { BreakerPermit } from './types.js';

/** How an admitted call ended, as its permit reports it. */
export type PermitOutcome = 'success' | 'failure' | 'release';

/**
 * The breaker-side entry point of permits. Keyed by a symbol rather than a named method so it stays off
 * the breaker's public surface: outcomes are reported through permits, not to the breaker directly.
 */
export const settlePermit: unique symbol = Symbol('settlePermit');

export interface PermitOwner {
  [settlePermit](generation: number, outcome: PermitOutcome, durationMs: number | undefined, error: unknown): void;
}

/**
 * One admitted call. Remembers the breaker generation it was issued in, so the breaker can ignore a
 * result that arrives after the state it belonged to has ended, and reports at most once.
 */
export class Permit implements BreakerPermit {
  private settled = false;

  constructor(
    private readonly owner: PermitOwner,
    private readonly generation: number,
  ) {}

  success(durationMs?: number): void {
    if (this.settled) return;
    this.settled = true;
    this.owner[settlePermit](this.generation, 'success', durationMs, undefined);
  }

  failure(error?: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.owner[settlePermit](this.generation, 'failure', undefined, error);
  }

  release(): void {
    if (this.settled) return;
    this.settled = true;
    this.owner[settlePermit](this.generation, 'release', undefined, undefined);
  }
}

/** Handed out while a breaker is disabled: nothing is recorded, so one shared instance serves all. */
export const UNTRACKED_PERMIT: BreakerPermit = Object.freeze({
  success(): void {},
  failure(): void {},
  release(): void {},
});
