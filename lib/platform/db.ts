// The Prisma client, through the `pg` driver adapter (no native query engine to download);
// and, for the ingest's one hot statement, that adapter alone.
import { PrismaPg } from '@prisma/adapter-pg';
import type { Sql } from '@prisma/client/runtime/client';
import { PrismaClient } from '../../generated/prisma/client';

export type Db = PrismaClient;

export function createDb(databaseUrl: string, opts: { maxConnections?: number } = {}): Db {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: databaseUrl, max: opts.maxConnections ?? 10 }) });
}

/** One raw statement in, its rows out: what the persist stage needs of a database. */
export interface RawSql {
  rows<T>(statement: Sql): Promise<T[]>;
}

/** RawSql through the Prisma client (`$queryRaw`). */
export const viaClient = (db: Db): RawSql => ({ rows: <T>(statement: Sql) => db.$queryRaw<T[]>(statement) });

/**
 * RawSql through Prisma's `pg` driver adapter alone, beneath the client: the same statement,
 * parameters and errors (a SQLSTATE stays readable to sqlState; JSON columns come back as
 * text, so a statement meant for both returns text), without the client's
 * query-plan runtime. The drain threads write every chunk this way: measured, the client
 * spent 90–190 ms of CPU per 10,000 messages on the statement where the adapter spends 40–46
 * (README, "Performance"), and a thread that never makes a client never loads its
 * WebAssembly query compiler.
 */
export async function connectRawSql(
  databaseUrl: string,
  opts: { maxConnections?: number } = {},
): Promise<RawSql & { close(): Promise<void> }> {
  const adapter = await new PrismaPg({ connectionString: databaseUrl, max: opts.maxConnections ?? 10 }).connect();
  return {
    async rows<T>(statement: Sql) {
      const result = await adapter.queryRaw({
        sql: statement.text,
        args: statement.values,
        argTypes: statement.values.map(() => ({ scalarType: 'unknown', arity: 'scalar' }) as const),
      });
      return result.rows.map((row) => Object.fromEntries(result.columnNames.map((name, i) => [name, row[i]])) as T);
    },
    close: () => adapter.dispose(),
  };
}

/** The SQLSTATE of a database error, however deeply Prisma or the adapter wrapped it. */
export function sqlState(err: unknown): string | null {
  const seen = new Set<unknown>();
  const stack: unknown[] = [err];
  while (stack.length) {
    const e = stack.pop();
    if (!e || typeof e !== 'object' || seen.has(e)) continue;
    seen.add(e);
    const o = e as Record<string, unknown>;
    for (const key of ['code', 'originalCode']) {
      const code = o[key];
      // Prisma's own codes (P1000–P6999) have the same shape as a SQLSTATE: look past them.
      if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !/^P[1-9]\d{3}$/.test(code)) return code;
    }
    stack.push(o.cause, o.meta, o.driverAdapterError);
  }
  return null;
}

/**
 * Errors that retrying cannot fix: data exceptions (22), integrity violations (23) and
 * syntax or access problems (42). Everything else (connections, resources, restarts,
 * serialisation) is worth retrying with backoff.
 */
export function isPermanentDbError(err: unknown): boolean {
  const state = sqlState(err);
  return state !== null && ['22', '23', '42'].includes(state.slice(0, 2));
}
