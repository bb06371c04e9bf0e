// Applies the SQL migrations under prisma/migrations/ in name order, each once, each in
// its own transaction, under an advisory lock so two migrators never interleave. It needs
// nothing but a PostgreSQL connection: Prisma's migration engine is a separate download
// that is not always reachable, while schema.prisma stays the source of truth (the
// schema-drift test fails when the two disagree).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';

export const MIGRATIONS_DIR = path.join(__dirname, '..', '..', 'prisma', 'migrations');
const LOCK_ID = 7_233_001;

export interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

export function readMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(dir, d.name, 'migration.sql')))
    .map((d) => d.name)
    .sort()
    .map((name) => {
      const sql = fs.readFileSync(path.join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: crypto.createHash('sha256').update(sql).digest('hex') };
    });
}

/** Returns the names of the migrations it applied (empty when the database was up to date). */
export async function migrate(
  databaseUrl: string,
  log: (msg: string) => void = console.log,
  dir = MIGRATIONS_DIR,
): Promise<string[]> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_ID]);
    // Up to date already: nothing to do, so even the application's role (which cannot create tables) may ask.
    const hasLedger = (await client.query<{ ok: boolean }>(`SELECT to_regclass('schema_migrations') IS NOT NULL AS ok`)).rows[0]
      .ok;
    if (!hasLedger) {
      await client.query(`CREATE TABLE schema_migrations (
        name TEXT PRIMARY KEY, checksum TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`);
    }
    const applied = new Map<string, string>(
      (await client.query<{ name: string; checksum: string }>('SELECT name, checksum FROM schema_migrations')).rows.map((r) => [
        r.name,
        r.checksum,
      ]),
    );
    const done: string[] = [];
    for (const m of readMigrations(dir)) {
      const checksum = applied.get(m.name);
      if (checksum !== undefined) {
        if (checksum !== m.checksum) {
          throw new Error(
            `Migration ${m.name} was changed after it was applied. Add a new migration instead of editing an applied one.`,
          );
        }
        continue;
      }
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)', [m.name, m.checksum]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        const hint =
          (err as { code?: string }).code === '42501'
            ? ' Migrations run as the owner role: set DATABASE_OWNER_URL (the application role in DATABASE_URL cannot change the schema).'
            : '';
        throw new Error(`Migration ${m.name} failed and was rolled back: ${(err as Error).message}.${hint}`);
      }
      log(`Applied migration ${m.name}`);
      done.push(m.name);
    }
    return done;
  } finally {
    await client.end();
  }
}
