// `npm run db:migrate`: apply prisma/migrations/*/migration.sql to DATABASE_URL.
import { loadConfig } from '../lib/platform/config';
import { migrate } from '../lib/platform/migrate';

async function main() {
  const config = loadConfig(process.env, ['database']);
  const applied = await migrate(config.databaseOwnerUrl);
  console.log(
    applied.length
      ? `Database is up to date (${applied.length} migration(s) applied).`
      : 'Database is up to date (nothing to apply).',
  );
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
