// Keyrings that follow their key file. loadKeyringFile remembers where a keyring came from;
// refreshKeyring (at most one stat a second) re-reads the file after a rotation by another
// process and updates `keys` and `activeKeyId` in place, so everything holding the Keyring
// object (the codec, the activities) encrypts with the new key from then on and still reads
// the old ones. keyringStatus says what a keyring holds and where from, without key material.
import fs from 'node:fs';
import type { KeyWrapper } from '../kek';
import { decodeContent, type Loaded } from './envelope';
import { KeyringError, type Keyring } from './format';
import { errorMessage } from '../../platform/guards';
import { readKeyFileText, stampOf } from './store';

/** For tests and tools: the clock and interval of refreshKeyring's throttle. */
export interface KeyringRefreshOptions {
  /** Milliseconds, like Date.now (the default). */
  now?: () => number;
  /** refreshKeyring looks at the file at most once in this many ms (default 1000). */
  refreshIntervalMs?: number;
}

export interface KeyringFileOptions extends KeyringRefreshOptions {
  /** The key-encryption key of a version 2 file, or a function that gives it (called only for a version 2 file). */
  wrapper?: KeyWrapper | (() => KeyWrapper);
  /** Reloads and warnings. Default console.log. */
  log?: (msg: string) => void;
  /** How errors name the file (default: its path). */
  name?: string;
}

const DEFAULT_REFRESH_INTERVAL_MS = 1000;

// Where each keyring came from, for refresh, rotation and status.

export interface FileSource {
  kind: 'file';
  file: string;
  name: string;
  getWrapper: () => KeyWrapper;
  log: (msg: string) => void;
  now: () => number;
  intervalMs: number;
  /** inode:size:mtime of the file as last read. */
  stamp: string;
  lastCheck: number;
  loaded: Loaded;
  inflight: Promise<boolean> | null;
  /** Key IDs already reported as gone from the file (reported once each). */
  missing: Set<string>;
}
export interface EnvSource {
  kind: 'env';
}
const sources = new WeakMap<Keyring, FileSource | EnvSource>();

/** Where a keyring came from: its file, the environment, or (undefined) made in memory. */
export const keyringSource = (keyring: Keyring): FileSource | EnvSource | undefined => sources.get(keyring);

/** Records that a keyring came from the PII_* variables (it never changes). */
export const markFromEnvironment = (keyring: Keyring): void => void sources.set(keyring, { kind: 'env' });

function once<T>(make: () => T): () => T {
  let made: { value: T } | undefined;
  return () => (made ??= { value: make() }).value;
}

/**
 * A keyring loaded from a key file of either version, which refreshKeyring keeps in step
 * with the file. A version 2 file needs `wrapper` with the ID written in the file.
 */
export async function loadKeyringFile(file: string, options: KeyringFileOptions = {}): Promise<Keyring> {
  const name = options.name ?? file;
  const given = options.wrapper;
  const getWrapper = once((): KeyWrapper => {
    if (typeof given === 'function') return given();
    if (given) return given;
    throw new KeyringError('no key-encryption key was given: set PII_MASTER_KEY or PII_MASTER_KEY_FILE');
  });
  const { content, stamp } = await readKeyFileText(file, name);
  const loaded = await decodeContent(content, name, getWrapper);
  const keyring: Keyring = { activeKeyId: loaded.activeKeyId, keys: loaded.keys, fingerprintKey: loaded.fingerprintKey };
  const now = options.now ?? Date.now;
  sources.set(keyring, {
    kind: 'file',
    file,
    name,
    getWrapper,
    log: options.log ?? console.log,
    now,
    intervalMs: options.refreshIntervalMs ?? DEFAULT_REFRESH_INTERVAL_MS,
    stamp,
    lastCheck: now(),
    loaded,
    inflight: null,
    missing: new Set(),
  });
  return keyring;
}

/**
 * Brings a keyring loaded from a file up to date with it: looks at the file at most once
 * per refresh interval (1 s; `force` skips the wait), and when its inode, size or mtime
 * changed re-reads and unwraps it and replaces `keys` and `activeKeyId`; returns true then.
 * A key missing from the new file stays loaded (older ciphertext needs it) with a warning;
 * a changed fingerprint key or a key ID whose material changed is refused. On an error
 * the keyring stays as it was and the next call tries again. Keyrings from the environment
 * (or made in memory) never change: false.
 */
export async function refreshKeyring(keyring: Keyring, options: { force?: boolean } = {}): Promise<boolean> {
  const source = sources.get(keyring);
  if (!source || source.kind !== 'file') return false;
  if (source.inflight) return source.inflight;
  const now = source.now();
  if (!options.force && now - source.lastCheck < source.intervalMs) return false;
  source.lastCheck = now;
  source.inflight = reload(keyring, source).finally(() => {
    source.inflight = null;
  });
  return source.inflight;
}

async function reload(keyring: Keyring, source: FileSource): Promise<boolean> {
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(source.file);
  } catch (err) {
    throw new KeyringError(`${source.name} cannot be read: ${errorMessage(err)} (the keys loaded before stay in use)`);
  }
  if (stampOf(stat) === source.stamp) return false;
  const { content, stamp } = await readKeyFileText(source.file, source.name, stat);
  const current: Loaded = { ...source.loaded, keys: new Map(keyring.keys), fingerprintKey: keyring.fingerprintKey };
  const next = await decodeContent(content, source.name, source.getWrapper, current);

  if (!next.fingerprintKey.equals(keyring.fingerprintKey)) {
    throw new KeyringError(
      `${source.name}: the fingerprint key changed; fingerprints made with the new one would not match the stored ones, so this process keeps the old one (restart it if the change is intended)`,
    );
  }
  for (const [id, key] of next.keys) {
    if (keyring.keys.get(id)?.equals(key) === false) {
      throw new KeyringError(
        `${source.name}: key ${id} now holds other key material; a key ID must never be reused (this process keeps the old key)`,
      );
    }
  }
  const keys = new Map(next.keys);
  for (const [id, key] of keyring.keys) {
    if (keys.has(id)) continue;
    keys.set(id, key);
    if (!source.missing.has(id)) {
      source.missing.add(id);
      source.log(
        `Warning: key ${id} is no longer in ${source.name}; this process keeps it so older ciphertext stays readable, but a restart will lose it. Put it back in the file.`,
      );
    }
  }
  for (const id of source.missing) if (next.keys.has(id)) source.missing.delete(id);

  keyring.keys = keys;
  keyring.activeKeyId = next.activeKeyId;
  source.loaded = next;
  source.stamp = stamp;
  source.log(`Reloaded PII keys from ${source.name}: active key ${next.activeKeyId}, ${keys.size} key(s).`);
  return true;
}

/** What a keyring holds and where it comes from, without key material. */
export function keyringStatus(keyring: Keyring): { activeKeyId: string; keyIds: string[]; kek: string | null; source: string } {
  const source = sources.get(keyring);
  return {
    activeKeyId: keyring.activeKeyId,
    keyIds: [...keyring.keys.keys()].sort(),
    kek: source?.kind === 'file' ? source.loaded.kek : null,
    source: !source ? 'memory' : source.kind === 'file' ? `file:${source.file}` : 'env:PII_ENCRYPTION_KEYS',
  };
}
