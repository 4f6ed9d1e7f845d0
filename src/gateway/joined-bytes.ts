/**
 * On a stream every write is a syscall (and, chunked, a frame), so a batch of events goes out in one
 * write: the events of one upstream chunk are adjacent views of that chunk and are joined without
 * copying.
 */

/** `parts` as one buffer: views that lie end to end are joined without copying. */
export function joinBytes(parts: Buffer[]): Buffer {
  const joined = join(parts);
  return joined.length === 1 ? (joined[0] as Buffer) : Buffer.concat(joined);
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
