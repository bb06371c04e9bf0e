// Prisma CLI configuration. Only `prisma generate` is used (see README: migrations are
// plain SQL applied by `npm run db:migrate`, because Prisma's migration engine is a
// download that is not always reachable).
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
});
