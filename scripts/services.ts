// `npm run services`: start the embedded services (those the environment does not point
// at), apply migrations, and keep them up until Ctrl-C. worker.ts and client.ts in other
// terminals find them through <DATA_DIR>/services.json.
//   --ephemeral          temporary data and free ports (tests)
//   --ready-file PATH    write the addresses there as JSON once everything is up
import fs from 'node:fs';
import { loadConfig } from '../lib/platform/config';
import { redactUrl } from '../lib/platform/env-schema';
import { migrate } from '../lib/platform/migrate';
import { startServices } from '../services';

async function main() {
  const args = process.argv.slice(2);
  const ephemeral = args.includes('--ephemeral');
  const readyFile = args.includes('--ready-file') ? args[args.indexOf('--ready-file') + 1] : undefined;
  const log = (msg: string) => console.error(msg);
  const services = await startServices(loadConfig(process.env, []), { ephemeral, log });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await services.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  process.on('disconnect', () => void stop()); // a parent that forked us went away

  await migrate(services.ownerDatabaseUrl ?? services.databaseUrl, log);
  const { stop: _stop, started, ...addresses } = services;
  if (readyFile) fs.writeFileSync(readyFile, JSON.stringify(addresses));
  log(`Started: ${started.join(', ') || 'nothing (all from the environment)'}`);
  log(`  Temporal:   ${addresses.temporalAddress}${addresses.temporalUiUrl ? ` (Web UI ${addresses.temporalUiUrl})` : ''}`);
  log(
    `  PostgreSQL: ${redactUrl(addresses.databaseUrl)} (application role; migrations as ${redactUrl(addresses.ownerDatabaseUrl ?? addresses.databaseUrl)})`,
  );
  log(`  SQS queue:  ${addresses.sqsQueueUrl}`);
  if (!ephemeral) log('worker.ts and client.ts in other terminals use these. Ctrl-C stops them.');
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
