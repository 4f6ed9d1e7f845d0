import { describe, expect, it } from 'vitest';
import { cacheKey, canonicalJson } from './cache-key.js';

const config = { model: 'claude-sonnet', temperature: 0.2, tools: [{ name: 'search', params: { a: 1, b: 2 } }] };
const conversation = [
  { role: 'user', content: 'Hi' },
  { role: 'assistant', content: 'Hello!' },
];

describe('cacheKey', () => {
  it('is a prefixed SHA-256 hex digest', () => {
    expect(cacheKey({ config, conversation, message: 'What is Redis?' })).toMatch(/^chat:v1:[0-9a-f]{64}$/);
  });

  it('is stable across calls and independent of object key order (recursively)', () => {
    const a = cacheKey({ config, conversation, message: 'm' });
    const reordered = {
      tools: [{ params: { b: 2, a: 1 }, name: 'search' }],
      temperature: 0.2,
      model: 'claude-sonnet',
    };
    const conversationReordered = conversation.map((turn) => ({ content: turn.content, role: turn.role }));
    expect(cacheKey({ config, conversation, message: 'm' })).toBe(a);
    expect(cacheKey({ message: 'm', conversation: conversationReordered, config: reordered })).toBe(a);
  });

  it('is not process-salted (fixed vector)', () => {
    // sha256 of {"config":{},"conversation":[],"message":"hi"}
    expect(cacheKey({ config: {}, conversation: [], message: 'hi' })).toBe(
      'chat:v1:768e0a87c10eccd1ae725fa94b5823793d67eec5522acf220b65460b39c17b40',
    );
  });

  it('differs by message, config and conversation', () => {
    const base = cacheKey({ config, conversation, message: 'm' });
    expect(cacheKey({ config, conversation, message: 'm2' })).not.toBe(base);
    expect(cacheKey({ config: { ...config, temperature: 0.3 }, conversation, message: 'm' })).not.toBe(base);
    expect(cacheKey({ config, conversation: conversation.slice(0, 1), message: 'm' })).not.toBe(base);
    // array order is meaningful
    expect(cacheKey({ config, conversation: [...conversation].reverse(), message: 'm' })).not.toBe(base);
  });

  it('never contains the raw prompt text', () => {
    const secret = 'my-very-secret-prompt-text';
    const key = cacheKey({ config: { system: secret }, conversation: [{ content: secret }], message: secret });
    expect(key).not.toContain(secret);
    expect(key).not.toContain('secret');
  });

  it('canonicalJson sorts keys and follows JSON semantics', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, undefined], c: undefined } })).toBe('{"a":{"d":[3,null]},"b":1}');
    expect(canonicalJson({ t: new Date(0) })).toBe('{"t":"1970-01-01T00:00:00.000Z"}');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => canonicalJson(cyclic)).toThrow(TypeError);
  });
});
