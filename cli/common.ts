// Shared by the CLI's command modules: configuration, keys and a Temporal client, set up
// once per command, with progress on stderr and results on stdout. A command that talks
// to Temporal loads the payload codec's keys only: never the PII key file, the master key
// or a data key (an operator's machine holds its own signing key and the codec key).
import type { Client } from '@temporalio/client';
import { loadConfig, type Config, type Service } from '../lib/platform/config';
import { loadCodecKeysAsync, loadKeyring, type CodecKeys, type Keyring } from '../lib/pii/keyring';
import { logger } from '../lib/platform/log';
import { connectClient } from '../lib/platform/temporal';

/** Progress and notices: stderr, as plain lines or (LOG_FORMAT=json) JSON objects. Results go to stdout. */
export const log = (line: string) => logger.info(line);

/** Prints a result: one JSON object (--json) or the human text. */
export function output(json: boolean | undefined, value: unknown, text: () => string): void {
  console.log(json ? JSON.stringify(value) : text());
}

/** Configuration and the PII keyring: only for the key commands (keys status), never for talking to Temporal. */
export async function setup(needs: Service[]): Promise<{ config: Config; keyring: Keyring }> {
  const config = loadConfig(process.env, needs);
  return { config, keyring: await loadKeyring(config, log) };
}

/** Runs `fn` with a connected client (codec keys only) and closes the connection afterwards. */
export async function withClient<T>(
  fn: (client: Client, config: Config, codecKeys: CodecKeys) => Promise<T>,
  needs: Service[] = ['temporal'],
): Promise<T> {
  const config = loadConfig(process.env, needs);
  const codecKeys = await loadCodecKeysAsync(config, log);
  const client = await connectClient(config.temporal, codecKeys);
  try {
    return await fn(client, config, codecKeys);
  } finally {
    await client.connection.close();
  }
}
