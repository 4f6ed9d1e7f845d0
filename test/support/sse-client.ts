/** A small SSE reader for tests: parses `id:` / `data:` frames from a fetch response as they arrive. */

export interface ChatFrame {
  /** The SSE event id, `<turn_id>:<seq>` (empty for a frame sent without one). */
  id: string;
  turnId: string;
  seq: number;
  type: string;
  session_id: string;
  [key: string]: unknown;
}

export async function* readFrames(response: Response): AsyncGenerator<ChatFrame> {
  if (!response.body) throw new Error('response has no body');
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const raw = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const frame = parseFrame(raw);
      if (frame) yield frame;
    }
  }
  if (buffer.trim() !== '') throw new Error(`stream ended inside a frame: ${JSON.stringify(buffer)}`);
}

function parseFrame(raw: string): ChatFrame | null {
  let id = '';
  const data: string[] = [];
  for (const line of raw.split('\n')) {
    if (line.startsWith('id: ')) id = line.slice(4);
    else if (line.startsWith('data: ')) data.push(line.slice(6));
  }
  if (data.length === 0) return null;
  const colon = id.lastIndexOf(':');
  const turnId = colon > 0 ? id.slice(0, colon) : '';
  const seq = colon > 0 ? Number(id.slice(colon + 1)) : NaN;
  return { ...(JSON.parse(data.join('\n')) as Omit<ChatFrame, 'id' | 'turnId' | 'seq'>), id, turnId, seq } as ChatFrame;
}

export async function collectFrames(response: Response): Promise<ChatFrame[]> {
  const frames: ChatFrame[] = [];
  for await (const frame of readFrames(response)) frames.push(frame);
  return frames;
}

export function postChat(baseUrl: string, body: unknown, signal?: AbortSignal): Promise<Response> {
  return fetch(`${baseUrl}/api/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal,
  });
}

export async function chat(baseUrl: string, body: unknown): Promise<{ response: Response; frames: ChatFrame[] }> {
  const response = await postChat(baseUrl, body);
  return { response, frames: await collectFrames(response) };
}

export function textOf(frames: ChatFrame[]): string {
  return frames.filter((f) => f.type === 'text_chunk').map((f) => String(f.content)).join('');
}
