// Signed documents: an operator's Ed25519 signature over the RFC 8785 canonical JSON of a
// body (canonical-json.ts), so the audit trail proves who asked for what and who agreed,
// and nobody (not the workflow, not another operator) can alter a document or speak for
// someone else. verifySigned says whether a document received from outside is well
// formed, signed by a registered operator and fresh; roles and replays are the caller's
// checks (activities/recovery.ts).
import crypto from 'node:crypto';
import { decodeStrictBase64 } from '../platform/base64';
import { isPlainObject, kindOf } from '../platform/guards';
import { parseInstant } from '../platform/iso-date';
import { canonicalJson } from './canonical-json';
import { ed25519PublicKey, nameProblem, type Operator, type OperatorRegistry } from './registry';

export interface Signed<T> {
  body: T;
  /** base64 Ed25519 signature over canonicalJson(body). */
  signature: string;
}

/**
 * Signs `body` with an operator's Ed25519 private key. The returned body is the canonical
 * JSON parsed back: a copy holding exactly what was signed, whatever happens to `body` later.
 */
export function sign<T>(body: T, privateKey: crypto.KeyObject): Signed<T> {
  if (!(privateKey instanceof crypto.KeyObject) || privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') {
    throw new TypeError('sign needs an Ed25519 private KeyObject (see readPrivateKey)');
  }
  const canonical = canonicalJson(body);
  return {
    body: JSON.parse(canonical) as T,
    signature: crypto.sign(null, Buffer.from(canonical, 'utf8'), privateKey).toString('base64'),
  };
}

export type VerifyFailure = 'unsigned' | 'malformed' | 'unknown_operator' | 'bad_signature' | 'stale' | 'from_the_future';
export type VerifyResult<T> = { ok: true; operator: Operator; body: T } | { ok: false; code: VerifyFailure; detail: string };

/** How far ahead of the verifier's clock a document may be dated (clock skew between machines). */
export const MAX_FUTURE_SKEW_MS = 2 * 60 * 1000;
/** Larger than any valid request (1000 message IDs of 128 characters) with room to spare. */
export const MAX_SIGNED_BODY_BYTES = 256 * 1024;
const SIGNATURE_BYTES = 64;
const ENVELOPE_FIELDS = ['body', 'signature'];

/**
 * Checks a signed document received from outside: envelope shape, signature present, body
 * of `expectedType` and valid per `validateBody`, operator registered, signature made with
 * that operator's key over canonicalJson(body), issuedAt within `maxAgeMs` before `now` and
 * at most MAX_FUTURE_SKEW_MS after. Never throws: every problem is a failure code, checked
 * in that order. The body returned is a fresh copy of what the signature covers.
 */
export function verifySigned<T extends { operator: string; issuedAt: string; type: string }>(
  signed: unknown,
  expectedType: T['type'],
  registry: OperatorRegistry,
  now: Date,
  maxAgeMs: number,
  validateBody: (b: unknown) => string | null,
): VerifyResult<T> {
  const fail = (code: VerifyFailure, detail: string): VerifyResult<T> => ({ ok: false, code, detail });
  try {
    if (!(now instanceof Date) || !Number.isFinite(now.getTime()) || typeof maxAgeMs !== 'number' || !(maxAgeMs >= 0)) {
      return fail('malformed', 'verifier misconfigured: now must be a valid Date and maxAgeMs a number >= 0');
    }
    if (!isPlainObject(signed))
      return fail('malformed', `expected a signed document {"body", "signature"}, got ${kindOf(signed)}`);
    const unknown = Object.keys(signed).filter((k) => !ENVELOPE_FIELDS.includes(k));
    if (unknown.length)
      return fail('malformed', `unexpected field ${JSON.stringify(unknown[0].slice(0, 80))} next to body and signature`);
    const signatureText = signed.signature;
    if (signatureText === undefined || signatureText === null || signatureText === '')
      return fail('unsigned', 'the document carries no signature');
    const signature = decodeStrictBase64(signatureText, SIGNATURE_BYTES);
    if (!signature) return fail('malformed', `signature must be ${SIGNATURE_BYTES} bytes, base64-encoded`);

    // From here on only the canonical bytes and a copy parsed from them are used, so a
    // getter or proxy in the input cannot show one value to the checks and another to the
    // signature.
    let canonical: string;
    try {
      canonical = canonicalJson(signed.body);
    } catch (err) {
      return fail('malformed', `body is not plain JSON: ${(err as Error).message.slice(0, 200)}`);
    }
    if (Buffer.byteLength(canonical, 'utf8') > MAX_SIGNED_BODY_BYTES)
      return fail('malformed', `body is larger than ${MAX_SIGNED_BODY_BYTES} bytes`);
    const body: unknown = JSON.parse(canonical);
    if (!isPlainObject(body)) return fail('malformed', `body must be an object, got ${kindOf(body)}`);
    if (body.type !== expectedType)
      return fail('malformed', `expected a ${expectedType} document, got type ${JSON.stringify(String(body.type).slice(0, 80))}`);
    const operatorProblem = nameProblem(body.operator);
    const problem =
      (operatorProblem === null ? null : `operator ${operatorProblem}`) ??
      (parseInstant(body.issuedAt) === null ? 'issuedAt must be an ISO 8601 date-time with a time zone' : null) ??
      validateBody(body);
    if (problem !== null) return fail('malformed', String(problem).slice(0, 500));
    const typed = body as unknown as T;

    const operator = registry.byName.get(typed.operator);
    if (!operator) return fail('unknown_operator', `operator ${JSON.stringify(typed.operator)} is not in the registry`);
    const key = ed25519PublicKey(operator.publicKey);
    if (!key) return fail('bad_signature', `the registered public key of ${operator.name} cannot be imported`);
    if (!crypto.verify(null, Buffer.from(canonical, 'utf8'), key, signature)) {
      return fail('bad_signature', `the signature is not ${operator.name}'s over this body`);
    }

    const issuedAt = parseInstant(typed.issuedAt)!;
    const ageMs = now.getTime() - issuedAt;
    if (ageMs > maxAgeMs)
      return fail(
        'stale',
        `issued at ${typed.issuedAt}, ${Math.round(ageMs / 1000)} s ago; at most ${Math.round(maxAgeMs / 1000)} s are accepted`,
      );
    if (-ageMs > MAX_FUTURE_SKEW_MS)
      return fail(
        'from_the_future',
        `issued at ${typed.issuedAt}, ${Math.round(-ageMs / 1000)} s ahead of this clock; at most ${MAX_FUTURE_SKEW_MS / 1000} s are accepted`,
      );
    return { ok: true, operator, body: typed };
  } catch (err) {
    // Only a hostile registry or validateBody can get here; fail closed.
    return fail('malformed', `could not verify: ${String((err as Error)?.message ?? err).slice(0, 200)}`);
  }
}
