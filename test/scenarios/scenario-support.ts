/**
 * Helpers for the failover scenario suite (issue 8, S01–S16): a routing file pointing at the fake
 * Anthropic upstream, a gateway started with scaled-down timers, and raw SSE parsing so a test can
 * inspect the exact bytes a caller received.
 */

import { fakeTarget, writeRoutingFile } from '../support/routing-file.js';

export const CLIENT_KEY = 'client-key-0123456789';
/** Route with a fallback model and a larger-context fallback. */
export const PRIMARY = 'claude-sonnet-4-6';
export const FALLBACK = 'claude-haiku-4-5';
export const LONG_CONTEXT = 'claude-sonnet-4-6-1m';
/** Route with the same fallback model but no larger-context fallback. */
export const NO_CONTEXT_FALLBACK = 'claude-opus-4-1';
/** Route with a single target: no fallback at all. */
export const SOLO = 'claude-solo-1';

/** The budget, scaled down: 2 retries per target, 300 ms for the 15 s / 30 s limits. */
export const TIMERS = {
  connectMs: 300,
  firstTokenMs: 300,
  idleMs: 300,
  totalMs: 5000,
} as const;
export const RETRY_DELAYS_MS = [100, 200, 400] as const;
export const RETRIES = 2;
/** The breaker of every gateway target; 0.3 s stands for the 30 s default. */
export const BREAKER = { failure_threshold: 3, timeout_seconds: 0.3, success_threshold: 2, half_open_max_calls: 1 } as const;

export function gatewayEnv(routingFile: string): Record<string, string> {
  return {
    API_KEYS: `app:${CLIENT_KEY}`,
    CONFIG_FILE: routingFile,
    UPSTREAM_CONNECT_TIMEOUT_MS: String(TIMERS.connectMs),
    UPSTREAM_FIRST_TOKEN_TIMEOUT_MS: String(TIMERS.firstTokenMs),
    UPSTREAM_IDLE_TIMEOUT_MS: String(TIMERS.idleMs),
    UPSTREAM_TOTAL_TIMEOUT_MS: String(TIMERS.totalMs),
    RETRY_DELAYS_MS: RETRY_DELAYS_MS.join(','),
    RETRY_JITTER: '0.2',
  };
}

/** Writes the routing file: every target on the one fake, told apart by the model it asks for. */
export function writeScenarioRouting(dir: string, fakeUrl: string): string {
  const target = (name: string, model?: string) => fakeTarget(fakeUrl, name, model ? { model } : {});
  return writeRoutingFile(dir, {
    defaults: { retries: RETRIES, breaker: BREAKER },
    routes: {
      [PRIMARY]: { targets: [target('primary'), target('fallback', FALLBACK)], context_fallback: target('long', LONG_CONTEXT) },
      [NO_CONTEXT_FALLBACK]: { targets: [target('primary'), target('fallback', FALLBACK)] },
      [SOLO]: { targets: [target('primary')] },
      '*': { targets: [target('default')] },
    },
  });
}

export interface SseEvent {
  event: string;
  data: unknown;
  /** The data line as received. */
  raw: string;
}

/** Splits an SSE body into events; data that is not JSON is kept as a string. */
export function parseSse(text: string): SseEvent[] {
  const events: SseEvent[] = [];
  for (const block of text.split('\n\n')) {
    if (block.trim() === '') continue;
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    const raw = data.join('\n');
    let parsed: unknown = raw;
    try {
      parsed = JSON.parse(raw);
    } catch {
      // kept as text: the test decides whether that is acceptable
    }
    events.push({ event, data: parsed, raw });
  }
  return events;
}

/** The text of every text_delta, joined. */
export function streamedText(events: SseEvent[]): string {
  return events
    .filter((e) => e.event === 'content_block_delta')
    .map((e) => (e.data as { delta?: { text?: string } }).delta?.text ?? '')
    .join('');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A reply of `count` one-word chunks (the fake counts one output token per chunk). */
export function wordsReply(count: number): string {
  return Array.from({ length: count }, (_, i) => `w${i}`).join(' ');
}
