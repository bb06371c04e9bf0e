// Strict base64 for keys, signatures and ciphertext read from files, the environment or
// signed documents. Node's Buffer.from(s, 'base64') never fails: it skips characters it
// does not know, accepts base64url and missing padding, and stops at the first "=". A
// value is accepted here only when it is written the one canonical way (standard alphabet,
// padded, nothing else), so one byte string has exactly one accepted text form.

/**
 * The bytes of `value` when it is a string in canonical base64, else null. With
 * `exactBytes`, also null unless it decodes to exactly that many bytes; the length of the
 * text is checked before decoding, so an oversized value costs nothing.
 */
export function decodeStrictBase64(value: unknown, exactBytes?: number): Buffer | null {
  if (typeof value !== 'string') return null;
  if (exactBytes !== undefined && value.length !== 4 * Math.ceil(exactBytes / 3)) return null;
  const decoded = Buffer.from(value, 'base64');
  if (decoded.toString('base64') !== value) return null;
  return exactBytes === undefined || decoded.length === exactBytes ? decoded : null;
}
