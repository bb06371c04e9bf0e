// Shared by the CLI's command modules: configuration, keys and a Temporal client, set up
// once per command, with progress on stderr and results on stdout.
import type { Client } from '@temporalio/client';
import { loadConfig, type Config, type Service } from '../lib/config';
import { loadKeyring, type Keyring } from '../lib/keyring';
import { logger } from '../lib/log';
import { connectClient } from '../lib/temporal';

/** Progress and notices: stderr, as plain lines or (LOG_FORMAT=json) JSON objects. Results go to stdout. */
export const log = (line: string) => logger.info(line);

/** Prints a result: one JSON object (--json) or the human text. */
export function output(json: boolean | undefined, value: unknown, text: () => string): void {
  console.log(json ? JSON.stringify(value) : text());
}

export async function setup(needs: Service[]): Promise<{ config: Config; keyring: Keyring }> {
  const config = loadConfig(process.env, needs);
  return { config, keyring: await loadKeyring(config, log) };
}

/** Runs `fn` with a connected client and closes the connection afterwards. */
export async function withClient<T>(fn: (client: Client, config: Config, keyring: Keyring) => Promise<T>, needs: Service[] = ['temporal']): Promise<T> {
  const { config, keyring } = await setup(needs);
  const client = await connectClient(config.temporal, keyring);
  try {
    return await fn(client, config, keyring);
  } finally {
    await client.connection.close();
  }
}
