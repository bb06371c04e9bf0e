// The payload codec's key file wrapped by AWS KMS: {"kek": "aws-kms:<key>", "activeKeyId",
// "wrappedKeys": {id: base64 KMS ciphertext}}. Each key is wrapped under the context
// `codec-key:<id>` (KmsKeyWrapper binds it as the KMS encryption context {"pii-key": ...}),
// so KMS refuses to unwrap a codec key as a PII data key (`data-key:<id>`) or the
// fingerprint key, and the reverse. Only KMS wraps codec keys: the local master key would
// put the PII key-encryption key on every operator's machine and the codec server.
// `keys codec-rewrap` moves a file between the plain and the wrapped form, atomically, after
// checking that every key comes back unchanged (as rewrap.ts does for the PII key file).
import fs from 'node:fs';
import type { KeyWrapper } from '../kek';
import { KMS_KEK_PREFIX } from '../kms-key-id';
import { codecKeysFrom, isWrappedCodecContent, type CodecKeys } from './codec-keys';
import { KEY_ID, KeyringError } from './format';
import { acquireLock, readKeyFileText, replaceAtomically } from './store';
import { errorMessage, isRecord } from '../../platform/guards';

/** The KMS encryption context's value for codec key `id`; never the context of a PII key. */
export function codecKeyContext(id: string): string {
  return `codec-key:${id}`;
}

export interface WrappedCodecKeyFile {
  kek: string;
  activeKeyId: string;
  wrappedKeys: Record<string, string>;
}

/** Checks the wrapped form's shape (no KMS call). */
export function checkWrappedCodecFile(content: unknown, name: string): WrappedCodecKeyFile {
  if (
    !isRecord(content) ||
    typeof content.kek !== 'string' ||
    typeof content.activeKeyId !== 'string' ||
    !isRecord(content.wrappedKeys)
  )
    throw new KeyringError(`${name}: expected {"kek": "aws-kms:<key>", "activeKeyId", "wrappedKeys": {id: base64}}`);
  if (!content.kek.startsWith(KMS_KEK_PREFIX))
    throw new KeyringError(
      `${name} names the key-encryption key ${JSON.stringify(content.kek)}: a codec key file is wrapped by an AWS KMS key (aws-kms:<key ARN or alias>) or not at all`,
    );
  const wrappedKeys: Record<string, string> = {};
  for (const [id, value] of Object.entries(content.wrappedKeys)) {
    if (!KEY_ID.test(id)) throw new KeyringError(`${name}: codec key ID ${JSON.stringify(id)} must match ${KEY_ID}`);
    if (typeof value !== 'string' || !value) throw new KeyringError(`${name}: wrapped codec key ${id} must be base64`);
    wrappedKeys[id] = value;
  }
  if (!(content.activeKeyId in wrappedKeys))
    throw new KeyringError(`${name}: the active codec key ${JSON.stringify(content.activeKeyId)} is not one of the keys`);
  return { kek: content.kek, activeKeyId: content.activeKeyId, wrappedKeys };
}

/** Unwraps every key with `wrapper`, which must be the KEK the file names. */
export async function unwrapCodecKeys(file: WrappedCodecKeyFile, name: string, wrapper: KeyWrapper): Promise<CodecKeys> {
  if (wrapper.id !== file.kek)
    throw new KeyringError(`${name} is wrapped by ${file.kek}, not by ${wrapper.id}: re-wrap it with \`keys codec-rewrap\``);
  const plain: Record<string, string> = {};
  for (const [id, wrapped] of Object.entries(file.wrappedKeys)) {
    try {
      plain[id] = (await wrapper.unwrap(Buffer.from(wrapped, 'base64'), codecKeyContext(id))).toString('base64');
    } catch (err) {
      throw new KeyringError(`${name}: codec key ${id} cannot be unwrapped by ${file.kek}: ${errorMessage(err)}`);
    }
  }
  return codecKeysFrom(plain, file.activeKeyId, name);
}

/** The wrapped form of `codec`: every key wrapped by `wrapper` under its own context. */
export async function wrapCodecKeys(codec: CodecKeys, wrapper: KeyWrapper): Promise<WrappedCodecKeyFile> {
  const wrappedKeys: Record<string, string> = {};
  for (const [id, key] of codec.keys) wrappedKeys[id] = (await wrapper.wrap(key, codecKeyContext(id))).toString('base64');
  return { kek: wrapper.id, activeKeyId: codec.activeKeyId, wrappedKeys };
}

/** A wrapped codec key file's keys; `wrapperFor` gives the wrapper for the KEK the file names. */
export async function unwrapCodecKeyContent(
  content: unknown,
  name: string,
  wrapperFor: (kekId: string) => KeyWrapper,
): Promise<CodecKeys> {
  const file = checkWrappedCodecFile(content, name);
  const wrapper = wrapperFor(file.kek);
  try {
    return await unwrapCodecKeys(file, name, wrapper);
  } finally {
    (wrapper as { destroy?: () => void }).destroy?.();
  }
}

function sameKeys(a: CodecKeys, b: CodecKeys): boolean {
  return (
    a.activeKeyId === b.activeKeyId &&
    a.keys.size === b.keys.size &&
    [...a.keys].every(([id, key]) => b.keys.get(id)?.equals(key) === true)
  );
}

export interface CodecRewrapResult {
  from: string;
  to: string;
  keys: number;
}

/**
 * Re-writes the codec key file `file` wrapped by `to` (a KMS key), or plain when `to` is
 * 'plain'. Refuses a file already in that form. Nothing is written unless every key comes back
 * unchanged from the new form; the old file is then replaced atomically.
 */
export async function rewrapCodecKeyFile(
  file: string,
  wrapperFor: (kekId: string) => KeyWrapper,
  to: KeyWrapper | 'plain',
): Promise<CodecRewrapResult> {
  const toId = to === 'plain' ? 'plain' : to.id;
  if (to !== 'plain' && !to.id.startsWith(KMS_KEK_PREFIX))
    throw new KeyringError(`a codec key file is wrapped only by an AWS KMS key (aws-kms:<key>), not by ${to.id}`);
  const lock = acquireLock(file);
  try {
    const { content } = await readKeyFileText(file, file);
    const wrapped = isWrappedCodecContent(content);
    const fromId = wrapped ? String(content.kek) : 'plain';
    if (fromId === toId) throw new KeyringError(`${file} is already ${wrapped ? `wrapped by ${toId}` : 'plain'}: nothing to do`);
    let plain: CodecKeys;
    if (wrapped) plain = await unwrapCodecKeyContent(content, file, wrapperFor);
    else if (isRecord(content) && isRecord(content.keys) && typeof content.activeKeyId === 'string')
      plain = codecKeysFrom(content.keys as Record<string, string>, content.activeKeyId, file);
    else throw new KeyringError(`${file}: expected {"activeKeyId", "keys": {id: base64}}`);

    let next: unknown;
    let back: CodecKeys;
    if (to === 'plain') {
      next = {
        activeKeyId: plain.activeKeyId,
        keys: Object.fromEntries([...plain.keys].map(([id, key]) => [id, key.toString('base64')])),
      };
      back = codecKeysFrom((next as { keys: Record<string, string> }).keys, plain.activeKeyId, file);
    } else {
      next = await wrapCodecKeys(plain, to);
      back = await unwrapCodecKeys(next as WrappedCodecKeyFile, `${file} (re-wrapped by ${toId})`, to);
    }
    if (!sameKeys(plain, back))
      throw new KeyringError(`${file}: the keys re-written as ${toId} did not come back the same; the file was left as it was`);
    replaceAtomically(file, JSON.stringify(next, null, 2) + '\n');
    return { from: fromId, to: toId, keys: plain.keys.size };
  } finally {
    fs.rmSync(lock, { force: true });
  }
}
