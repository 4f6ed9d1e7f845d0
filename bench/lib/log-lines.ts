/**
 * Counts the server's log lines per request (info level must log one line per request, none per
 * chunk). The server appends to its log (O_APPEND), so the file can be emptied between counts.
 */
import { createReadStream, truncateSync } from 'node:fs';

/** Lines (and how many of them are `http_request`) written since the last call; empties the file. */
export async function takeLogLines(file: string): Promise<{ lines: number; httpRequest: number; other: Record<string, number> }> {
  let lines = 0;
  let httpRequest = 0;
  const other: Record<string, number> = {};
  let rest = '';
  for await (const chunk of createReadStream(file, { encoding: 'utf8' })) {
    const text = rest + (chunk as string);
    const parts = text.split('\n');
    rest = parts.pop() ?? '';
    for (const line of parts) {
      if (line === '') continue;
      lines++;
      const event = /"event":"([^"]+)"/.exec(line)?.[1] ?? 'unknown';
      if (event === 'http_request') httpRequest++;
      else other[event] = (other[event] ?? 0) + 1;
    }
  }
  truncateSync(file, 0);
  return { lines, httpRequest, other };
}
