// Hostile message bodies for the chaos suite: the shapes the unit tests know, at volume,
// each with the quarantine reason it must end with. Every body is one SQS accepts (AWS and
// fauxqs refuse most raw control characters, so those travel JSON-escaped, which is how a
// producer's serializer sends them; the validator sees the decoded characters).
export interface HostileBody {
  kind: string;
  body: string;
  /** A reason code the quarantine entry must carry. */
  reason: string;
}

type Rnd = () => number;

const good = (rnd: Rnd): Record<string, unknown> => ({
  user_id: `u-${Math.floor(rnd() * 1e9).toString(36)}`,
  app_version: '2.3.0',
  device_type: rnd() < 0.5 ? 'ios' : 'android',
  ip: `10.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}`,
  locale: 'DE',
  device_id: `${Math.floor(rnd() * 1e3)}-${Math.floor(rnd() * 1e2)}-${Math.floor(rnd() * 1e4)}`,
});
const json = (v: unknown) => JSON.stringify(v);
const nest = (depth: number): unknown => (depth === 0 ? 'x' : { a: nest(depth - 1) });

/** Each kind, with what the pipeline must say about it. */
export const HOSTILE_KINDS: { kind: string; reason: string; make(rnd: Rnd): string }[] = [
  { kind: 'not_json', reason: 'invalid_json', make: (r) => `user_id=${Math.floor(r() * 1e6)}&ip=1.2.3.4` },
  { kind: 'truncated_json', reason: 'invalid_json', make: (r) => json(good(r)).slice(0, 20) },
  { kind: 'json_string', reason: 'not_an_object', make: () => json('a login') },
  { kind: 'json_number', reason: 'not_an_object', make: (r) => String(Math.floor(r() * 1e6)) },
  { kind: 'json_null', reason: 'not_an_object', make: () => 'null' },
  { kind: 'json_array', reason: 'not_an_object', make: (r) => json([good(r)]) },
  { kind: 'missing_user_id', reason: 'missing_field:user_id', make: (r) => json({ ...good(r), user_id: undefined }) },
  { kind: 'missing_ip', reason: 'missing_field:ip', make: (r) => json({ ...good(r), ip: undefined }) },
  { kind: 'wrong_type_ip', reason: 'wrong_type:ip', make: (r) => json({ ...good(r), ip: 167772161 }) },
  { kind: 'wrong_type_user_id', reason: 'wrong_type:user_id', make: (r) => json({ ...good(r), user_id: { id: 1 } }) },
  { kind: 'wrong_type_app_version', reason: 'wrong_type:app_version', make: (r) => json({ ...good(r), app_version: 230 }) },
  { kind: 'invalid_ipv4', reason: 'invalid_ip', make: (r) => json({ ...good(r), ip: `256.${Math.floor(r() * 256)}.0.1` }) },
  { kind: 'invalid_ipv6', reason: 'invalid_ip', make: (r) => json({ ...good(r), ip: '2001:db8::g1' }) },
  { kind: 'ip_with_port', reason: 'invalid_ip', make: (r) => json({ ...good(r), ip: '10.0.0.1:443' }) },
  {
    kind: 'control_characters',
    reason: 'invalid_characters:user_id',
    make: (r) => json({ ...good(r), user_id: `u\u0000\u0007${Math.floor(r() * 1e6)}` }),
  },
  { kind: 'lone_surrogate', reason: 'invalid_characters:locale', make: (r) => json({ ...good(r), locale: 'D\ud800E' }) },
  { kind: 'oversized_ascii', reason: 'body_too_large', make: (r) => json({ ...good(r), pad: 'x'.repeat(9000) }) },
  // ~3,000 characters but ~9,000 UTF-8 bytes: too large only when counted in bytes.
  { kind: 'oversized_multibyte', reason: 'body_too_large', make: (r) => json({ ...good(r), locale: '日本語'.repeat(1000) }) },
  // (Astral-plane characters such as emoji are valid in AWS SQS, but fauxqs 1.9 refuses them: BMP only here.)
  { kind: 'multibyte_long_field', reason: 'too_long:user_id', make: (r) => json({ ...good(r), user_id: '€é'.repeat(400) }) },
  { kind: 'proto_key', reason: 'unknown_field', make: (r) => `{"__proto__": {"admin": true}, ${json(good(r)).slice(1)}` },
  {
    kind: 'constructor_key',
    reason: 'unknown_field',
    make: (r) => json({ ...good(r), constructor: { prototype: { polluted: 1 } } }),
  },
  { kind: 'deep_nesting', reason: 'unknown_field', make: (r) => json({ ...good(r), extra: nest(500) }) },
  {
    kind: 'deep_nesting_in_alias',
    reason: 'wrong_type:device_id',
    make: (r) => json({ ...good(r), device_id: undefined, device: { id: nest(200) } }),
  },
  { kind: 'unknown_shape', reason: 'unknown_shape', make: (r) => json({ event: 'purchase', amount: Math.floor(r() * 100) }) },
];

/** `n` hostile bodies, every kind in turn (so a few hundred cover each kind many times). */
export function hostileBodies(n: number, rnd: Rnd): HostileBody[] {
  return Array.from({ length: n }, (_, i) => {
    const k = HOSTILE_KINDS[i % HOSTILE_KINDS.length];
    return { kind: k.kind, body: k.make(rnd), reason: k.reason };
  });
}
