import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { loggerOptions } from './logger.js';
import { requestContext } from './request-context.js';

function capture(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(loggerOptions('info'), { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

describe('logger', () => {
  it('adds the component of a catalogued event and the request id of the request being served', () => {
    const { logger, lines } = capture();
    logger.info({ event: 'chat_turn_started' });
    requestContext.run({ requestId: 'req-42' } as never, () => logger.info({ event: 'http_request' }));
    logger.info({ event: 'not_catalogued' });
    expect(lines[0]).toMatchObject({ event: 'chat_turn_started', component: 'chat', level: 'info', service: 'claude-chat-api' });
    expect(lines[0]).not.toHaveProperty('request_id');
    expect(lines[1]).toMatchObject({ event: 'http_request', component: 'http', request_id: 'req-42' });
    expect(lines[2]).not.toHaveProperty('component');
  });

  it('lets explicit fields win over the context and writes an ISO time per line', () => {
    const { logger, lines } = capture();
    requestContext.run({ requestId: 'from-context' } as never, () => logger.info({ event: 'http_request', request_id: 'explicit', component: 'mine' }));
    expect(lines[0]).toMatchObject({ request_id: 'explicit', component: 'mine' });
    expect(new Date(String(lines[0]!.time)).toISOString()).toBe(lines[0]!.time);
    expect(Math.abs(Date.parse(String(lines[0]!.time)) - Date.now())).toBeLessThan(5_000);
  });

  it('redacts credentials where they could appear', () => {
    const { logger, lines } = capture();
    logger.info({
      headers: { authorization: 'Bearer sk-1', 'x-api-key': 'sk-2', cookie: 'c=1' },
      req: { headers: { authorization: 'Bearer sk-3' } },
      apiKey: 'sk-4',
      api_key: 'sk-5',
      config: { anthropicApiKey: 'sk-6' },
      target: { apiKey: 'sk-7', api_key: 'sk-8' },
    });
    const text = JSON.stringify(lines[0]);
    for (let i = 1; i <= 8; i++) expect(text).not.toContain(`sk-${i}`);
    expect(text).toContain('[redacted]');
  });

  it('with LOG_FLUSH_MS, writes a batch that is not full within that time, while the process runs on', async () => {
    const logger = fileURLToPath(new URL('./logger.ts', import.meta.url));
    const script = `import { createLogger } from ${JSON.stringify(logger)};
      createLogger('info', undefined, 50).info({ event: 'http_request', probe: 1 });
      setTimeout(() => process.exit(0), 10000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let seen = '';
        child.stdout.on('data', (chunk: Buffer) => {
          seen += chunk.toString();
          if (seen.includes('\n')) resolve(seen);
        });
        child.once('exit', (code) => reject(new Error(`exited (${code}) before writing its line`)));
      });
      expect(JSON.parse(line)).toMatchObject({ event: 'http_request', probe: 1 });
      expect(child.exitCode).toBeNull(); // written by the timer, not by exiting
    } finally {
      child.kill('SIGKILL');
    }
  }, 15_000);
});
