import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    setupFiles: ['test/support/process-guard.ts'],
    pool: 'forks',
    testTimeout: 15_000,
    hookTimeout: 15_000,
    // Vitest also fails the run on unhandled errors; process-guard makes each file assert it too.
    dangerouslyIgnoreUnhandledErrors: false,
  },
});
