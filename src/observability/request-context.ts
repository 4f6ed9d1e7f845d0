import { AsyncLocalStorage } from 'node:async_hooks';

/** The request being served, carried through async work so every log line can name it. */
export interface RequestContext {
  requestId: string;
}

export const requestContext = new AsyncLocalStorage<RequestContext>();
