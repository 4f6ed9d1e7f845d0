import { isJsonBytes, TopLevelMembers } from './upstream/json-bytes.js';

/** A Messages API call as the gateway needs it: where to route it, how to answer, what to forward. */
export interface MessagesRequest {
  model: string;
  stream: boolean;
  /** The body exactly as the client sent it, forwarded as is; absent for calls built here (chat). */
  raw: string | Buffer | undefined;
  /** The whole body as an object: for the rare call a target renames the model of. */
  body(): Record<string, unknown>;
}

/** The request a parsed body makes; undefined when it is not a Messages API body. */
export function messagesRequestOf(body: unknown, raw: string | Buffer | undefined): MessagesRequest | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const b = body as Record<string, unknown>;
  if (!(typeof b.model === 'string' && b.model.length > 0 && Array.isArray(b.messages) && typeof b.max_tokens === 'number')) return undefined;
  return { model: b.model, stream: b.stream === true, raw, body: () => b };
}

const MEMBERS = new TopLevelMembers(['model', 'messages', 'max_tokens', 'stream']);
const MODEL = 0;
const MESSAGES = 1;
const MAX_TOKENS = 2;
const STREAM = 3;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

const ESCAPE = Buffer.from('\\u00');

/**
 * Whether the body might hold a key the strict parser refuses (`__proto__`, `constructor`) anywhere,
 * written plainly or with a letter escaped (`\u0070` for `p`: escapes of U+0050–U+007F). Text escaped
 * as JSON encoders do (non-ASCII and control characters) does not count.
 */
function mayHoldRefusedKey(bytes: Buffer): boolean {
  if (bytes.includes('__proto__') || bytes.includes('constructor')) return true;
  for (let at = bytes.indexOf(ESCAPE); at !== -1; at = bytes.indexOf(ESCAPE, at + ESCAPE.length)) {
    const next = bytes[at + ESCAPE.length];
    if (next === 0x35 || next === 0x36 || next === 0x37) return true;
  }
  return false;
}

/**
 * The request read straight off the bytes, without parsing the body (the conversation, often most of
 * it, is only checked to be JSON): `null` whenever it is not plainly a valid request — invalid JSON, a
 * body that might hold a key the strict parser refuses, an escaped top-level key or model — so that
 * the parser then decides, with its own error messages.
 */
export function readMessagesRequest(bytes: Buffer): MessagesRequest | null {
  if (mayHoldRefusedKey(bytes)) return null;
  const members = MEMBERS;
  members.clear();
  if (!isJsonBytes(bytes, 0, bytes.length, members) || members.escaped) return null;
  const model = members.starts[MODEL] as number;
  const modelEnd = members.ends[MODEL] as number;
  if (model < 0 || bytes[model] !== QUOTE || modelEnd - model < 3) return null;
  for (let i = model + 1; i < modelEnd - 1; i++) if (bytes[i] === BACKSLASH) return null;
  if (bytes[members.starts[MESSAGES] as number] !== 0x5b /* [ */) return null;
  const maxTokens = bytes[members.starts[MAX_TOKENS] as number];
  if (maxTokens === undefined || !(maxTokens === 0x2d /* - */ || (maxTokens >= 0x30 && maxTokens <= 0x39))) return null;
  return {
    model: bytes.toString('utf8', model + 1, modelEnd - 1),
    stream: members.is(STREAM, bytes, 'true'),
    raw: bytes,
    // Checked above: valid JSON with nothing a strict parser would refuse.
    body: () => JSON.parse(bytes.toString('utf8')) as Record<string, unknown>,
  };
}
