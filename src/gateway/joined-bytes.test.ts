import { describe, expect, it } from 'vitest';
import { join } from './joined-bytes.js';

describe('join', () => {
  it('joins views that lie end to end into one view of the same memory', () => {
    const chunk = Buffer.from('event: a\n\nevent: b\n\nevent: c\n\n');
    const parts = [chunk.subarray(0, 10), chunk.subarray(10, 20), chunk.subarray(20)];
    const joined = join(parts);
    expect(joined).toHaveLength(1);
    expect(joined[0]?.buffer).toBe(chunk.buffer);
    expect(joined[0]?.toString()).toBe(chunk.toString());
  });

  it('keeps apart what is not adjacent, in order', () => {
    const one = Buffer.from('first\n\n');
    const two = Buffer.alloc(8, 'second\n\n'); // not from the shared pool, so never adjacent by chance
    const joined = join([one.subarray(0, 3), one.subarray(3), two, one.subarray(0, 2)]);
    expect(joined.map((b) => b.toString())).toEqual(['first\n\n', 'second\n\n', 'fi']);
  });
});
