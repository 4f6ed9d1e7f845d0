/**
 * Whether bytes[start, end) are exactly the characters of `ascii`. A plain loop: for the short names
 * compared on the hot path (SSE field and event names, JSON keys and literals), Buffer's `compare` or
 * `equals` cost more in the native call than in the comparison.
 */
export function bytesAre(bytes: Uint8Array, start: number, end: number, ascii: string): boolean {
  if (end - start !== ascii.length) return false;
  for (let k = 0; k < ascii.length; k++) if (bytes[start + k] !== ascii.charCodeAt(k)) return false;
  return true;
}
