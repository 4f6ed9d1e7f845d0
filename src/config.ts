import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { KeyRing, parseKeyEntries, sha256 } from './auth/key-ring.js';
import { defaultRoutingConfig, loadRoutingConfig, RoutingConfigError, type RoutingConfig } from './gateway/routing/routing-config.js';
import { z } from 'zod';

/** One entry per environment variable: the single source for validation, defaults and `--help`. */
interface Setting {
  env: string;
  description: string;
  default?: string;
  /** Never echoed in error messages. */
  secret?: boolean;
}

export const SETTINGS: readonly Setting[] = [
  { env: 'HOST', default: '127.0.0.1', description: 'Address to bind.' },
  { env: 'PORT', default: '8989', description: 'Port to listen on (0 picks a free port).' },
  { env: 'LOG_LEVEL', default: 'info', description: 'fatal | error | warn | info | debug | trace | silent.' },
  { env: 'LOG_FLUSH_MS', default: '100', description: 'Log lines are written to stdout in batches, each line at most this late (and all of them on exit). 0: every line written at once, synchronously (a system call per line).' },
  { env: 'DATABASE_PATH', default: './data/chat.db', description: 'SQLite file for sessions and messages (created if missing).' },
  { env: 'ANTHROPIC_API_KEY', secret: true, description: 'Claude API key. When unset the simulated provider answers.' },
  { env: 'ANTHROPIC_BASE_URL', default: 'https://api.anthropic.com', description: 'Base URL of the Messages API (point it at a proxy or a fake).' },
  { env: 'CLAUDE_MODEL', default: 'claude-sonnet-4-6', description: 'Model used when a session does not choose one.' },
  { env: 'PROVIDER', description: 'anthropic | simulated. Default: anthropic when ANTHROPIC_API_KEY is set, else simulated.' },
  { env: 'DEFAULT_MAX_TOKENS', default: '4096', description: 'max_tokens sent upstream when a session does not set it.' },
  { env: 'MAX_BODY_BYTES', default: '1048576', description: 'Largest accepted request body; larger ones get 413.' },
  { env: 'SIMULATED_CHUNK_DELAY_MS', default: '15', description: 'Pause between simulated reply chunks, to look like a real stream.' },
  { env: 'RETRY_MAX_RETRIES', default: '6', description: 'Retries of a failed Claude call before any output reached the client (0 = none).' },
  { env: 'RETRY_DELAYS_MS', default: '1000,2000,5000,10000,30000,60000', description: 'Comma-separated delays before retry 1, 2, …; the last one repeats.' },
  { env: 'RETRY_JITTER', default: '0.2', description: 'Each delay is drawn within ± this fraction.' },
  { env: 'RETRY_MAX_AFTER_MS', default: '60000', description: 'Cap on a retry-after asked for by upstream.' },
  { env: 'RETRY_DEADLINE_MS', default: '120000', description: 'No retry starts later than this after the first attempt (0 = no deadline).' },
  { env: 'RETRY_BUDGET_RATIO', default: '0.2', description: 'Retries may be at most this share of calls in a 10 s window (plus 10), so an outage cannot multiply load.' },
  { env: 'CLAUDE_BREAKER_FAILURE_THRESHOLD', default: '3', description: 'Consecutive failed Claude calls that open the claude_sdk breaker.' },
  { env: 'CLAUDE_BREAKER_TIMEOUT_SECONDS', default: '30', description: 'How long the claude_sdk breaker stays open before a probe.' },
  { env: 'CLAUDE_BREAKER_SUCCESS_THRESHOLD', default: '2', description: 'Successful probes that close the claude_sdk breaker.' },
  { env: 'CLAUDE_BREAKER_HALF_OPEN_MAX_CALLS', default: '1', description: 'Probes admitted at once while the claude_sdk breaker is half-open.' },
  { env: 'SESSION_BREAKER_FAILURE_THRESHOLD', default: '5', description: 'Consecutive failed session writes that open the session_operations breaker.' },
  { env: 'SESSION_BREAKER_TIMEOUT_SECONDS', default: '60', description: 'How long the session_operations breaker stays open.' },
  { env: 'UPSTREAM_CONNECT_TIMEOUT_MS', default: '30000', description: 'Claude must start answering within this (0 = off).' },
  { env: 'UPSTREAM_FIRST_TOKEN_TIMEOUT_MS', default: '60000', description: 'The first content must follow the answer within this (0 = off).' },
  { env: 'UPSTREAM_IDLE_TIMEOUT_MS', default: '60000', description: 'Longest silence allowed inside a streaming answer (0 = off).' },
  { env: 'UPSTREAM_TOTAL_TIMEOUT_MS', default: '600000', description: 'Longest a single Claude call may take (0 = off).' },
  { env: 'CHAT_FALLBACKS', default: 'cached_response,mock_response', description: 'Fallbacks tried in order when a chat turn fails before any output: cached_response, alternative_provider, degraded_service, queue_for_retry, mock_response, or none.' },
  { env: 'SESSION_FALLBACKS', default: 'mock_response', description: 'Fallbacks for session creation when the store fails: mock_response (a real session held in memory until the store recovers), or none.' },
  { env: 'PROVISIONAL_RECONCILE_INTERVAL_MS', default: '5000', description: 'How often sessions held in memory are moved to the store once it recovers.' },
  { env: 'FALLBACK_CACHE_TTL_SECONDS', default: '180', description: 'How long complete answers stay in the fallback cache.' },
  { env: 'FALLBACK_CACHE_MAX_ENTRIES', default: '1000', description: 'Most answers kept in the in-memory fallback cache.' },
  { env: 'FALLBACK_CACHE_MAX_BYTES', default: '16777216', description: 'Most bytes kept in the in-memory fallback cache.' },
  { env: 'FALLBACK_STEP_TIMEOUT_SECONDS', default: '30', description: 'Longest a fallback step (alternative, degraded) may take to start answering.' },
  { env: 'FALLBACK_MOCK_TEXT', default: 'Claude is temporarily unavailable, so this is an automatic reply, not an answer to your message. Please send it again in a minute.', description: 'The mock_response answer.' },
  { env: 'DEGRADED_MODEL', default: 'claude-haiku-4-5', description: 'Smaller, faster model used by degraded_service.' },
  { env: 'DEGRADED_MAX_TOKENS', default: '1024', description: 'max_tokens cap for degraded_service answers.' },
  { env: 'ALTERNATIVE_PROVIDERS', secret: true, description: 'JSON list of alternative upstreams for alternative_provider: [{"name","base_url","api_key" or "api_key_env","model"?}].' },
  { env: 'CONFIG_FILE', description: 'JSON or YAML routing file for /v1/messages: model → ordered upstream targets, context fallback, per-target breakers. Unset: every model goes to ANTHROPIC_BASE_URL with ANTHROPIC_API_KEY.' },
  { env: 'API_KEYS', secret: true, description: 'Client API keys, comma-separated, each "name:key" (or a bare key). Sent as Authorization: Bearer or x-api-key.' },
  { env: 'API_KEYS_FILE', description: 'File of client keys, one per line: "name:key", or "name:sha256:<hex>" to store only the hash.' },
  { env: 'ADMIN_API_KEY', secret: true, description: 'Key for management routes (breaker reset, cache clear) and for seeing every session.' },
  { env: 'AUTH_DISABLED', default: 'false', description: 'true runs without authentication even when bound to a non-loopback address (only behind a trusted gateway).' },
  { env: 'TRUST_PROXY', default: 'false', description: 'Take the client address from X-Forwarded-For: true, a hop count, or comma-separated proxy addresses/CIDRs.' },
  { env: 'CORS_ORIGINS', description: 'Comma-separated browser origins allowed to call the API (unset: no cross-origin access).' },
  { env: 'RATE_LIMIT_CHAT', default: '30', description: 'Chat requests per key (or address) per window.' },
  { env: 'RATE_LIMIT_SESSION', default: '60', description: 'Session requests per key per window.' },
  { env: 'RATE_LIMIT_ANALYTICS', default: '20', description: 'Listing, history and stability reads per key per window.' },
  { env: 'RATE_LIMIT_DEFAULT', default: '100', description: 'Any other request per key per window (probes and /metrics are not limited).' },
  { env: 'RATE_LIMIT_WINDOW_SECONDS', default: '60', description: 'Length of the rate-limit window.' },
  { env: 'SESSION_CWD_ROOT', default: './workspaces', description: 'A session cwd must lie inside this folder.' },
  { env: 'ALLOWED_TOOLS', default: 'Read,Write,Edit,MultiEdit,Glob,Grep,LS,Bash,WebFetch,WebSearch,TodoWrite,NotebookEdit,Task', description: 'Tool names a session may list in allowed_tools.' },
  { env: 'MAX_HEADER_BYTES', default: '16384', description: 'Largest accepted request header block; larger gets 431.' },
  { env: 'MAX_HEADERS', default: '100', description: 'Most request headers accepted; extra ones are dropped.' },
  { env: 'SHUTDOWN_DRAIN_DELAY_MS', default: '5000', description: 'After SIGTERM, keep serving (with Connection: close and /readyz 503) this long before refusing new turns.' },
  { env: 'SHUTDOWN_GRACE_MS', default: '10000', description: 'Then let running streams finish on their own this long.' },
  { env: 'SHUTDOWN_TIMEOUT_MS', default: '25000', description: 'The whole shutdown budget; past it the process exits anyway (code 1).' },
  { env: 'SHUTDOWN_BATCH_SIZE', default: '10', description: 'Sessions closed at once at shutdown.' },
  { env: 'SHUTDOWN_SESSION_TIMEOUT_MS', default: '15000', description: 'Longest wait for one session to close at shutdown.' },
  { env: 'SHUTDOWN_BATCH_TIMEOUT_MS', default: '30000', description: 'Longest wait for one batch of sessions to close.' },
  { env: 'CHECKPOINT_INTERVAL_MS', default: '500', description: 'How often a streaming answer is saved while it grows (a crash loses at most this much).' },
  { env: 'HEALTH_CHECK_INTERVAL_MS', default: '30000', description: 'How often the local health checks run (memory, sessions, event loop, store, Redis).' },
  { env: 'HEALTH_CLAUDE_CHECK_INTERVAL_MS', default: '30000', description: 'How often Claude reachability is probed (a free models list, never a completion).' },
  { env: 'HEALTH_MEMORY_WARN_PERCENT', default: '90', description: 'Memory use above this is a warning.' },
  { env: 'HEALTH_ACTIVE_SESSIONS_WARN', default: '100', description: 'More sessions answering at once than this is a warning.' },
  { env: 'STREAM_ON_DISCONNECT', default: 'continue', description: 'continue: an answer goes on when its client disconnects (it lands in history and can be resumed); abort: the upstream call is cancelled.' },
  { env: 'STREAM_RETENTION_SECONDS', default: '300', description: "How long a finished answer's frames stay resumable (GET /api/session/{id}/stream)." },
  { env: 'STREAM_MAX_FRAMES', default: '20000', description: 'Most frames kept per answer in the stream log (older ones are trimmed).' },
  { env: 'STREAM_RETAINED_MAX_BYTES', default: '67108864', description: 'Most bytes of finished answers kept for resuming per instance; past it the oldest go first (a repeated Idempotency-Key then replays from history).' },
  { env: 'STREAM_CLIENT_MAX_BACKLOG_BYTES', default: '1048576', description: 'A client that takes nothing while its answer grows by this many bytes is disconnected (it can resume); the answer goes on.' },
  { env: 'STREAM_CLIENT_STALL_MS', default: '60000', description: 'A client that takes no data for this long is disconnected (it can resume); 0 = never.' },
  { env: 'IDEMPOTENCY_TTL_SECONDS', default: '86400', description: 'How long an Idempotency-Key is remembered (per API key).' },
  { env: 'REDIS_URL', secret: true, description: 'Redis shared by all instances (redis://host:6379/0): fallback cache, rate limits, stream logs (resume on any instance), idempotency keys, one writer per session. Unset: in memory.' },
];

const alternativesSchema = z.array(
  z
    .object({
      name: z.string().min(1).max(100),
      base_url: z.url({ protocol: /^https?$/ }),
      api_key: z.string().min(1).optional(),
      api_key_env: z.string().min(1).optional(),
      model: z.string().min(1).max(200).optional(),
    })
    .strict()
    .refine((a) => a.api_key !== undefined || a.api_key_env !== undefined, { message: 'needs api_key or api_key_env' }),
);
const fallbackList = z
  .string()
  .transform((s) => (s.trim() === 'none' ? [] : s.split(',').map((x) => x.trim()).filter((x) => x !== '')))
  .pipe(z.array(z.enum(['cached_response', 'mock_response', 'degraded_service', 'queue_for_retry', 'alternative_provider'])));
const jsonText = z.string().transform((text, ctx) => {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be valid JSON' });
    return z.NEVER;
  }
});

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
const nonNegativeInt = z.coerce.number().int().min(0);
const fraction = z.coerce.number().min(0).max(1);
const positiveSeconds = z.coerce.number().positive().max(86_400);
const delayList = z
  .string()
  .regex(/^\s*\d+(\s*,\s*\d+)*\s*$/, 'must be comma-separated whole milliseconds, e.g. 1000,2000,5000')
  .transform((s) => s.split(',').map((d) => Number(d.trim())));

const schema = z.object({
  HOST: z.string().min(1),
  PORT: port,
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  LOG_FLUSH_MS: nonNegativeInt.max(10_000),
  DATABASE_PATH: z.string().min(1),
  ANTHROPIC_API_KEY: z.string().min(1).optional(),
  ANTHROPIC_BASE_URL: z.url({ protocol: /^https?$/ }),
  CLAUDE_MODEL: z.string().min(1).max(200),
  PROVIDER: z.enum(['anthropic', 'simulated']).optional(),
  DEFAULT_MAX_TOKENS: positiveInt.max(1_000_000),
  MAX_BODY_BYTES: positiveInt,
  SIMULATED_CHUNK_DELAY_MS: z.coerce.number().int().min(0).max(10_000),
  RETRY_MAX_RETRIES: nonNegativeInt.max(100),
  RETRY_DELAYS_MS: delayList,
  RETRY_JITTER: fraction,
  RETRY_MAX_AFTER_MS: nonNegativeInt,
  RETRY_DEADLINE_MS: nonNegativeInt,
  RETRY_BUDGET_RATIO: fraction,
  CLAUDE_BREAKER_FAILURE_THRESHOLD: positiveInt,
  CLAUDE_BREAKER_TIMEOUT_SECONDS: positiveSeconds,
  CLAUDE_BREAKER_SUCCESS_THRESHOLD: positiveInt,
  CLAUDE_BREAKER_HALF_OPEN_MAX_CALLS: positiveInt,
  SESSION_BREAKER_FAILURE_THRESHOLD: positiveInt,
  SESSION_BREAKER_TIMEOUT_SECONDS: positiveSeconds,
  UPSTREAM_CONNECT_TIMEOUT_MS: nonNegativeInt,
  UPSTREAM_FIRST_TOKEN_TIMEOUT_MS: nonNegativeInt,
  UPSTREAM_IDLE_TIMEOUT_MS: nonNegativeInt,
  UPSTREAM_TOTAL_TIMEOUT_MS: nonNegativeInt,
  CHAT_FALLBACKS: fallbackList.optional(),
  SESSION_FALLBACKS: fallbackList.pipe(z.array(z.literal('mock_response', { message: 'session creation supports only mock_response' }))).optional(),
  PROVISIONAL_RECONCILE_INTERVAL_MS: positiveInt,
  FALLBACK_CACHE_TTL_SECONDS: positiveSeconds,
  FALLBACK_CACHE_MAX_ENTRIES: positiveInt,
  FALLBACK_CACHE_MAX_BYTES: positiveInt,
  FALLBACK_STEP_TIMEOUT_SECONDS: z.coerce.number().min(0).max(3600),
  FALLBACK_MOCK_TEXT: z.string().min(1).max(10_000),
  DEGRADED_MODEL: z.string().min(1).max(200),
  DEGRADED_MAX_TOKENS: positiveInt.max(128_000),
  ALTERNATIVE_PROVIDERS: jsonText.pipe(alternativesSchema).optional(),
  CONFIG_FILE: z.string().min(1).optional(),
  API_KEYS: z.string().optional(),
  API_KEYS_FILE: z.string().min(1).optional(),
  ADMIN_API_KEY: z.string().min(16, 'must be at least 16 characters').optional(),
  AUTH_DISABLED: z.enum(['true', 'false']).transform((v) => v === 'true'),
  TRUST_PROXY: z.string().min(1),
  CORS_ORIGINS: z
    .string()
    .transform((s) => s.split(',').map((o) => o.trim()).filter((o) => o !== ''))
    .pipe(z.array(z.url({ protocol: /^https?$/, message: 'each origin must be an http(s) URL like https://app.example.com' })))
    .optional(),
  RATE_LIMIT_CHAT: positiveInt,
  RATE_LIMIT_SESSION: positiveInt,
  RATE_LIMIT_ANALYTICS: positiveInt,
  RATE_LIMIT_DEFAULT: positiveInt,
  RATE_LIMIT_WINDOW_SECONDS: positiveSeconds,
  SESSION_CWD_ROOT: z.string().min(1),
  ALLOWED_TOOLS: z.string().transform((s) => s.split(',').map((t) => t.trim()).filter((t) => t !== '')),
  MAX_HEADER_BYTES: positiveInt.min(1024).max(1_048_576),
  MAX_HEADERS: positiveInt.max(10_000),
  SHUTDOWN_DRAIN_DELAY_MS: nonNegativeInt,
  SHUTDOWN_GRACE_MS: nonNegativeInt,
  SHUTDOWN_TIMEOUT_MS: positiveInt,
  SHUTDOWN_BATCH_SIZE: positiveInt.max(1000),
  SHUTDOWN_SESSION_TIMEOUT_MS: positiveInt,
  SHUTDOWN_BATCH_TIMEOUT_MS: positiveInt,
  CHECKPOINT_INTERVAL_MS: positiveInt,
  HEALTH_CHECK_INTERVAL_MS: positiveInt,
  HEALTH_CLAUDE_CHECK_INTERVAL_MS: positiveInt,
  HEALTH_MEMORY_WARN_PERCENT: z.coerce.number().min(1).max(100),
  HEALTH_ACTIVE_SESSIONS_WARN: positiveInt,
  STREAM_ON_DISCONNECT: z.enum(['continue', 'abort']),
  STREAM_RETENTION_SECONDS: positiveSeconds,
  STREAM_MAX_FRAMES: positiveInt.min(16).max(1_000_000),
  STREAM_RETAINED_MAX_BYTES: positiveInt,
  STREAM_CLIENT_MAX_BACKLOG_BYTES: positiveInt.min(1024),
  STREAM_CLIENT_STALL_MS: nonNegativeInt,
  IDEMPOTENCY_TTL_SECONDS: positiveInt.max(7 * 86_400),
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional(),
});

export type ProviderName = 'anthropic' | 'simulated';

export interface AppConfig {
  host: string;
  port: number;
  logLevel: z.infer<typeof schema>['LOG_LEVEL'];
  /** 0: synchronous stdout; else lines are batched and flushed at least this often. */
  logFlushMs: number;
  databasePath: string;
  anthropicApiKey: string | undefined;
  anthropicBaseUrl: string;
  defaultModel: string;
  provider: ProviderName;
  defaultMaxTokens: number;
  maxBodyBytes: number;
  simulatedChunkDelayMs: number;
  retry: {
    maxRetries: number;
    delaysMs: number[];
    jitter: number;
    maxRetryAfterMs: number;
    /** 0 = no deadline. */
    deadlineMs: number;
    budgetRatio: number;
  };
  breakers: {
    claude: { failureThreshold: number; timeoutSeconds: number; successThreshold: number; halfOpenMaxCalls: number };
    session: { failureThreshold: number; timeoutSeconds: number };
  };
  /** Per upstream call, in ms; 0 = off. */
  timeouts: { connectMs: number; firstTokenMs: number; idleMs: number; totalMs: number };
  fallbacks: {
    chat: FallbackStrategyName[];
    session: 'mock_response'[];
    reconcileIntervalMs: number;
    cacheTtlSeconds: number;
    cacheMaxEntries: number;
    cacheMaxBytes: number;
    stepTimeoutSeconds: number;
    mockText: string;
    degradedModel: string;
    degradedMaxTokens: number;
    alternatives: { name: string; baseUrl: string; apiKey: string; model?: string | undefined }[];
  };
  redisUrl: string | undefined;
  /** Folder holding the database file (for disk figures). */
  dataDir: string;
  health: { intervalMs: number; claudeIntervalMs: number; memoryWarnPercent: number; activeSessionsWarn: number };
  auth: { keys: KeyRing; disabled: boolean };
  /** Fastify's trustProxy: false, true, a hop count or a list of addresses. */
  trustProxy: boolean | number | string[];
  corsOrigins: string[];
  rateLimits: { windowMs: number; chat: number; session: number; analytics: number; default: number };
  input: { cwdRoot: string; allowedTools: string[]; maxHeaderBytes: number; maxHeaders: number };
  /** Routing of /v1/messages; null when there is neither a CONFIG_FILE nor an API key. */
  routing: RoutingConfig | null;
  /** CONFIG_FILE, when given: chat sessions then use the same routing. */
  routingFile: string | undefined;
  shutdown: { drainDelayMs: number; graceMs: number; timeoutMs: number; batchSize: number; sessionTimeoutMs: number; batchTimeoutMs: number };
  checkpointIntervalMs: number;
  streams: { continueOnDisconnect: boolean; retentionMs: number; maxFrames: number; maxRetainedBytes: number; clientMaxBacklogBytes: number; clientStallMs: number };
  idempotency: { ttlMs: number };
}

export type FallbackStrategyName = 'cached_response' | 'mock_response' | 'degraded_service' | 'queue_for_retry' | 'alternative_provider';

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
        const secret = SETTINGS.find((s) => s.env === name)?.secret === true;
        const where = issue.path.length > 1 ? ` at ${issue.path.slice(1).join('.')}` : '';
        return `${name}${secret ? '' : `=${JSON.stringify(raw[name] ?? '')}`}${where}: ${issue.message}`;
      }),
    );
  }
  const c = parsed.data;
  const keys = loadKeyRing(c.API_KEYS, c.API_KEYS_FILE, c.ADMIN_API_KEY);
  if (!keys.configured && !c.AUTH_DISABLED && !isLoopback(c.HOST)) {
    throw new ConfigError([
      `HOST=${JSON.stringify(c.HOST)}: refusing to serve a non-loopback address without API keys; set API_KEYS (or API_KEYS_FILE) and ADMIN_API_KEY, or AUTH_DISABLED=true behind a trusted gateway`,
    ]);
  }
  const provider: ProviderName = c.PROVIDER ?? (c.ANTHROPIC_API_KEY ? 'anthropic' : 'simulated');
  if (provider === 'anthropic' && !c.ANTHROPIC_API_KEY) {
    throw new ConfigError(['PROVIDER="anthropic": ANTHROPIC_API_KEY must be set for the anthropic provider']);
  }
  return {
    host: c.HOST,
    port: c.PORT,
    logLevel: c.LOG_LEVEL,
    logFlushMs: c.LOG_FLUSH_MS,
    databasePath: c.DATABASE_PATH,
    anthropicApiKey: c.ANTHROPIC_API_KEY,
    anthropicBaseUrl: c.ANTHROPIC_BASE_URL.replace(/\/+$/, ''),
    defaultModel: c.CLAUDE_MODEL,
    provider,
    defaultMaxTokens: c.DEFAULT_MAX_TOKENS,
    maxBodyBytes: c.MAX_BODY_BYTES,
    simulatedChunkDelayMs: c.SIMULATED_CHUNK_DELAY_MS,
    retry: {
      maxRetries: c.RETRY_MAX_RETRIES,
      delaysMs: c.RETRY_DELAYS_MS,
      jitter: c.RETRY_JITTER,
      maxRetryAfterMs: c.RETRY_MAX_AFTER_MS,
      deadlineMs: c.RETRY_DEADLINE_MS,
      budgetRatio: c.RETRY_BUDGET_RATIO,
    },
    breakers: {
      claude: {
        failureThreshold: c.CLAUDE_BREAKER_FAILURE_THRESHOLD,
        timeoutSeconds: c.CLAUDE_BREAKER_TIMEOUT_SECONDS,
        successThreshold: c.CLAUDE_BREAKER_SUCCESS_THRESHOLD,
        halfOpenMaxCalls: c.CLAUDE_BREAKER_HALF_OPEN_MAX_CALLS,
      },
      session: { failureThreshold: c.SESSION_BREAKER_FAILURE_THRESHOLD, timeoutSeconds: c.SESSION_BREAKER_TIMEOUT_SECONDS },
    },
    timeouts: {
      connectMs: c.UPSTREAM_CONNECT_TIMEOUT_MS,
      firstTokenMs: c.UPSTREAM_FIRST_TOKEN_TIMEOUT_MS,
      idleMs: c.UPSTREAM_IDLE_TIMEOUT_MS,
      totalMs: c.UPSTREAM_TOTAL_TIMEOUT_MS,
    },
    fallbacks: {
      chat: c.CHAT_FALLBACKS ?? [],
      session: c.SESSION_FALLBACKS ?? [],
      reconcileIntervalMs: c.PROVISIONAL_RECONCILE_INTERVAL_MS,
      cacheTtlSeconds: c.FALLBACK_CACHE_TTL_SECONDS,
      cacheMaxEntries: c.FALLBACK_CACHE_MAX_ENTRIES,
      cacheMaxBytes: c.FALLBACK_CACHE_MAX_BYTES,
      stepTimeoutSeconds: c.FALLBACK_STEP_TIMEOUT_SECONDS,
      mockText: c.FALLBACK_MOCK_TEXT,
      degradedModel: c.DEGRADED_MODEL,
      degradedMaxTokens: c.DEGRADED_MAX_TOKENS,
      alternatives: resolveAlternatives(c.ALTERNATIVE_PROVIDERS ?? [], env),
    },
    redisUrl: c.REDIS_URL,
    dataDir: dirname(resolve(c.DATABASE_PATH)),
    auth: { keys, disabled: c.AUTH_DISABLED },
    trustProxy: parseTrustProxy(c.TRUST_PROXY),
    corsOrigins: c.CORS_ORIGINS ?? [],
    rateLimits: {
      windowMs: c.RATE_LIMIT_WINDOW_SECONDS * 1000,
      chat: c.RATE_LIMIT_CHAT,
      session: c.RATE_LIMIT_SESSION,
      analytics: c.RATE_LIMIT_ANALYTICS,
      default: c.RATE_LIMIT_DEFAULT,
    },
    input: { cwdRoot: resolve(c.SESSION_CWD_ROOT), allowedTools: c.ALLOWED_TOOLS, maxHeaderBytes: c.MAX_HEADER_BYTES, maxHeaders: c.MAX_HEADERS },
    routing: loadRouting(c.CONFIG_FILE, env, c.ANTHROPIC_BASE_URL.replace(/\/+$/, ''), c.ANTHROPIC_API_KEY),
    routingFile: c.CONFIG_FILE,
    shutdown: {
      drainDelayMs: c.SHUTDOWN_DRAIN_DELAY_MS,
      graceMs: c.SHUTDOWN_GRACE_MS,
      timeoutMs: c.SHUTDOWN_TIMEOUT_MS,
      batchSize: c.SHUTDOWN_BATCH_SIZE,
      sessionTimeoutMs: c.SHUTDOWN_SESSION_TIMEOUT_MS,
      batchTimeoutMs: c.SHUTDOWN_BATCH_TIMEOUT_MS,
    },
    checkpointIntervalMs: c.CHECKPOINT_INTERVAL_MS,
    streams: {
      continueOnDisconnect: c.STREAM_ON_DISCONNECT === 'continue',
      retentionMs: c.STREAM_RETENTION_SECONDS * 1000,
      maxFrames: c.STREAM_MAX_FRAMES,
      maxRetainedBytes: c.STREAM_RETAINED_MAX_BYTES,
      clientMaxBacklogBytes: c.STREAM_CLIENT_MAX_BACKLOG_BYTES,
      clientStallMs: c.STREAM_CLIENT_STALL_MS,
    },
    idempotency: { ttlMs: c.IDEMPOTENCY_TTL_SECONDS * 1000 },
    health: {
      intervalMs: c.HEALTH_CHECK_INTERVAL_MS,
      claudeIntervalMs: c.HEALTH_CLAUDE_CHECK_INTERVAL_MS,
      memoryWarnPercent: c.HEALTH_MEMORY_WARN_PERCENT,
      activeSessionsWarn: c.HEALTH_ACTIVE_SESSIONS_WARN,
    },
  };
}

function loadKeyRing(inline: string | undefined, file: string | undefined, admin: string | undefined): KeyRing {
  const entries = [];
  try {
    if (inline) entries.push(...parseKeyEntries(inline, /,/));
  } catch (error) {
    throw new ConfigError([`API_KEYS: ${(error as Error).message}`]);
  }
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new ConfigError([`API_KEYS_FILE=${JSON.stringify(file)}: cannot read it (${(error as NodeJS.ErrnoException).code ?? 'error'})`]);
    }
    try {
      entries.push(...parseKeyEntries(text, /\r?\n/));
    } catch (error) {
      throw new ConfigError([`API_KEYS_FILE=${JSON.stringify(file)}: ${(error as Error).message}`]);
    }
  }
  return new KeyRing(entries, admin ? sha256(admin) : undefined);
}

function loadRouting(file: string | undefined, env: NodeJS.ProcessEnv, baseUrl: string, apiKey: string | undefined): RoutingConfig | null {
  if (!file) return apiKey ? defaultRoutingConfig(baseUrl, apiKey) : null;
  try {
    return loadRoutingConfig(file, env);
  } catch (error) {
    if (error instanceof RoutingConfigError) throw new ConfigError([`CONFIG_FILE=${JSON.stringify(file)}: ${error.message}`]);
    throw new ConfigError([`CONFIG_FILE=${JSON.stringify(file)}: cannot read it (${(error as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
}

/** 127.0.0.0/8, ::1 and localhost: only this machine can connect. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function parseTrustProxy(value: string): boolean | number | string[] {
  if (value === 'false') return false;
  if (value === 'true') return true;
  if (/^\d+$/.test(value)) return Number(value);
  return value.split(',').map((v) => v.trim()).filter((v) => v !== '');
}

/** Keys may be given inline or by the name of another variable, so secrets need not sit in JSON. */
function resolveAlternatives(list: z.infer<typeof alternativesSchema>, env: NodeJS.ProcessEnv) {
  return list.map((a, index) => {
    const apiKey = a.api_key ?? env[a.api_key_env ?? '']?.trim();
    if (!apiKey) throw new ConfigError([`ALTERNATIVE_PROVIDERS[${index}] ("${a.name}"): ${a.api_key_env} is not set`]);
    return { name: a.name, baseUrl: a.base_url.replace(/\/+$/, ''), apiKey, model: a.model };
  });
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
