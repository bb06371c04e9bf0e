// The operator's side of a PII recovery: build and sign a request, hold the one-time key
// that opens the result, sign approvals and denials, list pending requests. The private
// keys stay on the operator's machine; only signatures and public keys travel.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowIdReusePolicy, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { recoveryWorkflowId } from '../lib/contract/names';
import type { Config } from '../lib/platform/config';
import { readPrivateKey, sign, writePrivateKey, type ApprovalBody, type RecoveryRequestBody } from '../lib/recovery';
import { recordSetHash, type RecoveredRecord } from '../lib/recovery/records';
import { newRecipientKeys, openSealed } from '../lib/pii/sealed';
import { decisionUpdate, recoveryWorkflow, statusQuery, type RecoveryResult, type RecoveryStatus } from '../workflows/recovery';

export const operatorKeyFile = (config: Config, name: string) => path.join(config.dataDir, 'operators', `${name}.key`);
const requestKeyFile = (config: Config, requestId: string) => path.join(config.dataDir, 'requests', `${requestId}.key`);

export interface SigningIdentity {
  operator: string;
  /** PEM file of the operator's Ed25519 private key (default: <DATA_DIR>/operators/<operator>.key). */
  keyFile?: string;
}

function signingKey(config: Config, who: SigningIdentity): crypto.KeyObject {
  return readPrivateKey(who.keyFile ?? operatorKeyFile(config, who.operator));
}

export interface NewRequest {
  reason: string;
  ticket: string;
  selector: RecoveryRequestBody['selector'];
  fields: RecoveryRequestBody['fields'];
}

/** Signs and starts a recovery; the one-time key that opens its result is kept in <DATA_DIR>/requests/. */
export async function startRecovery(client: Client, config: Config, who: SigningIdentity, req: NewRequest): Promise<string> {
  const key = signingKey(config, who);
  const recipient = newRecipientKeys();
  const body: RecoveryRequestBody = {
    type: 'pii-recovery-request',
    requestId: crypto.randomUUID(),
    operator: who.operator,
    reason: req.reason,
    ticket: req.ticket,
    selector: req.selector,
    fields: req.fields,
    recipientPublicKey: recipient.publicKey,
    issuedAt: new Date().toISOString(),
  };
  writePrivateKey(requestKeyFile(config, body.requestId), recipient.privateKeyPem);
  await client.workflow.start(recoveryWorkflow, {
    workflowId: recoveryWorkflowId(body.requestId),
    taskQueue: config.temporal.taskQueue,
    args: [sign(body, key), { activityTaskQueue: config.temporal.recoveryTaskQueue }],
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
  });
  return body.requestId;
}

export type RecoveryOutcome =
  | { result: Exclude<RecoveryResult, { status: 'completed' }> }
  | { result: Extract<RecoveryResult, { status: 'completed' }>; records: RecoveredRecord[] };

/** Waits for the run's end; a completed one is opened with the kept one-time key, which is then deleted. */
export async function awaitRecovery(client: Client, config: Config, requestId: string): Promise<RecoveryOutcome> {
  const result = await client.workflow.getHandle<typeof recoveryWorkflow>(recoveryWorkflowId(requestId)).result();
  if (result.status !== 'completed') return { result };
  const file = requestKeyFile(config, requestId);
  if (!fs.existsSync(file))
    throw new Error(
      `The one-time key of request ${requestId} (${file}) is not on this machine: only the requester can open the result.`,
    );
  const records = JSON.parse(
    openSealed(result.sealed, fs.readFileSync(file, 'utf8'), requestId).toString('utf8'),
  ) as RecoveredRecord[];
  fs.rmSync(file);
  return { result, records };
}

export async function recoveryStatus(client: Client, requestId: string): Promise<RecoveryStatus> {
  return client.workflow.getHandle(recoveryWorkflowId(requestId)).query(statusQuery);
}

/**
 * What an approver is about to sign: the request's selector, fields and frozen records as
 * its status shows them, checked against the record-set hash the status claims (which the
 * approval then signs). Throws when they do not agree.
 */
export function recordSetToApprove(status: RecoveryStatus): { hash: string; count: number } {
  if (!status.requestId || !status.recordSet || !status.fields || !status.recordSetHash)
    throw new Error('This request has no frozen record set to approve (is it awaiting approval?)');
  const hash = recordSetHash({
    requestId: status.requestId,
    selector: status.selector as never,
    fields: status.fields as never,
    records: status.recordSet,
  });
  if (hash !== status.recordSetHash)
    throw new Error(`The record set shown for request ${status.requestId} does not match its hash: refusing to sign`);
  return { hash, count: status.recordSet.length };
}

/**
 * Signs an approval or denial (an approval covers the record-set hash the request shows)
 * and sends it as a Workflow Update; resolves with the verdict's refusal code (null when it
 * counted) and the status once the request has moved on.
 */
export async function decide(
  client: Client,
  config: Config,
  who: SigningIdentity,
  requestId: string,
  decision: 'approve' | 'deny',
  comment?: string,
): Promise<{ status: RecoveryStatus; refused: string | null }> {
  const handle = client.workflow.getHandle(recoveryWorkflowId(requestId));
  const before = await handle.query(statusQuery);
  const body: ApprovalBody = {
    type: 'pii-recovery-approval',
    requestId,
    operator: who.operator,
    decision,
    ...(decision === 'approve'
      ? { recordSetHash: recordSetToApprove(before).hash }
      : before.recordSetHash
        ? { recordSetHash: before.recordSetHash }
        : {}),
    issuedAt: new Date().toISOString(),
    ...(comment ? { comment } : {}),
  };
  let refused: string | null;
  try {
    const verdict = await handle.executeUpdate(decisionUpdate, { args: [sign(body, signingKey(config, who))] });
    refused = verdict.ok ? null : verdict.code;
  } catch (err) {
    if (!(err instanceof WorkflowUpdateFailedError)) throw err;
    refused = 'not_awaiting_decision';
  }
  let now = await handle.query(statusQuery);
  // An approval sets the recovery going: wait (20 s at most) for its end state.
  for (let i = 0; i < 100 && !refused && ['verifying', 'awaiting_approval', 'recovering'].includes(now.state); i++) {
    await sleep(200);
    now = await handle.query(statusQuery);
  }
  return { status: now, refused };
}

/** Recovery requests still running, newest first, with their status. */
export async function pendingRequests(client: Client): Promise<RecoveryStatus[]> {
  const out: RecoveryStatus[] = [];
  for await (const wf of client.workflow.list({ query: `WorkflowType = 'recoveryWorkflow' AND ExecutionStatus = 'Running'` })) {
    out.push(await client.workflow.getHandle(wf.workflowId).query(statusQuery));
  }
  return out;
}
