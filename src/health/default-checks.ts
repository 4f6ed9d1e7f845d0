import type { CacheBackendStatus } from '../coordination/cache/types.js';
import type { HealthCheckRegistry } from './check-registry.js';
import { eventLoopDelay, memoryStats } from './system-stats.js';

export interface DefaultCheckDeps {
  provider: { readonly name: string; readonly simulated: boolean; probe(signal: AbortSignal): Promise<void> };
  store: { readonly kind?: string; ping(): boolean };
  cache: { stats(): { backend: CacheBackendStatus } };
  activeSessions(): number;
  /** Host memory use in percent; default from /proc/meminfo or `os`. */
  memoryUsagePercent?: () => number;
  /** Event-loop delay p99 in ms since the previous reading; default `eventLoopDelay({ reset: true })`. */
  eventLoopDelayMs?: () => number;
  options?: DefaultCheckOptions;
}

export interface CheckTiming {
  intervalMs?: number;
  timeoutMs?: number;
}

export interface DefaultCheckOptions {
  /** Claude probe timing; default every 30 s with a 5 s timeout. */
  claude?: CheckTiming;
  /** Timing of the local checks (memory, sessions, event loop, store, redis); default every 30 s. */
  local?: CheckTiming;
  /** memory warns above this percent. Default 90. */
  memoryWarnPercent?: number;
  /** sessions warns above this many active sessions. Default 100. */
  sessionsWarnCount?: number;
  /** event_loop warns when the p99 delay exceeds this. Default 200 ms. */
  eventLoopWarnMs?: number;
}

export const DEFAULT_CHECK_THRESHOLDS = Object.freeze({ memoryWarnPercent: 90, sessionsWarnCount: 100, eventLoopWarnMs: 200 });

/**
 * Registers `claude`, `memory`, `sessions`, `event_loop`, `store` (critical) and, unless the cache runs
 * purely in memory, `redis`. Only the Claude check reaches the network, through the free `probe`.
 */
export function registerDefaultChecks(registry: HealthCheckRegistry, deps: DefaultCheckDeps): void {
  const options = deps.options ?? {};
  const local = options.local ?? {};
  const memoryWarn = options.memoryWarnPercent ?? DEFAULT_CHECK_THRESHOLDS.memoryWarnPercent;
  const sessionsWarn = options.sessionsWarnCount ?? DEFAULT_CHECK_THRESHOLDS.sessionsWarnCount;
  const eventLoopWarn = options.eventLoopWarnMs ?? DEFAULT_CHECK_THRESHOLDS.eventLoopWarnMs;
  const memoryUsage = deps.memoryUsagePercent ?? (() => memoryStats().usagePercent);
  const loopDelay = deps.eventLoopDelayMs ?? (() => eventLoopDelay({ reset: true }).p99_ms);
  const { provider } = deps;

  registry.registerHealthCheck(
    'claude',
    async (signal) => {
      // Not an outage, but not Claude either: say so wherever health is read.
      if (provider.simulated) return { status: 'warn', output: 'simulated provider: answers do not come from Claude' };
      const started = performance.now();
      await provider.probe(signal);
      return { status: 'pass', observedValue: Math.round(performance.now() - started), observedUnit: 'ms' };
    },
    { ...options.claude, componentType: 'component', componentId: provider.name, measurement: 'reachability' },
  );

  registry.registerHealthCheck(
    'memory',
    () => {
      const percent = Math.round(memoryUsage() * 10) / 10;
      return percent > memoryWarn
        ? { status: 'warn', output: `memory usage ${percent}% is above ${memoryWarn}%`, observedValue: percent, observedUnit: 'percent' }
        : { status: 'pass', observedValue: percent, observedUnit: 'percent' };
    },
    { ...local, componentType: 'system', measurement: 'utilization' },
  );

  registry.registerHealthCheck(
    'sessions',
    () => {
      const active = deps.activeSessions();
      return active > sessionsWarn
        ? { status: 'warn', output: `${active} active sessions (more than ${sessionsWarn})`, observedValue: active, observedUnit: 'sessions' }
        : { status: 'pass', observedValue: active, observedUnit: 'sessions' };
    },
    { ...local, componentType: 'component', measurement: 'active' },
  );

  registry.registerHealthCheck(
    'event_loop',
    () => {
      const p99 = loopDelay();
      return p99 > eventLoopWarn
        ? { status: 'warn', output: `event loop delay p99 ${p99} ms is above ${eventLoopWarn} ms`, observedValue: p99, observedUnit: 'ms' }
        : { status: 'pass', observedValue: p99, observedUnit: 'ms' };
    },
    { ...local, componentType: 'system', measurement: 'delay' },
  );

  registry.registerHealthCheck(
    'store',
    () => (deps.store.ping() ? { status: 'pass' } : { status: 'fail', output: 'the session store cannot read and write' }),
    { ...local, critical: true, componentType: 'datastore', ...(deps.store.kind !== undefined ? { componentId: deps.store.kind } : {}), measurement: 'writable' },
  );

  if (deps.cache.stats().backend !== 'memory') {
    registry.registerHealthCheck(
      'redis',
      () =>
        deps.cache.stats().backend === 'redis_degraded'
          ? { status: 'warn', output: 'Redis unreachable: the fallback cache runs in memory' }
          : { status: 'pass' },
      { ...local, componentType: 'datastore', componentId: 'redis', measurement: 'connectivity' },
    );
  }
}
