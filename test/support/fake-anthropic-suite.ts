import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { startFakeAnthropic, type FakeAnthropic } from './fake-anthropic.js';
import type { TestServer } from './test-server.js';

export interface FakeAnthropicSuite {
  /** The fake Messages API, started once for the file and reset after each test. */
  readonly fake: FakeAnthropic;
  /** A temporary directory for the file's routing files, removed at the end. */
  readonly dir: string;
}

/**
 * The set-up the gateway test files share: one fake Anthropic API and one temporary directory per
 * file; after each test the server the test started (`currentServer()`) is destroyed and the fake reset.
 */
export function useFakeAnthropic(prefix: string, currentServer: () => TestServer | undefined): FakeAnthropicSuite {
  let fake: FakeAnthropic | undefined;
  let dir: string | undefined;
  beforeAll(async () => {
    fake = await startFakeAnthropic();
    dir = mkdtempSync(join(tmpdir(), prefix));
  });
  afterAll(async () => {
    await fake?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await currentServer()?.destroy();
    fake?.reset();
  });
  return {
    get fake() {
      if (!fake) throw new Error('the fake starts in beforeAll');
      return fake;
    },
    get dir() {
      if (!dir) throw new Error('the directory is made in beforeAll');
      return dir;
    },
  };
}
