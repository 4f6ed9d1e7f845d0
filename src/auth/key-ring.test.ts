import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyRing, parseKeyEntries, sha256 } from './key-ring.js';

describe('KeyRing', () => {
  it('hashes keys exactly as SHA-256 of their UTF-8 bytes (pre-hashed keys in a keys file must match)', () => {
    for (const text of ['client-key-0123456789abcdef', 'clé-ünïcødé-🔑-0123456789']) {
      expect(sha256(text).equals(createHash('sha256').update(Buffer.from(text, 'utf8')).digest())).toBe(true);
    }
  });

  it('knows a configured key, plain or pre-hashed, and the admin key; nothing else', () => {
    const prehashed = sha256('second-client-key-0123456789').toString('hex');
    const ring = new KeyRing(parseKeyEntries(`app:first-client-key-0123456789\nother:sha256:${prehashed}`, /\n/), sha256('admin-key-0123456789abcdef'));
    expect(ring.identify('first-client-key-0123456789')).toEqual({ kind: 'client', keyId: 'app' });
    expect(ring.identify('second-client-key-0123456789')).toEqual({ kind: 'client', keyId: 'other' });
    expect(ring.identify('admin-key-0123456789abcdef')).toEqual({ kind: 'admin', keyId: 'admin' });
    expect(ring.identify('first-client-key-012345678')).toBeNull();
    expect(ring.identify('')).toBeNull();
  });
});
