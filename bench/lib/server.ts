/**
 * The project's server as users run it: the built `dist/main.js` under plain `node`, every protection
 * on (breakers, retries, timers, fallbacks, metrics, info logging, API keys, rate limits with limits
 * too high to refuse), logging to a file so the bench can count log lines per request.
 */
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, startNode, type Child } from './processes.js';

export const CLIENT_KEY = 'bench-client-key-0123456789';
/** Owner of the 100,000 stored sessions, so their listing is exactly theirs. */
export const SEED_KEY = 'bench-seed-key-0123456789ab';
/** The model routed to the zero-latency upstream (soak); every other model goes to the fixed-latency one. */
export const SOAK_MODEL = 'soak-model';
const UPSTREAM_KEY = 'bench-upstream-key';
const NO_LIMIT = '1000000000';

export interface Server extends Child {
  logFile: string;
}

export async function startServer(root: string, dir: string, upstreamUrl: string, instantUrl: string, nodeArgs: string[] = [], extraEnv: NodeJS.ProcessEnv = {}): Promise<Server> {
  const routing = join(dir, 'routing.json');
  writeFileSync(
    routing,
    JSON.stringify({
      routes: {
        [SOAK_MODEL]: { targets: [{ name: 'instant', base_url: instantUrl, api_key: UPSTREAM_KEY }] },
        '*': { targets: [{ name: 'fake', base_url: upstreamUrl, api_key: UPSTREAM_KEY }] },
      },
    }),
  );
  const logFile = join(dir, 'server.log');
  const log = openSync(logFile, 'a');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(await freePort()),
    LOG_LEVEL: 'info',
    DATABASE_PATH: join(dir, 'chat.db'),
    ANTHROPIC_API_KEY: UPSTREAM_KEY,
    ANTHROPIC_BASE_URL: upstreamUrl,
    CONFIG_FILE: routing,
    CLAUDE_MODEL: 'bench-model',
    API_KEYS: `bench:${CLIENT_KEY},seed:${SEED_KEY}`,
    RATE_LIMIT_CHAT: NO_LIMIT,
    RATE_LIMIT_SESSION: NO_LIMIT,
    RATE_LIMIT_ANALYTICS: NO_LIMIT,
    RATE_LIMIT_DEFAULT: NO_LIMIT,
    SESSION_CWD_ROOT: join(dir, 'workspaces'),
    // Teardown only: no drain delay when the bench stops the server.
    SHUTDOWN_DRAIN_DELAY_MS: '0',
    ...extraEnv,
  };
  try {
    const child = await startNode(join(root, 'dist/main.js'), env, ['ignore', log, log], nodeArgs);
    return { ...child, logFile };
  } finally {
    closeSync(log); // the child holds its own copy
  }
}
