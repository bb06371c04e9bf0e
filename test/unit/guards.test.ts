import { decodeStrictBase64 } from '../../lib/platform/base64';
import {
  hasControlCharacters,
  hasControlCharactersBesidesTabAndNewline,
  isCleanText,
  isPlainObject,
  isRecord,
  kindOf,
  storableText,
} from '../../lib/platform/guards';
import { parseInstant, parseLenientDateTime } from '../../lib/platform/iso-date';

describe('isRecord / isPlainObject', () => {
  it('isRecord: any non-null, non-array object, whatever its prototype', () => {
    for (const v of [{}, { a: 1 }, JSON.parse('{"__proto__": 1}'), Object.create(null), new Date(), new Map()])
      expect(isRecord(v)).toBe(true);
    for (const v of [null, undefined, [], [1], 'x', 1, true]) expect(isRecord(v)).toBe(false);
  });

  it('isPlainObject: only an object literal, parsed JSON or a null-prototype object', () => {
    for (const v of [{}, JSON.parse('{"a": {"b": 1}}'), Object.create(null)]) expect(isPlainObject(v)).toBe(true);
    for (const v of [new Date(), new Map(), Buffer.from('x'), new (class X {})(), Object.create({ inherited: 1 }), [], null])
      expect(isPlainObject(v)).toBe(false);
  });

  it('kindOf names arrays and null apart from objects', () => {
    expect([kindOf([]), kindOf(null), kindOf({}), kindOf('s'), kindOf(undefined)]).toEqual([
      'an array',
      'null',
      'object',
      'string',
      'undefined',
    ]);
  });
});

describe('control characters and clean text', () => {
  it('finds C0, DEL and C1 controls; tab and line feed count unless allowed; carriage return is never allowed', () => {
    for (const c of ['\u0000', '\u0007', '\t', '\n', '\r', '\u001f', '\u007f', '\u0085', '\u009f'])
      expect(hasControlCharacters(`a${c}b`)).toBe(true);
    for (const s of ['plain', 'é € 😀', '\u00a0', '\u2028']) expect(hasControlCharacters(s)).toBe(false);
    expect(hasControlCharactersBesidesTabAndNewline('line one\nline\ttwo')).toBe(false);
    for (const c of ['\r', '\u0000', '\u000b', '\u007f', '\u0080'])
      expect(hasControlCharactersBesidesTabAndNewline(`a${c}b`)).toBe(true);
  });

  it('isCleanText: well-formed and without any control character', () => {
    expect(isCleanText('Alice 😀')).toBe(true);
    expect(isCleanText('a\ud800')).toBe(false);
    expect(isCleanText('a\tb')).toBe(false);
  });

  it('storableText replaces only NUL and lone surrogates', () => {
    expect(storableText('a\u0000b\ud800c\u0007\n')).toBe('a\uFFFDb\uFFFDc\u0007\n');
    expect(storableText('😀')).toBe('😀');
  });
});

describe('decodeStrictBase64', () => {
  const bytes = Buffer.from([0xfb, 0xff, 0x00, 0x10]);
  it('accepts only the canonical form', () => {
    expect(decodeStrictBase64(bytes.toString('base64'))!.equals(bytes)).toBe(true);
    expect(decodeStrictBase64('')!.length).toBe(0);
    for (const v of [bytes.toString('base64url'), '+/8AEA', ' +/8AEA==', '+/8A\nEA==', '+/8AEA==x', '+/8AEB==', 42, null])
      expect(decodeStrictBase64(v)).toBeNull();
  });

  it('with a size, only values of exactly that many bytes', () => {
    expect(decodeStrictBase64(bytes.toString('base64'), 4)!.equals(bytes)).toBe(true);
    expect(decodeStrictBase64(bytes.toString('base64'), 5)).toBeNull();
    expect(decodeStrictBase64(Buffer.alloc(3).toString('base64'), 4)).toBeNull();
    expect(decodeStrictBase64('A'.repeat(1_000_000), 32)).toBeNull();
  });
});

describe('ISO 8601 date-times', () => {
  it('parseLenientDateTime: optional time, seconds and zone; no zone is UTC; impossible dates are null', () => {
    expect(parseLenientDateTime('2024-02-29')).toBe(Date.UTC(2024, 1, 29));
    expect(parseLenientDateTime('2024-02-29 10:30')).toBe(Date.UTC(2024, 1, 29, 10, 30));
    expect(parseLenientDateTime('2024-02-29T10:30:15.5Z')).toBe(Date.UTC(2024, 1, 29, 10, 30, 15, 500));
    expect(parseLenientDateTime('2024-02-29T10:30:15+0200')).toBe(Date.UTC(2024, 1, 29, 8, 30, 15));
    expect(parseLenientDateTime('2024-02-29T10:30:15-05:30')).toBe(Date.UTC(2024, 1, 29, 16, 0, 15));
    for (const bad of ['2023-02-29', '2024-13-01', '2024-01-01T24:00', '2024-01-01T10:60', '2024-1-1', 'yesterday', '0050-01-01'])
      expect(parseLenientDateTime(bad)).toBeNull();
  });

  it('parseInstant: seconds and a zone required, up to 9 fraction digits', () => {
    expect(parseInstant('2025-06-01T14:01:00+02:00')).toBe(Date.UTC(2025, 5, 1, 12, 1));
    expect(parseInstant('2025-06-01T12:00:00.123456789Z')).toBe(Date.UTC(2025, 5, 1, 12, 0, 0, 123));
    for (const bad of [
      '2025-06-01T12:00:00',
      '2025-06-01T12:00Z',
      '2025-06-01 12:00:00Z',
      '2025-02-30T00:00:00Z',
      '2025-06-01T12:00:00+24:00',
      '2025-06-01T12:00:00+02:60',
      7,
      null,
    ]) {
      expect(parseInstant(bad)).toBeNull();
    }
  });
});
