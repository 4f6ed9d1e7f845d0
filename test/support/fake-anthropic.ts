/**
 * A real HTTP fake of Anthropic's Messages API for integration tests.
 *
 * It listens on 127.0.0.1 (random port), speaks the same JSON and SSE wire format as
 * api.anthropic.com, records every request, and can be scripted to fail in the ways the
 * real API (or the network in front of it) fails: error statuses, resets, hangs, slow first
 * tokens, cut / stalled / malformed / unterminated streams, in-stream error events, refusals and
 * prefill rejections. Faults come from a global queue / default, or per model via
 * `setModelBehavior`, so one fake can play a failing primary and a healthy fallback at once.
 */
import http from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes } from 'node:crypto';

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

/** A scripted failure. Faults are consumed only by `POST /v1/messages`. */
export type Fault =
  | {
      kind: 'status';
      status: number;
      retryAfterSeconds?: number;
      retryAfterMs?: number;
      /** Defaults from the status (429 → rate_limit_error, 529 → overloaded_error, ...). */
      errorType?: string;
      message?: string;
      /** Sends `x-should-retry: true|false`, which the official SDK obeys. */
      shouldRetry?: boolean;
    }
  | { kind: 'reset_before_headers' }
  | { kind: 'no_response' }
  | { kind: 'slow_first_token'; delayMs: number }
  | { kind: 'cut_mid_stream'; afterChunks: number }
  | { kind: 'stall_mid_stream'; afterChunks: number }
  | { kind: 'malformed_event'; afterChunks: number }
  | { kind: 'error_event'; afterChunks: number; errorType?: string; message?: string }
  /**
   * Streaming: sends the first N text deltas (all of them when N exceeds the reply), then ends the
   * response cleanly: no content_block_stop, message_delta or message_stop. Non-streaming: a 200
   * message with the text cut to N chunks and `stop_reason: null` (which the real API never sends).
   */
  | { kind: 'no_message_stop'; afterChunks: number }
  /**
   * Only when the last message has role `assistant` (a prefill): 400 invalid_request_error saying the
   * model does not support prefill. Otherwise the request is served normally (the fault is still consumed
   * and recorded). Streaming and non-streaming alike.
   */
  | { kind: 'prefill_rejected'; message?: string }
  /**
   * Anthropic's form of a refused answer: a normal 200 (stream or JSON) whose stop_reason is "refusal",
   * after `afterChunks` text chunks (default 0: empty text). For the 400 form ("Output blocked by content
   * filtering policy") use a `status` fault, e.g. `OUTPUT_BLOCKED_FAULT`.
   */
  | { kind: 'refusal'; afterChunks?: number };

export type FaultKind = Fault['kind'];

/** The 400 form of a content-filter refusal, as a `status` fault. */
export const OUTPUT_BLOCKED_FAULT: Fault = Object.freeze({
  kind: 'status',
  status: 400,
  errorType: 'invalid_request_error',
  message: 'Output blocked by content filtering policy',
});

/** The message of a `prefill_rejected` fault unless it sets its own. */
export const PREFILL_REJECTED_MESSAGE =
  'This model does not support assistant message prefill. The conversation must end with a user message.';

/**
 * Scripted behaviour for requests whose body `model` equals one model name (see `setModelBehavior`).
 * It replaces the global fault queue / default fault for those requests only.
 */
export interface ModelBehavior {
  /** Consumed in order, one per `POST /v1/messages` for this model (regardless of `untilMs`). */
  faults?: Fault[];
  /** What applies once `faults` is exhausted. Default 'ok'. */
  then?: Fault | 'ok';
  /** Overrides the global reply for this model. */
  reply?: string | ReplyFn;
  /** Overrides the global delay between streamed deltas for this model. */
  chunkDelayMs?: number;
  /** Overrides the global chunking for this model (replacing any chunkSize). */
  chunkCount?: number;
  /**
   * `then` applies only to requests arriving less than this many ms after the behaviour was set;
   * later ones are served 'ok' (e.g. "503 for 60 s, then recovers").
   */
  untilMs?: number;
}

export interface RecordedRequest {
  /** Date.now() when the request arrived. */
  at: number;
  method: string;
  /** Path without the query string, e.g. `/v1/messages`. */
  path: string;
  model?: string;
  /** Parsed JSON, or the raw string when it is not JSON, or undefined when empty. */
  body: unknown;
  /** The body's text exactly as received. */
  rawBody?: string;
  /** Lower-cased header names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  authVia: 'x-api-key' | 'bearer' | null;
  /** The fault this request consumed (a prefill_rejected fault may not have fired; see its doc). */
  fault?: FaultKind;
  /** The client went away before the fake finished its response. */
  clientClosed: boolean;
  /** The fake finished writing its response. */
  completed: boolean;
}

export interface TextBlockParam {
  type: string;
  text?: string;
  [key: string]: unknown;
}

export interface MessageParam {
  role: 'user' | 'assistant';
  content: string | TextBlockParam[];
}

/** A validated `POST /v1/messages` body (unknown extra fields are kept). */
export interface MessagesRequestBody {
  model: string;
  messages: MessageParam[];
  max_tokens: number;
  system?: string | TextBlockParam[];
  temperature?: number;
  stream?: boolean;
  [key: string]: unknown;
}

export type ReplyFn = (body: MessagesRequestBody) => string;

export interface ToolUseSpec {
  name: string;
  input: Record<string, unknown>;
  /** Defaults to a fresh `toolu_...` id per response. */
  id?: string;
  /** Where the tool_use block goes relative to the text block. Default 'after'. */
  position?: 'before' | 'after';
}

export interface ChunkingOptions {
  /** Split the reply into at most this many chunks (grouping whole words). */
  chunkCount?: number;
  /** Split the reply into chunks of this many characters; wins over chunkCount. */
  chunkSize?: number;
}

export interface ModelEntry {
  id: string;
  display_name: string;
  created_at: string;
}

export interface FakeAnthropicOptions extends ChunkingOptions {
  /** Fixed reply text or a function of the request; default `Echo: <last user text>`. */
  reply?: string | ReplyFn;
  /** Delay between streamed deltas, in ms. Default 0. */
  chunkDelayMs?: number;
  toolUse?: ToolUseSpec | null;
  /** Served by `GET /v1/models`. */
  models?: ModelEntry[];
  /** Reject requests without an `anthropic-version` header, like the real API. Default false. */
  requireAnthropicVersion?: boolean;
}

export interface FakeAnthropic {
  /** `http://127.0.0.1:PORT`, no trailing slash: pass it as the SDK's `baseURL`. */
  readonly url: string;
  /** Every request, in arrival order; entries are updated in place as responses progress. */
  readonly requests: RecordedRequest[];
  /** Faults still queued, oldest first. */
  readonly pendingFaults: readonly Fault[];
  setReply(reply: string | ReplyFn | null): void;
  setToolUse(toolUse: ToolUseSpec | null): void;
  setChunkDelayMs(ms: number): void;
  setChunking(chunking: ChunkingOptions): void;
  /** Queue faults; each `POST /v1/messages` takes the oldest one. */
  enqueueFault(...faults: Fault[]): void;
  /** A fault for every `POST /v1/messages` while the queue is empty; null clears it. */
  setDefaultFault(fault: Fault | null): void;
  /**
   * Scripts requests whose body `model` equals `model`: they take faults from `behavior` instead of the
   * global queue / default fault (which other models keep using). Replaces any earlier behaviour for the
   * model and restarts its `untilMs` clock; null removes it.
   */
  setModelBehavior(model: string, behavior: ModelBehavior | null): void;
  /** The `POST /v1/messages` requests whose body `model` was `model`, in arrival order (a snapshot). */
  requestsFor(model: string): RecordedRequest[];
  /** Clears the request log, all faults and model behaviours, and restores the start options (reply, tool use, chunking, delay). */
  reset(): void;
  /** Resolves once `predicate(fake)` is true; rejects after timeoutMs. A throwing predicate counts as false. */
  waitFor(predicate: (fake: FakeAnthropic) => boolean, timeoutMs?: number): Promise<void>;
  /** Stops the server, destroying open sockets (stalled and held requests included). Idempotent. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------
// Pure helpers (exported so tests can compute expected values)
// ---------------------------------------------------------------------------

export const DEFAULT_MODELS: readonly ModelEntry[] = [
  { id: 'claude-opus-4-1-20250805', display_name: 'Claude Opus 4.1', created_at: '2025-08-05T00:00:00Z' },
  { id: 'claude-sonnet-4-20250514', display_name: 'Claude Sonnet 4', created_at: '2025-05-14T00:00:00Z' },
  { id: 'claude-3-5-haiku-20241022', display_name: 'Claude Haiku 3.5', created_at: '2024-10-22T00:00:00Z' },
];

/** Text of a string or block-array content (text blocks only). */
export function contentText(content: string | TextBlockParam[] | undefined): string {
  if (content === undefined) return '';
  if (typeof content === 'string') return content;
  return content
    .filter((block) => block.type === 'text' && typeof block.text === 'string')
    .map((block) => block.text)
    .join('');
}

/** The default reply: `Echo: ` + the text of the last user message. */
export function echoReply(body: Pick<MessagesRequestBody, 'messages'>): string {
  const lastUser = [...body.messages].reverse().find((m) => m.role === 'user');
  return `Echo: ${contentText(lastUser?.content)}`;
}

/** Deterministic stand-in for a tokenizer: ceil(characters / 4) over system and messages, at least 1. */
export function countInputTokens(body: Pick<MessagesRequestBody, 'messages' | 'system'>): number {
  let chars = body.system === undefined ? 0 : contentLength(body.system);
  for (const message of body.messages) chars += contentLength(message.content);
  return Math.max(1, Math.ceil(chars / 4));
}

function contentLength(content: string | TextBlockParam[]): number {
  if (typeof content === 'string') return content.length;
  // Non-text blocks (images, tool results) still cost something, deterministically.
  return content.reduce(
    (sum, block) => sum + (typeof block.text === 'string' ? block.text.length : JSON.stringify(block).length),
    0,
  );
}

/** How the fake splits a reply into text deltas; joining the chunks gives the reply back. */
export function splitReply(text: string, chunking: ChunkingOptions = {}): string[] {
  if (text === '') return [];
  if (chunking.chunkSize !== undefined && chunking.chunkSize > 0) {
    return sliceEvery(Array.from(text), chunking.chunkSize).map((chars) => chars.join(''));
  }
  const words = text.match(/\s*\S+\s*/g) ?? [text];
  if (chunking.chunkCount === undefined || chunking.chunkCount <= 0 || chunking.chunkCount >= words.length) {
    return words;
  }
  const perChunk = Math.ceil(words.length / chunking.chunkCount);
  return sliceEvery(words, perChunk).map((group) => group.join(''));
}

function sliceEvery<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

// ---------------------------------------------------------------------------
// Wire format
// ---------------------------------------------------------------------------

const ERROR_TYPE_BY_STATUS: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  502: 'api_error',
  503: 'api_error',
  529: 'overloaded_error',
};

const DEFAULT_MESSAGE_BY_TYPE: Record<string, string> = {
  invalid_request_error: 'Invalid request',
  authentication_error: 'invalid x-api-key',
  permission_error: 'Your API key does not have permission to use the specified resource.',
  not_found_error: 'Not found',
  request_too_large: 'Request exceeds the maximum allowed number of bytes.',
  rate_limit_error: 'Number of requests has exceeded your rate limit.',
  api_error: 'Internal server error',
  overloaded_error: 'Overloaded',
};

/** Used when a stream-only error_event fault hits a non-streaming request. */
const STATUS_BY_ERROR_TYPE: Record<string, number> = {
  invalid_request_error: 400,
  authentication_error: 401,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  overloaded_error: 529,
};

export function errorTypeForStatus(status: number): string {
  return ERROR_TYPE_BY_STATUS[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
}

function errorPayload(errorType: string, message: string | undefined, requestId: string): object {
  return {
    type: 'error',
    error: { type: errorType, message: message ?? DEFAULT_MESSAGE_BY_TYPE[errorType] ?? errorType },
    request_id: requestId,
  };
}

function sseFrame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

const MALFORMED_FRAME = 'event: content_block_delta\ndata: {not json\n\n';

function newId(prefix: string): string {
  return `${prefix}${randomBytes(12).toString('hex')}`;
}

// ---------------------------------------------------------------------------
// Reply planning: what one response contains, shared by JSON and SSE
// ---------------------------------------------------------------------------

interface ReplyPlan {
  id: string;
  model: string;
  text: string;
  textChunks: string[];
  tool: { id: string; name: string; input: Record<string, unknown>; jsonPieces: string[] } | null;
  toolFirst: boolean;
  /** null only for the non-streaming form of `no_message_stop`. */
  stopReason: 'end_turn' | 'tool_use' | 'max_tokens' | 'refusal' | null;
  inputTokens: number;
  outputTokens: number;
}

interface ReplySettings {
  reply: string | ReplyFn | null;
  toolUse: ToolUseSpec | null;
  chunking: ChunkingOptions;
  chunkDelayMs: number;
}

function planReply(body: MessagesRequestBody, settings: ReplySettings): ReplyPlan {
  const reply = settings.reply;
  const fullText = reply === null ? echoReply(body) : typeof reply === 'string' ? reply : reply(body);
  const allChunks = splitReply(fullText, settings.chunking);
  // One output token per chunk keeps usage deterministic, so max_tokens can truncate like the real API.
  const truncated = allChunks.length > body.max_tokens;
  const textChunks = truncated ? allChunks.slice(0, body.max_tokens) : allChunks;
  const spec = truncated ? null : settings.toolUse;
  const tool = spec
    ? {
        id: spec.id ?? newId('toolu_'),
        name: spec.name,
        input: spec.input,
        jsonPieces: splitJson(JSON.stringify(spec.input)),
      }
    : null;
  return {
    id: newId('msg_'),
    model: body.model,
    text: textChunks.join(''),
    textChunks,
    tool,
    toolFirst: spec?.position === 'before',
    stopReason: truncated ? 'max_tokens' : tool ? 'tool_use' : 'end_turn',
    inputTokens: countInputTokens(body),
    outputTokens: Math.max(1, textChunks.length + (tool?.jsonPieces.length ?? 0)),
  };
}

/** The first `chunks` text chunks only, no tool call. */
function cutPlan(plan: ReplyPlan, chunks: number, stopReason: ReplyPlan['stopReason']): ReplyPlan {
  const textChunks = plan.textChunks.slice(0, Math.max(0, chunks));
  return {
    ...plan,
    textChunks,
    text: textChunks.join(''),
    tool: null,
    toolFirst: false,
    stopReason,
    outputTokens: Math.max(1, textChunks.length),
  };
}

/** A few partial_json pieces, like the real API sends. */
function splitJson(json: string): string[] {
  const size = Math.max(1, Math.ceil(json.length / 3));
  return sliceEvery(Array.from(json), size).map((chars) => chars.join(''));
}

/** A text block is sent unless the reply is empty and a tool call stands alone. */
function hasTextBlock(plan: ReplyPlan): boolean {
  return plan.text !== '' || plan.tool === null;
}

function messageJson(plan: ReplyPlan): object {
  const text = hasTextBlock(plan) ? [{ type: 'text', text: plan.text }] : [];
  const tool = plan.tool ? [{ type: 'tool_use', id: plan.tool.id, name: plan.tool.name, input: plan.tool.input }] : [];
  return {
    id: plan.id,
    type: 'message',
    role: 'assistant',
    model: plan.model,
    content: plan.toolFirst ? [...tool, ...text] : [...text, ...tool],
    stop_reason: plan.stopReason,
    stop_sequence: null,
    usage: { input_tokens: plan.inputTokens, output_tokens: plan.outputTokens },
  };
}

/** One SSE frame plus what it means for fault timing and pacing. */
interface StreamStep {
  frame: string;
  role: 'meta' | 'text_delta' | 'tool_delta' | 'text_stop' | 'message_delta';
}

function streamSteps(plan: ReplyPlan): StreamStep[] {
  const blocks: Array<(index: number) => StreamStep[]> = [];
  if (hasTextBlock(plan)) blocks.push((index) => textBlockSteps(plan, index));
  if (plan.tool) {
    const tool = plan.tool;
    const toolBlock = (index: number): StreamStep[] => toolBlockSteps(tool, index);
    if (plan.toolFirst) blocks.unshift(toolBlock);
    else blocks.push(toolBlock);
  }
  const meta = (event: string, data: unknown): StreamStep => ({ frame: sseFrame(event, data), role: 'meta' });
  const start = {
    type: 'message_start',
    message: {
      ...messageJson(plan),
      content: [],
      stop_reason: null,
      usage: { input_tokens: plan.inputTokens, output_tokens: 1 },
    },
  };
  const steps: StreamStep[] = [meta('message_start', start)];
  blocks.forEach((block, index) => {
    const blockSteps = block(index);
    // The real API sends its first ping right after the first content_block_start.
    if (index === 0) blockSteps.splice(1, 0, meta('ping', { type: 'ping' }));
    steps.push(...blockSteps);
  });
  steps.push({
    frame: sseFrame('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: plan.stopReason, stop_sequence: null },
      usage: { output_tokens: plan.outputTokens },
    }),
    role: 'message_delta',
  });
  steps.push(meta('message_stop', { type: 'message_stop' }));
  return steps;
}

function textBlockSteps(plan: ReplyPlan, index: number): StreamStep[] {
  return [
    {
      frame: sseFrame('content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } }),
      role: 'meta',
    },
    ...plan.textChunks.map((text): StreamStep => ({
      frame: sseFrame('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text } }),
      role: 'text_delta',
    })),
    { frame: sseFrame('content_block_stop', { type: 'content_block_stop', index }), role: 'text_stop' },
  ];
}

function toolBlockSteps(tool: NonNullable<ReplyPlan['tool']>, index: number): StreamStep[] {
  const contentBlock = { type: 'tool_use', id: tool.id, name: tool.name, input: {} };
  return [
    { frame: sseFrame('content_block_start', { type: 'content_block_start', index, content_block: contentBlock }), role: 'meta' },
    ...tool.jsonPieces.map((partial_json): StreamStep => ({
      frame: sseFrame('content_block_delta', {
        type: 'content_block_delta',
        index,
        delta: { type: 'input_json_delta', partial_json },
      }),
      role: 'tool_delta',
    })),
    { frame: sseFrame('content_block_stop', { type: 'content_block_stop', index }), role: 'meta' },
  ];
}

// ---------------------------------------------------------------------------
// Request validation
// ---------------------------------------------------------------------------

type Validation<T> = { ok: true; value: T } | { ok: false; message: string };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isContent(value: unknown): value is string | TextBlockParam[] {
  return typeof value === 'string' || (Array.isArray(value) && value.every((b) => isRecord(b) && typeof b.type === 'string'));
}

function validateMessages(value: unknown): string | null {
  if (!Array.isArray(value)) return 'messages: Field required';
  if (value.length === 0) return 'messages: at least one message is required';
  for (const [i, message] of value.entries()) {
    if (!isRecord(message) || (message.role !== 'user' && message.role !== 'assistant')) {
      return `messages.${i}.role: Input should be 'user' or 'assistant'`;
    }
    if (!isContent(message.content)) return `messages.${i}.content: Field required`;
  }
  return null;
}

function validateMessagesBody(body: unknown, requireMaxTokens: boolean): Validation<MessagesRequestBody> {
  if (!isRecord(body)) return { ok: false, message: 'The request body is not valid JSON.' };
  if (typeof body.model !== 'string' || body.model === '') return { ok: false, message: 'model: Field required' };
  const messagesError = validateMessages(body.messages);
  if (messagesError) return { ok: false, message: messagesError };
  if (requireMaxTokens && (typeof body.max_tokens !== 'number' || !Number.isInteger(body.max_tokens) || body.max_tokens < 1)) {
    return { ok: false, message: 'max_tokens: Field required' };
  }
  if (body.system !== undefined && !isContent(body.system)) return { ok: false, message: 'system: Input should be a valid string' };
  const t = body.temperature;
  if (t !== undefined && (typeof t !== 'number' || t < 0 || t > 1)) {
    return { ok: false, message: 'temperature: Input should be less than or equal to 1' };
  }
  return { ok: true, value: body as MessagesRequestBody };
}

// ---------------------------------------------------------------------------
// One request/response pair
// ---------------------------------------------------------------------------

const noop = (): void => {};

/** Wraps a response so writes never throw and waits end early when the connection goes. */
class Exchange {
  readonly requestId = newId('req_');
  private killedByFake = false;
  private readonly wakers = new Set<() => void>();
  /** Settles once everything written so far has reached the socket (or failed). */
  private lastWrite: Promise<void> = Promise.resolve();

  constructor(
    readonly res: ServerResponse,
    readonly record: RecordedRequest,
    private readonly fakeIsClosing: () => boolean,
  ) {
    res.on('error', noop);
    res.on('finish', () => {
      record.completed = true;
    });
    res.on('close', () => {
      if (!res.writableFinished && !this.killedByFake && !fakeIsClosing()) record.clientClosed = true;
      this.wakeAll();
    });
  }

  get open(): boolean {
    return !this.res.destroyed && !this.res.writableEnded && !this.fakeIsClosing();
  }

  /** Resolves true after ms, or false as soon as the exchange can no longer be written to. */
  sleep(ms: number): Promise<boolean> {
    if (!this.open) return Promise.resolve(false);
    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.wakers.delete(finish);
        resolve(this.open);
      };
      const timer = setTimeout(finish, ms);
      this.wakers.add(finish);
    });
  }

  wakeAll(): void {
    for (const wake of [...this.wakers]) wake();
  }

  sendJson(status: number, payload: unknown, headers: Record<string, string> = {}): void {
    this.sendJsonText(status, JSON.stringify(payload), headers);
  }

  sendJsonText(status: number, body: string, headers: Record<string, string> = {}): void {
    if (!this.open) return;
    this.res.writeHead(status, this.jsonHeaders(body, headers));
    this.res.end(body);
  }

  /** Headers promising the whole body, then only half of it: the client sees a truncated response. */
  sendJsonPrefix(body: string): void {
    if (!this.open) return;
    this.res.writeHead(200, this.jsonHeaders(body, {}));
    this.write(body.slice(0, Math.floor(body.length / 2)));
  }

  private jsonHeaders(body: string, extra: Record<string, string>): Record<string, string | number> {
    return {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'request-id': this.requestId,
      ...extra,
    };
  }

  sendError(status: number, errorType: string, message?: string, headers: Record<string, string> = {}): void {
    this.sendJson(status, errorPayload(errorType, message, this.requestId), headers);
  }

  startSse(): void {
    if (!this.open) return;
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'request-id': this.requestId,
    });
    this.res.flushHeaders();
  }

  /** Returns false when the client is gone, so stream loops can stop. */
  write(chunk: string): boolean {
    if (!this.open) return false;
    this.lastWrite = new Promise((resolve) => this.res.write(chunk, () => resolve()));
    return true;
  }

  end(chunk?: string): void {
    if (!this.open) return;
    if (chunk === undefined) this.res.end();
    else this.res.end(chunk);
  }

  /** Drops the connection on purpose (not counted as the client closing), after what was written is flushed. */
  kill(): void {
    this.killedByFake = true;
    const destroy = (): void => {
      this.res.socket?.destroy();
      this.res.destroy();
    };
    // Node corks response writes until the next tick; destroying now would discard them.
    void this.lastWrite.then(destroy);
  }
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

class FakeAnthropicServer implements FakeAnthropic {
  readonly requests: RecordedRequest[] = [];
  url = '';
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly exchanges = new Set<Exchange>();
  private readonly faultQueue: Fault[] = [];
  private defaultFault: Fault | null = null;
  private readonly modelBehaviors = new Map<string, ModelState>();
  private settings: ReplySettings;
  private closing = false;
  private closePromise: Promise<void> | null = null;

  constructor(private readonly options: FakeAnthropicOptions) {
    this.settings = initialSettings(options);
    this.server = http.createServer();
    this.server.on('connection', (socket: Socket) => this.trackSocket(socket));
    this.server.on('clientError', (_err: Error, socket: Socket) => socket.destroy());
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch(() => {
        // Last resort: a bug in the fake must surface as a 500, never as an unhandled rejection.
        try {
          if (!res.headersSent && !res.destroyed) {
            res.writeHead(500, { 'content-type': 'application/json' });
            res.end(JSON.stringify(errorPayload('api_error', 'fake-anthropic internal error', 'req_fake')));
          } else {
            res.destroy();
          }
        } catch {
          // The socket is already gone; nothing left to tell the client.
        }
      });
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.server.on('error', noop);
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
  }

  get pendingFaults(): readonly Fault[] {
    return [...this.faultQueue];
  }

  setReply(reply: string | ReplyFn | null): void {
    this.settings.reply = reply;
  }

  setToolUse(toolUse: ToolUseSpec | null): void {
    this.settings.toolUse = toolUse;
  }

  setChunkDelayMs(ms: number): void {
    this.settings.chunkDelayMs = Math.max(0, ms);
  }

  setChunking(chunking: ChunkingOptions): void {
    this.settings.chunking = { ...chunking };
  }

  enqueueFault(...faults: Fault[]): void {
    this.faultQueue.push(...faults);
  }

  setDefaultFault(fault: Fault | null): void {
    this.defaultFault = fault;
  }

  setModelBehavior(model: string, behavior: ModelBehavior | null): void {
    if (behavior === null) {
      this.modelBehaviors.delete(model);
      return;
    }
    this.modelBehaviors.set(model, {
      behavior: { ...behavior },
      faults: [...(behavior.faults ?? [])],
      setAt: Date.now(),
    });
  }

  requestsFor(model: string): RecordedRequest[] {
    return this.requests.filter((r) => r.method === 'POST' && r.path === '/v1/messages' && r.model === model);
  }

  reset(): void {
    // Cleared in place so callers holding `fake.requests` keep a live view.
    this.requests.length = 0;
    this.faultQueue.length = 0;
    this.defaultFault = null;
    this.modelBehaviors.clear();
    this.settings = initialSettings(this.options);
  }

  async waitFor(predicate: (fake: FakeAnthropic) => boolean, timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    for (;;) {
      try {
        if (predicate(this)) return;
      } catch (error) {
        lastError = error;
      }
      if (Date.now() >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const detail = lastError instanceof Error ? ` (last predicate error: ${lastError.message})` : '';
    throw new Error(`fake-anthropic waitFor timed out after ${timeoutMs} ms${detail}; requests: ${this.describeRequests()}`);
  }

  close(): Promise<void> {
    this.closePromise ??= this.shutdown();
    return this.closePromise;
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    for (const exchange of this.exchanges) exchange.wakeAll();
    for (const socket of this.sockets) socket.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private describeRequests(): string {
    if (this.requests.length === 0) return '(none)';
    return this.requests
      .map((r) => `${r.method} ${r.path}${r.fault ? ` [${r.fault}]` : ''} clientClosed=${r.clientClosed} completed=${r.completed}`)
      .join('; ');
  }

  private trackSocket(socket: Socket): void {
    socket.on('error', noop);
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
  }

  private nextFault(record: RecordedRequest): Fault | null {
    const state = record.model === undefined ? undefined : this.modelBehaviors.get(record.model);
    if (!state) return this.faultQueue.shift() ?? this.defaultFault;
    const queued = state.faults.shift();
    if (queued) return queued;
    const { then = 'ok', untilMs } = state.behavior;
    if (then === 'ok') return null;
    if (untilMs !== undefined && record.at - state.setAt >= untilMs) return null;
    return then;
  }

  /** The reply settings for one request: the global ones, overridden by its model's behaviour. */
  private settingsFor(model: string): ReplySettings {
    const behavior = this.modelBehaviors.get(model)?.behavior;
    if (!behavior) return this.settings;
    return {
      reply: behavior.reply ?? this.settings.reply,
      toolUse: this.settings.toolUse,
      chunking: behavior.chunkCount === undefined ? this.settings.chunking : { chunkCount: behavior.chunkCount },
      chunkDelayMs: behavior.chunkDelayMs === undefined ? this.settings.chunkDelayMs : Math.max(0, behavior.chunkDelayMs),
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    req.on('error', noop);
    const record = newRecord(req);
    this.requests.push(record);
    const exchange = new Exchange(res, record, () => this.closing);
    this.exchanges.add(exchange);
    res.on('close', () => this.exchanges.delete(exchange));

    const raw = await readBody(req);
    if (raw === null) return; // The client went away while sending.
    record.rawBody = raw;
    record.body = parseBody(raw);
    if (isRecord(record.body) && typeof record.body.model === 'string') record.model = record.body.model;

    record.authVia = authVia(req);
    if (record.authVia === null) {
      exchange.sendError(401, 'authentication_error', 'x-api-key header is required');
      return;
    }
    if (this.options.requireAnthropicVersion && !req.headers['anthropic-version']) {
      exchange.sendError(400, 'invalid_request_error', 'anthropic-version: header is required');
      return;
    }
    await this.route(req.method ?? 'GET', record, exchange);
  }

  private async route(method: string, record: RecordedRequest, exchange: Exchange): Promise<void> {
    const { path } = record;
    if (method === 'POST' && path === '/v1/messages') return this.handleMessages(record, exchange);
    if (method === 'POST' && path === '/v1/messages/count_tokens') return this.handleCountTokens(record, exchange);
    if (method === 'GET' && path === '/v1/models') return this.handleListModels(exchange);
    if (method === 'GET' && path.startsWith('/v1/models/')) return this.handleGetModel(path, exchange);
    exchange.sendError(404, 'not_found_error', `Not found: ${method} ${path}`);
  }

  private async handleMessages(record: RecordedRequest, exchange: Exchange): Promise<void> {
    // Faults come before validation: a real 429/529 or a dead connection does not look at the body.
    const fault = this.nextFault(record);
    if (fault) record.fault = fault.kind;
    if (fault && applyConnectionFault(fault, exchange)) return;

    const validation = validateMessagesBody(record.body, true);
    if (!validation.ok) {
      exchange.sendError(400, 'invalid_request_error', validation.message);
      return;
    }
    const body = validation.value;
    if (fault?.kind === 'prefill_rejected' && body.messages.at(-1)?.role === 'assistant') {
      exchange.sendError(400, 'invalid_request_error', fault.message ?? PREFILL_REJECTED_MESSAGE);
      return;
    }
    const settings = this.settingsFor(body.model);
    let plan = planReply(body, settings);
    if (fault?.kind === 'refusal') plan = cutPlan(plan, fault.afterChunks ?? 0, 'refusal');
    const streamFault = fault && isStreamFault(fault) ? fault : null;
    if (body.stream === true) await writeStream(exchange, plan, streamFault, settings.chunkDelayMs);
    else await writeMessageJson(exchange, plan, streamFault);
  }

  private handleCountTokens(record: RecordedRequest, exchange: Exchange): void {
    const validation = validateMessagesBody(record.body, false);
    if (!validation.ok) exchange.sendError(400, 'invalid_request_error', validation.message);
    else exchange.sendJson(200, { input_tokens: countInputTokens(validation.value) });
  }

  private handleListModels(exchange: Exchange): void {
    const data = this.modelList().map((m) => ({ type: 'model', ...m }));
    exchange.sendJson(200, { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null });
  }

  private handleGetModel(path: string, exchange: Exchange): void {
    const id = decodeURIComponent(path.slice('/v1/models/'.length));
    const model = this.modelList().find((m) => m.id === id);
    if (model) exchange.sendJson(200, { type: 'model', ...model });
    else exchange.sendError(404, 'not_found_error', `model: ${id}`);
  }

  private modelList(): readonly ModelEntry[] {
    return this.options.models ?? DEFAULT_MODELS;
  }
}

function initialSettings(options: FakeAnthropicOptions): ReplySettings {
  const chunking: ChunkingOptions = {};
  if (options.chunkCount !== undefined) chunking.chunkCount = options.chunkCount;
  if (options.chunkSize !== undefined) chunking.chunkSize = options.chunkSize;
  return {
    reply: options.reply ?? null,
    toolUse: options.toolUse ?? null,
    chunking,
    chunkDelayMs: Math.max(0, options.chunkDelayMs ?? 0),
  };
}

function newRecord(req: IncomingMessage): RecordedRequest {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return {
    at: Date.now(),
    method: req.method ?? 'GET',
    path: new URL(req.url ?? '/', 'http://fake').pathname,
    body: undefined,
    headers,
    authVia: null,
    clientClosed: false,
    completed: false,
  };
}

function authVia(req: IncomingMessage): RecordedRequest['authVia'] {
  const apiKey = req.headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey.trim() !== '') return 'x-api-key';
  if (/^Bearer\s+\S/i.test(req.headers.authorization ?? '')) return 'bearer';
  return null;
}

/** The whole body as text, or null if the client aborted mid-upload. */
async function readBody(req: IncomingMessage): Promise<string | null> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of req) chunks.push(chunk as Buffer);
  } catch {
    return null;
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseBody(raw: string): unknown {
  if (raw === '') return undefined;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

// ---------------------------------------------------------------------------
// Fault behaviour
// ---------------------------------------------------------------------------

interface ModelState {
  behavior: ModelBehavior;
  /** The behaviour's faults not yet consumed. */
  faults: Fault[];
  setAt: number;
}

type ConnectionFault = Extract<Fault, { kind: 'status' | 'reset_before_headers' | 'no_response' }>;
/** Faults that change what the reply is rather than how it is delivered (handled in handleMessages). */
type ContentFault = Extract<Fault, { kind: 'prefill_rejected' | 'refusal' }>;
type StreamFault = Exclude<Fault, ConnectionFault | ContentFault>;
type MidStreamFault = Exclude<StreamFault, { kind: 'slow_first_token' }>;

const NON_STREAM_FAULT_KINDS: ReadonlySet<FaultKind> = new Set<FaultKind>([
  'status',
  'reset_before_headers',
  'no_response',
  'prefill_rejected',
  'refusal',
]);

function isStreamFault(fault: Fault): fault is StreamFault {
  return !NON_STREAM_FAULT_KINDS.has(fault.kind);
}

/** Handles faults that replace the response entirely; returns true when it did. */
function applyConnectionFault(fault: Fault, exchange: Exchange): boolean {
  switch (fault.kind) {
    case 'status':
      exchange.sendError(
        fault.status,
        fault.errorType ?? errorTypeForStatus(fault.status),
        fault.message,
        statusFaultHeaders(fault),
      );
      return true;
    case 'reset_before_headers':
      exchange.kill();
      return true;
    case 'no_response':
      return true; // Hold the request: the client's timeout or close() ends it.
    default:
      return false;
  }
}

function statusFaultHeaders(fault: Extract<Fault, { kind: 'status' }>): Record<string, string> {
  const headers: Record<string, string> = {};
  if (fault.retryAfterSeconds !== undefined) headers['retry-after'] = String(fault.retryAfterSeconds);
  if (fault.retryAfterMs !== undefined) headers['retry-after-ms'] = String(fault.retryAfterMs);
  if (fault.shouldRetry !== undefined) headers['x-should-retry'] = String(fault.shouldRetry);
  return headers;
}

function isFaultPoint(step: StreamStep): boolean {
  return step.role === 'text_delta' || step.role === 'text_stop' || step.role === 'message_delta';
}

async function writeStream(exchange: Exchange, plan: ReplyPlan, fault: StreamFault | null, chunkDelayMs: number): Promise<void> {
  const midFault: MidStreamFault | null = fault && fault.kind !== 'slow_first_token' ? fault : null;
  const firstDelay = fault?.kind === 'slow_first_token' ? fault.delayMs : 0;
  exchange.startSse();
  // Clamped so that afterChunks beyond the reply fires once the text is done.
  const faultAfter = midFault ? Math.min(midFault.afterChunks, plan.textChunks.length) : 0;
  let textDeltas = 0;
  let deltas = 0;
  for (const step of streamSteps(plan)) {
    if (midFault && isFaultPoint(step) && textDeltas >= faultAfter) {
      applyMidStreamFault(midFault, exchange);
      return;
    }
    const isDelta = step.role === 'text_delta' || step.role === 'tool_delta';
    if (isDelta) {
      const wait = deltas === 0 ? firstDelay : chunkDelayMs;
      if (wait > 0 && !(await exchange.sleep(wait))) return;
      deltas += 1;
      if (step.role === 'text_delta') textDeltas += 1;
    }
    if (!exchange.write(step.frame)) return;
  }
  exchange.end();
}

function applyMidStreamFault(fault: MidStreamFault, exchange: Exchange): void {
  switch (fault.kind) {
    case 'cut_mid_stream':
      exchange.kill();
      return;
    case 'stall_mid_stream':
      return; // Keep the socket open and silent.
    case 'malformed_event':
      exchange.end(MALFORMED_FRAME);
      return;
    case 'error_event': {
      const errorType = fault.errorType ?? 'overloaded_error';
      exchange.end(sseFrame('error', errorPayload(errorType, fault.message, exchange.requestId)));
      return;
    }
    case 'no_message_stop':
      exchange.end();
      return;
  }
}

/** Non-streaming: stream-only faults get their closest JSON equivalent. */
async function writeMessageJson(exchange: Exchange, plan: ReplyPlan, fault: StreamFault | null): Promise<void> {
  const body = JSON.stringify(messageJson(plan));
  switch (fault?.kind) {
    case 'slow_first_token':
      if (await exchange.sleep(fault.delayMs)) exchange.sendJsonText(200, body);
      return;
    case 'cut_mid_stream':
      if (!exchange.open) return;
      exchange.sendJsonPrefix(body);
      exchange.kill();
      return;
    case 'stall_mid_stream':
      exchange.sendJsonPrefix(body);
      return;
    case 'malformed_event':
      exchange.sendJsonText(200, '{not json');
      return;
    case 'error_event': {
      const errorType = fault.errorType ?? 'overloaded_error';
      exchange.sendError(STATUS_BY_ERROR_TYPE[errorType] ?? 500, errorType, fault.message);
      return;
    }
    case 'no_message_stop':
      exchange.sendJson(200, messageJson(cutPlan(plan, fault.afterChunks, null)));
      return;
    default:
      exchange.sendJsonText(200, body);
  }
}

// ---------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------

/** Starts a fake Anthropic API on 127.0.0.1 with a random port. Always `await fake.close()` afterwards. */
export async function startFakeAnthropic(options: FakeAnthropicOptions = {}): Promise<FakeAnthropic> {
  const fake = new FakeAnthropicServer(options);
  await fake.listen();
  return fake;
}
