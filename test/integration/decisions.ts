// Approvers' decisions in the integration tests, made the way `client.ts approve` and
// `deny` make them (cli/approval.ts): the request read and verified from the trail with the
// operators' database role, the decision signed and appended there, the workflow nudged.
import { setTimeout as sleep } from 'node:timers/promises';
import { approvalProblem, decideOnTrail, showRequest } from '../../cli/approval';
import { recoveryStatus } from '../../cli/recovery-client';
import { createDb, type Db } from '../../lib/platform/db';
import { appendAudit } from '../../lib/recovery/audit';
import { readPrivateKey, sign, type ApprovalBody } from '../../lib/recovery';
import { operatorKeyFile } from '../../cli/recovery-client';
import type { Pipeline } from './helpers';

const operatorDbs = new WeakMap<Pipeline, Db>();

/** The pipeline's database as the operators' role (OPERATOR_DATABASE_URL); closed by closeOperatorDb. */
export function operatorDb(p: Pipeline): Db {
  let db = operatorDbs.get(p);
  if (!db) operatorDbs.set(p, (db = createDb(p.config.operatorDatabaseUrl, { maxConnections: 2 })));
  return db;
}
export async function closeOperatorDb(p: Pipeline): Promise<void> {
  await operatorDbs.get(p)?.$disconnect();
  operatorDbs.delete(p);
}

export interface Decided {
  /** Whether this decision is the one the trail counts. */
  counted: boolean;
  /** Why not, as the trail's judgment says (the last refused decision's code), or the CLI's refusal. */
  refused: string | null;
  /** The workflow's state once it moved on (20 s at most): informative only. */
  state: string | null;
}

/** As `client.ts approve|deny <id> --operator <who>`; an approval the CLI refuses to sign is `refused: 'cli:<why>'`. */
export async function decide(
  p: Pipeline,
  who: string,
  requestId: string,
  decision: 'approve' | 'deny',
  opts: { wait?: boolean } = {},
): Promise<Decided> {
  const db = operatorDb(p);
  const read = await showRequest(db, p.client, p.config, requestId);
  if (decision === 'approve') {
    const problem = read.ok ? approvalProblem(read.shown) : read.problem;
    if (problem) return { counted: false, refused: `cli:${problem}`, state: null };
  }
  const out = await decideOnTrail(db, p.client, p.config, { operator: who }, requestId, decision, read.ok ? read.shown : null);
  let state: string | null = null;
  for (let i = 0; i < (opts.wait === false ? 1 : 100); i++) {
    state = (await recoveryStatus(p.client, requestId).catch(() => null))?.state ?? null;
    if (!out.counted || !['verifying', 'awaiting_approval', 'recovering'].includes(state ?? '')) break;
    await sleep(200);
  }
  return { counted: out.counted, refused: out.counted ? null : (out.decision.refused.at(-1)?.code ?? 'decided_before'), state };
}

/** A signed decision appended straight to the trail by `operator`, over whatever digests the caller gives. */
export async function appendDecision(
  p: Pipeline,
  operator: string,
  body: Omit<ApprovalBody, 'type' | 'operator' | 'issuedAt'>,
  db: Db = operatorDb(p),
) {
  const signed = sign(
    { type: 'pii-recovery-approval' as const, operator, issuedAt: new Date().toISOString(), ...body },
    readPrivateKey(operatorKeyFile(p.config, operator)),
  );
  const [entry] = await appendAudit(db, [
    {
      requestId: body.requestId,
      event: 'decision_signed',
      actor: operator,
      details: { document: signed.body, signature: signed.signature },
    },
  ]);
  return entry;
}
