// Re-encryption after a key rotation: moves the ciphertext of rows and quarantine bodies
// written under older keys to the active key, a page at a time. Each update only applies
// when the row still carries the key it was read with, so a page can be retried, run
// twice or run beside the ingest without harm.
import type { Db } from '../platform/db';
import type { Keyring } from './keyring';
import { openPii, sealPii, type PiiField } from '../pipeline/mask';

export type ReencryptTable = 'user_logins' | 'quarantine';
export const REENCRYPT_TABLES: ReencryptTable[] = ['user_logins', 'quarantine'];

export interface ReencryptPage {
  /** Rows moved to the active key. */
  reencrypted: number;
  /** The last row ID looked at; null when the table has no more rows under an old key. */
  lastId: string | null;
}

export async function resealRowsAfter(db: Db, keyring: Keyring, table: ReencryptTable, afterId: string, limit: number): Promise<ReencryptPage> {
  const active = keyring.activeKeyId;
  const reseal = (keyId: string, blob: Uint8Array, messageId: string, field: PiiField) =>
    sealPii(keyring, openPii(keyring, keyId, blob, messageId, field), messageId, field);
  let reencrypted = 0;
  if (table === 'user_logins') {
    const rows = await db.$queryRaw<{ id: bigint; message_id: string; ip_ciphertext: Buffer; device_id_ciphertext: Buffer; pii_key_id: string }[]>`
      SELECT id, message_id, ip_ciphertext, device_id_ciphertext, pii_key_id FROM user_logins
      WHERE id > ${BigInt(afterId)} AND pii_key_id <> ${active} ORDER BY id LIMIT ${limit}`;
    for (const r of rows) {
      const ip = reseal(r.pii_key_id, r.ip_ciphertext, r.message_id, 'ip');
      const device = reseal(r.pii_key_id, r.device_id_ciphertext, r.message_id, 'device_id');
      reencrypted += await db.$executeRaw`
        UPDATE user_logins SET ip_ciphertext = ${ip.blob}, device_id_ciphertext = ${device.blob}, pii_key_id = ${ip.keyId}
        WHERE id = ${r.id} AND pii_key_id = ${r.pii_key_id}`;
    }
    return { reencrypted, lastId: rows.length ? rows[rows.length - 1].id.toString() : null };
  }
  const rows = await db.$queryRaw<{ id: bigint; message_id: string; body_ciphertext: Buffer; pii_key_id: string }[]>`
    SELECT id, message_id, body_ciphertext, pii_key_id FROM quarantine
    WHERE id > ${BigInt(afterId)} AND pii_key_id <> ${active} ORDER BY id LIMIT ${limit}`;
  for (const r of rows) {
    const body = reseal(r.pii_key_id, r.body_ciphertext, r.message_id, 'body');
    reencrypted += await db.$executeRaw`
      UPDATE quarantine SET body_ciphertext = ${body.blob}, pii_key_id = ${body.keyId} WHERE id = ${r.id} AND pii_key_id = ${r.pii_key_id}`;
  }
  return { reencrypted, lastId: rows.length ? rows[rows.length - 1].id.toString() : null };
}

/** How many rows of each table are still under a key other than the active one. */
export async function keyUsage(db: Db): Promise<{ table: ReencryptTable; keyId: string; rows: number }[]> {
  return db.$queryRaw`
    SELECT 'user_logins' AS "table", pii_key_id AS "keyId", count(*)::int AS rows FROM user_logins GROUP BY pii_key_id
    UNION ALL
    SELECT 'quarantine', pii_key_id, count(*)::int FROM quarantine GROUP BY pii_key_id
    ORDER BY 1, 2`;
}
