import { createRequire } from 'node:module';
import type AnthropicSdk from '@anthropic-ai/sdk';

const requireModule = createRequire(import.meta.url);
let loaded: typeof AnthropicSdk | undefined;

/**
 * The official SDK, loaded on first use (as ioredis and yaml are): about 20 MB of resident memory that
 * a server routing through the gateway (CONFIG_FILE) never needs. Always this one copy (the CommonJS
 * build), so `instanceof` checks see the classes the SDK actually threw.
 */
export function anthropicSdk(): typeof AnthropicSdk {
  loaded ??= requireModule('@anthropic-ai/sdk') as typeof AnthropicSdk;
  return loaded;
}

/** The SDK if something loaded it already: an error cannot come from an SDK that never ran. */
export function loadedAnthropicSdk(): typeof AnthropicSdk | undefined {
  return loaded;
}
