// The requester's side of a PII recovery: build and sign a request, hold the one-time key
// that opens the result. The approver's side is cli/approval.ts. The private keys stay on
// the operator's machine; only signatures and public keys travel.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import { recoveryWorkflowId } from '../lib/contract/names';
import type { Config } from '../lib/platform/config';
import { readPrivateKey, sign, writePrivateKey, type RecoveryRequestBody } from '../lib/recovery';
import type { RecoveredRecord } from '../lib/recovery/records';
import { newRecipientKeys, openSealed } from '../lib/pii/sealed';
import { recoveryWorkflow, statusQuery, type RecoveryResult, type RecoveryStatus } from '../workflows/recovery';

export const operatorKeyFile = (config: Config, name: string) => path.join(config.dataDir, 'operators', `${name}.key`);
const requestKeyFile = (config: Config, requestId: string) => path.join(config.dataDir, 'requests', `${requestId}.key`);

export interface SigningIdentity {
  operator: string;
  /** PEM file of the operator's Ed25519 private key (default: <DATA_DIR>/operators/<operator>.key). */
  keyFile?: string;
}

export function signingKey(config: Config, who: SigningIdentity): crypto.KeyObject {
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
