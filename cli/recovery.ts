// CLI commands of the audited PII recovery: recover, approve, deny, requests, audit verify, operator keygen.
import fs from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { verifyAuditChain } from '../lib/recovery/audit';
import { loadConfig } from '../lib/platform/config';
import { createDb } from '../lib/platform/db';
import { generateOperatorKeys, ROLES, writePrivateKey, type RecoveryRequestBody, type Role } from '../lib/recovery';
import {
  awaitRecovery,
  decide,
  operatorKeyFile,
  pendingRequests,
  recordSetToApprove,
  recoveryStatus,
  startRecovery,
  type RecoveryOutcome,
} from './recovery-client';
import type { RecoveryStatus } from '../workflows/recovery';
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

/** What a request asks for, as an approver must see it before signing. */
function describeRequest(r: RecoveryStatus): string {
  return [
    `${r.requestId}  ${r.state}  by ${r.requester}  ticket ${r.ticket}  expires ${r.expiresAt ?? '-'}`,
    `    reason:     ${r.reason}`,
    `    selector:   ${JSON.stringify(r.selector)}`,
    `    fields:     ${r.fields?.join(', ') ?? '?'}`,
    `    records:    ${r.records ?? '?'}${r.recordSet ? ` (${r.recordSet.map((x) => `${x.table}:${x.messageId}`).join(', ')})` : ''}`,
    `    record set: ${r.recordSetHash ?? '?'}`,
  ].join('\n');
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
        `${decision === 'approve' ? 'Approve' : 'Deny'} a pending recovery request, signed with your key (you cannot decide on your own).`,
      )
      .argument('<request-id>')
      .requiredOption('--operator <name>', 'you, as named in the operator registry')
      .option('--key <file>', 'your Ed25519 private key (default: DATA_DIR/operators/<name>.key)')
      .option('--comment <text>', 'a note for the audit trail')
      .action(async (requestId: string, opts: { operator: string; key?: string; comment?: string }) => {
        await withClient(async (client, config) => {
          const shown = await recoveryStatus(client, requestId);
          if (decision === 'approve') {
            const { count } = recordSetToApprove(shown); // throws if the shown records do not match their hash
            log(`Approving, signed as ${opts.operator}, exactly these ${count} record(s):\n${describeRequest(shown)}`);
          }
          const { status, refused } = await decide(
            client,
            config,
            { operator: opts.operator, keyFile: opts.key },
            requestId,
            decision,
            opts.comment,
          );
          if (refused) {
            console.error(`Refused: ${refused} (see the audit trail). The request still waits for a valid decision.`);
            process.exitCode = 2;
          } else if (status.state === 'awaiting_approval') {
            console.error(`Sent, but request ${requestId} has not judged it yet: is a worker running?`);
            process.exitCode = 1;
          } else {
            console.log(`Request ${requestId}: ${status.state}.`);
          }
        });
      });
  }

  program
    .command('requests')
    .description('List the recovery requests that are still running (awaiting approval or being processed).')
    .option('--json', 'as one JSON array')
    .action((opts: { json?: boolean }) =>
      withClient(async (client) => {
        const pending = await pendingRequests(client);
        output(opts.json, pending, () =>
          pending.length ? pending.map(describeRequest).join('\n') : 'No pending recovery requests.',
        );
      }),
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
      const db = createDb(config.databaseUrl);
      try {
        reportVerification(await verifyAuditChain(db), await verifyConfiguredAnchors(config, db), opts.json);
      } finally {
        await db.$disconnect();
      }
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
      const out = opts.out ?? operatorKeyFile(config, opts.name);
      writePrivateKey(out, keys.privateKeyPem);
      log(`Wrote the private key of ${opts.name} to ${out} (mode 600). Keep it to yourself.`);
      if (opts.register) {
        fs.mkdirSync(path.dirname(config.recovery.operatorsFile), { recursive: true });
        fs.appendFileSync(config.recovery.operatorsFile, keys.registryLine + '\n');
        log(`Added ${opts.name} to ${config.recovery.operatorsFile}.`);
      } else {
        log(`Add this line to the operator registry (${config.recovery.operatorsFile}):`);
      }
      console.log(keys.registryLine);
    });
}
