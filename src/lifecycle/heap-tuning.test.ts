import { describe, expect, it } from 'vitest';
import { heapFlags } from './heap-tuning.js';

describe('heapFlags', () => {
  it('turns allocation-site pretenuring off by default', () => {
    expect(heapFlags([])).toEqual(['--no-allocation-site-pretenuring']);
    expect(heapFlags(['--max-old-space-size=512', '--enable-source-maps'])).toEqual(['--no-allocation-site-pretenuring']);
  });

  it("leaves it to the operator's own node arguments, in either spelling", () => {
    expect(heapFlags(['--allocation-site-pretenuring'])).toEqual([]);
    expect(heapFlags(['--no-allocation-site-pretenuring'])).toEqual([]);
    expect(heapFlags(['--allocation_site_pretenuring'])).toEqual([]);
  });
});
