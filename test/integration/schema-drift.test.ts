// schema.prisma is the source of truth; the SQL migrations must build exactly what it
// describes. A change to one without the other fails here.
import { Client as PgClient } from 'pg';
import { migrate, readMigrations } from '../../lib/platform/migrate';
import { createDatabase } from './helpers';
import { schemaFromDatabase, schemaFromPrisma } from './schema';

test('the migrated database matches schema.prisma: tables, columns, types, nullability, defaults, indexes', async () => {
  const url = await createDatabase(`drift_${Date.now()}`);
  await migrate(url, () => {});
  const expected = schemaFromPrisma();
  expect(Object.keys(expected.columns).length).toBeGreaterThan(25);
  expect(await schemaFromDatabase(url)).toEqual(expected);
});

test('the comparison notices a difference (a column the migrations lost)', async () => {
  const url = await createDatabase(`drift_neg_${Date.now()}`);
  await migrate(url, () => {});
  const pg = new PgClient({ connectionString: url });
  await pg.connect();
  await pg.query('ALTER TABLE user_logins DROP COLUMN locale');
  await pg.query('ALTER TABLE quarantine ALTER COLUMN body_bytes DROP NOT NULL');
  await pg.end();
  const actual = await schemaFromDatabase(url);
  const expected = schemaFromPrisma();
  expect(actual.columns['user_logins.locale']).toBeUndefined();
  expect(expected.columns['user_logins.locale']).toEqual({ type: 'character varying(35)', nullable: true, default: null });
  expect(actual.columns['quarantine.body_bytes'].nullable).toBe(true);
  expect(actual).not.toEqual(expected);
});

test('migrations apply once, and an applied migration that was edited is refused', async () => {
  const url = await createDatabase(`migrate_${Date.now()}`);
  expect(await migrate(url, () => {})).toEqual(readMigrations().map((m) => m.name));
  expect(await migrate(url, () => {})).toEqual([]);

  const pg = new PgClient({ connectionString: url });
  await pg.connect();
  await pg.query(`UPDATE schema_migrations SET checksum = 'edited' WHERE name = $1`, [readMigrations()[0].name]);
  await pg.end();
  await expect(migrate(url, () => {})).rejects.toThrow(/was changed after it was applied/);
});
