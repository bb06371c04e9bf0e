// The recovery activities: every check and every side effect of a PII recovery. Each
// decision is written to the audit trail here, and the entries for the records are
// committed before any value is decrypted. Values leave this module only sealed to the
// requester's one-time key: never in a log, a table or (in the clear) the history.
import fs from 'node:fs';
import { log } from '@temporalio/activity';
import { appendAudit, auditEntriesFor, type AuditEntry } from '../lib/audit';
import type { Db } from '../lib/db';
import type { Keyring } from '../lib/keyring';
import {
  hasRole,
  loadRegistry,
  validateApprovalBody,
  validateRequestBody,
  verifySigned,
  type ApprovalBody,
  type OperatorRegistry,
  type RecoveryRequestBody,
  type Role,
} from '../lib/operators';
import { decryptRecords, findRecords, type Selector } from '../lib/recovery';
import { sealTo, type SealedBox } from '../lib/sealed';

export interface RecoveryPolicy {
  maxRecords: number;
  requireApproval: boolean;
  approvalTimeoutSeconds: number;
  signatureMaxAgeSeconds: number;
}

export interface RecoveryDeps {
  db: Db;
  keyring: Keyring;
  /** The operator registry file; read at every check, so a new operator needs no restart. */
  operatorsFile: string;
  policy: RecoveryPolicy;
}

export type VerifiedRequest =
  | { ok: true; request: RecoveryRequestBody; requesterRoles: Role[]; policy: RecoveryPolicy }
  | { ok: false; requestId: string; code: string; detail: string };

export type VerifiedApproval = { ok: true; approver: string; decision: 'approve' | 'deny' } | { ok: false; code: string; detail: string };

/** The request ID of something that claims to be a request, for the audit trail, even when it is malformed. */
function claimedRequestId(signed: unknown): string {
  const id = (signed as { body?: { requestId?: unknown } })?.body?.requestId;
  return typeof id === 'string' && id.length <= 64 ? id : 'unknown';
}

function registry(file: string): OperatorRegistry {
  if (!fs.existsSync(file)) return { byName: new Map() };
  return loadRegistry(file);
}

const summary = (r: RecoveryRequestBody) => ({
  reason: r.reason,
  ticket: r.ticket,
  selector: r.selector,
  fields: r.fields,
});

export function createRecoveryActivities({ db, keyring, operatorsFile, policy }: RecoveryDeps) {
  const audit = (...entries: AuditEntry[]) => appendAudit(db, entries);
  /** A signed document checked against the registry as it is now, and the signature age policy. */
  const verify = <T extends { operator: string; issuedAt: string; type: string }>(signed: unknown, type: T['type'], validateBody: (b: unknown) => string | null) =>
    verifySigned<T>(signed, type, registry(operatorsFile), new Date(), policy.signatureMaxAgeSeconds * 1000, validateBody);

  return {
    async verifyRecoveryRequest(signed: unknown, ctx: { workflowId: string; runId: string }): Promise<VerifiedRequest> {
      const result = verify<RecoveryRequestBody>(signed, 'pii-recovery-request', validateRequestBody);
      const requestId = result.ok ? result.body.requestId : claimedRequestId(signed);
      const refuse = async (code: string, detail: string, actor: string | null): Promise<VerifiedRequest> => {
        await audit({ requestId, event: 'request_refused', actor, details: { code, detail, runId: ctx.runId } });
        log.warn('Recovery request refused', { requestId, code });
        return { ok: false, requestId, code, detail };
      };
      if (!result.ok) return refuse(result.code, result.detail, null);
      const request = result.body;
      // One signed request, one run: the workflow ID is derived from the request ID, and a
      // request seen before (under another run) is a replay.
      if (ctx.workflowId !== recoveryWorkflowId(requestId)) {
        return refuse('replayed', `a request must run as ${recoveryWorkflowId(requestId)}, not ${ctx.workflowId}`, request.operator);
      }
      const received = (await auditEntriesFor(db, requestId)).filter((e) => e.event === 'request_received');
      const earlier = received.find((e) => e.details.runId !== ctx.runId);
      if (earlier) return refuse('replayed', `request ${requestId} was already received (audit entry ${earlier.id})`, request.operator);
      // Received before by this very run: a retry of this activity, already audited.
      if (!received.length) {
        await audit({ requestId, event: 'request_received', actor: request.operator, details: { ...summary(request), signature: 'verified', runId: ctx.runId } });
      }
      return { ok: true, request, requesterRoles: result.operator.roles, policy };
    },

    async countRecords(selector: Selector): Promise<number> {
      return (await findRecords(db, selector, policy.maxRecords + 1)).length;
    },

    async verifyApproval(signed: unknown, ctx: { requestId: string; requester: string }): Promise<VerifiedApproval> {
      const result = verify<ApprovalBody>(signed, 'pii-recovery-approval', validateApprovalBody);
      let verdict: VerifiedApproval;
      if (!result.ok) verdict = { ok: false, code: result.code, detail: result.detail };
      else if (result.body.requestId !== ctx.requestId) verdict = { ok: false, code: 'wrong_request', detail: `signed for request ${result.body.requestId}` };
      else if (result.body.operator === ctx.requester) verdict = { ok: false, code: 'self_approval', detail: 'the requester cannot decide on their own request' };
      else if (!hasRole(result.operator, 'pii-approver')) verdict = { ok: false, code: 'not_an_approver', detail: `${result.body.operator} does not hold pii-approver` };
      else verdict = { ok: true, approver: result.body.operator, decision: result.body.decision };

      const actor = result.ok ? result.body.operator : null;
      if (verdict.ok) {
        await audit({ requestId: ctx.requestId, event: verdict.decision === 'approve' ? 'approved' : 'denied', actor, details: { by: 'approver', comment: result.ok ? (result.body.comment ?? null) : null } });
      } else {
        await audit({ requestId: ctx.requestId, event: 'approval_refused', actor, details: { code: verdict.code, detail: verdict.detail } });
        log.warn('Approval refused', { requestId: ctx.requestId, code: verdict.code });
      }
      return verdict;
    },

    async recordDecision(entry: AuditEntry): Promise<void> {
      await audit(entry);
    },

    async recoverRecords(input: { request: RecoveryRequestBody }): Promise<{ sealed: SealedBox; records: number }> {
      const { request } = input;
      const records = await findRecords(db, request.selector, policy.maxRecords);
      // The trail first: these entries are committed before a single value is decrypted.
      await audit(
        ...records.map<AuditEntry>((r) => ({
          requestId: request.requestId,
          event: 'record_read',
          actor: request.operator,
          details: { table: r.table, messageId: r.messageId, fields: request.fields },
        })),
      );
      const values = await decryptRecords(db, keyring, records, request.fields);
      const sealed = sealTo(request.recipientPublicKey, JSON.stringify(values), request.requestId);
      await audit({ requestId: request.requestId, event: 'completed', actor: request.operator, details: { records: records.length } });
      log.info('Recovery completed', { requestId: request.requestId, records: records.length });
      return { sealed, records: records.length };
    },
  };
}

export const recoveryWorkflowId = (requestId: string) => `pii-recovery-${requestId}`;

export type RecoveryActivities = ReturnType<typeof createRecoveryActivities>;
