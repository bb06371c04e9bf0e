// Making and rotating key files. `keys init` writes a new version 2 file; rotateKeyring
// adds a new active data key to one, keeping every older key (older ciphertext names its
// key ID) and the fingerprint key (fingerprints must stay comparable). Only version 2
// files rotate automatically; plain files and keys from the environment are refused with
// how to rotate them by hand.
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { KeyWrapper } from '../kek';
import { unwrapV2, wrapKeyringFile } from './envelope';
import {
  checkV2,
  dataKeyContext,
  KeyringError,
  newKeyId,
  newKeyringFile,
  toV2Json,
  type CheckedV2,
  type Keyring,
} from './format';
import { errorMessage } from '../../platform/guards';
import { keyringSource, keyringStatus, refreshKeyring, type FileSource } from './refresh';
import { acquireLock, readKeyFileText, replaceAtomically, writeKeyringFile } from './store';
import { isRecord } from '../../platform/guards';

export const ENV_ROTATION_HINT =
  'Keys in the environment are rotated by hand: make a key with `openssl rand -base64 32`, add it as new-id:key to PII_ENCRYPTION_KEYS ' +
  '(keep every old id:key, older ciphertext needs them), set PII_ACTIVE_KEY_ID=new-id, leave PII_FINGERPRINT_KEY as it is, and restart the workers and clients.';

/** `client.ts keys init`: a new version 2 key file wrapped by `wrapper`, mode 600; never overwrites one. */
export async function initKeyringFile(
  file: string,
  wrapper: KeyWrapper,
  now = new Date(),
): Promise<{ activeKeyId: string; kek: string }> {
  const exists = () =>
    new KeyringError(`${file} already exists: a key file is never overwritten (rotate its keys, or write to another path)`);
  if (fs.existsSync(file)) throw exists();
  const content = await wrapKeyringFile(newKeyringFile(now), wrapper, now);
  try {
    writeKeyringFile(file, content);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw exists();
    throw err;
  }
  return { activeKeyId: content.activeKeyId, kek: content.kek };
}

/**
 * Adds a new 32-byte data key (ID `k-YYYYMMDD-<6 hex>`, never one already used) to a
 * version 2 key file and makes it active. Every older key and the fingerprint key stay, so
 * older ciphertext stays readable and fingerprints stay comparable. The file is replaced
 * atomically (temporary file, fsync, rename; mode 600), under `<file>.lock` against a
 * concurrent rotation. `target` is the file, or a keyring loaded from one (which is then
 * refreshed at once). Plain (version 1) files and keys from the environment are refused
 * with how to rotate them by hand.
 */
export async function rotateKeyring(
  target: string | Keyring,
  wrapper: KeyWrapper,
  now = new Date(),
): Promise<{ newKeyId: string; previousKeyId: string }> {
  let file: string;
  const inMemory = typeof target === 'string' ? undefined : target;
  if (inMemory) {
    const source = keyringSource(inMemory);
    if (source?.kind !== 'file')
      throw new KeyringError(
        `This keyring does not come from a key file (${keyringStatus(inMemory).source}). ${ENV_ROTATION_HINT}`,
      );
    file = source.file;
  } else {
    file = target as string;
  }

  let result: { newKeyId: string; previousKeyId: string };
  const lock = acquireLock(file);
  try {
    const { content } = await readKeyFileText(file, file);
    if (!isRecord(content) || content.version !== 2) {
      throw new KeyringError(
        `${file} is not a wrapped (version 2) key file, so its keys cannot be rotated automatically. Rotate a plain file by hand ` +
          '(add "new-id": "<openssl rand -base64 32>" to keys, keeping the old ones and fingerprintKey, and set activeKeyId to new-id), ' +
          `or convert it with wrapKeyringFile. ${ENV_ROTATION_HINT}`,
      );
    }
    const checked = checkV2(content, file);
    // Unwrapping everything first proves the wrapper and the file belong together before anything is written.
    await unwrapV2(checked, file, () => wrapper);
    const taken = new Set([...checked.entries.map(([id]) => id), ...(inMemory ? inMemory.keys.keys() : [])]);
    const id = newKeyId(now, taken);
    const wrapped = await wrapper.wrap(crypto.randomBytes(32), dataKeyContext(id));
    const next: CheckedV2 = {
      ...checked,
      activeKeyId: id,
      entries: [...checked.entries, [id, { wrapped: wrapped.toString('base64'), createdAt: now.toISOString() }]],
    };
    replaceAtomically(file, JSON.stringify(toV2Json(next), null, 2) + '\n');
    result = { newKeyId: id, previousKeyId: checked.activeKeyId };
  } finally {
    fs.rmSync(lock, { force: true });
  }

  if (inMemory) {
    try {
      await refreshKeyring(inMemory, { force: true });
    } catch (err) {
      // The rotation is on disk; the next refresh picks it up.
      const source = keyringSource(inMemory) as FileSource;
      source.log(`Warning: ${file} was rotated but this process could not reload it yet: ${errorMessage(err)}`);
    }
  }
  return result;
}
