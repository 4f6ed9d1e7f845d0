/** Keyset pagination of session listings over (created_at DESC, id DESC), shared by every store. */

export interface SessionKey {
  createdAt: string;
  id: string;
}

export class InvalidCursorError extends Error {
  constructor(message = 'Invalid pagination cursor: pass back the nextCursor value of a previous page unchanged') {
    super(message);
    this.name = 'InvalidCursorError';
  }
}

/** Opaque to clients: base64url of the last item's (created_at, id). */
export function encodeCursor(key: SessionKey): string {
  return Buffer.from(JSON.stringify([key.createdAt, key.id]), 'utf8').toString('base64url');
}

/** Strict decoding: Node's base64 decoder silently skips junk, so check the alphabet first. */
export function decodeCursor(cursor: string): SessionKey {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw new InvalidCursorError();
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError();
  }
  if (!Array.isArray(decoded) || decoded.length !== 2 || typeof decoded[0] !== 'string' || typeof decoded[1] !== 'string') {
    throw new InvalidCursorError();
  }
  return { createdAt: decoded[0], id: decoded[1] };
}
