import { describe, expect, it } from 'vitest';
import { formatEventId, isTurnId, parseEventId } from './event-id.js';

describe('formatEventId / parseEventId', () => {
  it.each([
    ['u1', 0],
    ['u1', 1],
    ['msg_01HZX-abc_DEF', 42],
    ['6f1c2a9e-8b4d-4c3e-9f7a-1b2c3d4e5f60', 123_456_789],
    ['a'.repeat(100), 999_999_999],
  ])('round-trips turn %s seq %i', (turnId, seq) => {
    const text = formatEventId(turnId, seq);
    expect(text).toBe(`${turnId}:${seq}`);
    expect(parseEventId(text)).toEqual({ turnId, seq });
  });

  it('ignores surrounding whitespace and reads leading zeros as the number', () => {
    expect(parseEventId('  u1:7 \n')).toEqual({ turnId: 'u1', seq: 7 });
    expect(parseEventId('u1:007')).toEqual({ turnId: 'u1', seq: 7 });
  });

  it.each([
    '',
    '   ',
    'u1',
    'u1:',
    ':5',
    'u1:x',
    'u1:-1',
    'u1:+1',
    'u1:1.5',
    'u1:1e3',
    'u1: 1',
    'u 1:1',
    'u/1:1',
    'u1:1:2',
    'ü1:1',
    'u1:1234567890',
    `${'a'.repeat(101)}:1`,
  ])('rejects the malformed id %j', (text) => {
    expect(parseEventId(text)).toBeNull();
  });
});

describe('isTurnId', () => {
  it('accepts the ids the server hands out and rejects anything else', () => {
    expect(isTurnId('u1')).toBe(true);
    expect(isTurnId('6f1c2a9e-8b4d-4c3e-9f7a-1b2c3d4e5f60')).toBe(true);
    expect(isTurnId('a'.repeat(100))).toBe(true);
    expect(isTurnId('')).toBe(false);
    expect(isTurnId('a'.repeat(101))).toBe(false);
    expect(isTurnId('u1:1')).toBe(false);
    expect(isTurnId(' u1')).toBe(false);
    expect(isTurnId('../u1')).toBe(false);
  });
});
