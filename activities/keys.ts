// Activities of the re-encryption workflow.
import { Context, log } from '@temporalio/activity';
import type { Db } from '../lib/platform/db';
import { refreshKeyring, type Keyring } from '../lib/pii/keyring';
import { resealRowsAfter, type ReencryptPage, type ReencryptTable } from '../lib/pii/reencrypt';

export function createKeyActivities({ db, keyring }: { db: Db; keyring: Keyring }) {
  return {
    async reencryptPage(input: { table: ReencryptTable; afterId: string; limit: number }): Promise<ReencryptPage & { activeKeyId: string }> {
      await refreshKeyring(keyring); // a rotation made since the worker started
      Context.current().heartbeat(input.afterId);
      const page = await resealRowsAfter(db, keyring, input.table, input.afterId, input.limit);
      log.info('Re-encrypted page', { table: input.table, reencrypted: page.reencrypted, lastId: page.lastId });
      return { ...page, activeKeyId: keyring.activeKeyId };
    },
  };
}

export type KeyActivities = ReturnType<typeof createKeyActivities>;
