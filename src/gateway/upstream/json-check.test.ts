import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isJsonText, textDeltaIsValid } from './json-check.js';

const delta = (text: string, index = 0) => JSON.stringify({ type: 'content_block_delta', index, delta: { type: 'text_delta', text } });
const parses = (text: string) => {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
};

describe('textDeltaIsValid', () => {
  it('recognises every text delta as JSON.stringify writes it (so the fast path is the common one)', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary' }), fc.nat(1000), (text, index) => textDeltaIsValid(delta(text, index))));
  });

  it('is never wrong: whatever it accepts, JSON.parse accepts', () => {
    const head = '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"';
    const pieces = fc.constantFrom('a', ' ', '"', '\\', '\\"', '\\\\', '\\n', '\\u00e9', '\\u12', '\\x', '\n', '\t', '\u0001', 'é', '😀', '}', '"}}', '\\u');
    fc.assert(
      fc.property(fc.array(pieces, { maxLength: 12 }), fc.constantFrom('"}}', '"}', '}}', '"}} ', '\\"}}', ''), (parts, tail) => {
        const text = head + parts.join('') + tail;
        if (textDeltaIsValid(text)) expect(parses(text)).toBe(true);
      }),
    );
  });

  it('leaves other shapes to JSON.parse', () => {
    expect(textDeltaIsValid('{"type":"message_stop"}')).toBe(false);
    expect(textDeltaIsValid('{"type":"content_block_delta","index":01,"delta":{"type":"text_delta","text":"a"}}')).toBe(false);
    expect(textDeltaIsValid('{"type":"content_block_delta", "index":0,"delta":{"type":"text_delta","text":"a"}}')).toBe(false);
    expect(textDeltaIsValid('{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a","x":1}}')).toBe(false);
  });
});

describe('isJsonText', () => {
  it('agrees with JSON.parse on deltas, other events and garbage', () => {
    const samples = [delta('fine'), delta('tab\tinside'), '{"type":"message_stop"}', '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"cut', 'not json', '', '{"a":1}'];
    for (const text of samples) expect(isJsonText(text), text).toBe(parses(text));
    fc.assert(fc.property(fc.string(), (text) => isJsonText(text) === parses(text)));
  });
});
