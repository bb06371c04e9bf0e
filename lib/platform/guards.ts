// Small checks on untrusted values, one home for each: what kind of object a value is, and
// whether text holds characters that are not data. Pure functions, no dependencies.
//
// Two object checks, because two questions are asked:
//   isRecord       "is this a JSON object?" for values that came out of JSON.parse (a key
//                  file, a message body, an HTTP body): a non-null, non-array object. The
//                  parser only ever makes plain objects, so the prototype is not looked at.
//   isPlainObject  "is this a plain object and nothing else?" for values that may come
//                  from code (what gets signed): isRecord, and the prototype is
//                  Object.prototype or null, so a Date, Buffer, Map or class instance is not one.

/** A non-null object that is not an array: what JSON.parse makes of `{…}`. */
export const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A record whose prototype is Object.prototype or null: an object literal or parsed JSON, never a class instance. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (!isRecord(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** A value's kind as error messages name it: "an array", "null", "string", "object"… */
export const kindOf = (v: unknown): string => (Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v);

// C0 controls (U+0000–U+001F, tab and line feed included), DEL (U+007F) and C1 controls (U+0080–U+009F).
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// eslint-disable-next-line no-control-regex
const CONTROL_BESIDES_TAB_AND_LINE_FEED = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

/** Whether `s` holds a C0 or C1 control character or DEL (tab and line feed count). */
export const hasControlCharacters = (s: string): boolean => CONTROL.test(s);

/** The same, but tab and line feed are allowed: free text people write over several lines. Carriage return is not. */
export const hasControlCharactersBesidesTabAndNewline = (s: string): boolean => CONTROL_BESIDES_TAB_AND_LINE_FEED.test(s);

/** Text that is data: well-formed UTF-16 (no lone surrogate) and no control character at all. */
export const isCleanText = (s: string): boolean => !hasControlCharacters(s) && s.isWellFormed();

/**
 * Text as PostgreSQL text and jsonb store it unchanged: lone surrogates and NUL (which
 * PostgreSQL refuses) become U+FFFD; everything else, other control characters included, stays.
 */
export const storableText = (s: string): string => s.toWellFormed().replaceAll('\u0000', '\uFFFD');

/** What was thrown, in words: an Error's message, anything else as a string. */
export const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));
