import { FallbackChain, type FallbackChainOptions } from './fallback-chain.js';
import type { FallbackConfig, FallbackHandler, FallbackOperationStats } from './types.js';

/** Owns one fallback chain per operation (e.g. `chat`, `session_creation`). */
export class FallbackRegistry {
  private readonly chains = new Map<string, FallbackChain<unknown, unknown>>();

  constructor(private readonly defaults: FallbackChainOptions = {}) {}

  chain<I, R>(operation: string, options: FallbackChainOptions = {}): FallbackChain<I, R> {
    let chain = this.chains.get(operation);
    if (!chain) {
      chain = new FallbackChain<unknown, unknown>(operation, { ...this.defaults, ...options });
      this.chains.set(operation, chain);
    }
    return chain as FallbackChain<I, R>;
  }

  register<I, R>(operation: string, config: FallbackConfig, handler: FallbackHandler<I, R>): FallbackChain<I, R> {
    const chain = this.chain<I, R>(operation);
    chain.register(config, handler);
    return chain;
  }

  stats(): Record<string, FallbackOperationStats> {
    return Object.fromEntries([...this.chains].map(([name, chain]) => [name, chain.stats()]));
  }
}
