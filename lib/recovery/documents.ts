// The two documents of a recovery: the request (who asks, why, for which records and
// fields, sealed to which one-time key) and the approval or denial of a second operator.
// validateRequestBody / validateApprovalBody say what is wrong with a body received from
// outside (the first problem found, in a sentence), or null; they never throw for JSON input.
import crypto from 'node:crypto';
import { isPlainObject, isCleanText, hasControlCharactersBesidesTabAndNewline, kindOf } from '../platform/guards';
import { parseInstant } from '../platform/iso-date';
import { parseRecipientPublicKey } from '../pii/sealed';
import { nameProblem } from './registry';
import { canonicalJson } from './canonical-json';

export interface RecoveryRequestBody {
  type: 'pii-recovery-request';
  /** UUID v4, lower case. */
  requestId: string;
  /** Who asks. */
  operator: string;
  /** Free text, 10..1000 characters. */
  reason: string;
  /** Ticket reference, 1..64 of [A-Za-z0-9._#/-]. */
  ticket: string;
  selector: { messageIds: string[] } | { userId: string } | { fingerprint: string };
  fields: ('ip' | 'device_id' | 'body')[];
  /** base64 raw X25519 public key (32 bytes) the result is sealed to (lib/pii/sealed.ts). */
  recipientPublicKey: string;
  /** ISO 8601 with a time zone. */
  issuedAt: string;
}

export interface ApprovalBody {
  type: 'pii-recovery-approval';
  requestId: string;
  /** Who approves or denies. */
  operator: string;
  decision: 'approve' | 'deny';
  /**
   * SHA-256 of the canonical JSON of the signed request body (requestDigest): who asked,
   * why, the ticket, the selector, the fields and the key the result is sealed to.
   * Required to approve: an approval covers that request as it was signed and no other.
   */
  requestDigest?: string;
  /**
   * The hash of the exact record set frozen at authorisation (lib/recovery/records.ts
   * recordSetHash: request ID, selector, fields and every record's table and message ID).
   * Required to approve: an approval covers those records and no others.
   */
  recordSetHash?: string;
  /** 1..1000 characters when present. */
  comment?: string;
  issuedAt: string;
}

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const TICKET = /^[A-Za-z0-9._#/-]{1,64}$/;
const FINGERPRINT = /^[0-9a-f]{64}$/;
const FIELDS = ['ip', 'device_id', 'body'] as const;
const MAX_MESSAGE_IDS = 1000;
/** Column width of message_id and user_id in prisma/schema.prisma. */
const MAX_ID_LENGTH = 128;

const prefixed = (prefix: string, problem: string | null): string | null => (problem === null ? null : prefix + problem);

/** Free text may hold line breaks and tabs, not other control characters or lone surrogates. */
function freeTextProblem(value: unknown, field: string, min: number, max: number): string | null {
  if (typeof value !== 'string') return `${field} must be a string, got ${kindOf(value)}`;
  if (!value.isWellFormed()) return `${field} contains a lone surrogate`;
  if (hasControlCharactersBesidesTabAndNewline(value)) return `${field} contains control characters`;
  const length = [...value.trim()].length;
  if (length < min || [...value].length > max)
    return `${field} must be ${min}..${max} characters (not counting surrounding blanks for the minimum)`;
  return null;
}

/** An identifier: 1..128 characters, no surrounding blanks, no control characters or lone surrogates. */
function idProblem(value: unknown, field: string): string | null {
  if (typeof value !== 'string') return `${field} must be a string, got ${kindOf(value)}`;
  if (value.length === 0 || value.length > MAX_ID_LENGTH) return `${field} must be 1..${MAX_ID_LENGTH} characters`;
  if (value.trim() !== value || !isCleanText(value)) return `${field} has surrounding blanks or invalid characters`;
  return null;
}

function fieldsProblem(body: Record<string, unknown>, required: string[], optional: string[] = []): string | null {
  for (const key of Object.keys(body)) {
    if (!required.includes(key) && !optional.includes(key)) return `unknown field ${JSON.stringify(key.slice(0, 80))}`;
  }
  for (const key of required) if (!Object.hasOwn(body, key)) return `missing field ${key}`;
  return null;
}

function selectorProblem(selector: unknown): string | null {
  if (!isPlainObject(selector)) return `selector must be an object, got ${kindOf(selector)}`;
  const kinds = Object.keys(selector);
  if (kinds.length !== 1)
    return `selector must have exactly one of messageIds, userId, fingerprint (has ${kinds.length ? kinds.map((k) => k.slice(0, 40)).join(', ') : 'none'})`;
  const [kind] = kinds;
  const value = selector[kind];
  switch (kind) {
    case 'messageIds': {
      if (!Array.isArray(value)) return `selector.messageIds must be an array, got ${kindOf(value)}`;
      if (value.length === 0 || value.length > MAX_MESSAGE_IDS)
        return `selector.messageIds must list 1..${MAX_MESSAGE_IDS} message IDs (has ${value.length})`;
      for (let i = 0; i < value.length; i++) {
        const problem = idProblem(value[i], `selector.messageIds[${i}]`);
        if (problem) return problem;
      }
      if (new Set(value).size !== value.length) return 'selector.messageIds lists a message ID twice';
      return null;
    }
    case 'userId':
      return idProblem(value, 'selector.userId');
    case 'fingerprint':
      return typeof value === 'string' && FINGERPRINT.test(value)
        ? null
        : 'selector.fingerprint must be a login fingerprint (64 lower-case hex digits)';
    default:
      return `selector kind ${JSON.stringify(kind.slice(0, 80))} is not one of messageIds, userId, fingerprint`;
  }
}

const REQUEST_FIELDS = [
  'type',
  'requestId',
  'operator',
  'reason',
  'ticket',
  'selector',
  'fields',
  'recipientPublicKey',
  'issuedAt',
];

/**
 * What an approval signs of the request: SHA-256 over its canonical JSON, so requester,
 * reason, ticket, selector, fields and the recipient key are all covered.
 */
export function requestDigest(body: RecoveryRequestBody): string {
  return crypto.createHash('sha256').update(canonicalJson(body), 'utf8').digest('hex');
}

/** What is wrong with a recovery request body, or null when it is valid. Never throws for JSON input. */
export function validateRequestBody(b: unknown): string | null {
  if (!isPlainObject(b)) return `request body must be an object, got ${kindOf(b)}`;
  const shape = fieldsProblem(b, REQUEST_FIELDS);
  if (shape) return shape;
  if (b.type !== 'pii-recovery-request') return 'type must be pii-recovery-request';
  if (typeof b.requestId !== 'string' || !UUID_V4.test(b.requestId)) return 'requestId must be a lower-case UUID v4';
  const problem = prefixed('operator ', nameProblem(b.operator)) ?? freeTextProblem(b.reason, 'reason', 10, 1000);
  if (problem) return problem;
  if (typeof b.ticket !== 'string' || !TICKET.test(b.ticket)) return `ticket must be 1..64 of A-Z a-z 0-9 . _ # / -`;
  const selector = selectorProblem(b.selector);
  if (selector) return selector;
  if (!Array.isArray(b.fields) || b.fields.length === 0) return `fields must be a non-empty array of ${FIELDS.join(', ')}`;
  for (const field of b.fields) {
    if (!(FIELDS as readonly unknown[]).includes(field))
      return `unknown field name ${JSON.stringify(String(field).slice(0, 80))} in fields (known: ${FIELDS.join(', ')})`;
  }
  if (new Set(b.fields).size !== b.fields.length) return 'fields lists a field twice';
  try {
    parseRecipientPublicKey(b.recipientPublicKey, 'recipientPublicKey');
  } catch (err) {
    return (err as Error).message;
  }
  if (parseInstant(b.issuedAt) === null) return 'issuedAt must be an ISO 8601 date-time with a time zone';
  return null;
}

const APPROVAL_FIELDS = ['type', 'requestId', 'operator', 'decision', 'issuedAt'];

/** What is wrong with an approval body, or null when it is valid. Never throws for JSON input. */
export function validateApprovalBody(b: unknown): string | null {
  if (!isPlainObject(b)) return `approval body must be an object, got ${kindOf(b)}`;
  const shape = fieldsProblem(b, APPROVAL_FIELDS, ['comment', 'recordSetHash', 'requestDigest']);
  if (shape) return shape;
  if (b.type !== 'pii-recovery-approval') return 'type must be pii-recovery-approval';
  if (typeof b.requestId !== 'string' || !UUID_V4.test(b.requestId)) return 'requestId must be a lower-case UUID v4';
  const name = prefixed('operator ', nameProblem(b.operator));
  if (name) return name;
  if (b.decision !== 'approve' && b.decision !== 'deny') return 'decision must be approve or deny';
  if (Object.hasOwn(b, 'recordSetHash') && (typeof b.recordSetHash !== 'string' || !FINGERPRINT.test(b.recordSetHash)))
    return 'recordSetHash must be 64 lower-case hex digits';
  if (Object.hasOwn(b, 'requestDigest') && (typeof b.requestDigest !== 'string' || !FINGERPRINT.test(b.requestDigest)))
    return 'requestDigest must be 64 lower-case hex digits';
  if (b.decision === 'approve' && !Object.hasOwn(b, 'recordSetHash'))
    return 'an approval must carry the recordSetHash of the records it approves';
  if (b.decision === 'approve' && !Object.hasOwn(b, 'requestDigest'))
    return 'an approval must carry the requestDigest of the signed request it approves';
  if (Object.hasOwn(b, 'comment')) {
    const comment = freeTextProblem(b.comment, 'comment', 1, 1000);
    if (comment) return comment;
  }
  if (parseInstant(b.issuedAt) === null) return 'issuedAt must be an ISO 8601 date-time with a time zone';
  return null;
}
