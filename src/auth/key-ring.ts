// A namespace import: `hash` is missing before Node 20.12, and a named import of it would fail to link.
import * as crypto from 'node:crypto';
import type { Identity } from './identity.js';

/** A client key as configured: its name and the SHA-256 of the key (the key itself is not kept). */
export interface KeyEntry {
  id: string;
  sha256: Buffer;
}

/** Node ≥ 20.12's one-shot hash: no Hash object per call (a key is hashed on every request). */
const oneShot = typeof crypto.hash === 'function' ? crypto.hash : undefined;

export function sha256(text: string): Buffer {
  return oneShot ? oneShot('sha256', text, 'buffer') : crypto.createHash('sha256').update(text, 'utf8').digest();
}

/**
 * The configured keys, held only as hashes. A presented key is hashed and compared with every entry
 * in constant time (no early exit), so timing tells nothing about which key, if any, almost matched.
 */
export class KeyRing {
  constructor(
    private readonly clients: readonly KeyEntry[],
    private readonly admin: Buffer | undefined,
  ) {}

  get configured(): boolean {
    return this.clients.length > 0 || this.admin !== undefined;
  }

  identify(presented: string): Identity | null {
    const digest = sha256(presented);
    let match: Identity | null = null;
    if (this.admin && crypto.timingSafeEqual(digest, this.admin)) match = { kind: 'admin', keyId: 'admin' };
    for (const entry of this.clients) {
      if (crypto.timingSafeEqual(digest, entry.sha256) && !match) match = { kind: 'client', keyId: entry.id };
    }
    return match;
  }
}

/**
 * Parses client keys from `API_KEYS` ("name:key,name2:key2" or bare keys) and a keys file (one per
 * line: `name:key` or `name:sha256:<64 hex>` for a pre-hashed key; `#` starts a comment).
 */
export function parseKeyEntries(text: string, separator: RegExp): KeyEntry[] {
  const entries: KeyEntry[] = [];
  for (const raw of text.split(separator)) {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') continue;
    const hashed = /^([\w.-]{1,64}):sha256:([0-9a-f]{64})$/i.exec(line);
    if (hashed) {
      entries.push({ id: hashed[1] as string, sha256: Buffer.from(hashed[2] as string, 'hex') });
      continue;
    }
    const named = /^([\w.-]{1,64}):(.+)$/.exec(line);
    const id = named ? (named[1] as string) : `key-${sha256(line).toString('hex').slice(0, 8)}`;
    const key = named ? (named[2] as string) : line;
    if (key.length < 16) throw new Error(`API key "${id}" is too short (at least 16 characters)`);
    entries.push({ id, sha256: sha256(key) });
  }
  const ids = new Set<string>();
  for (const entry of entries) {
    if (ids.has(entry.id)) throw new Error(`API key name "${entry.id}" is used twice`);
    if (entry.id === 'admin') throw new Error('API key name "admin" is reserved for ADMIN_API_KEY');
    ids.add(entry.id);
  }
  return entries;
}
