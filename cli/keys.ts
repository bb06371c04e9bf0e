// CLI commands for the PII keys and the codec server: keys init|rotate|status, codec-server.
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { EncryptionCodec } from '../lib/pii/codec';
import { startCodecServer } from '../lib/pii/codec-server';
import { codecToken } from '../lib/pii/codec-token';
import { loadConfig } from '../lib/platform/config';
import { createDb } from '../lib/platform/db';
import {
  configuredKeyWrapper,
  devKeyringPath,
  initKeyringFile,
  keyringStatus,
  codecKeyFileOf,
  codecKeyWrapperFor,
  keyWrapperFor,
  loadCodecKeysAsync,
  newCodecKeyFile,
  rewrapCodecKeyFile,
  rewrapKeyringFile,
  rotateKeyring,
} from '../lib/pii/keyring';
import { checkCanRecordRotation, keyUsage, recordRotation } from '../lib/pii/reencrypt';
import { reencryptWorkflow, type ReencryptSummary } from '../workflows/reencrypt';
import { REENCRYPT_WORKFLOW_ID } from '../lib/contract/names';
import { log, output, setup, withClient } from './common';

export function registerKeyCommands(program: Command): void {
  const keys = program.command('keys').description('PII keys: envelope-encrypted data keys, rotation, re-encryption.');

  keys
    .command('init')
    .description(
      'write a new key file: an AES-256 data key and an HMAC fingerprint key, both wrapped by the key-encryption key (PII_KEK: the master key, or a KMS key); never overwrites one',
    )
    .option('--out <path>', 'where to write it (default: PII_KEYRING_FILE, else the development key file in DATA_DIR)')
    .action(async (opts: { out?: string }) => {
      const config = loadConfig(process.env, []);
      const out = opts.out ?? config.keys.keyringFile ?? devKeyringPath(config.dataDir);
      const { activeKeyId, kek } = await initKeyringFile(out, configuredKeyWrapper(config, { create: !config.production, log }));
      console.log(
        `Wrote ${out} (mode 600): data key ${activeKeyId}, wrapped by ${kek}. Point PII_KEYRING_FILE at it; keep it and the master key out of version control.`,
      );
    });

  keys
    .command('codec-init')
    .description(
      'write a new payload codec key file (TEMPORAL_CODEC_KEY_FILE): the key every worker and client uses for the workflow history; not a PII key; never overwrites one',
    )
    .requiredOption('--out <path>', 'where to write it')
    .action((opts: { out: string }) => {
      const content = newCodecKeyFile();
      fs.mkdirSync(path.dirname(opts.out), { recursive: true, mode: 0o700 });
      try {
        fs.writeFileSync(opts.out, JSON.stringify(content, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST')
          throw new Error(`${opts.out} already exists: a key file is never overwritten`);
        throw err;
      }
      console.log(
        `Wrote ${opts.out} (mode 600): codec key ${content.activeKeyId}. Point TEMPORAL_CODEC_KEY_FILE at it in every worker, CLI and codec server of the namespace.`,
      );
    });

  keys
    .command('rotate')
    .description(
      'make a new active data key (used for new rows at once), record the rotation in the audit trail as the owner role (DATABASE_OWNER_URL), ' +
        'then re-encrypt old rows and quarantine bodies with it (only towards a recorded rotation)',
    )
    .option('--no-reencrypt', 'only rotate; run the re-encryption later with `keys reencrypt`')
    .action(async (opts: { reencrypt: boolean }) => {
      const config = loadConfig(process.env, ['database', ...(opts.reencrypt ? (['temporal'] as const) : [])]);
      const file = config.keys.keyringFile ?? devKeyringPath(config.dataDir);
      // The record is the re-encryption's authority, and only the owner role can write it (migration 0005).
      const owner = createDb(config.databaseOwnerUrl);
      let rotation: { newKeyId: string; previousKeyId: string };
      try {
        await checkCanRecordRotation(owner);
        rotation = await rotateKeyring(file, configuredKeyWrapper(config));
        await recordRotation(owner, rotation).catch((err) => {
          throw new Error(
            `${file} was rotated to ${rotation.newKeyId}, but the rotation could not be recorded (${(err as Error).message}); re-encryption refuses an unrecorded key: run keys rotate again.`,
          );
        });
      } finally {
        await owner.$disconnect();
      }
      console.log(
        `Rotated: ${rotation.previousKeyId} → ${rotation.newKeyId} (${file}), recorded in the audit trail. Workers use the new key within a second.`,
      );
      if (opts.reencrypt) await reencrypt(rotation.newKeyId);
    });

  keys
    .command('rewrap')
    .description(
      'wrap the key file under another key-encryption key (local master key -> KMS key, or back), atomically, after checking that every key unwraps again; the keys themselves do not change',
    )
    .requiredOption('--to <kek>', 'local (the master key, PII_MASTER_KEY) or aws-kms:<key ARN, alias ARN or alias/name>')
    .option('--file <path>', 'the key file (default: PII_KEYRING_FILE, else the development key file in DATA_DIR)')
    .action(async (opts: { to: string; file?: string }) => {
      const config = loadConfig(process.env, []);
      const file = opts.file ?? config.keys.keyringFile ?? devKeyringPath(config.dataDir);
      const result = await rewrapKeyringFile(file, (kek) => keyWrapperFor(kek, config), keyWrapperFor(opts.to, config));
      console.log(
        `Re-wrapped ${file}: ${result.keys} data key(s) and the fingerprint key, from ${result.from} to ${result.to}. ` +
          `Set PII_KEK=${result.to.startsWith('aws-kms:') ? result.to : 'local'} on every worker and CLI, and restart them.`,
      );
    });

  keys
    .command('codec-rewrap')
    .description(
      'wrap the payload codec key file (TEMPORAL_CODEC_KEY_FILE) by a KMS key, or write it plain again, atomically, after checking that every key comes back; the keys themselves do not change',
    )
    .requiredOption('--to <kek>', 'aws-kms:<key ARN, alias ARN or alias/name>, or plain (a migration away from KMS)')
    .option('--file <path>', 'the codec key file (default: TEMPORAL_CODEC_KEY_FILE, else the development one in DATA_DIR)')
    .action(async (opts: { to: string; file?: string }) => {
      const config = loadConfig(process.env, []);
      const file = opts.file ?? codecKeyFileOf(config)?.file;
      if (!file) throw new Error('no codec key file: give --file, or set TEMPORAL_CODEC_KEY_FILE');
      const to = opts.to === 'plain' ? 'plain' : codecKeyWrapperFor(opts.to, config);
      const result = await rewrapCodecKeyFile(file, (kek) => codecKeyWrapperFor(kek, config), to);
      console.log(
        `Re-wrote ${file}: ${result.keys} codec key(s), from ${result.from} to ${result.to}. ` +
          (result.to === 'plain'
            ? 'It now holds the keys in the clear: keep it mode 600.'
            : `Every worker, CLI and codec server reading it needs kms:Decrypt on ${result.to.slice('aws-kms:'.length)} (context pii-key = codec-key:<id>).`),
      );
    });

  keys
    .command('reencrypt')
    .description('move every row and quarantine body to the key of the newest recorded rotation (a durable, resumable workflow)')
    .action(() => reencrypt());

  keys
    .command('status')
    .description('the active key, the keys kept for reading, and how many rows each key protects')
    .option('--json', 'as one JSON object')
    .action(async (opts: { json?: boolean }) => {
      const { keyring } = await setup([]);
      const status = keyringStatus(keyring);
      let databaseUrl: string | null = null;
      try {
        databaseUrl = loadConfig(process.env, ['database']).databaseUrl;
      } catch {
        // no database configured or running: show the keys alone
      }
      const db = databaseUrl ? createDb(databaseUrl) : null;
      try {
        const usage = db ? await keyUsage(db) : null;
        output(
          opts.json,
          { activeKeyId: status.activeKeyId, keyIds: status.keyIds, kek: status.kek ?? null, source: status.source, usage },
          () =>
            [
              `Active key: ${status.activeKeyId}\nKeys:       ${status.keyIds.join(', ')}\nWrapped by: ${describeKek(status.kek)}\nSource:     ${status.source}`,
              ...(usage ?? []).map(
                (u) =>
                  `  ${u.table.padEnd(12)} ${u.keyId.padEnd(24)} ${u.rows} row(s)${u.keyId === status.activeKeyId ? '' : '  ← not yet re-encrypted'}`,
              ),
            ].join('\n'),
        );
      } finally {
        await db?.$disconnect();
      }
    });

  program
    .command('codec-server')
    .description(
      'serve the payload codec to the Temporal Web UI and CLI, behind a bearer token (codec keys only: it cannot read a stored PII value)',
    )
    .option('--port <n>', 'port (default CODEC_SERVER_PORT)')
    .option(
      '--allow-encode',
      'also serve /encode (off by default: the Web UI only decodes, and /encode lets a token holder make payloads workers accept)',
    )
    .option('--host <address>', 'address to listen on (0.0.0.0 in a container)', '127.0.0.1')
    .action(async (opts: { port?: string; host: string; allowEncode?: boolean }) => {
      const config = loadConfig(process.env, []);
      const codecKeys = await loadCodecKeysAsync(config, log);
      const { token } = codecToken(config, log);
      const server = await startCodecServer({
        codec: new EncryptionCodec(codecKeys),
        token,
        allowEncode: opts.allowEncode ?? false,
        allowedOrigins: config.codecServer.corsOrigins,
        port: opts.port ? Number(opts.port) : config.codecServer.port,
        host: opts.host,
        log,
      });
      log(`Codec server on ${server.url} (CORS: ${config.codecServer.corsOrigins.join(', ')}).`);
      log(
        `  Web UI: Settings → Codec Server → endpoint ${server.url}/<token> (the token as the path; the UI cannot send a custom header)`,
      );
      log(`  CLI:    temporal workflow show --codec-endpoint ${server.url} --codec-auth "Bearer <token>" …`);
      log(`  Dev server: temporal server start-dev --ui-codec-endpoint ${server.url}/<token>`);
      log('Ctrl-C stops it.');
      await new Promise<void>((resolve) => ['SIGINT', 'SIGTERM'].forEach((s) => process.once(s, () => resolve())));
      await server.close();
    });
}

/** Which key-encryption key protects the file, in words. */
export function describeKek(kek: string | null): string {
  if (!kek) return '(not wrapped: keys from the environment or a plain file)';
  if (kek.startsWith('aws-kms:')) return `${kek} (AWS KMS key; the key file holds only KMS ciphertext)`;
  return `${kek} (local master key, PII_MASTER_KEY)`;
}

async function reencrypt(newKeyId?: string): Promise<void> {
  await withClient(async (client, config) => {
    const handle = await client.workflow.start(reencryptWorkflow, {
      workflowId: REENCRYPT_WORKFLOW_ID,
      taskQueue: config.temporal.taskQueue,
      args: [{}],
      // Pages are idempotent, so a run still going can simply be replaced by one that starts over.
      workflowIdConflictPolicy: 'TERMINATE_EXISTING',
    });
    log(`Re-encrypting (workflow ${REENCRYPT_WORKFLOW_ID}) ...`);
    for (const line of reencryptReport(await handle.result(), newKeyId)) console.log(line);
  });
}

/** What `keys reencrypt` (and `keys rotate`) print of a finished re-encryption: what moved, and what could not. */
export function reencryptReport(summary: ReencryptSummary, newKeyId?: string): string[] {
  const moved = `Re-encrypted ${summary.reencrypted.user_logins} row(s) and ${summary.reencrypted.quarantine} quarantine bod(ies) to ${newKeyId ? `key ${newKeyId}` : 'the recorded key'}.`;
  const { user_logins: rows = 0, quarantine: bodies = 0 } = summary.skipped ?? {}; // none from a worker older than `skipped`
  if (rows + bodies === 0) return [moved];
  return [
    moved,
    `Skipped ${rows} row(s) and ${bodies} quarantine bod(ies) that cannot be decrypted: left as they are, under their old key, ` +
      'each audited as reencrypt_skipped in pii_audit_log (table, message ID, key ID, field, reason).',
  ];
}
