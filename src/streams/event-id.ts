/**
 * SSE event ids of chat frames: `<turn_id>:<seq>`. The turn id is the id of the user message that
 * started the turn; seq counts the turn's frames from 1. A client resumes by sending the last id it
 * saw as `Last-Event-ID`.
 */
export interface EventId {
  turnId: string;
  /** The last frame the client has; 0 = none yet. */
  seq: number;
}

const EVENT_ID = /^([A-Za-z0-9_-]{1,100}):(\d{1,9})$/;
const TURN_ID = /^[A-Za-z0-9_-]{1,100}$/;

export function formatEventId(turnId: string, seq: number): string {
  return `${turnId}:${seq}`;
}

/** Null when the text is not an id this server hands out. */
export function parseEventId(text: string): EventId | null {
  const match = EVENT_ID.exec(text.trim());
  if (!match) return null;
  return { turnId: match[1]!, seq: Number(match[2]) };
}

export function isTurnId(text: string): boolean {
  return TURN_ID.test(text);
}
