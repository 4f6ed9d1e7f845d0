/**
 * Whether an SSE event's data is valid JSON, as cheaply as possible. Nearly every event of a stream is
 * a text delta of one exact shape; for those the check walks the text's characters against JSON's
 * string grammar instead of building an object with JSON.parse (~0.5 µs and garbage per event — about
 * 15 µs of a 16-event stream). Anything else, or any doubt, goes to JSON.parse: a `true` is always right.
 */
const DELTA_HEAD = '{"type":"content_block_delta","index":';
const TEXT_HEAD = ',"delta":{"type":"text_delta","text":"';
const TAIL = '"}}';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const ZERO = 0x30;
const NINE = 0x39;

export function isJsonText(text: string): boolean {
  const fast = textDeltaIsValid(text);
  if (fast) return true;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** True only when `text` is exactly a compact text delta whose string is valid JSON; false means "not sure". */
export function textDeltaIsValid(text: string): boolean {
  if (!text.startsWith(DELTA_HEAD)) return false;
  // The index: a JSON integer (0, or no leading zero).
  let i = DELTA_HEAD.length;
  const first = text.charCodeAt(i);
  if (first < ZERO || first > NINE) return false;
  i++;
  if (first !== ZERO) {
    while (i < text.length && text.charCodeAt(i) >= ZERO && text.charCodeAt(i) <= NINE) i++;
  }
  if (!text.startsWith(TEXT_HEAD, i)) return false;
  i += TEXT_HEAD.length;
  // The string, up to its closing quote, which must be followed by exactly the tail.
  const end = text.length - TAIL.length;
  while (i < end) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) return false; // closes early: something follows that this check does not know
    if (c < 0x20) return false; // control characters must be escaped
    if (c === BACKSLASH) {
      const escaped = text.charCodeAt(i + 1);
      if (escaped === 0x75 /* u */) {
        if (!isHex(text, i + 2, 4)) return false;
        i += 6;
        continue;
      }
      // " \ / b f n r t
      if (escaped !== QUOTE && escaped !== BACKSLASH && escaped !== 0x2f && escaped !== 0x62 && escaped !== 0x66 && escaped !== 0x6e && escaped !== 0x72 && escaped !== 0x74) return false;
      i += 2;
      continue;
    }
    i++;
  }
  return i === end && text.endsWith(TAIL);
}

function isHex(text: string, from: number, count: number): boolean {
  for (let k = from; k < from + count; k++) {
    const c = text.charCodeAt(k);
    const hex = (c >= ZERO && c <= NINE) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
    if (!hex) return false;
  }
  return true;
}
