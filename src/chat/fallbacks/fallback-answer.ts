import type { ProviderEvent } from '../../providers/types.js';
import type { Mode } from '../frames.js';

/** What a fallback hands back to the turn: events to stream like a live answer, or a queued job. */
export type FallbackAnswer =
  | { kind: 'stream'; mode: Exclude<Mode, 'queued'>; strategy: string; events: AsyncIterable<ProviderEvent>; provider?: string; billable: boolean }
  | { kind: 'queued'; mode: 'queued'; strategy: string; jobId: string };

/** A canned text as provider events (mock answers, cache replays). */
export async function* eventsFromText(
  text: string,
  model: string,
  extra: { toolEvents?: ProviderEvent[]; inputTokens?: number; outputTokens?: number; stopReason?: string | null } = {},
): AsyncGenerator<ProviderEvent> {
  yield { type: 'start', model };
  for (const chunk of text.match(/\S+\s*|\s+/g) ?? []) yield { type: 'text', text: chunk };
  for (const event of extra.toolEvents ?? []) yield event;
  yield { type: 'usage', usage: { inputTokens: extra.inputTokens ?? 0, outputTokens: extra.outputTokens ?? 0 } };
  yield { type: 'stop', stopReason: extra.stopReason ?? 'end_turn', model };
}

function isContent(event: ProviderEvent): boolean {
  return event.type === 'text' || event.type === 'tool_use' || event.type === 'tool_result';
}

/**
 * Starts a stream and waits for its first content (or its end) before handing it on, so a fallback
 * upstream that fails before saying anything counts as "could not answer" and the chain moves on.
 */
export async function primeStream(events: AsyncIterable<ProviderEvent>): Promise<AsyncIterable<ProviderEvent>> {
  const iterator = events[Symbol.asyncIterator]();
  const buffered: ProviderEvent[] = [];
  for (;;) {
    const next = await iterator.next();
    if (next.done) break;
    buffered.push(next.value);
    if (isContent(next.value)) break;
  }
  return (async function* () {
    yield* buffered;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  })();
}
