// What the recovery activities (activities/recovery.ts) share that is not an activity:
// who is calling, as the server says and never the input (`caller`); the request ID a
// document claims and the operator registry, for the audit trail; a signature's record; and
// how they fail: a refusal with its code, a permanent database error (`guarded`).
import fs from 'node:fs';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { isPermanentDbError, sqlState } from '../lib/platform/db';
import { keyFingerprint, loadRegistry, RegistryError, type Operator, type OperatorRegistry, type Signed } from '../lib/recovery';
import { requestIdOfRecoveryWorkflow } from '../lib/contract/names';
import type { RecoveryPolicy, RecoveryRefusal } from '../lib/contract/recovery';
import {
  appendAudit,
  auditEntriesFor,
  auditRequestId,
  writersTrustedAfter,
  type AuditEntry,
  type StoredAuditEntry,
} from '../lib/recovery/audit';
import { readRequest, type TrailRead } from '../lib/recovery/trail';
import type { Db } from '../lib/platform/db';
import type { Keyring } from '../lib/pii/keyring';
import { verifySigned, type VerifyResult } from '../lib/recovery';

/** The request ID of something that claims to be a request, for the audit trail: a UUID, or `unknown`. */
export function claimedRequestId(signed: unknown): string {
  return auditRequestId((signed as { body?: { requestId?: unknown } })?.body?.requestId);
}

/**
 * The operator registry, read afresh. A bad line (a second `operator keygen --register` of
 * one name, a hand edit) is no outage a retry outlasts: it fails the activity for good
 * (`registry_invalid`), naming the file and the line but never quoting it (a line may hold
 * key material pasted in the wrong place).
 */
export function registry(file: string): OperatorRegistry {
  if (!fs.existsSync(file)) return { byName: new Map() };
  try {
    return loadRegistry(file);
  } catch (err) {
    if (!(err instanceof RegistryError)) throw err;
    throw refusal(
      'registry_invalid',
      `The operator registry is invalid, so no recovery can be checked: ${err.message}. ` +
        'Fix or remove that line in PII_OPERATORS_FILE (each operator once, with a key of its own: `operator keygen --register` makes one line per operator), then start the request again.',
    );
  }
}

/** What the server says about the calling workflow: not the caller's input. */
export function caller() {
  const info = Context.current().info;
  const workflowId = info.workflowExecution?.workflowId ?? '';
  const requestId = requestIdOfRecoveryWorkflow(workflowId);
  return { workflowId, runId: info.workflowExecution?.runId ?? '', workflowType: info.workflowType, requestId };
}

/** A signed document's signature and the fingerprint of the key that made it, for the trail. */
export const signatureOf = (signed: unknown, operator: Operator) => ({
  signature: (signed as Signed<unknown>).signature,
  keyFingerprint: keyFingerprint(operator.publicKey),
});

/** Database errors that retrying cannot fix fail the activity for good, naming the SQLSTATE only (a message may quote input). */
export async function guarded<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ApplicationFailure || !isPermanentDbError(err)) throw err;
    throw ApplicationFailure.nonRetryable(
      `${what}: the database refused the statement (SQLSTATE ${sqlState(err)}); retrying cannot fix that. Check that the migrations ran (npm run db:migrate as the owner role) and the application role's grants.`,
      'PermanentDbError',
    );
  }
}

/** Anything that can run a query: the client or an interactive transaction. */
type Queryable = Pick<Db, '$queryRaw'>;

export const refusal = (code: RecoveryRefusal, detail: string) => ApplicationFailure.nonRetryable(detail, code);

export interface RecoveryDeps {
  /** As the recovery worker's role (login_ingest_recovery): the only writer of the recovery's audit entries. */
  db: Db;
  keyring: Keyring;
  /** The operator registry file; read at every check, so a new operator needs no restart. */
  operatorsFile: string;
  policy: RecoveryPolicy;
  /** This worker's clock (tests set one that is behind); default Date.now. */
  now?: () => number;
}

/** The database's clock, which stamps every audit entry. */
export async function databaseNow(db: Queryable): Promise<number> {
  const [{ now }] = await db.$queryRaw<{ now: Date }[]>`SELECT clock_timestamp() AS now`;
  return now.getTime();
}

/**
 * A request as the trail holds it, verified against the registry (lib/recovery/trail.ts
 * readRequest), with the request's entries as read, for the decision (one read, not two).
 */
export async function readTrail(
  db: Queryable,
  requestId: string,
  reg: OperatorRegistry,
  policy: RecoveryPolicy,
): Promise<TrailRead & { entries: StoredAuditEntry[] }> {
  const entries = await auditEntriesFor(db, requestId);
  return { ...readRequest(entries, requestId, reg, policy, await writersTrustedAfter(db)), entries };
}

/** The two steps every recovery activity takes: append to the audit trail, verify a signed document against the registry (read afresh). */
export function recoveryContext({ db, operatorsFile, policy, now = Date.now }: RecoveryDeps) {
  const audit = (...entries: AuditEntry[]) => appendAudit(db, entries);
  const verify = <T extends { operator: string; issuedAt: string; type: string }>(
    signed: unknown,
    type: T['type'],
    validateBody: (b: unknown) => string | null,
    maxAgeSeconds = policy.signatureMaxAgeSeconds,
  ): VerifyResult<T> =>
    verifySigned<T>(signed, type, registry(operatorsFile), new Date(now()), maxAgeSeconds * 1000, validateBody);
  return { audit, verify, registry: () => registry(operatorsFile), now };
}
