// After a key rotation: move every row and quarantine body to the active key, a page at
// a time, resumable (the cursor is the workflow's state; continue-as-new carries it) and
// idempotent (lib/pii/reencrypt.ts only updates rows still under the key it read).
import { continueAsNew, defineQuery, proxyActivities, setHandler } from '@temporalio/workflow';
import type { KeyActivities } from '../activities/keys';
import type { ReencryptTable } from '../lib/pii/reencrypt';

export interface ReencryptInput {
  pageSize?: number;
  /** Where to resume; not for callers. */
  cursor?: { table: ReencryptTable; afterId: string };
  totals?: Record<ReencryptTable, number>;
}

export interface ReencryptSummary {
  reencrypted: Record<ReencryptTable, number>;
  activeKeyId: string | null;
}

export const reencryptProgressQuery = defineQuery<ReencryptSummary>('progress');

const { reencryptPage } = proxyActivities<KeyActivities>({
  startToCloseTimeout: '2m',
  heartbeatTimeout: '1m',
  retry: { initialInterval: '1s', maximumInterval: '1m' },
});

const TABLES: ReencryptTable[] = ['user_logins', 'quarantine'];
const PAGES_PER_RUN = 200;

export async function reencryptWorkflow(input: ReencryptInput = {}): Promise<ReencryptSummary> {
  const pageSize = input.pageSize ?? 500;
  const summary: ReencryptSummary = { reencrypted: input.totals ?? { user_logins: 0, quarantine: 0 }, activeKeyId: null };
  setHandler(reencryptProgressQuery, () => summary);
  let cursor = input.cursor ?? { table: TABLES[0], afterId: '0' };
  for (let pages = 0; ; pages++) {
    if (pages === PAGES_PER_RUN) return continueAsNew<typeof reencryptWorkflow>({ pageSize, cursor, totals: summary.reencrypted });
    const page = await reencryptPage({ table: cursor.table, afterId: cursor.afterId, limit: pageSize });
    summary.reencrypted[cursor.table] += page.reencrypted;
    summary.activeKeyId = page.activeKeyId;
    if (page.lastId !== null) {
      cursor = { table: cursor.table, afterId: page.lastId };
      continue;
    }
    const next = TABLES.indexOf(cursor.table) + 1;
    if (next === TABLES.length) return summary;
    cursor = { table: TABLES[next], afterId: '0' };
  }
}
