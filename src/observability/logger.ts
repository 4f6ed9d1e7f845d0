import pino, { type Logger, type LoggerOptions } from 'pino';
import { COMPONENT_OF } from './events.js';
import { requestContext } from './request-context.js';

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
    // Every catalogued event carries its component, and every line written while serving a request
    // carries that request's id; explicit fields in the call win.
    mixin: (fields: object) => {
      const event = (fields as { event?: unknown }).event;
      const component = typeof event === 'string' ? COMPONENT_OF.get(event) : undefined;
      const requestId = requestContext.getStore()?.requestId;
      return { ...(component ? { component } : {}), ...(requestId ? { request_id: requestId } : {}) };
    },
  };
}

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return destination ? pino(loggerOptions(level), destination) : pino(loggerOptions(level));
}

export type { Logger };
