/**
 * Incremental Server-Sent Events scanner for Anthropic streams, working on raw bytes.
 *
 * The gateway forwards upstream bytes verbatim and only needs to *look* at each event (its type and
 * data) to track progress (message_stop, usage, in-stream errors). So the scanner cuts the byte stream
 * into events without re-serialising anything: every returned event carries `raw`, the exact bytes of
 * the event including its terminating blank line, and concatenating the `raw` of every event returned
 * by `push()` and `end()` gives back exactly the bytes that were pushed.
 *
 * Line terminators follow the SSE spec: `\n`, `\r\n` or a lone `\r`, freely mixed; an event ends at the
 * first empty line. Boundaries are found with `Buffer.indexOf` (native), never a per-byte regex; bytes
 * are only decoded once an event is complete, so a multi-byte UTF-8 character split across chunks is
 * decoded correctly. A `raw` that lies within one chunk is a view (`subarray`) of that chunk — no copy;
 * only an event spanning chunks is assembled with one `Buffer.concat` of its pending pieces.
 */

import { bytesAre } from './ascii-bytes.js';

const LF = 0x0a;
const CR = 0x0d;

export interface ScannedEvent {
  /** The `event:` field, or null when the event has none (or an empty one: the spec's default "message"). */
  event: string | null;
  /** The `data:` lines joined with `\n` ('' when there are none). */
  readonly data: string;
  /**
   * False when the block has no `data:` line at all — a comment-only keep-alive (`: ping`) or a stray
   * blank line. Per the SSE spec such a block dispatches no event; it is still returned so that its
   * bytes can be forwarded and the `raw` of all events concatenates back to the stream.
   */
  hasData: boolean;
  /** The exact bytes of the event, including its trailing blank line. May be a view of a pushed chunk. */
  raw: Buffer;
}

export type SseScanErrorCode = 'incomplete_event' | 'event_too_large';

export class SseScanError extends Error {
  constructor(
    readonly code: SseScanErrorCode,
    message: string,
    /** The bytes of the unfinished event (for `incomplete_event`). */
    readonly raw: Buffer,
  ) {
    super(message);
    this.name = 'SseScanError';
  }
}

export interface SseScannerOptions {
  /** An event that grows beyond this many bytes without ending throws `event_too_large`. Default 16 MiB. */
  maxEventBytes?: number;
}

const DEFAULT_MAX_EVENT_BYTES = 16 * 1024 * 1024;

// Where the scanner stands relative to line terminators (plain numbers: no enum object at run time).
/** At the start of a line: the start of an event, or right after a complete line terminator. */
const LINE_START = 0;
/** Inside a non-empty line. */
const IN_LINE = 1;
/** Right after a `\r` ending a non-empty line: an `\n` here completes that `\r\n`. */
const AFTER_CR = 2;
/** Right after a `\r` ending an empty line: the event is complete, but an `\n` here still belongs to it. */
const BLANK_CR = 3;
type State = typeof LINE_START | typeof IN_LINE | typeof AFTER_CR | typeof BLANK_CR;

export class SseScanner {
  private readonly maxEventBytes: number;
  /** Earlier chunks (or their tails) holding the start of the current, unfinished event. */
  private parts: Buffer[] = [];
  private partsLength = 0;
  private state: State = LINE_START;
  /** Whether the next completed event is the first of the stream (a leading BOM is ignored there). */
  private first = true;

  constructor(options: SseScannerOptions = {}) {
    this.maxEventBytes = options.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
  }

  /** Bytes held for the current unfinished event. */
  get pendingBytes(): number {
    return this.partsLength;
  }

  /** Scans one chunk; returns the events it completed, in order (often none or several). */
  push(chunk: Buffer): SseEvent[] {
    const out: SseEvent[] = [];
    const length = chunk.length;
    if (length === 0) return out;
    /** Start of the current event inside `chunk` (0 while earlier parts are pending). */
    let eventStart = 0;
    let cursor = 0;
    let nextLf = chunk.indexOf(LF, 0);
    let nextCr = chunk.indexOf(CR, 0);

    while (cursor < length) {
      if (nextLf !== -1 && nextLf < cursor) nextLf = chunk.indexOf(LF, cursor);
      if (nextCr !== -1 && nextCr < cursor) nextCr = chunk.indexOf(CR, cursor);
      const p = nextLf === -1 ? nextCr : nextCr === -1 ? nextLf : Math.min(nextLf, nextCr);
      const contentEnd = p === -1 ? length : p;

      if (contentEnd > cursor) {
        // Ordinary bytes before the next terminator (or the chunk's end).
        if (this.state === BLANK_CR) {
          // A blank line ended by a lone `\r`: the event ended right before these bytes.
          out.push(this.complete(chunk, eventStart, cursor));
          eventStart = cursor;
        }
        this.state = IN_LINE;
        cursor = contentEnd;
        if (p === -1) break;
      }

      const isLf = chunk[p] === LF;
      cursor = p + 1;
      switch (this.state) {
        case LINE_START:
          if (isLf) {
            out.push(this.complete(chunk, eventStart, cursor));
            eventStart = cursor;
          } else {
            this.state = BLANK_CR;
          }
          break;
        case IN_LINE:
          this.state = isLf ? LINE_START : AFTER_CR;
          break;
        case AFTER_CR:
          this.state = isLf ? LINE_START : BLANK_CR;
          break;
        case BLANK_CR:
          if (isLf) {
            // `\r\n` ending the blank line.
            out.push(this.complete(chunk, eventStart, cursor));
            eventStart = cursor;
            this.state = LINE_START;
          } else {
            // The event ended at the previous `\r`; this `\r` is a blank line of its own.
            out.push(this.complete(chunk, eventStart, p));
            eventStart = p;
            this.state = BLANK_CR;
          }
          break;
      }
    }

    if (eventStart < length) {
      const tail = eventStart === 0 ? chunk : chunk.subarray(eventStart);
      this.parts.push(tail);
      this.partsLength += tail.length;
      if (this.partsLength > this.maxEventBytes) {
        const raw = this.takePending();
        throw new SseScanError('event_too_large', `SSE event exceeds ${this.maxEventBytes} bytes`, raw);
      }
    }
    return out;
  }

  /**
   * Ends the stream. Returns the last event when it was complete but not yet returned (a blank line
   * ended by a lone `\r` at the very end). Throws `SseScanError('incomplete_event')`, carrying the
   * leftover bytes, when the stream stopped inside an event — a truncated stream. Resets the scanner.
   */
  end(): SseEvent[] {
    const state = this.state;
    this.state = LINE_START;
    this.first = true;
    if (this.partsLength === 0) return [];
    if (state === BLANK_CR) return [this.complete(EMPTY, 0, 0)];
    const raw = this.takePending();
    throw new SseScanError('incomplete_event', `The SSE stream ended inside an event (${raw.length} bytes pending)`, raw);
  }

  private takePending(): Buffer {
    const raw = this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts, this.partsLength);
    this.parts = [];
    this.partsLength = 0;
    return raw;
  }

  /** Builds the event made of the pending parts followed by `chunk[start, end)`. */
  private complete(chunk: Buffer, start: number, end: number): SseEvent {
    let raw: Buffer;
    if (this.partsLength === 0) {
      raw = chunk.subarray(start, end);
    } else {
      if (end > start) this.parts.push(chunk.subarray(start, end));
      raw = this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts);
      this.parts = [];
      this.partsLength = 0;
    }
    const event = parseEvent(raw, this.first);
    this.first = false;
    return event;
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * A scanned event. Its fields are read off the bytes, and `data` is decoded only when asked for: a
 * relayed stream needs each event's type, and its data checked as JSON on the bytes, not its text.
 */
export class SseEvent implements ScannedEvent {
  private text: string | undefined;

  constructor(
    readonly event: string | null,
    readonly hasData: boolean,
    readonly raw: Buffer,
    /** Where the data lies in `raw` when it is one `data:` line; -1 when there are several (decoded at once). */
    readonly dataStart: number,
    readonly dataEnd: number,
    joined?: string,
  ) {
    this.text = joined;
  }

  get data(): string {
    if (this.text === undefined) this.text = this.dataStart < 0 ? '' : this.raw.toString('utf8', this.dataStart, this.dataEnd);
    return this.text;
  }
}

/** The event names of Anthropic's streams: these strings are shared rather than decoded each time. */
const KNOWN_NAMES = ['content_block_delta', 'message_start', 'content_block_start', 'ping', 'content_block_stop', 'message_delta', 'message_stop', 'error'];

function eventName(raw: Buffer, start: number, end: number): string {
  for (const name of KNOWN_NAMES) if (bytesAre(raw, start, end, name)) return name;
  return raw.toString('utf8', start, end);
}

const COLON = 0x3a;
const SPACE = 0x20;

/**
 * Parses the fields of one complete event (its raw bytes end with the blank line), on the bytes: the
 * line terminators, colons and spaces it looks for are ASCII, which never occur inside a multi-byte
 * UTF-8 character, so decoding field by field gives what decoding the whole event would.
 */
export function parseEvent(raw: Buffer, stripBom = false): SseEvent {
  const length = raw.length;
  let pos = stripBom && raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf ? 3 : 0;
  let event: string | null = null;
  let dataLines = 0;
  let dataStart = -1;
  let dataEnd = -1;
  let joined: string | undefined;
  // Lines end at LF unless the event has a CR anywhere (rare): then every byte is looked at.
  const lfOnly = raw.indexOf(CR, pos) === -1;
  while (pos < length) {
    let eol = pos;
    let colon = -1;
    // The field name (up to the colon) byte by byte, then the value's end found natively.
    for (; eol < length; eol++) {
      const c = raw[eol];
      if (c === LF || c === CR) break;
      if (c === COLON) {
        colon = eol;
        if (lfOnly) {
          eol = raw.indexOf(LF, eol);
          if (eol === -1) eol = length;
          break;
        }
        for (eol++; eol < length && raw[eol] !== LF && raw[eol] !== CR; eol++);
        break;
      }
    }
    if (eol === pos) break; // The blank line: end of the event.
    if (colon !== pos) {
      // Not a comment: `field: value`, `field:value` or a bare `field`.
      const nameEnd = colon === -1 ? eol : colon;
      const valueStart = colon === -1 ? eol : raw[colon + 1] === SPACE && colon + 1 < eol ? colon + 2 : colon + 1;
      if (bytesAre(raw, pos, nameEnd, 'data')) {
        dataLines++;
        if (dataLines === 1) {
          dataStart = valueStart;
          dataEnd = eol;
        } else {
          // Several data lines: joined with \n, decoded now (rare in practice).
          joined = `${joined ?? raw.toString('utf8', dataStart, dataEnd)}\n${raw.toString('utf8', valueStart, eol)}`;
          dataStart = -1;
        }
      } else if (bytesAre(raw, pos, nameEnd, 'event')) {
        event = valueStart >= eol ? null : eventName(raw, valueStart, eol);
      }
      // `id`, `retry` and unknown fields do not matter to the gateway.
    }
    pos = raw[eol] === CR && raw[eol + 1] === LF ? eol + 2 : eol + 1;
  }
  return new SseEvent(event, dataLines > 0, raw, dataStart, dataEnd, joined);
}
