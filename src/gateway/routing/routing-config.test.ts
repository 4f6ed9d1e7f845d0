import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { DEFAULT_BREAKER, RoutingConfigError, defaultRoutingConfig, loadRoutingConfig } from './routing-config.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'routing-config-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

let counter = 0;
function write(ext: string, content: string): string {
  const file = path.join(dir, `config-${++counter}${ext}`);
  fs.writeFileSync(file, content);
  return file;
}
const writeJson = (data: unknown) => write('.json', JSON.stringify(data, null, 2));
const writeYaml = (data: unknown) => write('.yaml', toYaml(data));

const ANTHROPIC_KEY = 'sk-ant-test-primary-0123456789';
const BACKUP_KEY = 'sk-backup-test-9876543210';
const INLINE_KEY = 'sk-inline-test-5555555555';
const ENV = { ANTHROPIC_API_KEY: ANTHROPIC_KEY, BACKUP_KEY };

/** The example from the routing documentation. */
const EXAMPLE = {
  defaults: {
    breaker: { failure_threshold: 3, timeout_seconds: 30, success_threshold: 2, half_open_max_calls: 1 },
    retries: 2,
  },
  routes: {
    'claude-sonnet-4-6': {
      targets: [
        {
          name: 'primary',
          base_url: 'https://api.anthropic.com/',
          api_key_env: 'ANTHROPIC_API_KEY',
          model: 'claude-sonnet-4-6',
          breaker: { failure_threshold: 5 },
        },
        { name: 'backup', base_url: 'https://backup.example.com', api_key_env: 'BACKUP_KEY', model: 'claude-haiku-4-5' },
      ],
      context_fallback: {
        name: 'long-context',
        base_url: 'https://api.anthropic.com',
        api_key_env: 'ANTHROPIC_API_KEY',
        model: 'claude-sonnet-4-6-1m',
      },
    },
    '*': {
      targets: [{ name: 'anthropic', base_url: 'http://localhost:8080//', api_key: INLINE_KEY }],
    },
  },
};

function routingError(file: string, env: NodeJS.ProcessEnv = ENV): RoutingConfigError {
  try {
    loadRoutingConfig(file, env);
  } catch (error) {
    expect(error).toBeInstanceOf(RoutingConfigError);
    return error as RoutingConfigError;
  }
  throw new Error('expected loadRoutingConfig to throw');
}

/** A deep copy of EXAMPLE changed by `edit`. */
function example(edit: (c: typeof EXAMPLE & Record<string, unknown>) => void): unknown {
  const copy = structuredClone(EXAMPLE) as typeof EXAMPLE & Record<string, unknown>;
  edit(copy);
  return copy;
}

describe('loadRoutingConfig', () => {
  it('loads the documented example into camelCase routes', () => {
    const config = loadRoutingConfig(writeJson(EXAMPLE), ENV);
    expect([...config.routes.keys()]).toEqual(['claude-sonnet-4-6', '*']);
    const route = config.routes.get('claude-sonnet-4-6');
    expect(route).toEqual({
      model: 'claude-sonnet-4-6',
      retries: 2,
      targets: [
        {
          name: 'primary',
          baseUrl: 'https://api.anthropic.com',
          apiKey: ANTHROPIC_KEY,
          model: 'claude-sonnet-4-6',
          breaker: { failureThreshold: 5, timeoutSeconds: 30, successThreshold: 2, halfOpenMaxCalls: 1 },
        },
        {
          name: 'backup',
          baseUrl: 'https://backup.example.com',
          apiKey: BACKUP_KEY,
          model: 'claude-haiku-4-5',
          breaker: { failureThreshold: 3, timeoutSeconds: 30, successThreshold: 2, halfOpenMaxCalls: 1 },
        },
      ],
      contextFallback: {
        name: 'long-context',
        baseUrl: 'https://api.anthropic.com',
        apiKey: ANTHROPIC_KEY,
        model: 'claude-sonnet-4-6-1m',
        breaker: { failureThreshold: 3, timeoutSeconds: 30, successThreshold: 2, halfOpenMaxCalls: 1 },
      },
    });
    const wildcard = config.routes.get('*');
    expect(wildcard?.targets[0]?.baseUrl).toBe('http://localhost:8080');
    expect(wildcard?.targets[0]).not.toHaveProperty('model');
    expect(wildcard?.contextFallback).toBeUndefined();
  });

  it('JSON, .yaml and .yml files give the same config', () => {
    const fromJson = loadRoutingConfig(writeJson(EXAMPLE), ENV);
    const fromYaml = loadRoutingConfig(writeYaml(EXAMPLE), ENV);
    const fromYml = loadRoutingConfig(write('.yml', toYaml(EXAMPLE)), ENV);
    expect([...fromYaml.routes]).toEqual([...fromJson.routes]);
    expect([...fromYml.routes]).toEqual([...fromJson.routes]);
  });

  it('reads hand-written YAML with comments', () => {
    const file = write(
      '.yaml',
      [
        '# routing',
        'routes:',
        '  claude-sonnet-4-6:   # the model a client asks for',
        '    targets:',
        '      - name: primary',
        '        base_url: https://api.anthropic.com',
        '        api_key_env: ANTHROPIC_API_KEY',
        '',
      ].join('\n'),
    );
    const route = loadRoutingConfig(file, ENV).resolve('claude-sonnet-4-6');
    expect(route?.targets.map((t) => t.name)).toEqual(['primary']);
    expect(route?.retries).toBe(2);
  });

  it('resolve prefers the exact model name, then "*"', () => {
    const config = loadRoutingConfig(writeJson(EXAMPLE), ENV);
    expect(config.resolve('claude-sonnet-4-6')?.model).toBe('claude-sonnet-4-6');
    expect(config.resolve('claude-opus-4-1')?.model).toBe('*');
    expect(config.resolve('claude-sonnet-4-6-1m')?.model).toBe('*');
  });

  it('resolve gives undefined for an unrouted model when there is no "*" route', () => {
    const config = loadRoutingConfig(
      writeJson(example((c) => delete (c.routes as Record<string, unknown>)['*'])),
      ENV,
    );
    expect(config.resolve('claude-opus-4-1')).toBeUndefined();
    expect(config.resolve('claude-sonnet-4-6')).toBeDefined();
  });

  it('takes keys from the environment (trimmed) or inline', () => {
    const config = loadRoutingConfig(writeJson(EXAMPLE), { ANTHROPIC_API_KEY: `  ${ANTHROPIC_KEY}\n`, BACKUP_KEY });
    expect(config.resolve('claude-sonnet-4-6')?.targets[0]?.apiKey).toBe(ANTHROPIC_KEY);
    expect(config.resolve('other')?.targets[0]?.apiKey).toBe(INLINE_KEY);
  });

  it('a missing (or blank) environment variable names the variable, never a key', () => {
    const error = routingError(writeJson(EXAMPLE), { ANTHROPIC_API_KEY: ANTHROPIC_KEY, BACKUP_KEY: '  ' });
    expect(error.problems).toEqual([
      'routes["claude-sonnet-4-6"].targets[1].api_key_env: environment variable BACKUP_KEY is not set',
    ]);
    expect(error.message).toContain('BACKUP_KEY is not set');
    for (const secret of [ANTHROPIC_KEY, BACKUP_KEY, INLINE_KEY]) expect(error.message).not.toContain(secret);
  });

  it('reports every missing variable at once', () => {
    const error = routingError(writeJson(EXAMPLE), {});
    expect(error.problems).toEqual([
      'routes["claude-sonnet-4-6"].targets[0].api_key_env: environment variable ANTHROPIC_API_KEY is not set',
      'routes["claude-sonnet-4-6"].targets[1].api_key_env: environment variable BACKUP_KEY is not set',
      'routes["claude-sonnet-4-6"].context_fallback.api_key_env: environment variable ANTHROPIC_API_KEY is not set',
    ]);
  });

  it('lists every problem with its path, and never echoes a key', () => {
    const bad = example((c) => {
      const route = c.routes['claude-sonnet-4-6'];
      const [primary, backup] = route.targets as Record<string, unknown>[];
      primary!['api_key'] = INLINE_KEY; // together with api_key_env
      primary!['bse_url'] = 'https://typo.example.com'; // unknown key
      backup!['base_url'] = `ftp://${BACKUP_KEY}@files.example.com`; // not http(s); credentials must not leak
      backup!['name'] = 'primary'; // duplicate
      (route.context_fallback as Record<string, unknown>)['name'] = 'primary'; // duplicate with a target
      (c.routes as Record<string, unknown>)['*'] = { targets: [] };
      (c.routes as Record<string, unknown>)['claude-haiku-4-5'] = {
        targets: [{ name: 'x', base_url: 'not a url', api_key: 42 }],
        retires: 3,
      };
      c.defaults.retries = 11;
    });
    const error = routingError(writeYaml(bad));
    expect(error.problems).toEqual(
      expect.arrayContaining([
        'routes["claude-sonnet-4-6"].targets[0].bse_url: unknown key (check its spelling)',
        'routes["claude-sonnet-4-6"].targets[1].base_url: must be an http(s) URL',
        'routes["claude-sonnet-4-6"].targets[1].name: duplicate target name "primary" (already used by targets[0])',
        'routes["claude-sonnet-4-6"].context_fallback.name: duplicate target name "primary" (already used by targets[0])',
        'routes["*"].targets: needs at least one target',
        'routes["claude-haiku-4-5"].targets[0].base_url: must be an http(s) URL',
        'routes["claude-haiku-4-5"].targets[0].api_key: must be a string',
        'routes["claude-haiku-4-5"].retires: unknown key (check its spelling)',
        'defaults.retries: must be between 0 and 10',
      ]),
    );
    expect(error.message).toMatch(/^Invalid routing config .*config-\d+\.yaml:\n {2}- /);
    for (const secret of [ANTHROPIC_KEY, BACKUP_KEY, INLINE_KEY, '42']) expect(error.message).not.toContain(secret);
  });

  it('refuses api_key together with api_key_env, and a target with neither', () => {
    const bad = example((c) => {
      const [primary, backup] = c.routes['claude-sonnet-4-6'].targets as Record<string, unknown>[];
      primary!['api_key'] = INLINE_KEY;
      delete backup!['api_key_env'];
    });
    const error = routingError(writeJson(bad));
    expect(error.problems).toEqual([
      'routes["claude-sonnet-4-6"].targets[0]: give either api_key or api_key_env, not both',
      'routes["claude-sonnet-4-6"].targets[1]: needs api_key or api_key_env',
    ]);
    expect(error.message).not.toContain(INLINE_KEY);
  });

  it('does not name a key pasted into api_key_env', () => {
    const bad = example((c) => {
      (c.routes['claude-sonnet-4-6'].targets[0] as Record<string, unknown>)['api_key_env'] = ANTHROPIC_KEY;
    });
    const error = routingError(writeJson(bad));
    expect(error.problems).toEqual([
      'routes["claude-sonnet-4-6"].targets[0].api_key_env: must be an environment variable name, like ANTHROPIC_API_KEY',
    ]);
    expect(error.message).not.toContain(ANTHROPIC_KEY);
  });

  it('requires at least one route, and names missing or mistyped sections', () => {
    expect(routingError(writeJson({ routes: {} })).problems).toEqual(['routes: needs at least one route']);
    expect(routingError(writeJson({ defaults: {} })).problems).toEqual(['routes: is required']);
    expect(routingError(writeJson({ routes: [] })).problems).toEqual(['routes: must be a mapping']);
    expect(routingError(writeJson({ routes: { m: { targets: 'x' } } })).problems).toEqual(['routes["m"].targets: must be a list']);
    expect(routingError(write('.yaml', '')).problems).toEqual(['(top level): must be a mapping']);
    expect(routingError(writeJson({ routes: { m: {} }, extra: 1 })).problems).toEqual([
      'routes["m"].targets: is required',
      'extra: unknown key (check its spelling)',
    ]);
  });

  it('validates retries and breaker settings', () => {
    const bad = example((c) => {
      c.defaults.retries = 1.5;
      (c.defaults.breaker as Record<string, unknown>)['failure_threshold'] = 0;
      (c.defaults.breaker as Record<string, unknown>)['half_open_max_call'] = 1;
      (c.routes['claude-sonnet-4-6'].targets[0]!.breaker as Record<string, unknown>)['timeout_seconds'] = -1;
    });
    expect(routingError(writeJson(bad)).problems).toEqual([
      'defaults.breaker.failure_threshold: must be at least 1',
      'defaults.breaker.half_open_max_call: unknown key (check its spelling)',
      'defaults.retries: must be a whole number',
      'routes["claude-sonnet-4-6"].targets[0].breaker.timeout_seconds: must be 0 or more',
    ]);
  });

  it('reports a JSON or YAML syntax error by position only', () => {
    const json = routingError(write('.json', `{\n  "routes": { "api_key": ${ANTHROPIC_KEY} }\n}`));
    expect(json.problems).toHaveLength(1);
    expect(json.problems[0]).toMatch(/^not valid JSON( at line 2, column \d+)?$/);
    expect(json.message).not.toContain(ANTHROPIC_KEY);

    const yaml = routingError(write('.yaml', `routes: {a: b\napi_key: ${ANTHROPIC_KEY}\n  x: : y`));
    expect(yaml.problems).toHaveLength(1);
    expect(yaml.problems[0]).toMatch(/^not valid YAML at line \d+, column \d+ \([A-Z_]+\)$/);
    expect(yaml.message).not.toContain(ANTHROPIC_KEY);
  });

  it('refuses unreadable files and unknown extensions', () => {
    expect(routingError(path.join(dir, 'missing.yaml')).problems).toEqual(['cannot read it (ENOENT)']);
    expect(routingError(write('.toml', 'routes = 1')).problems).toEqual(['unsupported file type ".toml": use .json, .yaml or .yml']);
  });

  it('lets a route override the default retries', () => {
    const config = loadRoutingConfig(
      writeJson(example((c) => {
        c.defaults.retries = 0;
        (c.routes['*'] as Record<string, unknown>)['retries'] = 10;
      })),
      ENV,
    );
    expect(config.resolve('claude-sonnet-4-6')?.retries).toBe(0);
    expect(config.resolve('other')?.retries).toBe(10);
  });
});

describe('breaker settings merge', () => {
  const target = (name: string, breaker?: Record<string, unknown>) => ({
    name,
    base_url: 'https://api.example.com',
    api_key: INLINE_KEY,
    ...(breaker ? { breaker } : {}),
  });

  it('uses the project defaults when nothing is given', () => {
    const config = loadRoutingConfig(writeYaml({ routes: { '*': { targets: [target('a')] } } }), {});
    expect(config.resolve('x')?.targets[0]?.breaker).toEqual({
      failureThreshold: 3,
      timeoutSeconds: 30,
      successThreshold: 2,
      halfOpenMaxCalls: 1,
    });
    expect(config.resolve('x')?.targets[0]?.breaker).toEqual(DEFAULT_BREAKER);
  });

  it('project defaults ← file defaults ← per-target overrides, field by field', () => {
    const file = writeYaml({
      defaults: { breaker: { failure_threshold: 10, timeout_seconds: 5 } },
      routes: {
        '*': {
          targets: [target('plain'), target('tuned', { timeout_seconds: 60, half_open_max_calls: 4 })],
        },
      },
    });
    const [plain, tuned] = loadRoutingConfig(file, {}).resolve('x')?.targets ?? [];
    expect(plain?.breaker).toEqual({ failureThreshold: 10, timeoutSeconds: 5, successThreshold: 2, halfOpenMaxCalls: 1 });
    expect(tuned?.breaker).toEqual({ failureThreshold: 10, timeoutSeconds: 60, successThreshold: 2, halfOpenMaxCalls: 4 });
  });

  it('a sliding window from the defaults is inherited, and replaced whole by a target', () => {
    const file = writeYaml({
      defaults: { breaker: { sliding_window: { type: 'count', size: 20, minimum_calls: 10, failure_rate_threshold: 50 } } },
      routes: {
        '*': {
          targets: [
            target('inherits'),
            target('own', { sliding_window: { type: 'time', size: 30, minimum_calls: 5, failure_rate_threshold: 25, slow_call_duration_ms: 2000, slow_call_rate_threshold: 80 } }),
          ],
        },
      },
    });
    const [inherits, own] = loadRoutingConfig(file, {}).resolve('x')?.targets ?? [];
    expect(inherits?.breaker.slidingWindow).toEqual({ type: 'count', size: 20, minimumCalls: 10, failureRateThreshold: 50 });
    expect(own?.breaker.slidingWindow).toEqual({
      type: 'time',
      size: 30,
      minimumCalls: 5,
      failureRateThreshold: 25,
      slowCallDurationMs: 2000,
      slowCallRateThreshold: 80,
    });
    // Targets never share one mutable window object.
    expect(inherits?.breaker.slidingWindow).not.toBe(own?.breaker.slidingWindow);
  });

  it('refuses a count window whose minimum exceeds its size, alongside other window problems', () => {
    const file = writeYaml({
      routes: { '*': { targets: [target('a', { sliding_window: { type: 'count', size: 5, minimum_calls: 10, failure_rate_threshold: 0 } })] } },
    });
    expect(routingError(file).problems).toEqual([
      'routes["*"].targets[0].breaker.sliding_window.failure_rate_threshold: must be a percentage in (0, 100]',
      'routes["*"].targets[0].breaker.sliding_window.minimum_calls: must not exceed the window size',
    ]);
  });
});

describe('defaultRoutingConfig', () => {
  it('routes every model to one "anthropic" target with the project breaker defaults', () => {
    const config = defaultRoutingConfig('https://api.anthropic.com/', ANTHROPIC_KEY);
    expect([...config.routes.keys()]).toEqual(['*']);
    const route = config.resolve('claude-sonnet-4-6');
    expect(route).toBe(config.resolve('anything-else'));
    expect(route).toEqual({
      model: '*',
      retries: 2,
      targets: [
        {
          name: 'anthropic',
          baseUrl: 'https://api.anthropic.com',
          apiKey: ANTHROPIC_KEY,
          breaker: { failureThreshold: 3, timeoutSeconds: 30, successThreshold: 2, halfOpenMaxCalls: 1 },
        },
      ],
    });
    expect(route?.targets[0]).not.toHaveProperty('model');
    expect(route?.contextFallback).toBeUndefined();
  });
});
