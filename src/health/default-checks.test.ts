import { describe, expect, it, vi } from 'vitest';
import type { CacheBackendStatus } from '../coordination/cache/types.js';
import { HealthCheckRegistry } from './check-registry.js';
import { registerDefaultChecks, type DefaultCheckDeps } from './default-checks.js';
import { CpuSampler, diskUsagePercent, eventLoopDelay, memoryStats, systemStats } from './system-stats.js';

function deps(overrides: Partial<DefaultCheckDeps> = {}, backend: CacheBackendStatus = 'memory') {
  const state = { backend, ping: true, active: 1, memory: 50, loop: 10 };
  const base: DefaultCheckDeps = {
    provider: { name: 'anthropic', simulated: false, probe: vi.fn(async () => {}) },
    store: { kind: 'sqlite', ping: () => state.ping },
    cache: { stats: () => ({ backend: state.backend }) },
    activeSessions: () => state.active,
    memoryUsagePercent: () => state.memory,
    eventLoopDelayMs: () => state.loop,
    ...overrides,
  };
  return { state, base };
}

describe('registerDefaultChecks', () => {
  it('registers claude, memory, sessions, event_loop and a critical store check (no redis for a memory cache)', async () => {
    const registry = new HealthCheckRegistry();
    const { base } = deps();
    registerDefaultChecks(registry, base);
    expect(registry.names()).toEqual(['claude', 'memory', 'sessions', 'event_loop', 'store']);
    await registry.runAll();
    const results = registry.results();
    expect(Object.values(results).every((r) => r.status === 'pass')).toBe(true);
    expect(results.store?.critical).toBe(true);
    expect(results.claude?.critical).toBe(false);
    expect(base.provider.probe).toHaveBeenCalledTimes(1);
    expect((vi.mocked(base.provider.probe).mock.calls[0]?.[0])).toBeInstanceOf(AbortSignal);
  });

  it('warns that a simulated provider is not Claude, without probing it', async () => {
    const registry = new HealthCheckRegistry();
    const probe = vi.fn(async () => {});
    registerDefaultChecks(registry, deps({ provider: { name: 'simulated', simulated: true, probe } }).base);
    await registry.runAll();
    expect(registry.result('claude')).toMatchObject({ status: 'warn', output: expect.stringMatching(/simulated/), componentId: 'simulated' });
    expect(probe).not.toHaveBeenCalled();
  });

  it('fails claude when the probe throws', async () => {
    const registry = new HealthCheckRegistry();
    const probe = vi.fn(async () => {
      throw new Error('401 invalid key');
    });
    registerDefaultChecks(registry, deps({ provider: { name: 'anthropic', simulated: false, probe } }).base);
    await registry.runAll();
    expect(registry.result('claude')).toMatchObject({ status: 'fail', output: '401 invalid key' });
  });

  it('warns above the thresholds (defaults and configured)', async () => {
    const registry = new HealthCheckRegistry();
    const { state, base } = deps();
    registerDefaultChecks(registry, { ...base, options: { sessionsWarnCount: 5 } });
    state.memory = 91;
    state.active = 6;
    state.loop = 201;
    await registry.runAll();
    expect(registry.result('memory')).toMatchObject({ status: 'warn', observedValue: 91 });
    expect(registry.result('sessions')).toMatchObject({ status: 'warn', observedValue: 6 });
    expect(registry.result('event_loop')).toMatchObject({ status: 'warn', observedValue: 201 });
  });

  it('fails store when ping is false', async () => {
    const registry = new HealthCheckRegistry();
    const { state, base } = deps();
    registerDefaultChecks(registry, base);
    state.ping = false;
    await registry.runAll();
    expect(registry.result('store')).toMatchObject({ status: 'fail', critical: true });
  });

  it('adds a redis check when the cache is not memory-only; degraded Redis warns', async () => {
    const registry = new HealthCheckRegistry();
    const { state, base } = deps({}, 'redis');
    registerDefaultChecks(registry, base);
    await registry.runAll();
    expect(registry.result('redis')?.status).toBe('pass');
    state.backend = 'redis_degraded';
    await registry.runAll();
    expect(registry.result('redis')).toMatchObject({ status: 'warn', output: expect.stringContaining('Redis') });
  });

  it('applies the configured Claude timing', async () => {
    vi.useFakeTimers();
    try {
      const registry = new HealthCheckRegistry();
      let signal: AbortSignal | undefined;
      const probe = vi.fn((s: AbortSignal) => {
        signal = s;
        return new Promise<void>(() => {});
      });
      registerDefaultChecks(registry, { ...deps().base, provider: { name: 'anthropic', simulated: false, probe }, options: { claude: { timeoutMs: 50, intervalMs: 100 } } });
      registry.start();
      await vi.advanceTimersByTimeAsync(50);
      expect(signal?.aborted).toBe(true);
      expect(registry.result('claude')?.status).toBe('fail');
      registry.stop();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('system stats', () => {
  it('returns the documented shape with sane values', () => {
    const stats = systemStats(process.cwd(), new CpuSampler());
    expect(stats.cpu.count).toBeGreaterThan(0);
    expect(stats.cpu.usage_percent).toBeGreaterThanOrEqual(0);
    expect(stats.cpu.usage_percent).toBeLessThanOrEqual(100);
    expect(stats.cpu.load_average).toHaveLength(3);
    expect(stats.memory.total_gb).toBeGreaterThan(0);
    expect(stats.memory.available_gb).toBeLessThanOrEqual(stats.memory.total_gb);
    expect(stats.memory.process_vms_mb).toBeGreaterThanOrEqual(stats.memory.process_rss_mb);
    expect(stats.disk.usage_percent).toBeGreaterThanOrEqual(0);
  });

  it('computes CPU usage from the delta between samples', () => {
    const samples = [
      { idle: 100, total: 200 },
      { idle: 150, total: 300 },
      { idle: 150, total: 300 },
    ];
    let i = 0;
    const sampler = new CpuSampler(() => samples[Math.min(i++, samples.length - 1)] ?? { idle: 0, total: 0 });
    expect(sampler.usagePercent()).toBe(50); // since boot: 100 busy of 200
    expect(sampler.usagePercent()).toBe(50); // 50 busy of 100
    expect(sampler.usagePercent()).toBe(0); // no time passed
  });

  it('reports null disk usage for an unreadable path', () => {
    expect(diskUsagePercent('/definitely/not/here')).toBeNull();
  });

  it('memory and event-loop readings are numbers', () => {
    const memory = memoryStats();
    expect(memory.usagePercent).toBeGreaterThanOrEqual(0);
    const delay = eventLoopDelay({ reset: true });
    expect(typeof delay.p99_ms).toBe('number');
    expect(typeof delay.max_ms).toBe('number');
  });
});
