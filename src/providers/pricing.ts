import type { Usage } from './types.js';

/** USD per million tokens, by model id; a dated or -latest id takes its base id's price. */
interface Price {
  input: number;
  output: number;
}

const PRICES: Record<string, Price> = {
  'claude-opus-4-6': { input: 5, output: 25 },
  'claude-sonnet-4-6': { input: 3, output: 15 },
  'claude-opus-4-5': { input: 5, output: 25 },
  'claude-opus-4-1': { input: 15, output: 75 },
  'claude-opus-4': { input: 15, output: 75 },
  'claude-sonnet-4-5': { input: 3, output: 15 },
  'claude-sonnet-4': { input: 3, output: 15 },
  'claude-3-7-sonnet': { input: 3, output: 15 },
  'claude-3-5-sonnet': { input: 3, output: 15 },
  'claude-haiku-4-5': { input: 1, output: 5 },
  'claude-3-5-haiku': { input: 0.8, output: 4 },
  'claude-3-haiku': { input: 0.25, output: 1.25 },
  'claude-3-opus': { input: 15, output: 75 },
};

/** Family prices for model ids newer than the table, so cost is estimated rather than silently zero. */
const FAMILY_PRICES: [RegExp, Price][] = [
  [/opus/, { input: 5, output: 25 }],
  [/sonnet/, { input: 3, output: 15 }],
  [/haiku/, { input: 1, output: 5 }],
];

const DATED_SUFFIX = /-(\d{8}|latest)$/;

export function priceFor(model: string): Price | undefined {
  // Exact ids only (after dropping a date), so claude-opus-4-7 is not priced as claude-opus-4.
  const known = PRICES[model.replace(DATED_SUFFIX, '')];
  if (known) return known;
  return FAMILY_PRICES.find(([pattern]) => pattern.test(model))?.[1];
}

/** Cache writes cost 1.25× input and cache reads 0.1× input, as Anthropic bills them. */
export function costUsd(model: string, usage: Usage): number {
  const price = priceFor(model);
  if (!price) return 0;
  const input =
    usage.inputTokens +
    (usage.cacheCreationInputTokens ?? 0) * 1.25 +
    (usage.cacheReadInputTokens ?? 0) * 0.1;
  const cost = (input * price.input + usage.outputTokens * price.output) / 1_000_000;
  return Math.round(cost * 1e8) / 1e8;
}
