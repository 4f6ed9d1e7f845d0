import { AsyncLocalStorage } from 'node:async_hooks';

/** The request being served, carried through async work so every log line can name it. */
export interface RequestContext {
  requestId: string;
}

/**
 * AsyncLocalStorage works through async hooks that, once enabled, run on every promise and async
 * operation of the whole process — measured, 3–7 % of the CPU of a `/v1/messages` call (side by side,
 * in either order), whether that call uses the context or not. So the hooks are on only while a request
 * that runs in a context is in flight (Fastify's routes: chat, sessions, operations); the direct route
 * (`/v1/messages`) runs without one and names its request in the lines it writes itself.
 */
class ScopedRequestContext {
  private readonly storage = new AsyncLocalStorage<RequestContext>();
  private inFlight = 0;

  getStore(): RequestContext | undefined {
    return this.storage.getStore();
  }

  /** Runs a request's handling in its context. Pair with exactly one `leave()` when that request is over. */
  enter<T>(context: RequestContext, fn: () => T): T {
    this.inFlight++;
    return this.storage.run(context, fn);
  }

  /** The request is over: with none left in flight the hooks go off (the next `enter` turns them on). */
  leave(): void {
    if (this.inFlight === 0) return;
    this.inFlight--;
    if (this.inFlight === 0) this.storage.disable();
  }

  /**
   * Keeps the context on for work that outlives its request's response (a chat turn that goes on
   * after its client left), so that its lines still name the request; call the returned function when
   * that work is over. Outside any request's context there is nothing to keep.
   */
  hold(): () => void {
    if (this.storage.getStore() === undefined) return () => {};
    this.inFlight++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.leave();
    };
  }

  /** Runs `fn` in a context for as long as it runs synchronously (tests, and work outside any request). */
  run<T>(context: RequestContext, fn: () => T): T {
    try {
      return this.enter(context, fn);
    } finally {
      this.leave();
    }
  }
}

export const requestContext = new ScopedRequestContext();
