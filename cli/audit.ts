// CLI commands of the audit trail's anchors: `audit anchor` (now, or `--schedule` every few
// minutes beside the ingest's schedule) and the anchor half of `audit verify` (the chain
// half is verifyAuditChain; cli/recovery.ts calls reportVerification).
import { ScheduleAlreadyRunning } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import type { Command } from 'commander';
import { loadConfig, type Config } from '../lib/platform/config';
import { createDb, type Db } from '../lib/platform/db';
import type { VerifyChainResult } from '../lib/recovery/audit';
import { anchorStore, verifyAnchors, writeAnchor, type AnchorVerification } from '../lib/recovery/anchor';
import { AUDIT_ANCHOR_SCHEDULE_ID, DEFAULT_AUDIT_ANCHOR_INTERVAL } from '../lib/contract/names';
import { createAnchorSchedule, describeSchedule } from './schedule';
import { log, output, withClient } from './common';

/** The anchors of AUDIT_ANCHOR compared with the chain in `db`. */
export async function verifyConfiguredAnchors(config: Config, db: Db): Promise<AnchorVerification & { store: string }> {
  const store = anchorStore(config);
  try {
    return { store: store.description, ...(await verifyAnchors(db, store)) };
  } finally {
    store.close();
  }
}

/** Prints `audit verify`'s result (the chain and the anchors) and sets exit code 1 when either finds a problem. */
export function reportVerification(
  chain: VerifyChainResult,
  anchors: AnchorVerification & { store: string },
  json: boolean | undefined,
): void {
  const ok = chain.ok && anchors.findings.length === 0;
  if (!ok) process.exitCode = 1;
  if (json) {
    console.log(JSON.stringify({ ...chain, ok, chainOk: chain.ok, anchors }));
    return;
  }
  if (chain.ok) console.log(`Audit trail intact: ${chain.entries} entries, head ${chain.head}.`);
  else {
    console.error(`Audit trail BROKEN: ${chain.breaks.length} problem(s) in ${chain.entries} entries (head ${chain.head}):`);
    for (const b of chain.breaks) console.error(`  ${b.problem}`);
  }
  if (anchors.findings.length) {
    console.error(
      `Audit trail does NOT match its anchors: ${anchors.findings.length} problem(s) against ${anchors.anchors} anchor(s) in ${anchors.store}:`,
    );
    for (const f of anchors.findings) console.error(`  ${f.problem}`);
  } else if (!anchors.anchors)
    console.error(`No anchors in ${anchors.store}: run \`audit anchor\` (or its schedule) to anchor the head.`);
  else console.log(`Matches all ${anchors.anchors} anchor(s) in ${anchors.store}.`);
}

export function registerAuditCommands(program: Command): void {
  const audit =
    program.commands.find((c) => c.name() === 'audit') ?? program.command('audit').description('The PII audit trail.');
  audit
    .command('anchor')
    .description(
      "write the audit trail's head (entry count, last ID, last hash, time) outside the database: a new S3 object under Object Lock (AUDIT_ANCHOR=s3://…), or a line of the local append-only file",
    )
    .option(
      '--schedule',
      `instead, create the Temporal schedule ${AUDIT_ANCHOR_SCHEDULE_ID} that anchors on the worker every few minutes`,
    )
    .option('--every <interval>', 'with --schedule: how often, e.g. 5m', DEFAULT_AUDIT_ANCHOR_INTERVAL)
    .option('--if-missing', 'with --schedule: leave an existing schedule as it is')
    .option('--json', 'the anchor as one JSON object')
    .action(async (opts: { schedule?: boolean; every: string; ifMissing?: boolean; json?: boolean }) => {
      if (opts.schedule) {
        await withClient(async (client, config) => {
          try {
            await createAnchorSchedule(client, config, opts.every as Duration);
          } catch (err) {
            if (!(opts.ifMissing && err instanceof ScheduleAlreadyRunning)) throw err;
            log(`Schedule ${AUDIT_ANCHOR_SCHEDULE_ID} exists already: left as it is.`);
          }
          console.log(describeSchedule(await client.schedule.getHandle(AUDIT_ANCHOR_SCHEDULE_ID).describe()));
        });
        return;
      }
      const config = loadConfig(process.env, ['database']);
      const db = createDb(config.databaseUrl);
      const store = anchorStore(config);
      try {
        await store.open();
        const { anchor, where } = await writeAnchor(db, store);
        output(
          opts.json,
          { ...anchor, where },
          () => `Anchored ${anchor.entries} entries (last ${anchor.lastId ?? '-'}, hash ${anchor.lastHash}) in ${where}.`,
        );
      } finally {
        store.close();
        await db.$disconnect();
      }
    });
}
