// Shared by the keyring tests: temporary key files, master keys, a hand-moved clock.
import { defaultPayloadConverter } from '@temporalio/common';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { LocalKeyWrapper } from '../../../lib/pii/kek';
import {
  KeyringError,
  wrapKeyringFile,
  writeKeyringFile,
  type Keyring,
  type KeyringConfig,
  type KeyringFile,
} from '../../../lib/pii/keyring';
import { makeTempDir, randomKey, testKeyringFile } from '../helpers';

export const quiet = () => undefined;
export const b64 = (bytes: number) => crypto.randomBytes(bytes).toString('base64');
export const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));
export const mode = (file: string) => fs.statSync(file).mode & 0o777;

/** The error `run` throws or rejects with, checked to be a KeyringError. */
export async function keyringError(run: () => unknown): Promise<KeyringError> {
  try {
    await run();
  } catch (err) {
    expect(err).toBeInstanceOf(KeyringError);
    return err as KeyringError;
  }
  throw new Error('expected a KeyringError, but nothing was thrown');
}

export function expectKeyringMatches(keyring: Keyring, file: KeyringFile): void {
  expect(keyring.activeKeyId).toBe(file.activeKeyId);
  expect([...keyring.keys.keys()].sort()).toEqual(Object.keys(file.keys).sort());
  for (const [id, value] of Object.entries(file.keys))
    expect(keyring.keys.get(id)!.equals(Buffer.from(value, 'base64'))).toBe(true);
  expect(keyring.fingerprintKey.equals(Buffer.from(file.fingerprintKey, 'base64'))).toBe(true);
}

export function writeJson(dir: string, name: string, content: unknown): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

/** A master key, its base64 form for PII_MASTER_KEY, and the wrapper it makes. */
export function masterKey() {
  const key = randomKey();
  return { key, base64: key.toString('base64'), wrapper: new LocalKeyWrapper(key) };
}

/** A version 2 key file in a fresh folder, wrapping fresh random keys. */
export async function v2File(ids = ['k-1', 'k-2'], active = ids[ids.length - 1]) {
  const dir = makeTempDir();
  const master = masterKey();
  const plain = testKeyringFile(ids, active);
  const file = path.join(dir, 'keyring.json');
  writeKeyringFile(file, await wrapKeyringFile(plain, master.wrapper));
  const config: KeyringConfig = { keys: { keyringFile: file, masterKey: master.base64 }, dataDir: dir, production: true };
  return { dir, file, plain, master, config };
}

/** A clock the test moves by hand, for refreshKeyring's throttle. */
export function manualClock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

/** Another writer: replaces the file's content in place (same inode) and moves its mtime on. */
export function rewriteInPlace(file: string, content: unknown, mtimeStep = 10): void {
  const before = fs.statSync(file);
  fs.writeFileSync(file, JSON.stringify(content, null, 2) + '\n'); // as writeKeyringFile formats it
  const when = new Date(before.mtimeMs + mtimeStep * 1000);
  fs.utimesSync(file, when, when);
}

export const payloadOf = (value: unknown) => defaultPayloadConverter.toPayload(value);
