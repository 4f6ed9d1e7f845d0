/** Domain errors of the chat layer; the HTTP layer maps each to a status code. */

export class SessionNotFoundError extends Error {
  constructor(readonly sessionId: string) {
    super(`Session ${sessionId} not found`);
    this.name = 'SessionNotFoundError';
  }
}

export class TurnInProgressError extends Error {
  constructor(readonly sessionId: string) {
    super(`Session ${sessionId} is already answering a message; wait for it or interrupt it first`);
    this.name = 'TurnInProgressError';
  }
}
