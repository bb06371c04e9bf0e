// The user's door: `npx ts-node client.ts <command>`. `--help` on every command.
import { Command, InvalidArgumentError } from 'commander';
import { ScheduleNotFoundError } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import { log, withClient } from './cli/common';
import { registerKeyCommands } from './cli/keys';
import { registerRecoveryCommands } from './cli/recovery';
import { loadConfig } from './lib/config';
import { INGEST_LIMITS } from './lib/ingest-options';
import { formatSummary, optionsFromConfig, runIngest } from './lib/ingest-run';
import { fileBodies, generateBodies, sampleBodies } from './lib/load';
import { createSchedule, describeSchedule, SCHEDULE_ID } from './lib/schedule';
import { createSqsClient, sendMessages } from './lib/sqs';

function intOption(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}`);
    return n;
  };
}
function shareOption(value: string) {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('must be a number from 0 to 1');
  return n;
}

const program = new Command('client.ts')
  .description('Login ingest pipeline: SQS → Temporal → PostgreSQL, with IP and device ID masked.')
  .showHelpAfterError();

program
  .command('ingest')
  .description('Drain the queue into the database (attaches to the ingest already running, if any) and print the summary.')
  .option('--json', 'print the summary as one JSON object (with the workflow ID)')
  .option('--batch-size <n>', 'most messages per commit (default INGEST_BATCH_SIZE)', intOption(INGEST_LIMITS.batchSize.min, INGEST_LIMITS.batchSize.max))
  .option('--concurrency <n>', 'drain activities in flight (default INGEST_CONCURRENCY)', intOption(INGEST_LIMITS.concurrency.min, INGEST_LIMITS.concurrency.max))
  .option('--max-messages <n>', 'stop after this many messages (default: until the queue is empty)', intOption(1))
  .action(async (opts: { json?: boolean; batchSize?: number; concurrency?: number; maxMessages?: number }) => {
    await withClient(async (client, config) => {
      const options = { ...optionsFromConfig(config.ingest) };
      if (opts.batchSize) options.batchSize = opts.batchSize;
      if (opts.concurrency) options.concurrency = opts.concurrency;
      if (opts.maxMessages) options.maxMessages = opts.maxMessages;
      const run = await runIngest(client, config, options, log);
      if (opts.json) console.log(JSON.stringify({ workflowId: run.workflowId, runId: run.runId, attached: run.attached, ...run.summary }));
      else console.log(formatSummary(run));
    });
  });

program
  .command('load')
  .description('Send messages to the queue.')
  .option('--sample', 'the 100 messages of the reference setup (data/sample.json)')
  .option('--file <path>', 'one message body per line, sent as is')
  .option('--generate <n>', 'N synthetic login events', intOption(1, 10_000_000))
  .option('--malformed-share <x>', 'with --generate: share of malformed messages, 0..1', shareOption, 0.01)
  .option('--duplicate-share <x>', 'with --generate: share of repeated content, 0..1', shareOption, 0.05)
  .option('--seed <n>', 'with --generate: random seed', intOption(0), 1)
  .action(async (opts: { sample?: boolean; file?: string; generate?: number; malformedShare: number; duplicateShare: number; seed: number }) => {
    const sources = [opts.sample, opts.file, opts.generate].filter((x) => x !== undefined);
    if (sources.length !== 1) program.error('load: give exactly one of --sample, --file PATH, --generate N');
    const config = loadConfig(process.env, ['sqs']);
    const bodies = opts.sample
      ? sampleBodies()
      : opts.file
        ? fileBodies(opts.file)
        : generateBodies(opts.generate!, { malformedShare: opts.malformedShare, duplicateShare: opts.duplicateShare, seed: opts.seed });
    const sqs = createSqsClient(config.sqs);
    try {
      const started = Date.now();
      const ids = await sendMessages(sqs, config.sqs.queueUrl, bodies);
      console.log(`Sent ${ids.length} message(s) to ${config.sqs.queueUrl} in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
    } finally {
      sqs.destroy();
    }
  });

const schedule = program.command('schedule').description('Manage the Temporal schedule that runs the ingest every 30 minutes.');
/** Schedule commands: a missing schedule gets a hint instead of a stack trace. */
async function withScheduleClient(fn: Parameters<typeof withClient>[0]) {
  await withClient(async (client, config, keyring) => {
    try {
      await fn(client, config, keyring);
    } catch (err) {
      if (err instanceof ScheduleNotFoundError) throw new Error(`No schedule ${SCHEDULE_ID}: create it with \`npx ts-node client.ts schedule create\`.`);
      throw err;
    }
  });
}
schedule
  .command('create')
  .description(`create the schedule ${SCHEDULE_ID} (every 30 minutes; a run still going makes the next one skip)`)
  .option('--every <interval>', 'interval, e.g. 30m or 1h', '30m')
  .action((opts: { every: string }) =>
    withScheduleClient(async (client, config) => {
      await createSchedule(client, config, opts.every as Duration);
      console.log(describeSchedule(await client.schedule.getHandle(SCHEDULE_ID).describe()));
    }),
  );
schedule
  .command('describe')
  .description('show the schedule, its next runs and recent ones')
  .action(() => withScheduleClient(async (client) => console.log(describeSchedule(await client.schedule.getHandle(SCHEDULE_ID).describe()))));
schedule
  .command('trigger')
  .description('run the scheduled ingest now')
  .action(() =>
    withScheduleClient(async (client) => {
      await client.schedule.getHandle(SCHEDULE_ID).trigger();
      console.log(`Triggered ${SCHEDULE_ID}.`);
    }),
  );
schedule
  .command('pause')
  .description('stop starting runs until unpaused')
  .option('--note <text>', 'why', 'paused from client.ts')
  .action((opts: { note: string }) =>
    withScheduleClient(async (client) => {
      await client.schedule.getHandle(SCHEDULE_ID).pause(opts.note);
      console.log(`Paused ${SCHEDULE_ID}.`);
    }),
  );
schedule
  .command('unpause')
  .description('resume starting runs')
  .action(() =>
    withScheduleClient(async (client) => {
      await client.schedule.getHandle(SCHEDULE_ID).unpause('unpaused from client.ts');
      console.log(`Unpaused ${SCHEDULE_ID}.`);
    }),
  );
schedule
  .command('delete')
  .description('delete the schedule (runs already started go on)')
  .action(() =>
    withScheduleClient(async (client) => {
      await client.schedule.getHandle(SCHEDULE_ID).delete();
      console.log(`Deleted ${SCHEDULE_ID}.`);
    }),
  );

registerKeyCommands(program);
registerRecoveryCommands(program);

program.parseAsync().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
