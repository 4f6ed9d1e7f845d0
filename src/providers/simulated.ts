import { abortedError } from './errors.js';
import { abortableSleep } from './abortable-sleep.js';
import type { Provider, ProviderEvent, ProviderRequest } from './types.js';

export const SIMULATED_MODEL = 'simulated';

/** Rough token estimate (4 characters a token) so usage figures are plausible and deterministic. */
function estimateTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

function lastUserText(request: ProviderRequest): string {
  for (let i = request.messages.length - 1; i >= 0; i--) {
    const message = request.messages[i];
    if (message?.role === 'user') return message.content;
  }
  return '';
}

/** The deterministic reply: same conversation in, same text out. */
export function simulatedReply(request: ProviderRequest): string {
  const said = lastUserText(request).replace(/\s+/g, ' ').trim();
  const quoted = said.length > 200 ? `${said.slice(0, 200)}…` : said;
  const turn = request.messages.filter((m) => m.role === 'user').length;
  return (
    `This is a simulated reply (no ANTHROPIC_API_KEY is set, so Claude was not called). ` +
    `Turn ${turn} of this session; you said: "${quoted}"`
  );
}

/** Splits text into word-sized chunks that keep their whitespace, like a real token stream. */
export function chunkText(text: string): string[] {
  return text.match(/\S+\s*/g) ?? [text];
}

/** Answers without a key: a deterministic streamed reply, labelled simulated everywhere it surfaces. */
export class SimulatedProvider implements Provider {
  readonly name = 'simulated';
  readonly simulated = true;

  constructor(private readonly chunkDelayMs: number) {}

  /** Nothing to reach: always healthy. */
  async probe(): Promise<void> {}

  async *stream(request: ProviderRequest, signal: AbortSignal): AsyncIterable<ProviderEvent> {
    if (signal.aborted) throw abortedError(signal.reason);
    yield { type: 'start', model: SIMULATED_MODEL };
    const reply = simulatedReply(request);
    for (const chunk of chunkText(reply)) {
      try {
        await abortableSleep(this.chunkDelayMs, signal);
      } catch (reason) {
        throw abortedError(reason);
      }
      yield { type: 'text', text: chunk };
    }
    const inputText = [request.system ?? '', ...request.messages.map((m) => m.content)].join('\n');
    yield { type: 'usage', usage: { inputTokens: estimateTokens(inputText), outputTokens: estimateTokens(reply) } };
    yield { type: 'stop', stopReason: 'end_turn', model: SIMULATED_MODEL };
  }
}
