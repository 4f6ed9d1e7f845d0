import { createHash } from 'node:crypto';

/** Version tag of the key scheme; bump it when the key derivation or the cached value shape changes. */
export const CACHE_KEY_PREFIX = 'chat:v1:';

/**
 * Converts a value into a JSON-compatible structure whose object keys are sorted recursively, following
 * JSON.stringify semantics otherwise (toJSON is honoured, undefined/function/symbol properties are
 * dropped, and become null inside arrays, non-finite numbers become null). Throws a TypeError on cycles
 * and BigInt, which have no JSON form.
 */
function canonicalize(value: unknown, ancestors: Set<object>): unknown {
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON: () => unknown }).toJSON();
  }
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'bigint':
      throw new TypeError('cacheKey: BigInt values cannot be serialised');
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (value === null) return null;
  const obj = value as object;
  if (ancestors.has(obj)) throw new TypeError('cacheKey: circular structure');
  ancestors.add(obj);
  try {
    if (Array.isArray(obj)) {
      return obj.map((item: unknown) => {
        const c = canonicalize(item, ancestors);
        return c === undefined ? null : c;
      });
    }
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(obj).sort()) {
      const c = canonicalize((obj as Record<string, unknown>)[key], ancestors);
      if (c !== undefined) out[key] = c;
    }
    return out;
  } finally {
    ancestors.delete(obj);
  }
}

/** Canonical JSON: object keys sorted recursively, so key order never changes the output. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(canonicalize(value, new Set())) ?? 'null';
}

/**
 * Stable cache key of a chat request: `chat:v1:` + SHA-256 hex of the canonical JSON of the parts.
 * Deterministic across processes (no salt); the raw prompt never appears in the key.
 */
export function cacheKey(parts: { config: unknown; conversation: unknown; message: string }): string {
  const canonical = canonicalJson({ config: parts.config, conversation: parts.conversation, message: parts.message });
  return CACHE_KEY_PREFIX + createHash('sha256').update(canonical, 'utf8').digest('hex');
}
