// Envelope encryption of key files (format version 2): unwrapping a file's keys with the
// configured key-encryption key (lib/pii/kek.ts), and wrapping plain keys into a new file.
// A wrong key-encryption key is named in the error, never reported as a bare
// authentication failure.
import type { KeyWrapper } from '../kek';
import {
  checkV2,
  dataKeyContext,
  FINGERPRINT_KEY_CONTEXT,
  KeyringError,
  keyringFromFile,
  type CheckedV2,
  type KeyringFile,
  type KeyringFileV2,
} from './format';
import { errorMessage } from '../../platform/guards';
import { isRecord } from '../../platform/guards';

/** What a key file gave: the keys, and (version 2) the wrapped forms, to skip unwrapping unchanged keys on a reload. */
export interface Loaded {
  activeKeyId: string;
  keys: Map<string, Buffer>;
  fingerprintKey: Buffer;
  kek: string | null;
  wrapped: Map<string, string>;
  fingerprintWrapped: string | null;
}

function configuredWrapper(kek: string, source: string, getWrapper: () => KeyWrapper): KeyWrapper {
  let wrapper: KeyWrapper;
  try {
    wrapper = getWrapper();
  } catch (err) {
    if (err instanceof KeyringError)
      throw new KeyringError(
        kek.startsWith('aws-kms:')
          ? `${source} is wrapped by the KMS key ${kek}: set PII_KEK=${kek} (and give this process kms:Decrypt on it); the local key-encryption key failed: ${err.message}`
          : `${source} is wrapped by key-encryption key ${kek}: ${err.message}`,
      );
    throw err;
  }
  if (wrapper.id !== kek) {
    throw new KeyringError(
      kek.startsWith('aws-kms:') || wrapper.id.startsWith('aws-kms:')
        ? `${source} is wrapped by key-encryption key ${kek}, but the one configured is ${wrapper.id}: set PII_KEK=${kek.startsWith('aws-kms:') ? kek : 'local'}${kek.startsWith('aws-kms:') ? '' : ' and PII_MASTER_KEY (or PII_MASTER_KEY_FILE)'}, or re-wrap the file with \`keys rewrap\``
        : `${source} is wrapped by key-encryption key ${kek}, but the one configured is ${wrapper.id}: set PII_MASTER_KEY (or PII_MASTER_KEY_FILE) to the master key this file was made with`,
    );
  }
  return wrapper;
}

async function unwrapKey(wrapper: KeyWrapper, wrapped: string, context: string, where: string): Promise<Buffer> {
  let key: Buffer;
  try {
    key = await wrapper.unwrap(Buffer.from(wrapped, 'base64'), context);
  } catch (err) {
    throw new KeyringError(
      wrapper.id.startsWith('aws-kms:')
        ? `${where} cannot be unwrapped by ${wrapper.id}: ${errorMessage(err)}`
        : `${where} cannot be unwrapped by ${wrapper.id} (${errorMessage(err)}): the file was altered, or PII_MASTER_KEY is not the master key it was made with`,
    );
  }
  if (key.length !== 32) throw new KeyringError(`${where} unwraps to ${key.length} bytes instead of 32`);
  return key;
}

export async function unwrapV2(
  file: CheckedV2,
  source: string,
  getWrapper: () => KeyWrapper,
  previous?: Loaded,
): Promise<Loaded> {
  const wrapper = configuredWrapper(file.kek, source, getWrapper);
  const reuse = previous && previous.kek === file.kek ? previous : undefined;
  const unchanged = (id: string, wrapped: string) => (reuse?.wrapped.get(id) === wrapped ? reuse.keys.get(id) : undefined);
  const keys = await Promise.all(
    file.entries.map(
      async ([id, { wrapped }]) =>
        [id, unchanged(id, wrapped) ?? (await unwrapKey(wrapper, wrapped, dataKeyContext(id), `${source}: key ${id}`))] as const,
    ),
  );
  const fingerprintKey =
    reuse && reuse.fingerprintWrapped === file.fingerprintWrapped
      ? reuse.fingerprintKey
      : await unwrapKey(wrapper, file.fingerprintWrapped, FINGERPRINT_KEY_CONTEXT, `${source}: fingerprintKey`);
  return {
    activeKeyId: file.activeKeyId,
    keys: new Map(keys),
    fingerprintKey,
    kek: file.kek,
    wrapped: new Map(file.entries.map(([id, e]) => [id, e.wrapped])),
    fingerprintWrapped: file.fingerprintWrapped,
  };
}

/** Either format, told apart by "version" (absent or 1: plain; 2: envelope). */
export async function decodeContent(
  content: unknown,
  source: string,
  getWrapper: () => KeyWrapper,
  previous?: Loaded,
): Promise<Loaded> {
  const version = isRecord(content) ? content.version : undefined;
  if (version === undefined || version === 1) {
    const plain = keyringFromFile(content as KeyringFile, source);
    return { ...plain, keys: new Map(plain.keys), kek: null, wrapped: new Map(), fingerprintWrapped: null };
  }
  if (version !== 2)
    throw new KeyringError(
      `${source}: unsupported key file version ${JSON.stringify(version)} (this program reads versions 1 and 2)`,
    );
  return unwrapV2(checkV2(content as Record<string, unknown>, source), source, getWrapper, previous);
}

/** The version 2 form of plain content: every key wrapped by `wrapper`. Also converts an existing version 1 file. */
export async function wrapKeyringFile(plain: KeyringFile, wrapper: KeyWrapper, now = new Date()): Promise<KeyringFileV2> {
  const keyring = keyringFromFile(plain, 'keyring to wrap');
  const createdAt = now.toISOString();
  const entries = await Promise.all(
    [...keyring.keys].map(
      async ([id, key]) =>
        [id, { wrapped: (await wrapper.wrap(key, dataKeyContext(id))).toString('base64'), createdAt }] as const,
    ),
  );
  return {
    version: 2,
    kek: wrapper.id,
    activeKeyId: keyring.activeKeyId,
    keys: Object.fromEntries(entries),
    fingerprintKey: { wrapped: (await wrapper.wrap(keyring.fingerprintKey, FINGERPRINT_KEY_CONTEXT)).toString('base64') },
  };
}
