import type { ServerResponse } from 'node:http';

/**
 * Writes to a client with backpressure. On a stream every write is a syscall (and, chunked, a frame),
 * so a batch of events goes out in one write: the events of one upstream chunk are adjacent views of
 * that chunk and are joined without copying.
 */

/** Writes with backpressure; resolves at once when the client is gone. */
export function write(res: ServerResponse, bytes: Buffer): Promise<void> {
  if (res.destroyed || res.writableEnded) return Promise.resolve();
  if (res.write(bytes)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** Writes `parts` as one write (none when empty). */
export function writeAll(res: ServerResponse, parts: Buffer[]): Promise<void> {
  if (parts.length === 0) return Promise.resolve();
  const joined = join(parts);
  return write(res, joined.length === 1 ? (joined[0] as Buffer) : Buffer.concat(joined));
}

/** Joins runs of views that lie end to end in the same memory into one view (the same bytes, no copy). */
export function join(parts: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  let current = parts[0] as Buffer;
  for (let i = 1; i < parts.length; i++) {
    const next = parts[i] as Buffer;
    if (next.buffer === current.buffer && next.byteOffset === current.byteOffset + current.length) {
      current = Buffer.from(current.buffer, current.byteOffset, current.length + next.length);
    } else {
      out.push(current);
      current = next;
    }
  }
  out.push(current);
  return out;
}
