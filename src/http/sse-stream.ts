import type { ServerResponse } from 'node:http';
import { formatEventId } from '../streams/event-id.js';
import type { FrameSource } from '../streams/frame-source.js';

/** Bounds on one connection: how far a client may fall behind before it is cut off (it can resume). */
export interface ClientBufferLimits {
  /**
   * Bytes the answer may grow by while the client takes nothing. Frames already logged (a replay) do
   * not count: a client is cut off for not reading, never for resuming a long answer.
   */
  maxBacklogBytes: number;
  /** Longest the socket may refuse more data; 0 = no limit. */
  stallMs: number;
}

export type StreamEnd = 'complete' | 'client_gone' | 'slow_client' | 'gap' | 'lost';

/** Opens a chat event stream; headers set by the hooks (CORS, security, RateLimit) are passed in. */
export function openEventStream(res: ServerResponse, headers: Record<string, string>): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    'x-accel-buffering': 'no',
    // Whether a fallback answers is only known later, so it travels as a trailer (and as `mode` in frames).
    trailer: 'x-fallback-strategy',
    ...headers,
  });
  res.flushHeaders();
}

/**
 * Sends a turn's frames after `afterSeq` as `id: <turn>:<seq>` + `data:` events until the turn's last
 * frame, then ends the response. Reads from the log at the client's pace (never the other way round),
 * so the connection buffers at most the socket's own buffer plus one frame; a client that takes
 * nothing while the answer grows past the bound, or for `stallMs`, is disconnected and can resume
 * from its last id.
 */
export async function streamFrames(res: ServerResponse, source: FrameSource, afterSeq: number, limits: ClientBufferLimits): Promise<StreamEnd> {
  const gone = new AbortController();
  const onClose = () => gone.abort();
  res.once('close', onClose);
  let cursor = afterSeq;
  try {
    for (;;) {
      if (gone.signal.aborted || res.destroyed) return 'client_gone';
      const batch = await source.read(cursor, gone.signal);
      if (gone.signal.aborted) return 'client_gone';
      if (batch.gap) {
        // The frames this client needs were trimmed: cut it off rather than skip part of the answer.
        res.destroy();
        return 'gap';
      }
      for (const frame of batch.frames) {
        cursor = frame.seq;
        if (!res.write(`id: ${formatEventId(source.turnId, frame.seq)}\ndata: ${frame.data}\n\n`)) {
          const waited = await drained(res, source, cursor, limits);
          if (waited === 'slow_client') res.destroy();
          if (waited !== 'drained') return waited;
        }
      }
      if (batch.lost) {
        // Never pretend the answer is complete: no `done`, an error saying why (the history has what was saved).
        const lost = { type: 'error', session_id: source.sessionId, error: 'The stream of this answer was lost; read the session history', error_type: 'stream_lost', recoverable: true };
        res.end(`data: ${JSON.stringify(lost)}\n\n`);
        return 'lost';
      }
      if (batch.ended) {
        if (source.fallbackStrategy) res.addTrailers({ 'x-fallback-strategy': source.fallbackStrategy });
        res.end();
        return 'complete';
      }
    }
  } finally {
    res.off('close', onClose);
    source.release();
  }
}

/** Waits for the socket to take more, unless the client goes, falls too far behind, or stalls. */
function drained(res: ServerResponse, source: FrameSource, cursor: number, limits: ClientBufferLimits): Promise<'drained' | 'client_gone' | 'slow_client'> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const finish = (result: 'drained' | 'client_gone' | 'slow_client') => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      unsubscribe();
      clearTimeout(timer);
      resolve(result);
    };
    const onDrain = () => finish('drained');
    const onClose = () => finish('client_gone');
    const waitingFrom = source.backlogBytes(cursor);
    // Cut off once the answer grew past the bound, or once the log trimmed frames this client still needs.
    const check = () => {
      const backlog = source.backlogBytes(cursor);
      if (backlog === Infinity || backlog - waitingFrom > limits.maxBacklogBytes) finish('slow_client');
    };
    res.on('drain', onDrain);
    res.on('close', onClose);
    const unsubscribe = source.onAppend(check);
    if (limits.stallMs > 0) timer = setTimeout(() => finish('slow_client'), limits.stallMs);
    if (waitingFrom === Infinity) finish('slow_client');
  });
}
