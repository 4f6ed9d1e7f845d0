import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { startFakeAnthropic, type FakeAnthropic } from './fake-anthropic.js';
import type { TestServer } from './test-server.js';

export interface FakeAnthropicSuite {
  /** The fake Messages API, started once for the file and reset after each test. */
  readonly fake: FakeAnthropic;
  /** A temporary directory for the file's routing files (made on first use), removed at the end. */
  readonly dir: string;
}

/**
 * The set-up the API test files share: one fake Anthropic API per file (and a temporary directory when
 * asked for); after each test the server the test started (`currentServer()`) is destroyed and the
 * fake reset.
 */
export function useFakeAnthropic(currentServer: () => TestServer | undefined, dirPrefix = 'fake-anthropic-'): FakeAnthropicSuite {
  let fake: FakeAnthropic | undefined;
  let dir: string | undefined;
  beforeAll(async () => {
    fake = await startFakeAnthropic();
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
      dir ??= mkdtempSync(join(tmpdir(), dirPrefix));
      return dir;
    },
  };
}
