import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createApplication, type Application } from '../../src/application.js';
import { loadConfig } from '../../src/config.js';
import { loggerOptions } from '../../src/observability/logger.js';

export interface TestServer {
  app: Application;
  url: string;
  dbPath: string;
  /** Every log line written so far, parsed. */
  logs: Record<string, unknown>[];
  /** Closes the app; the database file stays so a test can reopen it. */
  stop(): Promise<void>;
  /** Stops and removes the temporary directory. */
  destroy(): Promise<void>;
}

export interface TestServerOptions {
  env?: Record<string, string>;
  /** Reuse a database file (to test restarts). */
  dbPath?: string;
}

/** Starts the real application on 127.0.0.1, port 0, with a temporary SQLite file and captured logs. */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const dir = options.dbPath ? undefined : mkdtempSync(join(tmpdir(), 'chat-api-test-'));
  const dbPath = options.dbPath ?? join(dir as string, 'chat.db');
  const config = loadConfig({
    DATABASE_PATH: dbPath,
    PORT: '0',
    LOG_LEVEL: 'info',
    SIMULATED_CHUNK_DELAY_MS: '0',
    // Suites make many requests to one server; rate-limit tests set their own limits.
    RATE_LIMIT_CHAT: '100000',
    RATE_LIMIT_SESSION: '100000',
    RATE_LIMIT_ANALYTICS: '100000',
    RATE_LIMIT_DEFAULT: '100000',
    ...options.env,
  });
  const logs: Record<string, unknown>[] = [];
  const logger = pino(loggerOptions(config.logLevel), {
    write: (line: string) => {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
  const app = await createApplication(config, logger);
  await app.http.listen({ host: '127.0.0.1', port: 0 });
  app.readiness.markReady();
  const address = app.http.server.address();
  if (!address || typeof address === 'string') throw new Error('server has no port');
  const stop = () => app.close();
  return {
    app,
    url: `http://127.0.0.1:${address.port}`,
    dbPath,
    logs,
    stop,
    destroy: async () => {
      await stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
