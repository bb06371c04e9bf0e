// The JSON Canonicalization Scheme (JCS, RFC 8785): the one byte string a JSON value is
// signed and hashed as, so a signer and a verifier (or two machines computing a record-set
// hash) cannot disagree. RFC 8785 defines it as ECMAScript's own serialisation, which is
// what this uses:
//   * strings as JSON.stringify writes them (", \ and \b \f \n \r \t escaped, other
//     controls as lower-case \u00xx, everything else as is);
//   * numbers as ECMAScript's Number-to-string (shortest round trip: 1e+21, 0.000001, -0 as 0);
//   * object members sorted by their names' UTF-16 code units, at every level;
//   * no whitespace.
// Its input must be I-JSON (RFC 7493): this refuses, with a TypeError naming where, what
// I-JSON or JSON cannot hold: lone surrogates (they have no UTF-8 form), non-finite
// numbers, undefined, functions, symbols, bigints, class instances (Date, Buffer, Map…),
// sparse arrays, cycles, and nesting deeper than 64. (I-JSON also forbids Unicode
// noncharacters such as U+FFFF. They have a UTF-8 form, so the output stays unambiguous,
// and they are accepted: a reason or comment that validates today must stay signable.)
import { isPlainObject } from '../platform/guards';

const MAX_DEPTH = 64;

function encodeString(s: string, at: string): string {
  if (!s.isWellFormed()) throw new TypeError(`canonicalJson: ${at} holds a lone surrogate, which I-JSON (and UTF-8) cannot hold`);
  return JSON.stringify(s);
}

/** The RFC 8785 canonical form of `value` (a string; sign or hash its UTF-8 bytes). */
export function canonicalJson(value: unknown): string {
  const seen = new Set<object>();
  const encode = (v: unknown, at: string, depth: number): string => {
    if (v === null) return 'null';
    switch (typeof v) {
      case 'string':
        return encodeString(v, at);
      case 'boolean':
        return v ? 'true' : 'false';
      case 'number':
        if (!Number.isFinite(v)) throw new TypeError(`canonicalJson: ${at} is ${v}, not a finite number`);
        return JSON.stringify(v); // ECMAScript Number::toString, as RFC 8785 3.2.2.3 requires
      case 'object':
        break;
      default:
        throw new TypeError(`canonicalJson: ${at} is ${typeof v}, not a JSON value`);
    }
    const obj = v;
    if (depth >= MAX_DEPTH) throw new TypeError(`canonicalJson: ${at} is nested deeper than ${MAX_DEPTH}`);
    if (seen.has(obj)) throw new TypeError(`canonicalJson: ${at} refers back to an enclosing value (a cycle)`);
    seen.add(obj);
    let out: string;
    if (Array.isArray(obj)) {
      const parts: string[] = [];
      for (let i = 0; i < obj.length; i++) {
        if (!(i in obj)) throw new TypeError(`canonicalJson: ${at}[${i}] is a hole in a sparse array`);
        parts.push(encode(obj[i], `${at}[${i}]`, depth + 1));
      }
      out = `[${parts.join(',')}]`;
    } else {
      if (!isPlainObject(obj))
        throw new TypeError(
          `canonicalJson: ${at} is not a plain JSON object (a ${obj.constructor?.name || 'object'} with another prototype)`,
        );
      if (Object.getOwnPropertySymbols(obj).length) throw new TypeError(`canonicalJson: ${at} has symbol keys`);
      // Array.prototype.sort without a comparator compares UTF-16 code units: RFC 8785 3.2.3.
      const keys = Object.keys(obj).sort();
      out = `{${keys.map((k) => `${encodeString(k, `${at} key ${JSON.stringify(k.slice(0, 40))}`)}:${encode(obj[k], `${at}.${k}`, depth + 1)}`).join(',')}}`;
    }
    seen.delete(obj);
    return out;
  };
  return encode(value, '$', 0);
}

/** Equal as JSON values, whatever the key order (jsonb does not keep it); false for anything that is not JSON. */
export function sameJson(a: unknown, b: unknown): boolean {
  try {
    return canonicalJson(a) === canonicalJson(b);
  } catch {
    return false;
  }
}
