import { afterAll, expect } from 'vitest';

/**
 * Records every unhandled rejection and uncaught exception in this test file's process, and fails the
 * file if any happened. Vitest reports them too; this makes "none occurred" an explicit assertion.
 */
export const processFaults: { kind: string; error: unknown }[] = [];

const onRejection = (error: unknown) => processFaults.push({ kind: 'unhandledRejection', error });
const onException = (error: unknown) => processFaults.push({ kind: 'uncaughtException', error });

if (!process.listeners('unhandledRejection').includes(onRejection)) {
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
}

afterAll(async () => {
  // Let rejections from the last test's promise chains surface before checking.
  await new Promise((resolve) => setImmediate(resolve));
  const described = processFaults.map((f) => `${f.kind}: ${f.error instanceof Error ? f.error.stack : String(f.error)}`);
  expect(described, 'unhandled rejections / uncaught exceptions in this file').toEqual([]);
});
