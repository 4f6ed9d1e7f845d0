import { describe, expect, it } from 'vitest';
import { processFaults } from './process-guard.js';

describe('process guard', () => {
  it('records an unhandled rejection so the file-level check can fail on it', async () => {
    const before = processFaults.length;
    void Promise.reject(new Error('deliberately unhandled'));
    await new Promise((resolve) => setTimeout(resolve, 10));
    const recorded = processFaults.slice(before);
    expect(recorded.map((f) => f.kind)).toEqual(['unhandledRejection']);
    expect((recorded[0]?.error as Error).message).toBe('deliberately unhandled');
    // Remove the deliberate one so this file's own afterAll check still passes.
    processFaults.splice(before, 1);
  });
});
