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
  let i = 0;
  while (i < parts.length) {
    const first = parts[i] as Buffer;
    let end = first.byteOffset + first.length;
    let j = i + 1;
    for (; j < parts.length; j++) {
      const next = parts[j] as Buffer;
      if (next.buffer !== first.buffer || next.byteOffset !== end) break;
      end += next.length;
    }
    // One new view per run (not per part): a stream's chunk usually makes a single run.
    out.push(j === i + 1 ? first : Buffer.from(first.buffer, first.byteOffset, end - first.byteOffset));
    i = j;
  }
  return out;
}
