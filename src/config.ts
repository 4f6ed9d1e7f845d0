import { z } from 'zod';

/** One entry per environment variable: the single source for validation, defaults and `--help`. */
interface Setting {
  env: string;
  description: string;
  default?: string;
}

export const SETTINGS: readonly Setting[] = [
  { env: 'HOST', default: '127.0.0.1', description: 'Address to bind.' },
  { env: 'PORT', default: '8989', description: 'Port to listen on (0 picks a free port).' },
  { env: 'LOG_LEVEL', default: 'info', description: 'fatal | error | warn | info | debug | trace | silent.' },
  { env: 'DATABASE_PATH', default: './data/chat.db', description: 'SQLite file for sessions and messages (created if missing).' },
  { env: 'ANTHROPIC_API_KEY', description: 'Claude API key. When unset the simulated provider answers.' },
  { env: 'ANTHROPIC_BASE_URL', default: 'https://api.anthropic.com', description: 'Base URL of the Messages API (point it at a proxy or a fake).' },
  { env: 'CLAUDE_MODEL', default: 'claude-sonnet-4-6', description: 'Model used when a session does not choose one.' },
  { env: 'PROVIDER', description: 'anthropic | simulated. Default: anthropic when ANTHROPIC_API_KEY is set, else simulated.' },
  { env: 'DEFAULT_MAX_TOKENS', default: '4096', description: 'max_tokens sent upstream when a session does not set it.' },
  { env: 'MAX_BODY_BYTES', default: '1048576', description: 'Largest accepted request body; larger ones get 413.' },
  { env: 'SIMULATED_CHUNK_DELAY_MS', default: '15', description: 'Pause between simulated reply chunks, to look like a real stream.' },
];

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();

const schema = z.object({
  HOST: z.string().min(1),
  PORT: port,
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  DATABASE_PATH: z.string().min(1),
  ANTHROPIC_API_KEY: z.string().min(1).optional(),
  ANTHROPIC_BASE_URL: z.url({ protocol: /^https?$/ }),
  CLAUDE_MODEL: z.string().min(1).max(200),
  PROVIDER: z.enum(['anthropic', 'simulated']).optional(),
  DEFAULT_MAX_TOKENS: positiveInt.max(1_000_000),
  MAX_BODY_BYTES: positiveInt,
  SIMULATED_CHUNK_DELAY_MS: z.coerce.number().int().min(0).max(10_000),
});

export type ProviderName = 'anthropic' | 'simulated';

export interface AppConfig {
  host: string;
  port: number;
  logLevel: z.infer<typeof schema>['LOG_LEVEL'];
  databasePath: string;
  anthropicApiKey: string | undefined;
  anthropicBaseUrl: string;
  defaultModel: string;
  provider: ProviderName;
  defaultMaxTokens: number;
  maxBodyBytes: number;
  simulatedChunkDelayMs: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Reads the environment; empty strings count as unset so `FOO=` falls back to the default. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const raw: Record<string, string | undefined> = {};
  for (const setting of SETTINGS) {
    const value = env[setting.env];
    raw[setting.env] = value === undefined || value.trim() === '' ? setting.default : value.trim();
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const name = String(issue.path[0] ?? 'config');
        return `${name}=${JSON.stringify(raw[name] ?? '')}: ${issue.message}`;
      }),
    );
  }
  const c = parsed.data;
  const provider: ProviderName = c.PROVIDER ?? (c.ANTHROPIC_API_KEY ? 'anthropic' : 'simulated');
  if (provider === 'anthropic' && !c.ANTHROPIC_API_KEY) {
    throw new ConfigError(['PROVIDER="anthropic": ANTHROPIC_API_KEY must be set for the anthropic provider']);
  }
  return {
    host: c.HOST,
    port: c.PORT,
    logLevel: c.LOG_LEVEL,
    databasePath: c.DATABASE_PATH,
    anthropicApiKey: c.ANTHROPIC_API_KEY,
    anthropicBaseUrl: c.ANTHROPIC_BASE_URL.replace(/\/+$/, ''),
    defaultModel: c.CLAUDE_MODEL,
    provider,
    defaultMaxTokens: c.DEFAULT_MAX_TOKENS,
    maxBodyBytes: c.MAX_BODY_BYTES,
    simulatedChunkDelayMs: c.SIMULATED_CHUNK_DELAY_MS,
  };
}

export function helpText(): string {
  const width = Math.max(...SETTINGS.map((s) => s.env.length));
  const lines = SETTINGS.map((s) => {
    const def = s.default === undefined ? '' : ` (default: ${s.default})`;
    return `  ${s.env.padEnd(width)}  ${s.description}${def}`;
  });
  return [
    'Claude Chat API — chat sessions with Claude behind a stability layer.',
    '',
    'Usage: node dist/main.js [--help]',
    '',
    'Configuration (environment variables):',
    ...lines,
    '',
  ].join('\n');
}
