// CLI commands of the audited PII recovery: recover, approve, deny, requests, audit verify, operator keygen.
import fs from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { verifyAuditChain } from '../lib/recovery/audit';
import { loadConfig } from '../lib/platform/config';
import { createDb } from '../lib/platform/db';
import { generateOperatorKeys, ROLES, writePrivateKey, type RecoveryRequestBody, type Role } from '../lib/recovery';
import type { Config } from '../lib/platform/config';
import type { Db } from '../lib/platform/db';
import { awaitRecovery, operatorKeyFile, recoveryStatus, startRecovery, type RecoveryOutcome } from './recovery-client';
import { approvalProblem, awaitCarriedOut, decideOnTrail, describeShown, pendingRequests, showRequest } from './approval';
import { checkRegistration } from '../lib/recovery/registry';
import { log, output, withClient } from './common';
import { reportVerification, verifyConfiguredAnchors } from './audit';

const FIELDS = ['ip', 'device_id', 'body'] as const;
function fieldsOption(value: string): RecoveryRequestBody['fields'] {
  const fields = value.split(',').map((f) => f.trim());
  const bad = fields.filter((f) => !(FIELDS as readonly string[]).includes(f));
  if (bad.length || fields.length === 0)
    throw new InvalidArgumentError(`fields are a comma-separated list of ${FIELDS.join(', ')}`);
  return fields as RecoveryRequestBody['fields'];
}
function rolesOption(value: string): Role[] {
  const roles = value.split(',').map((r) => r.trim());
  if (roles.some((r) => !(ROLES as readonly string[]).includes(r)))
    throw new InvalidArgumentError(`roles are a comma-separated list of ${ROLES.join(', ')}`);
  return roles as Role[];
}
const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Runs `fn` with the operators' database role (OPERATOR_DATABASE_URL): read the trail, append signed decisions only. */
async function withOperatorDb<T>(config: Config, fn: (db: Db) => Promise<T>): Promise<T> {
  if (!config.operatorDatabaseUrl)
    throw new Error(
      'OPERATOR_DATABASE_URL is not set: the operators\' commands (requests, approve, deny, audit verify) connect as the operators\' database role (login_ingest_operator; README, "Database roles"), or start the embedded services with `npm run services`',
    );
  const db = createDb(config.operatorDatabaseUrl, { maxConnections: 2 });
  try {
    return await fn(db);
  } finally {
    await db.$disconnect();
  }
}

function printOutcome(outcome: RecoveryOutcome): void {
  if (!('records' in outcome)) {
    console.error(
      `Request ${outcome.result.requestId} ${outcome.result.status}: ${outcome.result.code} (${outcome.result.detail}). Nothing was decrypted.`,
    );
    process.exitCode = 2;
    return;
  }
  console.error(
    `Request ${outcome.result.requestId}: ${outcome.records.length} record(s). The values below are shown once and stored nowhere.`,
  );
  for (const record of outcome.records) console.log(JSON.stringify(record));
}

export function registerRecoveryCommands(program: Command): void {
  program
    .command('recover')
    .description(
      'Ask for the plaintext IP / device ID of some records: a signed, audited request that a second operator must approve.',
    )
    .requiredOption('--operator <name>', 'you, as named in the operator registry')
    .option('--key <file>', 'your Ed25519 private key (default: DATA_DIR/operators/<name>.key)')
    .option('--reason <text>', 'why (10 to 1000 characters)')
    .option('--ticket <ref>', 'the ticket this is for')
    .option('--message-id <id>', 'a message ID of a row or quarantine entry (repeatable)', collect)
    .option('--user-id <id>', 'all rows of a user')
    .option('--fingerprint <hex>', 'all rows with this masked_ip or masked_device_id')
    .option('--fields <list>', 'ip, device_id (rows), body (quarantine entries)', fieldsOption, [
      'ip',
      'device_id',
    ] as RecoveryRequestBody['fields'])
    .option('--no-wait', 'start the request and return; fetch the result later with --resume')
    .option('--resume <request-id>', 'wait for (or fetch) the result of a request you started on this machine')
    .action(
      async (opts: {
        operator: string;
        key?: string;
        reason?: string;
        ticket?: string;
        messageId?: string[];
        userId?: string;
        fingerprint?: string;
        fields: RecoveryRequestBody['fields'];
        wait: boolean;
        resume?: string;
      }) => {
        await withClient(async (client, config) => {
          let requestId = opts.resume;
          if (!requestId) {
            const selectors = [
              opts.messageId && { messageIds: opts.messageId },
              opts.userId && { userId: opts.userId },
              opts.fingerprint && { fingerprint: opts.fingerprint },
            ].filter(Boolean);
            if (selectors.length !== 1)
              throw new Error(
                'recover: name the records with exactly one of --message-id (repeatable), --user-id, --fingerprint',
              );
            if (!opts.reason || !opts.ticket) throw new Error('recover: --reason and --ticket are required');
            requestId = await startRecovery(
              client,
              config,
              { operator: opts.operator, keyFile: opts.key },
              {
                reason: opts.reason,
                ticket: opts.ticket,
                selector: selectors[0] as RecoveryRequestBody['selector'],
                fields: opts.fields,
              },
            );
            log(`Request ${requestId} started.`);
          }
          if (!opts.wait) {
            log(`A second operator approves it with: npx ts-node client.ts approve ${requestId} --operator <name>`);
            log(`Fetch the result with: npx ts-node client.ts recover --operator ${opts.operator} --resume ${requestId}`);
            return;
          }
          const status = await recoveryStatus(client, requestId).catch(() => null);
          if (status?.state === 'awaiting_approval') {
            log(
              `Waiting for a second operator (until ${status.expiresAt}): npx ts-node client.ts approve ${requestId} --operator <name>`,
            );
          }
          printOutcome(await awaitRecovery(client, config, requestId));
        });
      },
    );

  for (const decision of ['approve', 'deny'] as const) {
    program
      .command(decision)
      .description(
        `${decision === 'approve' ? 'Approve' : 'Deny'} a pending recovery request: verified from the audit trail on this machine, signed with your key, appended to the trail (you cannot decide on your own).`,
      )
      .argument('<request-id>')
      .requiredOption('--operator <name>', 'you, as named in the operator registry')
      .option('--key <file>', 'your Ed25519 private key (default: DATA_DIR/operators/<name>.key)')
      .option('--comment <text>', 'a note for the audit trail')
      .action(async (requestId: string, opts: { operator: string; key?: string; comment?: string }) => {
        await withClient(
          (client, config) =>
            withOperatorDb(config, async (db) => {
              const read = await showRequest(db, client, config, requestId);
              if (!read.ok && decision === 'approve') {
                console.error(
                  `Refused: the audit trail cannot vouch for request ${requestId} (${read.problem}). Nothing was signed.`,
                );
                process.exitCode = 3;
                return;
              }
              const shown = read.ok ? read.shown : null;
              if (shown) log(describeShown(shown));
              if (decision === 'approve') {
                const problem = approvalProblem(shown!);
                if (problem) {
                  console.error(`Refused: ${problem}. Nothing was signed.`);
                  process.exitCode = 3;
                  return;
                }
                log(
                  `Approving, signed as ${opts.operator}, exactly the request and the ${shown!.trail.authorised!.records.length} record(s) above.`,
                );
              }
              const out = await decideOnTrail(
                db,
                client,
                config,
                { operator: opts.operator, keyFile: opts.key },
                requestId,
                decision,
                shown,
                opts.comment,
              );
              log(`Your signed ${decision === 'approve' ? 'approval' : 'denial'} is in the audit trail; ${out.nudge}.`);
              if (!out.counted) {
                const d = out.decision;
                const why = d.decided
                  ? `${d.approver}'s ${d.decision === 'approve' ? 'approval' : 'denial'} came first and is the decision`
                  : (d.refused.at(-1)?.detail ?? 'the trail does not hold this request');
                console.error(`Your decision does not count: ${why}.`);
                process.exitCode = 2;
              } else if (decision === 'approve') {
                console.log(`Request ${requestId}: approved; ${await awaitCarriedOut(db, requestId)}.`);
              } else {
                console.log(`Request ${requestId}: denied. The denial is final.`);
              }
            }),
          ['temporal', 'database'],
        );
      });
  }

  program
    .command('requests')
    .description(
      'List the recovery requests awaiting a decision, as the audit trail holds them and verified on this machine; workflows that contradict the trail are reported as attacks.',
    )
    .option('--json', 'as one JSON object { pending, unverified }')
    .action((opts: { json?: boolean }) =>
      withClient(
        (client, config) =>
          withOperatorDb(config, async (db) => {
            const { pending, unverified } = await pendingRequests(db, client, config);
            const json = {
              pending: pending.map((s) => ({
                requestId: s.requestId,
                requester: s.trail.request.operator,
                reason: s.trail.request.reason,
                ticket: s.trail.request.ticket,
                selector: s.trail.request.selector,
                fields: s.trail.request.fields,
                records: s.trail.authorised?.records.map((r) => ({ ...r, userId: s.owners.get(r.messageId) ?? null })) ?? [],
                recordSetHash: s.trail.authorised?.recordSetHash ?? null,
                requestDigest: s.trail.digest,
                expiresAt: s.trail.authorised?.expiresAt ?? null,
                contradictions: s.contradictions,
              })),
              unverified,
            };
            output(opts.json, json, () =>
              [
                pending.length ? pending.map(describeShown).join('\n') : 'No pending recovery requests.',
                ...unverified.map(
                  (u) => `!! ${u.requestId}: NOT A REQUEST the trail vouches for (${u.problem}); do not approve it.`,
                ),
              ].join('\n'),
            );
            if (unverified.length || pending.some((s) => s.contradictions.length)) process.exitCode = 3;
          }),
        ['temporal', 'database'],
      ),
    );

  program
    .command('audit')
    .description('The PII audit trail.')
    .command('verify')
    .description(
      'Walk the hash chain of the audit trail and compare it with every anchor (AUDIT_ANCHOR); names every entry that was edited, deleted or reordered, and every anchor it no longer matches (exit code 1).',
    )
    .option('--json', 'the result as one JSON object (exit code 1 when broken, too)')
    .action(async (opts: { json?: boolean }) => {
      const config = loadConfig(process.env, ['database']);
      await withOperatorDb(config, async (db) => {
        reportVerification(await verifyAuditChain(db), await verifyConfiguredAnchors(config, db), opts.json);
      });
    });

  program
    .command('operator')
    .description('Operators of the PII recovery.')
    .command('keygen')
    .description(
      'Make an Ed25519 key pair for an operator: the private key goes to a git-ignored file, the registry line is printed.',
    )
    .requiredOption('--name <name>', 'operator name')
    .option('--roles <list>', 'pii-requester, pii-approver', rolesOption, ['pii-requester'] as Role[])
    .option('--out <file>', 'where to write the private key (default: DATA_DIR/operators/<name>.key)')
    .option('--register', 'also append the line to the registry file (PII_OPERATORS_FILE)')
    .action((opts: { name: string; roles: Role[]; out?: string; register?: boolean }) => {
      const config = loadConfig(process.env, []);
      const keys = generateOperatorKeys(opts.name, opts.roles);
      if (opts.register) checkRegistration(config.recovery.operatorsFile, opts.name, keys.publicKey); // before anything is written
      const out = opts.out ?? operatorKeyFile(config, opts.name);
      writePrivateKey(out, keys.privateKeyPem);
      log(`Wrote the private key of ${opts.name} to ${out} (mode 600). Keep it to yourself.`);
      if (opts.register) {
        fs.mkdirSync(path.dirname(config.recovery.operatorsFile), { recursive: true });
        // A registry whose last line lacks its newline would glue the new line onto it.
        const file = config.recovery.operatorsFile;
        const endsOpen = fs.existsSync(file) && fs.statSync(file).size > 0 && !fs.readFileSync(file, 'utf8').endsWith('\n');
        fs.appendFileSync(file, `${endsOpen ? '\n' : ''}${keys.registryLine}\n`);
        log(`Added ${opts.name} to ${config.recovery.operatorsFile}.`);
      } else {
        log(`Add this line to the operator registry (${config.recovery.operatorsFile}):`);
      }
      console.log(keys.registryLine);
    });
}
