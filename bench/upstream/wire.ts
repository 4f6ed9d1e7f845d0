/**
 * The fake upstream's answers, as Anthropic sends them, built once per model name and kept: the fake
 * must cost next to nothing per request so that it is never what a measurement measures.
 */

/** Text deltas per streamed answer (and words of the JSON answer). */
export const DELTAS = 10;

const WORDS = ['The ', 'quick ', 'brown ', 'fox ', 'jumps ', 'over ', 'the ', 'lazy ', 'dog', '.'];
const USAGE = { input_tokens: 12, output_tokens: DELTAS };

export interface StreamBytes {
  /** message_start, content_block_start and a ping: everything before the first content. */
  prelude: Buffer;
  /** All DELTAS content_block_delta events. */
  deltas: Buffer;
  /** One content_block_delta (the open-stream test repeats it). */
  delta: Buffer;
  /** content_block_stop, message_delta, message_stop. */
  end: Buffer;
}

function sse(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

function textDelta(text: string): string {
  return sse('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } });
}

const jsonCache = new Map<string, Buffer>();
const streamCache = new Map<string, StreamBytes>();

export function jsonMessage(model: string): Buffer {
  let bytes = jsonCache.get(model);
  if (!bytes) {
    bytes = Buffer.from(
      JSON.stringify({
        id: 'msg_bench',
        type: 'message',
        role: 'assistant',
        model,
        content: [{ type: 'text', text: WORDS.join('') }],
        stop_reason: 'end_turn',
        stop_sequence: null,
        usage: USAGE,
      }),
    );
    jsonCache.set(model, bytes);
  }
  return bytes;
}

export function streamEvents(model: string): StreamBytes {
  let bytes = streamCache.get(model);
  if (!bytes) {
    const message = { id: 'msg_bench', type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 12, output_tokens: 1 } };
    bytes = {
      prelude: Buffer.from(
        sse('message_start', { type: 'message_start', message }) +
          sse('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }) +
          sse('ping', { type: 'ping' }),
      ),
      deltas: Buffer.from(WORDS.map(textDelta).join('')),
      delta: Buffer.from(textDelta('tick ')),
      end: Buffer.from(
        sse('content_block_stop', { type: 'content_block_stop', index: 0 }) +
          sse('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: DELTAS } }) +
          sse('message_stop', { type: 'message_stop' }),
      ),
    };
    streamCache.set(model, bytes);
  }
  return bytes;
}
