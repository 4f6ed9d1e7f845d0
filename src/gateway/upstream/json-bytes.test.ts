import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isJsonBytes, TopLevelMembers } from './json-bytes.js';

const parses = (text: string) => {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
};
/** Text in, as UTF-8 bytes. */
const isJson = (text: string, start?: number, end?: number) => isJsonBytes(Buffer.from(text), start, end);
const agrees = (text: string) => {
  expect(isJson(text), JSON.stringify(text)).toBe(parses(text));
};

/** JSON-ish pieces: joined at random they make valid and nearly valid texts alike. */
const piece = fc.constantFrom(
  '{', '}', '[', ']', ',', ':', ' ', '\n', '\t', '\r', '"', '"a"', '"k":', '\\', '\\"', '\\n', '\\u00e9', '\\u12', '\\x', '\u0001', 'é', '😀',
  '0', '-', '1', '01', '-0', '1.', '.5', '1.5', '1e', '1e+', '1e-7', '2E3', 'true', 'tru', 'false', 'null', 'nul', 'nulll', '\uFEFF',
);

describe('isJsonBytes', () => {
  it('accepts every JSON text, however spaced', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom(undefined, 1, '\t', ' \r\n '), (value, space) => {
        const text = JSON.stringify(value, null, space);
        expect(isJson(` ${text}\n`)).toBe(true);
      }),
    );
  });

  it('agrees with JSON.parse on texts assembled from JSON pieces', () => {
    fc.assert(fc.property(fc.array(piece, { maxLength: 16 }), (parts) => agrees(parts.join(''))), { numRuns: 3000 });
  });

  it('agrees with JSON.parse on a valid text with one character removed, changed or added', () => {
    const edit = fc.record({ at: fc.nat(), kind: fc.constantFrom('drop', 'swap', 'add'), char: fc.constantFrom('"', '\\', ',', ':', '}', ']', '{', '[', 'x', '0', '.', 'e', '-', ' ', '\u0000', 'é') });
    fc.assert(
      fc.property(fc.jsonValue(), edit, (value, { at, kind, char }) => {
        const text = JSON.stringify(value) ?? 'null';
        const i = at % (text.length + 1);
        const edited = kind === 'drop' ? text.slice(0, i) + text.slice(i + 1) : kind === 'swap' ? text.slice(0, i) + char + text.slice(i + 1) : text.slice(0, i) + char + text.slice(i);
        agrees(edited);
      }),
      { numRuns: 3000 },
    );
  });

  it('agrees with JSON.parse of the UTF-8 decoding on arbitrary bytes, ill-formed sequences included', () => {
    const bytes = fc.array(fc.oneof(fc.constantFrom(0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x3a, 0x2c, 0x30, 0x20), fc.integer({ min: 0, max: 255 })), { maxLength: 24 });
    fc.assert(
      fc.property(bytes, (list) => {
        const buffer = Buffer.from(list);
        expect(isJsonBytes(buffer)).toBe(parses(buffer.toString('utf8')));
      }),
      { numRuns: 3000 },
    );
    // Inside a string, any byte from 0x80 up decodes to something JSON allows.
    expect(isJsonBytes(Buffer.from([0x22, 0xff, 0xc3, 0x22]))).toBe(true);
    expect(isJsonBytes(Buffer.from([0xef, 0xbb, 0xbf, 0x31]))).toBe(false);
  });

  it('refuses what JSON refuses at the edges', () => {
    for (const text of ['', ' ', '\uFEFF{}', '{}{}', '[1,]', '{"a":1,}', '{"a" 1}', '{1:2}', '"\t"', '[01]', '-', '1.e3', '"\\u12G4"', 'NaN', "'a'", '[', '{"a":']) {
      agrees(text);
      expect(isJson(text), text).toBe(false);
    }
    for (const text of ['0', '-0.0e-0', '"\\ud800"', '{"a":[{},[],"",0,true,false,null]}', ' [ 1 , 2 ] ']) {
      expect(isJson(text), text).toBe(true);
    }
  });

  it('checks only the range it is given', () => {
    const text = 'data: {"a":1}\n\n';
    expect(isJson(text, 6, 13)).toBe(true);
    expect(isJson(text, 6, 12)).toBe(false);
    // Nothing past the range's end is read.
    expect(isJson('123', 0, 2)).toBe(true);
    expect(isJson('true', 0, 3)).toBe(false);
    expect(isJson('"ab"', 0, 3)).toBe(false);
    expect(isJson('"\\u0041"', 0, 6)).toBe(false);
    expect(isJson('1.5', 0, 2)).toBe(false);
    expect(isJson('[1]', 0, 2)).toBe(false);
  });

  it('handles deep nesting without recursion', () => {
    const depth = 100_000;
    expect(isJson('['.repeat(depth) + ']'.repeat(depth))).toBe(true);
    expect(isJson('[{"a":'.repeat(depth) + '1' + '}]'.repeat(depth))).toBe(true);
    expect(isJson('['.repeat(depth) + ']'.repeat(depth - 1))).toBe(false);
  });
});

describe('TopLevelMembers', () => {
  const read = (text: string) => {
    const members = new TopLevelMembers(['type', 'stop_reason']);
    members.clear();
    const bytes = Buffer.from(text);
    const valid = isJsonBytes(bytes, 0, bytes.length, members);
    const value = (n: number) => (members.has(n) ? bytes.toString('utf8', members.starts[n], members.ends[n]) : undefined);
    return { valid, members, bytes, type: value(0), stop: value(1) };
  };

  it('finds the values of the named top-level members, as written', () => {
    const found = read('{ "id" : "x", "type" : "message", "content":[{"type":"text"}], "stop_reason": null }');
    expect(found).toMatchObject({ valid: true, type: '"message"', stop: 'null' });
    expect(found.members.is(0, found.bytes, '"message"')).toBe(true);
    expect(found.members.is(1, found.bytes, '"end_turn"')).toBe(false);
    expect(read('{"stop_reason":{"a":[1]},"type":"message"}')).toMatchObject({ type: '"message"', stop: '{"a":[1]}' });
  });

  it('ignores members of nested objects and keeps the last of duplicates, as JSON.parse does', () => {
    expect(read('{"content":{"type":"inner","stop_reason":"x"}}')).toMatchObject({ valid: true, type: undefined, stop: undefined });
    expect(read('{"type":"a","type":"message"}').type).toBe('"message"');
    expect(read('[{"type":"message"}]').type).toBeUndefined();
  });

  it('flags a top-level key written with an escape, which might be one of the names', () => {
    const found = read('{"typ\\u0065":"message","stop_reason":"end_turn"}');
    expect(found).toMatchObject({ valid: true, type: undefined, stop: '"end_turn"' });
    expect(found.members.escaped).toBe(true);
    expect(read('{"type":"mess\\u0061ge"}').members.escaped).toBe(false);
  });
});
