import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { describe, it, expect } from 'vitest';
import { ConfigError, SETTINGS, helpText, loadConfig } from './config.js';

/** loadConfig over an explicit env, so the test process's own environment never leaks in. */
function load(env: Record<string, string> = {}) {
  return loadConfig(env);
}

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected loadConfig to throw');
}

describe('loadConfig defaults', () => {
  it('uses the documented defaults with an empty environment', () => {
    const config = load();
    expect(config.host).toBe('127.0.0.1');
    expect(config.port).toBe(8989);
    expect(config.logLevel).toBe('info');
    expect(config.databasePath).toBe('./data/chat.db');
    expect(config.anthropicApiKey).toBeUndefined();
    expect(config.anthropicBaseUrl).toBe('https://api.anthropic.com');
    expect(config.defaultMaxTokens).toBe(4096);
    expect(config.maxBodyBytes).toBe(1_048_576);
    expect(config.simulatedChunkDelayMs).toBe(15);
  });

  it('every default in SETTINGS is itself valid', () => {
    const env = Object.fromEntries(SETTINGS.flatMap((s) => (s.default === undefined ? [] : [[s.env, s.default]])));
    expect(load(env)).toEqual(load());
  });

  it('picks the simulated provider without a key', () => {
    expect(load().provider).toBe('simulated');
  });

  it('picks the anthropic provider when a key is set', () => {
    const config = load({ ANTHROPIC_API_KEY: 'sk-ant-test' });
    expect(config.provider).toBe('anthropic');
    expect(config.anthropicApiKey).toBe('sk-ant-test');
  });

  it('lets PROVIDER=simulated override a present key', () => {
    const config = load({ ANTHROPIC_API_KEY: 'sk-ant-test', PROVIDER: 'simulated' });
    expect(config.provider).toBe('simulated');
  });

  it('reads explicit values, trimming whitespace', () => {
    const config = load({
      HOST: ' 0.0.0.0 ',
      API_KEYS: 'main:0123456789abcdef',
      PORT: '0',
      LOG_LEVEL: 'debug',
      DATABASE_PATH: '/tmp/x.db',
      CLAUDE_MODEL: 'claude-opus-4-1',
      DEFAULT_MAX_TOKENS: '1024',
      MAX_BODY_BYTES: '2048',
      SIMULATED_CHUNK_DELAY_MS: '0',
    });
    expect(config).toMatchObject({
      host: '0.0.0.0',
      port: 0,
      logLevel: 'debug',
      databasePath: '/tmp/x.db',
      defaultModel: 'claude-opus-4-1',
      defaultMaxTokens: 1024,
      maxBodyBytes: 2048,
      simulatedChunkDelayMs: 0,
    });
  });

  it('strips trailing slashes from ANTHROPIC_BASE_URL', () => {
    expect(load({ ANTHROPIC_BASE_URL: 'http://127.0.0.1:9999//' }).anthropicBaseUrl).toBe('http://127.0.0.1:9999');
  });
});

describe('loadConfig empty values', () => {
  it('treats empty and blank strings as unset', () => {
    const config = load({ HOST: '', PORT: '', LOG_LEVEL: '   ', DATABASE_PATH: '', ANTHROPIC_API_KEY: '', PROVIDER: '' });
    expect(config).toEqual(load());
    expect(config.provider).toBe('simulated');
    expect(config.anthropicApiKey).toBeUndefined();
  });
});

describe('loadConfig errors', () => {
  it.each([
    ['PORT', 'notaport'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['PORT', '80.5'],
    ['LOG_LEVEL', 'verbose'],
    ['ANTHROPIC_BASE_URL', 'not a url'],
    ['ANTHROPIC_BASE_URL', 'ftp://example.com'],
    ['PROVIDER', 'openai'],
    ['DEFAULT_MAX_TOKENS', '0'],
    ['SIMULATED_CHUNK_DELAY_MS', 'fast'],
  ])('%s=%s throws a ConfigError naming the variable', (name, value) => {
    const error = configError({ [name]: value });
    expect(error.message).toContain(name);
    expect(error.message).toContain(value);
    expect(error.problems.some((p) => p.startsWith(`${name}=`))).toBe(true);
  });

  it('reports every bad variable at once', () => {
    const error = configError({ PORT: 'x', LOG_LEVEL: 'loud' });
    expect(error.problems).toHaveLength(2);
    expect(error.message).toContain('PORT');
    expect(error.message).toContain('LOG_LEVEL');
  });

  it('PROVIDER=anthropic without a key throws, naming both variables', () => {
    const error = configError({ PROVIDER: 'anthropic' });
    expect(error.message).toContain('PROVIDER');
    expect(error.message).toContain('ANTHROPIC_API_KEY');
  });

  it('PROVIDER=anthropic with a blank key throws too', () => {
    expect(() => load({ PROVIDER: 'anthropic', ANTHROPIC_API_KEY: '  ' })).toThrow(ConfigError);
  });

  it('ConfigError is an Error named ConfigError', () => {
    const error = configError({ PORT: 'nope' });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('ConfigError');
  });
});

describe('helpText', () => {
  it('lists every variable of SETTINGS with its description', () => {
    const text = helpText();
    for (const setting of SETTINGS) {
      expect(text).toContain(setting.env);
      expect(text).toContain(setting.description);
    }
  });

  it('shows defaults for settings that have one', () => {
    const text = helpText();
    for (const setting of SETTINGS) {
      if (setting.default === undefined) continue;
      const line = text.split('\n').find((l) => l.trimStart().startsWith(`${setting.env} `));
      expect(line, setting.env).toContain(`(default: ${setting.default})`);
    }
  });

  it('does not claim a default for ANTHROPIC_API_KEY', () => {
    const line = helpText()
      .split('\n')
      .find((l) => l.trimStart().startsWith('ANTHROPIC_API_KEY '));
    expect(line).toBeDefined();
    expect(line).not.toContain('default:');
  });
});

describe('authentication settings', () => {
  it('refuses a non-loopback address without keys, naming HOST and the way out', () => {
    expect(() => load({ HOST: '0.0.0.0' })).toThrow(/HOST="0.0.0.0".*API_KEYS.*AUTH_DISABLED/);
  });

  it('runs open on loopback addresses, and anywhere with AUTH_DISABLED=true', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1']) expect(load({ HOST: host }).auth.keys.configured).toBe(false);
    expect(load({ HOST: '0.0.0.0', AUTH_DISABLED: 'true' }).auth.disabled).toBe(true);
  });

  it('accepts keys from API_KEYS and identifies them by name, keeping only hashes', () => {
    const config = load({ HOST: '0.0.0.0', API_KEYS: 'alice:alice-key-0123456789, bob:bob-key-0123456789', ADMIN_API_KEY: 'admin-key-0123456789' });
    expect(config.auth.keys.identify('alice-key-0123456789')).toEqual({ kind: 'client', keyId: 'alice' });
    expect(config.auth.keys.identify('bob-key-0123456789')).toEqual({ kind: 'client', keyId: 'bob' });
    expect(config.auth.keys.identify('admin-key-0123456789')).toEqual({ kind: 'admin', keyId: 'admin' });
    expect(config.auth.keys.identify('nope')).toBeNull();
    expect(JSON.stringify(config)).not.toContain('alice-key-0123456789');
  });

  it('reads a keys file with plain and pre-hashed keys, and rejects a short key without echoing it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keys-'));
    const file = path.join(dir, 'keys.txt');
    const hash = createHash('sha256').update('hashed-key-0123456789').digest('hex');
    fs.writeFileSync(file, `# clients\ncarol:carol-key-0123456789\ndave:sha256:${hash}\n`);
    const config = load({ API_KEYS_FILE: file });
    expect(config.auth.keys.identify('carol-key-0123456789')).toEqual({ kind: 'client', keyId: 'carol' });
    expect(config.auth.keys.identify('hashed-key-0123456789')).toEqual({ kind: 'client', keyId: 'dave' });
    fs.writeFileSync(file, 'eve:short\n');
    expect(() => load({ API_KEYS_FILE: file })).toThrow(/eve.*too short/);
    expect(() => load({ API_KEYS_FILE: file })).not.toThrow(/short\b.*short/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
