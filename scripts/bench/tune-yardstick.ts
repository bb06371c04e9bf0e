// Tuning the bare pipeline (not part of `npm run bench`): the raw drain and the bare pipeline at
// several poller counts, interleaved, on the same services. `ts-node scripts/bench/tune-yardstick.ts N ROUNDS P1,P2,…`
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../lib/platform/config';
import { LocalKeyWrapper } from '../../lib/pii/kek';
import { initKeyringFile, loadKeyring } from '../../lib/pii/keyring';
import { generateBodies } from '../../lib/ingest/load';
import { createSqsClient, sendMessages } from '../../lib/ingest/sqs';
import { startServices } from '../../services';
import { createQueue, freshDatabase } from '../harness';
import { bareDrain, rawDrain, writeBareKeys } from './yardsticks';

async function main() {
  const [n = '20000', rounds = '2', pollers = '4,8,16'] = process.argv.slice(2);
  process.env.AWS_ACCESS_KEY_ID ??= 'bench';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'bench';
  const base = loadConfig({ ...process.env, LOG_LEVEL: 'WARN' }, []);
  const services = await startServices(base, { ephemeral: true, log: () => {}, sqsProcess: true });
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'tune-'));
  try {
    const masterKey = crypto.randomBytes(32).toString('base64');
    const keyFile = path.join(scratch, 'keyring.json');
    await initKeyringFile(keyFile, new LocalKeyWrapper(Buffer.from(masterKey, 'base64')));
    const env = {
      ...process.env,
      TEMPORAL_ADDRESS: services.temporalAddress,
      AWS_REGION: 'us-east-1',
      PII_KEYRING_FILE: keyFile,
      PII_MASTER_KEY: masterKey,
      DATABASE_URL: services.databaseUrl,
    };
    const keyring = await loadKeyring(loadConfig(env, ['database']), () => {});
    const keys = writeBareKeys(scratch, keyring);
    const admin = createSqsClient(
      loadConfig({ ...env, AWS_ENDPOINT_URL_SQS: services.sqsEndpoint, SQS_QUEUE_URL: services.sqsQueueUrl }).sqs,
    );
    const bodies = generateBodies(Number(n), { malformedShare: 0.01, duplicateShare: 0.05, seed: 42 });
    const q = await createQueue(admin, `tune${crypto.randomBytes(3).toString('hex')}`);
    const db = (await freshDatabase(services, `tune_${crypto.randomBytes(3).toString('hex')}`)).app;
    for (let r = 0; r < Number(rounds); r++) {
      await sendMessages(admin, q, bodies);
      console.log('raw', Math.round((await rawDrain(services.sqsEndpoint, q)).rate));
      for (const variant of pollers.split(',')) {
        // P (8) or P:sequential (8:seq): poller count, and whether each loop overlaps its commit with its next chunk.
        const [p, seq] = variant.split(':');
        process.env.BENCH_BARE_POLLERS = p;
        process.env.BENCH_BARE_OVERLAP = seq ? '0' : '1'; // the bench itself runs the sequential loop (measured no slower)
        await sendMessages(admin, q, bodies);
        const b = await bareDrain(services.sqsEndpoint, q, db, keys);
        const pg = new (await import('pg')).Client({ connectionString: db });
        await pg.connect();
        console.log((await pg.query('select count(*)::int n, count(distinct message_id)::int d from user_logins')).rows[0]);
        await pg.end();
        console.log(`bare ${variant}`, Math.round(b.rate), b.drained, b.inserted, b.invalid, b.cpuSeconds.toFixed(1));
      }
    }
    admin.destroy();
  } finally {
    await services.stop();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
void main();
