import pino, { type Logger, type LoggerOptions } from 'pino';

/** Fields that must never reach a log line, wherever they appear. */
const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-api-key"]',
  'headers.cookie',
  'apiKey',
  'anthropicApiKey',
  '*.apiKey',
  '*.anthropicApiKey',
];

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    base: { service: 'claude-chat-api' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    formatters: { level: (label) => ({ level: label }) },
  };
}

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return destination ? pino(loggerOptions(level), destination) : pino(loggerOptions(level));
}

export type { Logger };
