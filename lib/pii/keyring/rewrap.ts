// Re-wrapping a key file under another key-encryption key (`keys rewrap`): from the local
// master key to a KMS key, or back for a migration away. The keys themselves do not change
// (no row is re-encrypted); only their wrapped forms and the file's "kek" do. Under the
// rotation lock, every key is unwrapped with the file's KEK, wrapped with the new one, and
// the new wrapped forms are unwrapped again and compared with the originals before the file
// is replaced atomically: a KEK that cannot give the keys back never replaces a working file.
import fs from 'node:fs';
import type { KeyWrapper } from '../kek';
import { unwrapV2 } from './envelope';
import { checkV2, dataKeyContext, FINGERPRINT_KEY_CONTEXT, KeyringError, toV2Json, type CheckedV2 } from './format';
import { acquireLock, readKeyFileText, replaceAtomically } from './store';
import { isRecord } from '../../platform/guards';

export interface RewrapResult {
  from: string;
  to: string;
  keys: number;
}

/**
 * Re-wraps the version 2 key file `file` under `to`; `from` gives the wrapper for the KEK the
 * file names (throwing when it is not the one configured). Refuses a plain file and a file
 * already wrapped by `to`. Nothing is written unless every key comes back unchanged.
 */
export async function rewrapKeyringFile(
  file: string,
  from: (kekId: string) => KeyWrapper,
  to: KeyWrapper,
): Promise<RewrapResult> {
  const lock = acquireLock(file);
  try {
    const { content } = await readKeyFileText(file, file);
    if (!isRecord(content) || content.version !== 2)
      throw new KeyringError(`${file} is not a wrapped (version 2) key file: only those can be re-wrapped`);
    const checked = checkV2(content, file);
    if (checked.kek === to.id) throw new KeyringError(`${file} is already wrapped by ${to.id}: nothing to do`);
    const source = from(checked.kek);
    const plain = await unwrapV2(checked, file, () => source);

    const entries = await Promise.all(
      checked.entries.map(async ([id, entry]): Promise<CheckedV2['entries'][number]> => {
        const wrapped = await to.wrap(plain.keys.get(id) as Buffer, dataKeyContext(id));
        return [id, { wrapped: wrapped.toString('base64'), createdAt: entry.createdAt }];
      }),
    );
    const next: CheckedV2 = {
      kek: to.id,
      activeKeyId: checked.activeKeyId,
      entries,
      fingerprintWrapped: (await to.wrap(plain.fingerprintKey, FINGERPRINT_KEY_CONTEXT)).toString('base64'),
    };

    const back = await unwrapV2(next, `${file} (re-wrapped by ${to.id})`, () => to);
    const same =
      back.fingerprintKey.equals(plain.fingerprintKey) &&
      back.keys.size === plain.keys.size &&
      [...plain.keys].every(([id, key]) => back.keys.get(id)?.equals(key) === true);
    if (!same)
      throw new KeyringError(
        `${file}: the keys re-wrapped by ${to.id} did not unwrap to the same keys; the file was left as it was`,
      );

    replaceAtomically(file, JSON.stringify(toV2Json(next), null, 2) + '\n');
    return { from: checked.kek, to: to.id, keys: entries.length };
  } finally {
    fs.rmSync(lock, { force: true });
  }
}
