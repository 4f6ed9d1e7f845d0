import type { AppConfig } from '../config.js';
import { AnthropicProvider } from './anthropic.js';
import { SimulatedProvider } from './simulated.js';
import type { Provider } from './types.js';

export function createProvider(config: AppConfig): Provider {
  if (config.provider === 'anthropic') {
    // loadConfig guarantees a key for the anthropic provider.
    return new AnthropicProvider({ apiKey: config.anthropicApiKey ?? '', baseUrl: config.anthropicBaseUrl });
  }
  return new SimulatedProvider(config.simulatedChunkDelayMs);
}
