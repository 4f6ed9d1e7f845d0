import { CircuitBreaker } from './circuit-breaker.js';
import { sameConfig } from './config.js';
import type {
  CircuitBreakerConfig,
  CircuitBreakerOptions,
  CircuitBreakerStats,
  CircuitTransition,
  TransitionListener,
} from './types.js';

export type DefaultBreakerName = 'claude_sdk' | 'session_operations';

/** The two breakers the server runs with: the Claude API, and session storage. */
export const DEFAULT_BREAKERS: Readonly<Record<DefaultBreakerName, Readonly<CircuitBreakerConfig>>> = Object.freeze({
  claude_sdk: Object.freeze({ failureThreshold: 3, timeoutSeconds: 30, successThreshold: 2, halfOpenMaxCalls: 1 }),
  session_operations: Object.freeze({ failureThreshold: 5, timeoutSeconds: 60, successThreshold: 2, halfOpenMaxCalls: 1 }),
});

export interface RegisterOptions extends CircuitBreakerOptions {
  /** Swap in a new breaker (fresh state, closed) when the name exists with a different config. */
  replace?: boolean;
}

interface Entry {
  breaker: CircuitBreaker;
  unsubscribe: () => void;
}

/** Breakers by name, with one place to watch all their transitions, present and future. */
export class CircuitBreakerRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Set<TransitionListener>();
  private readonly forward: TransitionListener = (transition: CircuitTransition) => {
    for (const listener of this.listeners) {
      try {
        listener(transition);
      } catch {
        // One failing observer must not keep the others from hearing about the transition.
      }
    }
  };

  /** `defaults` (e.g. a test clock) apply to every breaker registered without its own options. */
  constructor(private readonly defaults: CircuitBreakerOptions = {}) {}

  /**
   * Returns the breaker registered under `name`: the existing one if its config is equal (options are
   * not compared), else a new one. A different config for an existing name is a conflict — two callers
   * disagreeing about one circuit — and throws unless `replace` is set. Replacing detaches the old
   * breaker from the registry; whoever still holds it keeps a breaker nobody else sees, so re-fetch.
   */
  register(name: string, config: CircuitBreakerConfig, options: RegisterOptions = {}): CircuitBreaker {
    const { replace = false, ...breakerOptions } = options;
    const existing = this.entries.get(name);
    if (existing && !replace) {
      if (sameConfig(existing.breaker.config, config)) return existing.breaker;
      throw new Error(
        `Circuit breaker '${name}' is already registered with a different config ` +
          `(${JSON.stringify(existing.breaker.config)}); pass { replace: true } to replace it`,
      );
    }
    const breaker = new CircuitBreaker(name, config, { ...this.defaults, ...breakerOptions });
    existing?.unsubscribe();
    this.entries.set(name, { breaker, unsubscribe: breaker.onTransition(this.forward) });
    return breaker;
  }

  get(name: string): CircuitBreaker | undefined {
    return this.entries.get(name)?.breaker;
  }

  /** For names the program itself registered: a missing one is a wiring bug, reported by name. */
  require(name: string): CircuitBreaker {
    const breaker = this.get(name);
    if (!breaker) {
      const known = [...this.entries.keys()].map((n) => `'${n}'`).join(', ') || 'none';
      throw new Error(`No circuit breaker registered as '${name}' (registered: ${known})`);
    }
    return breaker;
  }

  list(): CircuitBreaker[] {
    return [...this.entries.values()].map((entry) => entry.breaker);
  }

  stats(): Record<string, CircuitBreakerStats> {
    return Object.fromEntries([...this.entries].map(([name, entry]) => [name, entry.breaker.stats()]));
  }

  /** False when no breaker has that name. */
  reset(name: string): boolean {
    const breaker = this.get(name);
    breaker?.reset();
    return breaker !== undefined;
  }

  resetAll(): void {
    for (const entry of this.entries.values()) entry.breaker.reset();
  }

  /** Hears every transition of every breaker in this registry, including ones registered later. */
  onTransition(listener: TransitionListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }
}

/** Registers `claude_sdk` and `session_operations`, each from DEFAULT_BREAKERS with overrides on top. */
export function registerDefaultBreakers(
  registry: CircuitBreakerRegistry,
  overrides: Partial<Record<DefaultBreakerName, Partial<CircuitBreakerConfig>>> = {},
): Record<DefaultBreakerName, CircuitBreaker> {
  return {
    claude_sdk: registry.register('claude_sdk', withDefaults('claude_sdk', overrides.claude_sdk)),
    session_operations: registry.register('session_operations', withDefaults('session_operations', overrides.session_operations)),
  };
}

/** An override explicitly `undefined` (an unset setting) keeps the default rather than erasing it. */
function withDefaults(name: DefaultBreakerName, override: Partial<CircuitBreakerConfig> = {}): CircuitBreakerConfig {
  const config: CircuitBreakerConfig = { ...DEFAULT_BREAKERS[name] };
  for (const [key, value] of Object.entries(override)) {
    if (value !== undefined) (config as unknown as Record<string, unknown>)[key] = value;
  }
  return config;
}
