import type { SleepSignal } from '../providers/abortable-sleep.js';

/**
 * A cancellation signal without EventTarget. Node's AbortController costs microseconds per call to
 * create, listen to and unlisten from (EventTarget, per-listener bookkeeping), and each gateway call
 * needs two linked ones (the client's, the attempt's) on a path that should add well under a
 * millisecond. This is a flag, a reason and a listener list.
 *
 * It has the shape of an AbortSignal that undici needs for a request signal (`aborted`, `reason`,
 * `addEventListener` / `removeEventListener` of `abort`), and an AbortSignal is a `CancelSignal` too,
 * so callers with a real one (chat sessions) pass it as is.
 */
export type CancelSignal = SleepSignal;

export class Cancellation implements CancelSignal {
  aborted = false;
  reason: unknown = undefined;
  private listeners: (() => void)[] | null = null;

  /** Listeners run once, on the first `abort()`; none is added once aborted (as with AbortSignal). */
  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.aborted) return;
    (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const listeners = this.listeners;
    if (!listeners) return;
    const index = listeners.indexOf(listener);
    if (index !== -1) listeners.splice(index, 1);
  }

  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason ?? new DOMException('This operation was aborted', 'AbortError');
    const listeners = this.listeners;
    this.listeners = null;
    if (listeners) for (const listener of listeners) listener();
  }
}
