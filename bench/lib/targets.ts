/** The requests the bench sends: one Anthropic Messages call, to the upstream, the floor or the server. */
import { CLIENT_KEY, SOAK_MODEL } from './server.js';
import type { Target } from './load.js';

export type Kind = 'json' | 'stream';

function messagesBody(stream: boolean, model = 'bench-model'): string {
  return JSON.stringify({ model, max_tokens: 64, messages: [{ role: 'user', content: 'Say something short.' }], ...(stream ? { stream: true } : {}) });
}

const MESSAGES_HEADERS = { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': CLIENT_KEY };

export function messages(name: string, base: string, kind: Kind, model?: string): Target {
  return { name, url: `${base}/v1/messages`, method: 'POST', headers: MESSAGES_HEADERS, body: messagesBody(kind === 'stream', model) };
}

export function soak(base: string): Target {
  return messages('soak', base, 'json', SOAK_MODEL);
}

/** A chat turn in a fresh session (no session_id: the server creates one), read to its `done` frame. */
export function chat(base: string): Target {
  return {
    name: 'server /api/chat',
    url: `${base}/api/chat`,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${CLIENT_KEY}` },
    body: JSON.stringify({ message: 'Say something short.' }),
  };
}
