import crypto from 'node:crypto';
import { canonicalJson } from '../../lib/recovery/canonical-json';

/** The double whose IEEE 754 bits are `hex` (16 hex digits, big-endian). */
const fromBits = (hex: string): number => Buffer.from(hex, 'hex').readDoubleBE(0);

// The examples below are written out from the text of RFC 8785 (JSON Canonicalization Scheme).
describe('canonicalJson: RFC 8785 test vectors', () => {
  it('serialises the example of section 3.2.2 (numbers, string escapes, literals) as the RFC prints it', () => {
    const input = String.raw`{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }`;
    const expected = String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`;
    expect(canonicalJson(JSON.parse(input))).toBe(expected);
  });

  it('sorts properties by UTF-16 code units, as the example of section 3.2.3', () => {
    const input = String.raw`{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }`;
    // Read the values in the order of the text (JSON.parse would move the integer-like key "1" first).
    const values = [...canonicalJson(JSON.parse(input)).matchAll(/:"([^"]*)"/g)].map((m) => m[1]);
    expect(values).toEqual([
      'Carriage Return',
      'One',
      'Control',
      'Latin Small Letter O With Diaeresis',
      'Euro Sign',
      'Emoji: Grinning Face', // U+1F600 is the surrogate pair D83D DE00: before U+FB33 in UTF-16 order, after it in code points
      'Hebrew Letter Dalet With Dagesh',
    ]);
  });

  // Appendix B: IEEE 754 bit patterns and their canonical text.
  it.each<[string, string]>([
    ['0000000000000000', '0'],
    ['8000000000000000', '0'], // minus zero
    ['0000000000000001', '5e-324'],
    ['8000000000000001', '-5e-324'],
    ['7fefffffffffffff', '1.7976931348623157e+308'],
    ['ffefffffffffffff', '-1.7976931348623157e+308'],
    ['4340000000000000', '9007199254740992'],
    ['c340000000000000', '-9007199254740992'],
    ['4430000000000000', '295147905179352830000'],
    ['44b52d02c7e14af5', '9.999999999999997e+22'],
    ['44b52d02c7e14af6', '1e+23'],
    ['44b52d02c7e14af7', '1.0000000000000001e+23'],
    ['444b1ae4d6e2ef4e', '999999999999999700000'],
    ['444b1ae4d6e2ef4f', '999999999999999900000'],
    ['444b1ae4d6e2ef50', '1e+21'],
    ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
    ['3eb0c6f7a0b5ed8d', '0.000001'],
    ['41b3de4355555553', '333333333.3333332'],
    ['41b3de4355555554', '333333333.33333325'],
    ['41b3de4355555555', '333333333.3333333'],
    ['41b3de4355555556', '333333333.3333334'],
    ['41b3de4355555557', '333333333.33333343'],
    ['becbf647612f3696', '-0.0000033333333333333333'],
    ['43143ff3c1cb0959', '1424953923781206.2'],
  ])('writes the number with bits %s as %s', (bits, text) => {
    expect(canonicalJson(fromBits(bits))).toBe(text);
  });

  it.each(['7fffffffffffffff', '7ff0000000000000'])('refuses the bits %s (NaN, Infinity): not a JSON number', (bits) => {
    expect(() => canonicalJson([fromBits(bits)])).toThrow(TypeError);
  });
});

describe('canonicalJson: what it refuses, and what it keeps', () => {
  it('sorts keys at every level and leaves no whitespace', () => {
    expect(canonicalJson({ b: 1, a: [{ z: null, y: 'x' }, true], c: { e: -0.5, d: 'é' } })).toBe(
      '{"a":[{"y":"x","z":null},true],"b":1,"c":{"d":"é","e":-0.5}}',
    );
    expect(canonicalJson({ b: 1, a: 2 })).toBe(canonicalJson({ a: 2, b: 1 }));
    expect(canonicalJson({ B: 1, a: 2, _: 3, '10': 4, '9': 5 })).toBe('{"10":4,"9":5,"B":1,"_":3,"a":2}');
  });

  it('refuses lone surrogates in values and keys: I-JSON (and UTF-8) cannot hold them', () => {
    expect(() => canonicalJson('\ud800')).toThrow(/lone surrogate/);
    expect(() => canonicalJson({ a: ['ok', 'x\udc00'] })).toThrow(/\$\.a\[1\] holds a lone surrogate/);
    expect(() => canonicalJson({ ['k\ud800']: 1 })).toThrow(/key .* holds a lone surrogate/);
    expect(canonicalJson('\ud83d\ude00')).toBe('"😀"'); // a pair is one character
  });

  it.each([
    ['undefined', undefined],
    ['an undefined member', { a: undefined }],
    ['a function', { f: () => 1 }],
    ['NaN', { n: NaN }],
    ['Infinity', [Infinity]],
    ['a bigint', { n: 1n }],
    ['a symbol', Symbol('s')],
    ['a Date', { d: new Date(0) }],
    ['a Map', new Map()],
    ['a Buffer', Buffer.from('x')],
    ['a sparse array', [1, , 3]], // eslint-disable-line no-sparse-arrays
    ['a symbol key', { [Symbol('k')]: 1 }],
  ])('rejects %s', (_what, value) => {
    expect(() => canonicalJson(value)).toThrow(TypeError);
  });

  it('rejects cycles and very deep nesting, but not shared references', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(() => canonicalJson(cyclic)).toThrow(/cycle/);
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = [deep];
    expect(() => canonicalJson(deep)).toThrow(/deeper/);
    const shared = { x: 1 };
    expect(canonicalJson({ a: shared, b: shared })).toBe('{"a":{"x":1},"b":{"x":1}}');
  });

  it('gives the bytes a signature made before RFC 8785 compliance was checked covers: old signatures still verify', () => {
    // Signed with the code of lib/recovery/operators.ts as it was, with the Ed25519 seed 32×0x03.
    const publicKey = crypto.createPublicKey({
      key: {
        kty: 'OKP',
        crv: 'Ed25519',
        x: Buffer.from('7UkoxijRwsbq6QM4kFmVYSlZJzpcY/k2NsFGFKyHN9E=', 'base64').toString('base64url'),
      },
      format: 'jwk',
    });
    const signature = Buffer.from(
      'Peb/57pwlDoTNrD58nlNvvqyffDubM3XCWnmT16uj4ox16WxVodcWgVZZXENRbYeEdHilyQv7HieDv4Cu2HoBQ==',
      'base64',
    );
    const body = {
      type: 'pii-recovery-approval',
      requestId: '0f8fad5b-d9cb-469f-a165-70867728950e',
      operator: 'bob',
      decision: 'approve',
      recordSetHash: 'a'.repeat(64),
      comment: 'Checked — ticket SEC-42 ✓ 😀',
      issuedAt: '2026-01-01T00:00:00Z',
      n: [1, 0.5, 1e21, -0],
    };
    expect(crypto.verify(null, Buffer.from(canonicalJson(body), 'utf8'), publicKey, signature)).toBe(true);
  });
});
