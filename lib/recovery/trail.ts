// What the audit trail says about one recovery request, read the same way by the recovery
// activities and by an approver's CLI: the signed request (its signature verified again
// against the registry of whoever reads), the record set the recovery side froze (checked
// against the request and the policy), and the one decision that counts. The trail
// decides, never a workflow: a workflow's status is at most compared with what is read here.
//
// The decision rule: approvers append their signed decisions to the trail themselves
// (`decision_signed`, the operators' database role); the first one in chain order that
// verifies (a registered approver other than the requester, for this request, before it
// expired, and for an approval: covering this exact signed request and record set) is the
// decision. A denial first is final; anything after the decision does not count. The chain
// has one order (pii_audit_append takes its lock), so two decisions arriving together
// still yield exactly one.
//
// Pure: no I/O. The caller reads the entries (lib/recovery/audit.ts auditEntriesFor).
import type { RecoveryPolicy } from '../contract/recovery';
import { parseInstant } from '../platform/iso-date';
import { isPlainObject } from '../platform/guards';
import type { StoredAuditEntry } from './audit';
import {
  requestDigest,
  validateApprovalBody,
  validateRequestBody,
  type ApprovalBody,
  type RecoveryRequestBody,
} from './documents';
import { recordSetHash, type RecordRef } from './records';
import { hasRole, type Operator, type OperatorRegistry } from './registry';
import { verifySigned } from './signing';

/** Slack between the expiry the recovery side wrote and the approval timeout (clocks of worker and database). */
const EXPIRY_SLACK_MS = 60_000;

export interface TrailRequest {
  requestId: string;
  /** The request as its requester signed it. */
  request: RecoveryRequestBody;
  requester: Operator;
  /** requestDigest(request): what an approval of this request signs. */
  digest: string;
  received: StoredAuditEntry;
  /** The record set the recovery side froze; null while the request is not (yet) authorised. */
  authorised: { entry: StoredAuditEntry; records: RecordRef[]; recordSetHash: string; expiresAt: string } | null;
}

export type TrailRead = { ok: true; trail: TrailRequest } | { ok: false; code: 'not_authorised' | 'forged'; detail: string };

const refuse = (code: 'not_authorised' | 'forged', detail: string): TrailRead => ({ ok: false, code, detail });

function isRecordRef(r: unknown): r is RecordRef {
  return (
    isPlainObject(r) &&
    (r.table === 'user_logins' || r.table === 'quarantine') &&
    typeof r.messageId === 'string' &&
    Object.keys(r).length === 2
  );
}

/**
 * The request of `requestId` as the trail holds it, verified: exactly one `request_received`
 * whose document verifies against `registry` as of the time the trail received it, by an
 * operator holding pii-requester; at most one `authorised` entry after it, whose records
 * hash to what it claims, number 1..maxRecords (quarantine entries only for a message-ID
 * selector) and expire within the approval timeout of the entry. Entries with an ID up to
 * `trustedAfter` were written before each writer had a role of its own (migration 0006):
 * a request with any of them is not trusted.
 */
export function readRequest(
  entries: StoredAuditEntry[],
  requestId: string,
  registry: OperatorRegistry,
  policy: RecoveryPolicy,
  trustedAfter = 0n,
): TrailRead {
  const mine = entries.filter((e) => e.requestId === requestId);
  if (mine.some((e) => BigInt(e.id) <= trustedAfter))
    return refuse('forged', `request ${requestId} has entries from before each writer had a role of its own (migration 0006)`);
  const received = mine.filter((e) => e.event === 'request_received');
  if (received.length === 0) return refuse('not_authorised', `the trail holds no request ${requestId}`);
  if (received.length > 1)
    return refuse('forged', `the trail holds ${received.length} request_received entries for ${requestId}`);
  const [entry] = received;
  const at = new Date(entry.at);
  const verified = verifySigned<RecoveryRequestBody>(
    { body: entry.details.document, signature: entry.details.signature },
    'pii-recovery-request',
    registry,
    at,
    policy.signatureMaxAgeSeconds * 1000,
    validateRequestBody,
  );
  if (!verified.ok)
    return refuse('forged', `the signed request in entry ${entry.id} does not verify: ${verified.code} (${verified.detail})`);
  const request = verified.body;
  if (request.requestId !== requestId)
    return refuse('forged', `entry ${entry.id} holds a request signed for ${request.requestId}, not ${requestId}`);
  if (!hasRole(verified.operator, 'pii-requester'))
    return refuse('forged', `${request.operator} does not hold pii-requester in this registry`);
  const trail: TrailRequest = {
    requestId,
    request,
    requester: verified.operator,
    digest: requestDigest(request),
    received: entry,
    authorised: null,
  };

  const authorisations = mine.filter((e) => e.event === 'authorised');
  if (authorisations.length === 0) return { ok: true, trail };
  if (authorisations.length > 1)
    return refuse('forged', `the trail holds ${authorisations.length} authorised entries for ${requestId}`);
  const [auth] = authorisations;
  const { records, recordSetHash: claimed, expiresAt } = auth.details;
  if (BigInt(auth.id) < BigInt(entry.id)) return refuse('forged', `authorised entry ${auth.id} precedes the request`);
  if (!Array.isArray(records) || !records.every(isRecordRef) || typeof claimed !== 'string' || typeof expiresAt !== 'string')
    return refuse('forged', `authorised entry ${auth.id} is not a record set`);
  const hash = recordSetHash({ requestId, selector: request.selector, fields: request.fields, records });
  if (hash !== claimed) return refuse('forged', `authorised entry ${auth.id} does not hash to its record-set hash`);
  if (records.length === 0 || records.length > policy.maxRecords)
    return refuse('forged', `authorised entry ${auth.id} names ${records.length} records; the limit is ${policy.maxRecords}`);
  if (new Set(records.map((r) => `${r.table}:${r.messageId}`)).size !== records.length)
    return refuse('forged', `authorised entry ${auth.id} names a record twice`);
  if (!('messageIds' in request.selector) && records.some((r) => r.table !== 'user_logins'))
    return refuse(
      'forged',
      `authorised entry ${auth.id} names quarantine entries for a ${Object.keys(request.selector)[0]} selector`,
    );
  if ('messageIds' in request.selector) {
    const named = new Set(request.selector.messageIds);
    if (records.some((r) => !named.has(r.messageId)))
      return refuse('forged', `authorised entry ${auth.id} names a message the selector does not`);
  }
  const expires = parseInstant(expiresAt);
  if (expires === null || expires - Date.parse(auth.at) > policy.approvalTimeoutSeconds * 1000 + EXPIRY_SLACK_MS)
    return refuse('forged', `authorised entry ${auth.id} expires at ${expiresAt}, beyond the approval timeout`);
  trail.authorised = { entry: auth, records, recordSetHash: hash, expiresAt: new Date(expires).toISOString() };
  return { ok: true, trail };
}

export interface RefusedDecision {
  entryId: string;
  code: string;
  detail: string;
}

export type Decision =
  | { decided: false; refused: RefusedDecision[] }
  | {
      decided: true;
      decision: 'approve' | 'deny';
      approver: string;
      /** The `decision_signed` entry that counts. */
      entry: StoredAuditEntry;
      approval: ApprovalBody;
      refused: RefusedDecision[];
    };

/** Why a `decision_signed` entry does not count for `trail`, or null when it does. */
function decisionProblem(
  e: StoredAuditEntry,
  trail: TrailRequest & { authorised: NonNullable<TrailRequest['authorised']> },
  registry: OperatorRegistry,
  policy: RecoveryPolicy,
): { code: string; detail: string } | { body: ApprovalBody } {
  const verified = verifySigned<ApprovalBody>(
    { body: e.details.document, signature: e.details.signature },
    'pii-recovery-approval',
    registry,
    new Date(e.at),
    policy.signatureMaxAgeSeconds * 1000,
    validateApprovalBody,
  );
  if (!verified.ok) return { code: verified.code, detail: verified.detail };
  const a = verified.body;
  if (a.requestId !== trail.requestId) return { code: 'wrong_request', detail: `signed for request ${a.requestId}` };
  if (a.operator === trail.request.operator)
    return { code: 'self_approval', detail: 'the requester cannot decide on their own request' };
  if (!hasRole(verified.operator, 'pii-approver'))
    return { code: 'not_an_approver', detail: `${a.operator} does not hold pii-approver` };
  if (Date.parse(e.at) > Date.parse(trail.authorised.expiresAt))
    return { code: 'expired', detail: `the request expired at ${trail.authorised.expiresAt}, before this decision` };
  if (a.decision === 'approve' && a.requestDigest !== trail.digest)
    return { code: 'wrong_request_digest', detail: 'the approval signs another request than the one the requester signed' };
  if (a.decision === 'approve' && a.recordSetHash !== trail.authorised.recordSetHash)
    return { code: 'wrong_record_set', detail: 'the approval signs another record set than the one frozen for this request' };
  return { body: a };
}

/**
 * The decision that counts for an authorised request: the first `decision_signed` entry
 * after the authorisation that verifies; every one before it that does not is listed with
 * its reason. An `expired` entry closes the request: no decision after it counts.
 */
export function decisionOf(
  entries: StoredAuditEntry[],
  trail: TrailRequest,
  registry: OperatorRegistry,
  policy: RecoveryPolicy,
): Decision {
  const refused: RefusedDecision[] = [];
  const authorised = trail.authorised;
  if (!authorised) return { decided: false, refused };
  const after = BigInt(authorised.entry.id);
  for (const e of entries) {
    if (e.requestId !== trail.requestId || BigInt(e.id) <= after) continue;
    if (e.event === 'expired') break;
    if (e.event !== 'decision_signed') continue;
    const judged = decisionProblem(e, { ...trail, authorised }, registry, policy);
    if ('code' in judged) {
      refused.push({ entryId: e.id, ...judged });
      continue;
    }
    return {
      decided: true,
      decision: judged.body.decision,
      approver: judged.body.operator,
      entry: e,
      approval: judged.body,
      refused,
    };
  }
  return { decided: false, refused };
}
