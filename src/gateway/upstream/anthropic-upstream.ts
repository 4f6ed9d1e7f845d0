/**
 * A thin, fast client for one Anthropic-compatible upstream (one base URL), built on an undici Pool.
 *
 * It forwards request bytes as given and hands back the response status, headers and undici's body
 * stream untouched, so the gateway can relay bytes without parsing JSON or re-serialising events
 * (global fetch costs several times the CPU per call on Node 20). It decides nothing about retries
 * or fallbacks: it only classifies failures as ProviderError, for the resilience layer above.
 *
 * Callers must consume or dump every response body (`for await`, `body.text()` or `body.dump()`),
 * otherwise its connection stays busy and `close()` waits for it.
 */
import { Pool, type Dispatcher } from 'undici';
import type { CancelSignal } from '../cancellation.js';
import { ChunkFeed, type FlowControl } from './chunk-feed.js';
import {
  ProviderError,
  abortedError,
  errorTypeForStatus,
  isRetryableStatus,
  parseRetryAfterMs,
} from '../../providers/errors.js';

export type UpstreamPostPath = '/v1/messages' | '/v1/messages/count_tokens';
/** `/v1/models`, `/v1/models/{id}`, optionally with a query string (`?limit=…`). */
export type UpstreamGetPath = `/v1/models${string}`;

export type UpstreamHeaders = Record<string, string | string[] | undefined>;

/** undici's response body: an async iterable of Buffers with fetch-like consumers. */
export interface UpstreamBody extends AsyncIterable<Buffer> {
  text(): Promise<string>;
  json(): Promise<unknown>;
  /** Discards the rest of the body (reading at most `limit` bytes) so the connection can be reused. */
  dump(opts?: { limit: number; signal?: AbortSignal }): Promise<void>;
}

export interface UpstreamResponse {
  status: number;
  /** Lower-cased names, as undici returns them. */
  headers: UpstreamHeaders;
  body: UpstreamBody;
}

/** A response whose body comes chunk by chunk to a listener (`sendStreaming`). */
export interface StreamingResponse {
  status: number;
  headers: UpstreamHeaders;
  body: ChunkFeed;
}

/** The callbacks of one raw dispatch; `data` returns false to pause the upstream. */
interface RawHandler {
  start(status: number, headers: UpstreamHeaders, flow: FlowControl): void;
  data(chunk: Buffer): boolean;
  end(): void;
  fail(error: unknown, phase: TransportPhase): void;
}

/** A whole answer read into memory (`sendBuffered`). */
export interface BufferedResponse {
  status: number;
  headers: UpstreamHeaders;
  body: Buffer;
}

export interface AnthropicUpstreamOptions {
  /** E.g. `https://api.anthropic.com`; a path prefix (`https://proxy.example/anthropic`) is kept. */
  baseUrl: string;
  apiKey: string;
  /**
   * Maximum sockets to the upstream. Default: no cap — one socket per call in flight, as many as the
   * callers have. A stream holds its socket for its whole length, so a cap (it was 128) queued the
   * 129th concurrent stream behind the others, where its connect timer failed it.
   */
  connections?: number;
  /**
   * Time allowed for the response headers. Default 600 000 ms: a non-streaming Messages call sends its
   * headers only once the whole answer is generated. The resilience layer keeps its own, tighter timers.
   */
  headersTimeoutMs?: number;
  /** Longest silence allowed between two body chunks. Default 600 000 ms. */
  bodyTimeoutMs?: number;
  // Both undici timers run on its coarse "fast timer" (~0.5–1 s resolution): they are backstops. The
  // precise first-token / idle / request deadlines belong to the caller, which aborts through `signal`.
  /** Sent when the caller does not pass `anthropic-version`. Default `2023-06-01`. */
  defaultAnthropicVersion?: string;
}

export interface UpstreamSendOptions {
  /** An AbortSignal, or the gateway's lighter Cancellation. */
  signal: CancelSignal;
  /**
   * Extra request headers, e.g. `anthropic-version` / `anthropic-beta` passed through from the client.
   * Names are lower-cased; credentials (`x-api-key`, `authorization`) and hop-by-hop or framing headers
   * (`host`, `content-length`, `connection`, ...) are dropped: the upstream's own key always applies.
   */
  headers?: Record<string, string>;
  /** Per-request override of the pool's headers timeout. */
  headersTimeoutMs?: number;
  /** Per-request override of the pool's body timeout. */
  bodyTimeoutMs?: number;
}

/** Where a transport error happened: before the response headers, or while reading the body. */
export type TransportPhase = 'headers' | 'body';

export const DEFAULT_ANTHROPIC_VERSION = '2023-06-01';
const DEFAULT_TIMEOUT_MS = 600_000;

/** Request headers a client may not set on the upstream call. */
const DROPPED_HEADERS = new Set([
  'x-api-key',
  'authorization',
  'host',
  'content-length',
  'content-type',
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'expect',
]);

export class AnthropicUpstream {
  readonly origin: string;
  private readonly pathPrefix: string;
  private readonly pool: Pool;
  private readonly apiKey: string;
  private readonly defaultVersion: string;
  private closing: Promise<void> | null = null;
  private destroying: Promise<void> | null = null;

  constructor(options: AnthropicUpstreamOptions) {
    const url = new URL(options.baseUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TypeError(`AnthropicUpstream: baseUrl must be http(s), got ${options.baseUrl}`);
    }
    this.origin = url.origin;
    this.pathPrefix = url.pathname.replace(/\/+$/, '');
    this.apiKey = options.apiKey;
    this.defaultVersion = options.defaultAnthropicVersion ?? DEFAULT_ANTHROPIC_VERSION;
    this.pool = new Pool(this.origin, {
      connections: options.connections ?? null,
      headersTimeout: options.headersTimeoutMs ?? DEFAULT_TIMEOUT_MS,
      bodyTimeout: options.bodyTimeoutMs ?? DEFAULT_TIMEOUT_MS,
    });
  }

  /** True once `close()` or `destroy()` was called. */
  get closed(): boolean {
    return this.closing !== null;
  }

  /** Socket and request counts of the pool (connected, free, pending, queued, running, size). */
  get stats(): { connected: number; free: number; pending: number; queued: number; running: number; size: number } {
    const { connected, free, pending, queued, running, size } = this.pool.stats;
    return { connected, free, pending, queued, running, size };
  }

  /**
   * POSTs `body` (JSON bytes, forwarded as is). Resolves with the response whatever its status — use
   * `errorFrom` / `errorFromResponse` for status >= 400. Rejects only with a ProviderError: `aborted`
   * when `signal` fired, else `timeout` / `connection_error` (retryable).
   */
  send(path: UpstreamPostPath, body: string | Buffer, options: UpstreamSendOptions): Promise<UpstreamResponse> {
    return this.dispatch('POST', path, body, options);
  }

  /**
   * POSTs like `send` and reads the whole answer into one Buffer, on undici's dispatch API: no body
   * stream, no async iterator (tens of µs per call) for an answer that is not streamed anyway.
   * Rejects like `send`, and with `stream_cut` when a 200's body breaks off; an error status whose body
   * breaks off still resolves, with an empty body (the status classifies it).
   */
  sendBuffered(path: UpstreamPostPath, body: string | Buffer, options: UpstreamSendOptions): Promise<BufferedResponse> {
    return new Promise((resolve, reject) => {
      let status = 0;
      let responseHeaders: UpstreamHeaders = {};
      const chunks: Buffer[] = [];
      this.dispatchRaw(path, body, options, {
        start: (statusCode, received) => {
          status = statusCode;
          responseHeaders = received;
        },
        data: (chunk) => {
          chunks.push(chunk);
          return true;
        },
        end: () => resolve({ status, headers: responseHeaders, body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks) }),
        fail: (error, phase) => {
          if (phase === 'body' && status !== 200 && !options.signal.aborted) resolve({ status, headers: responseHeaders, body: Buffer.alloc(0) });
          else reject(transportError(error, options.signal, phase));
        },
      });
    });
  }

  /**
   * POSTs like `send`, resolving at the response headers with the body as a ChunkFeed: chunks go to
   * one listener by callback, with pause and resume (see ChunkFeed). Rejects like `send` before the
   * headers; a failure after them reaches the feed's listener (undici's error, unclassified).
   */
  sendStreaming(path: UpstreamPostPath, body: string | Buffer, options: UpstreamSendOptions): Promise<StreamingResponse> {
    return new Promise((resolve, reject) => {
      let feed: ChunkFeed | null = null;
      this.dispatchRaw(path, body, options, {
        start: (status, headers, flow) => {
          feed = new ChunkFeed(flow);
          resolve({ status, headers, body: feed });
        },
        data: (chunk) => (feed as ChunkFeed).push(chunk),
        end: () => feed?.finish({ kind: 'end' }),
        fail: (error, phase) => {
          if (feed) feed.finish({ kind: 'fail', error });
          else reject(transportError(error, options.signal, phase));
        },
      });
    });
  }

  /**
   * One call on undici's dispatch API, the cheapest it has: callbacks, no body stream. A cancel before
   * the connection is remembered and applied on it, as undici's own request API does.
   */
  private dispatchRaw(path: UpstreamPostPath, body: string | Buffer, options: UpstreamSendOptions, handler: RawHandler): void {
    const { signal } = options;
    if (signal.aborted) return handler.fail(abortedError(signal.reason), 'headers');
    if (this.closing !== null) return handler.fail(new ProviderError('connection_error', 'The upstream client is closed', 'non_retryable'), 'headers');
    let controller: Dispatcher.DispatchController | null = null;
    let phase: TransportPhase = 'headers';
    const abortWith = () => (signal.reason instanceof Error ? signal.reason : new Error('aborted', { cause: signal.reason }));
    const onAbort = () => controller?.abort(abortWith());
    signal.addEventListener('abort', onAbort, { once: true });
    const flow: FlowControl = { pause: () => controller?.pause(), resume: () => controller?.resume() };
    this.pool.dispatch(
      {
        method: 'POST',
        path: this.pathPrefix + path,
        headers: this.requestHeaders(options.headers, true),
        body,
        ...(options.headersTimeoutMs !== undefined ? { headersTimeout: options.headersTimeoutMs } : {}),
        ...(options.bodyTimeoutMs !== undefined ? { bodyTimeout: options.bodyTimeoutMs } : {}),
      },
      {
        onRequestStart: (c) => {
          controller = c;
          if (signal.aborted) c.abort(abortWith());
        },
        onResponseStart: (_c, statusCode, received) => {
          phase = 'body';
          handler.start(statusCode, received, flow);
        },
        onResponseData: (c, chunk) => {
          if (!handler.data(chunk)) c.pause();
        },
        onResponseEnd: () => {
          signal.removeEventListener('abort', onAbort);
          handler.end();
        },
        onResponseError: (_c, error) => {
          signal.removeEventListener('abort', onAbort);
          handler.fail(error, phase);
        },
      },
    );
  }

  /** Pass-through GET (model listing). Same resolution and errors as `send`. */
  get(path: UpstreamGetPath, signal: CancelSignal, headers?: Record<string, string>): Promise<UpstreamResponse> {
    return this.dispatch('GET', path, null, headers ? { signal, headers } : { signal });
  }

  /** Classifies an upstream error response; see `upstreamErrorFrom`. */
  errorFrom(status: number, headers: UpstreamHeaders, bodyText: string): ProviderError {
    return upstreamErrorFrom(status, headers, bodyText);
  }

  /**
   * Reads an error response's body (at most `maxBytes`, default 64 KiB, of it is kept) and classifies it.
   * A body that breaks off while being read still yields the status-based error.
   */
  async errorFromResponse(response: UpstreamResponse, maxBytes = 64 * 1024): Promise<ProviderError> {
    let text = '';
    try {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of response.body) {
        if (size < maxBytes) {
          chunks.push(chunk);
          size += chunk.length;
        }
      }
      text = Buffer.concat(chunks, size).subarray(0, maxBytes).toString('utf8');
    } catch {
      // The status alone still classifies the error.
    }
    return upstreamErrorFrom(response.status, response.headers, text);
  }

  /** Classifies an error thrown by `send`/`get` or while iterating a response body; see `transportError`. */
  errorFromTransport(error: unknown, signal?: CancelSignal, phase: TransportPhase = 'body'): ProviderError {
    return transportError(error, signal, phase);
  }

  /** Stops accepting requests and resolves once in-flight ones have finished and sockets are closed. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.pool.close();
    return this.closing;
  }

  /** Like `close`, but aborts in-flight requests at once (for shutdown with stuck streams). Idempotent. */
  destroy(): Promise<void> {
    this.destroying ??= this.pool.destroy();
    const destroying = this.destroying;
    this.closing ??= destroying;
    // When close() came first, its promise settles once the destroyed pool has let go of its sockets.
    return this.closing === destroying ? destroying : Promise.all([this.closing, destroying]).then(() => undefined);
  }

  private async dispatch(
    method: 'GET' | 'POST',
    path: string,
    body: string | Buffer | null,
    options: UpstreamSendOptions,
  ): Promise<UpstreamResponse> {
    const { signal } = options;
    if (signal.aborted) throw abortedError(signal.reason);
    if (this.closing !== null) {
      throw new ProviderError('connection_error', 'The upstream client is closed', 'non_retryable');
    }
    const headers = this.requestHeaders(options.headers, body !== null);
    try {
      const response = await this.pool.request({
        method,
        path: this.pathPrefix + path,
        headers,
        body,
        // undici only needs aborted, reason and add/removeEventListener('abort'): a CancelSignal has them.
        signal: signal as AbortSignal,
        ...(options.headersTimeoutMs !== undefined ? { headersTimeout: options.headersTimeoutMs } : {}),
        ...(options.bodyTimeoutMs !== undefined ? { bodyTimeout: options.bodyTimeoutMs } : {}),
      });
      return { status: response.statusCode, headers: response.headers, body: response.body };
    } catch (error) {
      throw transportError(error, signal, 'headers');
    }
  }

  private requestHeaders(extra: Record<string, string> | undefined, hasBody: boolean): Record<string, string> {
    const headers: Record<string, string> = {};
    if (hasBody) headers['content-type'] = 'application/json';
    headers['anthropic-version'] = this.defaultVersion;
    if (extra) {
      for (const name of Object.keys(extra)) {
        const value = extra[name];
        if (value === undefined) continue;
        const lower = name.toLowerCase();
        if (!DROPPED_HEADERS.has(lower)) headers[lower] = value;
      }
    }
    headers['x-api-key'] = this.apiKey;
    return headers;
  }
}

// ---------------------------------------------------------------------------
// Classification
// ---------------------------------------------------------------------------

const CONTEXT_TOO_LONG = /prompt is too long|context (window|length)|too many (input )?tokens/i;

function headerValue(headers: UpstreamHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The `{type: "error", error: {type, message}}` body of an Anthropic error, when it is one. */
function parseErrorBody(bodyText: string): { type?: string; message?: string } | null {
  if (bodyText === '' || bodyText.charCodeAt(0) !== 0x7b /* { */) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(bodyText);
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const error = (parsed as { error?: unknown }).error;
  if (typeof error !== 'object' || error === null) return null;
  const { type, message } = error as { type?: unknown; message?: unknown };
  return {
    ...(typeof type === 'string' && type !== '' ? { type } : {}),
    ...(typeof message === 'string' ? { message } : {}),
  };
}

/**
 * Classifies an upstream error response: the error type comes from the Anthropic error body (else from
 * the status), a 400 whose message says the prompt is too long becomes `context_too_long`, the failure
 * class follows the status (`isRetryableStatus`), and `retry-after-ms` / `retry-after` give `retryAfterMs`.
 */
export function upstreamErrorFrom(status: number, headers: UpstreamHeaders, bodyText: string): ProviderError {
  const parsed = parseErrorBody(bodyText);
  let errorType = parsed?.type ?? errorTypeForStatus(status);
  const trimmed = bodyText.trim();
  const message =
    parsed?.message ?? (trimmed !== '' && parsed === null ? trimmed.slice(0, 500) : `The upstream answered HTTP ${status}`);
  if (status === 400 && CONTEXT_TOO_LONG.test(message)) errorType = 'context_too_long';
  const retryAfterMs = parseRetryAfterMs((name) => headerValue(headers, name));
  return new ProviderError(errorType, message, isRetryableStatus(status) ? 'retryable' : 'non_retryable', {
    status,
    retryAfterMs,
  });
}

/** undici / socket error codes that mean a timer fired rather than the connection failing. */
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
/** Codes of programming errors (bad arguments), which no retry can fix. */
const BUG_CODES = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'UND_ERR_INVALID_RETURN_VALUE']);

function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Maps an error thrown by undici (or the socket under it) to a ProviderError:
 * - `aborted` when `signal` fired (whatever undici threw);
 * - `timeout` (retryable) for the headers / body timers;
 * - before the headers, `connection_error` (retryable): reset, refused, socket closed, connect timeout;
 * - while reading the body, `stream_cut` (retryable): the connection broke off mid-response;
 * - `gateway_error` (non-retryable) for invalid arguments, which are bugs.
 */
export function transportError(error: unknown, signal: CancelSignal | undefined, phase: TransportPhase): ProviderError {
  if (error instanceof ProviderError) return error;
  if (signal?.aborted) return abortedError(signal.reason ?? error);
  const code = errorCode(error);
  const detail = error instanceof Error && error.message ? `: ${error.message}` : '';
  if (code !== undefined && TIMEOUT_CODES.has(code)) {
    const what = code === 'UND_ERR_HEADERS_TIMEOUT' ? 'sent no response headers in time' : 'went silent mid-response';
    return new ProviderError('timeout', `The upstream ${what}`, 'retryable', { cause: error });
  }
  if (code !== undefined && BUG_CODES.has(code)) {
    return new ProviderError('gateway_error', `Invalid upstream request${detail}`, 'non_retryable', { cause: error });
  }
  if (phase === 'body') {
    return new ProviderError('stream_cut', `The upstream connection broke off${detail}`, 'retryable', { cause: error });
  }
  return new ProviderError('connection_error', `Could not reach the upstream${detail}`, 'retryable', { cause: error });
}
