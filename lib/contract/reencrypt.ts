// The tables re-encryption after a key rotation walks: the ones that hold PII ciphertext,
// in the order the workflow takes them (workflows/reencrypt.ts) and the only ones its
// activity accepts (activities/keys.ts, over lib/pii/reencrypt.ts).
export type ReencryptTable = 'user_logins' | 'quarantine';
export const REENCRYPT_TABLES: ReencryptTable[] = ['user_logins', 'quarantine'];
