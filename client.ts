// The user's door: `npx ts-node client.ts <command>`. `--help` on every command.
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { ScheduleAlreadyRunning, ScheduleNotFoundError } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import { log, output, withClient } from './cli/common';
import { registerKeyCommands } from './cli/keys';
import { registerRecoveryCommands } from './cli/recovery';
import { registerAuditCommands } from './cli/audit';
import { loadConfig } from './lib/platform/config';
import { INGEST_LIMITS } from './lib/contract/ingest-options';
import { EXIT, ingestExitCode } from './cli/exit-codes';
import { formatSummary, optionsFromConfig, runIngest } from './cli/ingest-run';
import { fileBodies, generateBodies, sampleBodies } from './lib/ingest/load';
import { errorMessage } from './lib/platform/guards';
import { logFormat, logger, noteNodeVersion, silenceAwsNodeVersionWarning } from './lib/platform/log';
import { ProgressReporter } from './cli/progress';
import { formatRuns, listRuns } from './cli/runs';
import { createSchedule, describeSchedule, scheduleJson } from './cli/schedule';
import { DEFAULT_SCHEDULE_INTERVAL, SCHEDULE_ID } from './lib/contract/names';
import { createSqsClient, sendMessages } from './lib/ingest/sqs';

silenceAwsNodeVersionWarning(); // before any SQS client: one short note instead (lib/platform/log.ts)

function intOption(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max)
      throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}`);
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
  .addHelpText(
    'after',
    `
Exit codes: ${EXIT.ok} done (ingest: the queue drained or --max-messages reached) · ${EXIT.failure} failure (an error, or audit verify found the chain broken) ·
${EXIT.refused} refused (recovery refused, denied or expired) · ${EXIT.messagesUnavailable} ingest stopped with messages_unavailable · ${EXIT.usage} wrong usage.
LOG_FORMAT=json makes progress and notices on stderr JSON objects, one a line; results stay on stdout.`,
  )
  .showHelpAfterError()
  .exitOverride(); // usage errors get their own exit code (below), inherited by every command

program
  .command('ingest')
  .description(
    'Drain the queue into the database (attaches to the ingest already running, if any) and print the summary. ' +
      'Progress on stderr: a live bar on a terminal, otherwise a line every 30 s. Exit code 0 drained, 3 messages_unavailable, 1 failure.',
  )
  .option('--json', 'print the summary as one JSON object (with the workflow ID)')
  .option(
    '--batch-size <n>',
    'most messages per commit (default INGEST_BATCH_SIZE)',
    intOption(INGEST_LIMITS.batchSize.min, INGEST_LIMITS.batchSize.max),
  )
  .option(
    '--concurrency <n>',
    'drain activities in flight (default INGEST_CONCURRENCY)',
    intOption(INGEST_LIMITS.concurrency.min, INGEST_LIMITS.concurrency.max),
  )
  .option('--max-messages <n>', 'stop after this many messages (default: until the queue is empty)', intOption(1))
  .action(async (opts: { json?: boolean; batchSize?: number; concurrency?: number; maxMessages?: number }) => {
    await withClient(async (client, config) => {
      const options = { ...optionsFromConfig(config.ingest) };
      if (opts.batchSize) options.batchSize = opts.batchSize;
      if (opts.concurrency) options.concurrency = opts.concurrency;
      if (opts.maxMessages) options.maxMessages = opts.maxMessages;
      const tty = process.stderr.isTTY === true && logFormat() === 'text';
      const reporter = new ProgressReporter({
        tty,
        maxMessages: options.maxMessages,
        write: (text) => process.stderr.write(text),
        line:
          logFormat() === 'json'
            ? (stats) => logger.info('progress', { workflowId: config.ingest.workflowId, ...stats })
            : undefined,
      });
      const run = await runIngest(client, config, options, log, {
        onProgress: (p) => reporter.update(p, Date.now()),
        pollMs: tty ? 1000 : 2000,
      }).finally(() => reporter.finish());
      output(opts.json, { workflowId: run.workflowId, runId: run.runId, attached: run.attached, ...run.summary }, () =>
        formatSummary(run),
      );
      process.exitCode = ingestExitCode(run.summary.stopReason);
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
  .option('--json', 'print what was sent as one JSON object')
  .action(
    async (opts: {
      sample?: boolean;
      file?: string;
      generate?: number;
      malformedShare: number;
      duplicateShare: number;
      seed: number;
      json?: boolean;
    }) => {
      const sources = [opts.sample, opts.file, opts.generate].filter((x) => x !== undefined);
      if (sources.length !== 1) program.error('load: give exactly one of --sample, --file PATH, --generate N');
      const config = loadConfig(process.env, ['sqs']);
      noteNodeVersion();
      const bodies = opts.sample
        ? sampleBodies()
        : opts.file
          ? fileBodies(opts.file)
          : generateBodies(opts.generate!, {
              malformedShare: opts.malformedShare,
              duplicateShare: opts.duplicateShare,
              seed: opts.seed,
            });
      const sqs = createSqsClient(config.sqs);
      try {
        const started = Date.now();
        const ids = await sendMessages(sqs, config.sqs.queueUrl, bodies);
        const seconds = (Date.now() - started) / 1000;
        output(
          opts.json,
          { sent: ids.length, queueUrl: config.sqs.queueUrl, seconds },
          () => `Sent ${ids.length} message(s) to ${config.sqs.queueUrl} in ${seconds.toFixed(1)} s.`,
        );
      } finally {
        sqs.destroy();
      }
    },
  );

const schedule = program.command('schedule').description('Manage the Temporal schedule that runs the ingest every 30 minutes.');
/** Schedule commands: a missing schedule gets a hint instead of a stack trace. */
async function withScheduleClient(fn: Parameters<typeof withClient>[0]) {
  await withClient(async (client, config, keyring) => {
    try {
      await fn(client, config, keyring);
    } catch (err) {
      if (err instanceof ScheduleNotFoundError)
        throw new Error(`No schedule ${SCHEDULE_ID}: create it with \`npx ts-node client.ts schedule create\`.`);
      throw err;
    }
  });
}
schedule
  .command('create')
  .description(`create the schedule ${SCHEDULE_ID} (every 30 minutes; a run still going makes the next one skip)`)
  .option('--every <interval>', 'interval, e.g. 30m or 1h', DEFAULT_SCHEDULE_INTERVAL)
  .option('--if-missing', 'leave an existing schedule as it is instead of failing (for deployment jobs)')
  .action((opts: { every: string; ifMissing?: boolean }) =>
    withScheduleClient(async (client, config) => {
      try {
        await createSchedule(client, config, opts.every as Duration);
      } catch (err) {
        if (!(opts.ifMissing && err instanceof ScheduleAlreadyRunning)) throw err;
        log(`Schedule ${SCHEDULE_ID} exists already: left as it is.`);
      }
      console.log(describeSchedule(await client.schedule.getHandle(SCHEDULE_ID).describe()));
    }),
  );
schedule
  .command('describe')
  .description('show the schedule, its next runs and recent ones')
  .option('--json', 'as one JSON object')
  .action((opts: { json?: boolean }) =>
    withScheduleClient(async (client) => {
      const d = await client.schedule.getHandle(SCHEDULE_ID).describe();
      output(opts.json, scheduleJson(d), () => describeSchedule(d));
    }),
  );
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

program
  .command('runs')
  .description(
    'Recent ingest runs with their counts (search attributes), newest first; each continue-as-new is a run of its own.',
  )
  .option('--json', 'as one JSON array')
  .option('--limit <n>', 'how many', intOption(1, 1000), 10)
  .option('--all', 'every ingest workflow ID, not only INGEST_WORKFLOW_ID')
  .action((opts: { json?: boolean; limit: number; all?: boolean }) =>
    withClient(async (client, config) => {
      const runs = await listRuns(client, { limit: opts.limit, workflowId: opts.all ? undefined : config.ingest.workflowId });
      output(opts.json, runs, () => formatRuns(runs));
    }),
  );

registerKeyCommands(program);
registerRecoveryCommands(program);
registerAuditCommands(program);

program.parseAsync().catch((err: unknown) => {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage); // commander printed it already
  logger.error(errorMessage(err));
  process.exit(EXIT.failure);
});
