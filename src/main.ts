import { ConfigError, helpText, loadConfig } from './config.js';
import { createApplication } from './application.js';
import { tuneHeap } from './lifecycle/heap-tuning.js';
import { LogEvent } from './observability/events.js';
import { createLogger } from './observability/logger.js';

/** Exit codes: 0 clean stop, 1 runtime failure, 2 bad configuration or usage. */
async function main(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(helpText());
    return;
  }
  tuneHeap();
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\nRun with --help to see every setting.\n`);
      process.exit(2);
    }
    throw error;
  }

  const logger = createLogger(config.logLevel, undefined, config.logFlushMs);
  // Logs are written asynchronously: exiting without flushing can lose the last lines or let a
  // pending write land after a newer one. Flush, then exit (at most 1 s later regardless).
  const exit = (code: number) => {
    setTimeout(() => process.exit(code), 1000).unref();
    logger.flush(() => process.exit(code));
  };
  process.on('unhandledRejection', (reason) => logger.error({ event: LogEvent.unhandledRejection, err: reason }));
  process.on('uncaughtException', (err) => {
    logger.fatal({ event: LogEvent.uncaughtException, err });
    exit(1);
  });

  const app = await createApplication(config, logger);
  await app.http.listen({ host: config.host, port: config.port });
  const address = app.http.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.info({ event: LogEvent.serverStarted, host: config.host, port, provider: app.provider.name, database: config.databasePath });
  app.readiness.markReady();

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn({ event: LogEvent.appShutdownTimeout, signal, reason: 'second signal' });
      exit(1); // a second signal means "now"
    }
    stopping = true;
    // The budget is a hard bound: whatever still hangs after it, the process goes.
    setTimeout(() => {
      logger.error({ event: LogEvent.appShutdownTimeout, budget_ms: config.shutdown.timeoutMs });
      exit(1);
    }, config.shutdown.timeoutMs).unref();
    app
      .shutdown(signal)
      .then(() => {
        logger.info({ event: LogEvent.serverStopped });
        exit(0);
      })
      .catch((err: unknown) => {
        logger.error({ event: LogEvent.serverStopped, err }, 'shutdown failed');
        exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`Failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
