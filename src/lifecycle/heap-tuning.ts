import { setFlagsFromString } from 'node:v8';

/**
 * V8 heap settings for a long-running server, applied once at start-up (before any request).
 *
 * V8 "pretenures" an allocation site — allocates its objects straight in the old generation — once
 * most of what it allocated survives young collections. A gateway's objects (Node's request,
 * response and socket state, undici's requests) come from the same sites whether they serve a call
 * of a millisecond or a stream held open for a minute. A burst of long streams therefore tenures those
 * sites for good, and from then on every short call fills the old generation with garbage that points
 * into the young one: each scavenge takes ~5 ms instead of ~1, and a JSON call costs ~40 % more CPU
 * (a JSON call: ~104 µs, ~150 after 1,000 streams were held open at once, 110–117 with pretenuring
 * off).
 * So pretenuring is off. Measured without long streams, it changed nothing.
 */
const PRETENURING = 'allocation-site-pretenuring';

/** The V8 flags to set, given the process's own `node` arguments (which win: an operator's choice). */
export function heapFlags(execArgv: readonly string[]): string[] {
  const chosen = execArgv.some((arg) => arg.replace(/_/g, '-').replace(/^--(no-)?/, '') === PRETENURING);
  return chosen ? [] : [`--no-${PRETENURING}`];
}

export function tuneHeap(execArgv: readonly string[] = process.execArgv): void {
  for (const flag of heapFlags(execArgv)) setFlagsFromString(flag);
}
