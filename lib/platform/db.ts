// The Prisma client, through the `pg` driver adapter (no native query engine to download).
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../../generated/prisma/client';

export type Db = PrismaClient;

export function createDb(databaseUrl: string, opts: { maxConnections?: number } = {}): Db {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: databaseUrl, max: opts.maxConnections ?? 10 }) });
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
