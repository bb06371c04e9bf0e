// Shared helpers for the unit tests. Keys are always random and made in-test: no key
// material is ever written to the repository.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CodecKeys, Keyring, KeyringFile } from '../../lib/pii/keyring';
import { sampleBodies } from '../../lib/ingest/load';
import type { ReceivedMessage } from '../../lib/contract/types';

export const randomKey = (): Buffer => crypto.randomBytes(32);

/**
 * A keyring with fresh random keys. `ids` lists the data key IDs (first one active unless
 * `active` says otherwise); `keys` lets a test reuse existing key material for some IDs.
 */
export function testKeyring(
  opts: { ids?: string[]; active?: string; keys?: Record<string, Buffer>; fingerprintKey?: Buffer } = {},
): Keyring {
  const ids = opts.ids ?? ['k-test-1'];
  const keys = new Map<string, Buffer>(ids.map((id) => [id, opts.keys?.[id] ?? randomKey()]));
  return { activeKeyId: opts.active ?? ids[0], keys, fingerprintKey: opts.fingerprintKey ?? randomKey() };
}

/** The same keys as `base`, plus a new active key: what a rotation produces. */
export function rotatedKeyring(base: Keyring, newKeyId: string): Keyring {
  const keys = new Map(base.keys);
  keys.set(newKeyId, randomKey());
  return { activeKeyId: newKeyId, keys, fingerprintKey: base.fingerprintKey };
}

/** Payload codec keys with fresh random material (first ID active unless `active` says otherwise). */
export function testCodecKeys(
  ids: string[] = ['c-test-1'],
  opts: { active?: string; keys?: Record<string, Buffer> } = {},
): CodecKeys {
  return {
    kind: 'codec-keys',
    activeKeyId: opts.active ?? ids[0],
    keys: new Map(ids.map((id) => [id, opts.keys?.[id] ?? randomKey()])),
    source: 'test',
  };
}

/** The same codec keys plus a new active one. */
export function rotatedCodecKeys(base: CodecKeys, newKeyId: string): CodecKeys {
  return { ...base, activeKeyId: newKeyId, keys: new Map([...base.keys, [newKeyId, randomKey()]]) };
}

/** The JSON (key file) form of a fresh random keyring. */
export function testKeyringFile(ids: string[] = ['k-file-1'], active = ids[0]): KeyringFile {
  return {
    activeKeyId: active,
    keys: Object.fromEntries(ids.map((id) => [id, randomKey().toString('base64')])),
    fingerprintKey: randomKey().toString('base64'),
  };
}

/** A fresh empty directory under the OS temp folder; removed by `removeTempDirs`. */
const tempDirs: string[] = [];
export function makeTempDir(prefix = 'login-ingest-unit-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}
export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

/** Wraps a body the way the receive activity would hand it on (no truncation unless asked). */
let counter = 0;
export function receivedMessage(body: string, overrides: Partial<ReceivedMessage> = {}): ReceivedMessage {
  counter++;
  return {
    messageId: `msg-${counter.toString().padStart(6, '0')}-${crypto.randomUUID()}`,
    receiptHandle: `rh-${counter}`,
    body,
    bodyBytes: Buffer.byteLength(body, 'utf8'),
    bodyTruncated: false,
    sentTimestamp: Date.UTC(2024, 4, 1, 12, 0, 0) + counter * 1000,
    receiveCount: 1,
    ...overrides,
  };
}

/** data/sample.json, parsed: 100 elements, one of which is not a login event. */
export function sampleEvents(): Record<string, unknown>[] {
  return sampleBodies().map((b) => JSON.parse(b));
}

export const isWrongTypeSample = (e: Record<string, unknown>) => e.foo === 'oops_wrong_msg_type';

/** A valid, canonical snake_case event, for tests that change one field at a time. */
export function validEvent(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    user_id: '424cdd21-063a-43a7-b91b-7ca1a833afae',
    app_version: '2.3.0',
    device_type: 'android',
    ip: '199.172.111.135',
    locale: 'RU',
    device_id: '593-47-5928',
    ...overrides,
  };
}
