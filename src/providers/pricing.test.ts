import { describe, it, expect } from 'vitest';
import { costUsd, priceFor } from './pricing.js';

describe('priceFor', () => {
  it('resolves dated model ids through their undated prefix', () => {
    expect(priceFor('claude-sonnet-4-5-20250929')).toEqual(priceFor('claude-sonnet-4-5'));
    expect(priceFor('claude-sonnet-4-5-20250929')).toEqual({ input: 3, output: 15 });
    expect(priceFor('claude-3-5-haiku-20241022')).toEqual({ input: 0.8, output: 4 });
    expect(priceFor('claude-3-haiku-20240307')).toEqual({ input: 0.25, output: 1.25 });
  });

  it('matches whole ids, so an id never takes the price of a shorter one', () => {
    // 'claude-opus-4' is a prefix of 'claude-opus-4-5' and of 'claude-opus-4-7'; neither takes its price.
    expect(priceFor('claude-opus-4-5-20251101')).toEqual({ input: 5, output: 25 });
    expect(priceFor('claude-opus-4-1-20250805')).toEqual({ input: 15, output: 75 });
    expect(priceFor('claude-opus-4-20250514')).toEqual({ input: 15, output: 75 });
    expect(priceFor('claude-opus-4-7')).toEqual({ input: 5, output: 25 });
    expect(priceFor('claude-opus-4-10')).toEqual({ input: 5, output: 25 });
    // -latest aliases resolve like dated ids.
    expect(priceFor('claude-3-5-haiku-latest')).toEqual({ input: 0.8, output: 4 });
    expect(priceFor('claude-3-haiku-latest')).toEqual({ input: 0.25, output: 1.25 });
  });

  it('falls back to the family price for ids newer than the table', () => {
    expect(priceFor('claude-sonnet-9')).toEqual({ input: 3, output: 15 });
    expect(priceFor('claude-opus-7-20300101')).toEqual({ input: 5, output: 25 });
    expect(priceFor('claude-haiku-6')).toEqual({ input: 1, output: 5 });
  });

  it('returns undefined for a model of no known family', () => {
    expect(priceFor('gpt-4o')).toBeUndefined();
    expect(priceFor('simulated')).toBeUndefined();
    expect(priceFor('')).toBeUndefined();
  });
});

describe('costUsd', () => {
  it('is 0 for an unknown model whatever the usage', () => {
    expect(costUsd('simulated', { inputTokens: 1_000_000, outputTokens: 1_000_000 })).toBe(0);
    expect(costUsd('mystery-model', { inputTokens: 5, outputTokens: 5, cacheReadInputTokens: 9 })).toBe(0);
  });

  it('is 0 for zero usage', () => {
    expect(costUsd('claude-sonnet-4-5', { inputTokens: 0, outputTokens: 0 })).toBe(0);
  });

  it('charges input and output per million tokens', () => {
    // Sonnet 4.5: $3 in, $15 out per million.
    expect(costUsd('claude-sonnet-4-5-20250929', { inputTokens: 1_000_000, outputTokens: 0 })).toBeCloseTo(3, 10);
    expect(costUsd('claude-sonnet-4-5-20250929', { inputTokens: 0, outputTokens: 1_000_000 })).toBeCloseTo(15, 10);
    // 1000 in + 500 out on Opus 4.1 ($15 / $75): 0.015 + 0.0375.
    expect(costUsd('claude-opus-4-1', { inputTokens: 1000, outputTokens: 500 })).toBeCloseTo(0.0525, 10);
  });

  it('bills cache creation at 1.25x and cache reads at 0.1x the input price', () => {
    const model = 'claude-sonnet-4-5';
    const base = costUsd(model, { inputTokens: 0, outputTokens: 0, cacheCreationInputTokens: 1_000_000 });
    expect(base).toBeCloseTo(3 * 1.25, 10);
    const read = costUsd(model, { inputTokens: 0, outputTokens: 0, cacheReadInputTokens: 1_000_000 });
    expect(read).toBeCloseTo(3 * 0.1, 10);

    // All four kinds together on Haiku 4.5 ($1 in, $5 out):
    // (2000 + 4000 * 1.25 + 10000 * 0.1) * 1 + 300 * 5 = 8000 + 1500 = 9500 micro-dollars.
    expect(
      costUsd('claude-haiku-4-5-20251001', {
        inputTokens: 2000,
        outputTokens: 300,
        cacheCreationInputTokens: 4000,
        cacheReadInputTokens: 10_000,
      }),
    ).toBeCloseTo(0.0095, 10);
  });

  it('treats missing cache fields as zero', () => {
    const model = 'claude-3-5-sonnet-20241022';
    expect(costUsd(model, { inputTokens: 123, outputTokens: 45 })).toBe(
      costUsd(model, { inputTokens: 123, outputTokens: 45, cacheCreationInputTokens: 0, cacheReadInputTokens: 0 }),
    );
  });

  it('estimates a cost for unknown future ids of a known family', () => {
    expect(costUsd('claude-sonnet-9', { inputTokens: 1_000_000, outputTokens: 1_000_000 })).toBeCloseTo(18, 10);
  });

  it('rounds to whole 1e-8 dollars', () => {
    // One cache-write token on Haiku 3: 1.25 * $0.25 / 1e6 = 3.125e-7, which rounds to 3.1e-7.
    expect(costUsd('claude-3-haiku', { inputTokens: 0, outputTokens: 0, cacheCreationInputTokens: 1 })).toBe(3.1e-7);
    // Exact values on the grid are kept: one input token on Haiku 3 is 2.5e-7.
    expect(costUsd('claude-3-haiku', { inputTokens: 1, outputTokens: 0 })).toBe(2.5e-7);
  });
});
