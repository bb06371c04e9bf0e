// Flatten: map a parsed message body onto the fields of a login event. Known nested or
// renamed fields (e.g. {"device": {"id": …}} or "deviceId") map to their field; anything
// else is rejected, never guessed. Types are checked later, by validate.ts.
import { isRecord } from '../platform/guards';

export const LOGIN_FIELDS = ['user_id', 'device_type', 'ip', 'device_id', 'locale', 'app_version', 'create_date'] as const;
export type LoginField = (typeof LOGIN_FIELDS)[number];

/** Every accepted spelling of each field, as a dotted path into the body. */
const ALIASES: Record<LoginField, string[]> = {
  user_id: ['user_id', 'userId', 'user.id'],
  device_type: ['device_type', 'deviceType', 'device.type'],
  ip: ['ip', 'ip_address', 'ipAddress'],
  device_id: ['device_id', 'deviceId', 'device.id'],
  locale: ['locale', 'user.locale', 'device.locale'],
  app_version: ['app_version', 'appVersion', 'app.version'],
  create_date: ['create_date', 'createDate', 'created_at', 'createdAt'],
};

const FIELD_BY_PATH = new Map<string, LoginField>(
  Object.entries(ALIASES).flatMap(([field, paths]) => paths.map((p) => [p, field as LoginField] as const)),
);
/** Objects that may be descended into: the first segments of the dotted aliases. */
const CONTAINERS = new Set([...FIELD_BY_PATH.keys()].filter((p) => p.includes('.')).map((p) => p.split('.')[0]));

export type FlatEvent = Partial<Record<LoginField, unknown>>;
export type FlattenResult = { ok: true; event: FlatEvent } | { ok: false; reasons: string[] };

export function flatten(body: unknown): FlattenResult {
  if (!isRecord(body)) return { ok: false, reasons: ['not_an_object'] };

  const event: FlatEvent = {};
  const reasons = new Set<string>();
  let unknown = 0;
  const take = (path: string, value: unknown) => {
    const field = FIELD_BY_PATH.get(path);
    if (!field) {
      unknown++;
      return;
    }
    if (field in event && event[field] !== value) reasons.add(`conflicting_field:${field}`);
    event[field] = value;
  };

  for (const [key, value] of Object.entries(body)) {
    if (CONTAINERS.has(key) && isRecord(value)) {
      for (const [inner, innerValue] of Object.entries(value)) take(`${key}.${inner}`, innerValue);
    } else if (key.includes('.')) {
      unknown++; // a literal "device.id" key is not the nested path device.id
    } else {
      take(key, value);
    }
  }

  // Nothing we know: a message of another kind, not a broken login event.
  if (Object.keys(event).length === 0) return { ok: false, reasons: ['unknown_shape'] };
  if (unknown > 0) reasons.add('unknown_field');
  return reasons.size ? { ok: false, reasons: [...reasons] } : { ok: true, event };
}
