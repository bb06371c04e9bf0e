// ISO 8601 date-times read from outside, in two strictnesses, both refusing impossible
// calendar dates (2024-02-30, 25:00) instead of rolling them over as Date.parse does.
//
//   parseLenientDateTime  a date as message senders write it: the time, seconds, fraction
//                         and zone optional, "T" or a space; no zone means UTC (so the result
//                         never depends on the machine's time zone). For create_date.
//   parseInstant          an exact instant (RFC 3339 style): date, "T", time with seconds,
//                         up to 9 fraction digits, and a zone ("Z" or ±hh:mm) required. For
//                         the issuedAt of signed documents.

/** Whether the fields name a real day and a time of day (hour ≤ 23, minute and second ≤ 59). */
function isRealDateTime(year: number, month: number, day: number, hour: number, minute: number, second: number): boolean {
  const calendar = new Date(Date.UTC(year, month - 1, day));
  if (calendar.getUTCFullYear() !== year || calendar.getUTCMonth() !== month - 1 || calendar.getUTCDate() !== day) return false;
  return hour <= 23 && minute <= 59 && second <= 59;
}

const LENIENT = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,3})?)?)?(Z|[+-]\d{2}:?\d{2})?$/;

/** Milliseconds since the epoch of a lenient ISO 8601 date-time (see above), or null. */
export function parseLenientDateTime(text: string): number | null {
  const m = LENIENT.exec(text);
  if (!m) return null;
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone] = m;
  const [Y, M, D, H, MI, S] = [y, mo, d, h, mi, s].map(Number);
  if (!isRealDateTime(Y, M, D, H, MI, S)) return null;
  const local = Date.UTC(Y, M - 1, D, H, MI, S, frac ? Math.round(Number(frac) * 1000) : 0);
  if (!zone || zone === 'Z') return local;
  const sign = zone[0] === '-' ? -1 : 1;
  const [zh, zm] = [Number(zone.slice(1, 3)), Number(zone.slice(-2))];
  return local - sign * (zh * 60 + zm) * 60_000;
}

const INSTANT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-](\d{2}):(\d{2}))$/;

/** Milliseconds since the epoch of an ISO 8601 date-time with seconds and a time zone, or null for anything else. */
export function parseInstant(value: unknown): number | null {
  if (typeof value !== 'string') return null;
  const m = INSTANT.exec(value);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
  if (!isRealDateTime(year, month, day, hour, minute, second)) return null;
  if (m[9] !== undefined && (Number(m[9]) > 23 || Number(m[10]) > 59)) return null;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : null;
}
