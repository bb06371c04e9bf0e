// After a key rotation: move every row and quarantine body to the new key, a page at
// a time, resumable (the cursor is the workflow's state; continue-as-new carries it) and
// idempotent (lib/pii/reencrypt.ts only updates rows still under the key it read). The target
// key is not the workflow's to choose: the activity moves data only to the key of the
// rotation `keys rotate` recorded, and refuses without one (activities/keys.ts).
import { continueAsNew, defineQuery, proxyActivities, setHandler } from '@temporalio/workflow';
import type { KeyActivities } from '../activities/keys';
import { REENCRYPT_TABLES, type ReencryptTable } from '../lib/contract/reencrypt';

export interface ReencryptInput {
  /** Rows a page (1 … 1000, the activity refuses others). */
  pageSize?: number;
  /** Where to resume; not for callers. */
  cursor?: { table: ReencryptTable; afterId: string };
  totals?: Record<ReencryptTable, number>;
  skippedTotals?: Record<ReencryptTable, number>;
}

export interface ReencryptSummary {
  reencrypted: Record<ReencryptTable, number>;
  /** Rows left under their old key because they cannot be decrypted (audited as `reencrypt_skipped`). */
  skipped: Record<ReencryptTable, number>;
}

export const reencryptProgressQuery = defineQuery<ReencryptSummary>('progress');

const { reencryptPage } = proxyActivities<KeyActivities>({
  startToCloseTimeout: '2m',
  heartbeatTimeout: '1m',
  retry: { initialInterval: '1s', maximumInterval: '1m' },
});

const PAGES_PER_RUN = 200;

export async function reencryptWorkflow(input: ReencryptInput = {}): Promise<ReencryptSummary> {
  const pageSize = input.pageSize ?? 500;
  const summary: ReencryptSummary = {
    reencrypted: input.totals ?? { user_logins: 0, quarantine: 0 },
    skipped: input.skippedTotals ?? { user_logins: 0, quarantine: 0 },
  };
  setHandler(reencryptProgressQuery, () => summary);
  let cursor = input.cursor ?? { table: REENCRYPT_TABLES[0], afterId: '0' };
  for (let pages = 0; ; pages++) {
    if (pages === PAGES_PER_RUN)
      return continueAsNew<typeof reencryptWorkflow>({
        pageSize,
        cursor,
        totals: summary.reencrypted,
        skippedTotals: summary.skipped,
      });
    const page = await reencryptPage({ table: cursor.table, afterId: cursor.afterId, limit: pageSize });
    summary.reencrypted[cursor.table] += page.reencrypted;
    summary.skipped[cursor.table] += page.skipped ?? 0; // a page of a worker from before `skipped`
    if (page.lastId !== null) {
      cursor = { table: cursor.table, afterId: page.lastId };
      continue;
    }
    const next = REENCRYPT_TABLES.indexOf(cursor.table) + 1;
    if (next === REENCRYPT_TABLES.length) return summary;
    cursor = { table: REENCRYPT_TABLES[next], afterId: '0' };
  }
}
