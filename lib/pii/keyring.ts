// The keys that protect PII: AES-256 data keys (versioned by ID; one active for new
// writes, the others kept to read older ciphertext) and a separate HMAC key for the
// fingerprints.
//
// Where they come from, in order: PII_KEYRING_FILE; else PII_ENCRYPTION_KEYS /
// PII_ACTIVE_KEY_ID / PII_FINGERPRINT_KEY; else (outside production only) a development
// key file generated once into <DATA_DIR>/keys.
//
// Key file formats:
//   version 1 (plain): {"activeKeyId", "keys": {id: base64}, "fingerprintKey": base64}
//   version 2 (envelope, see lib/pii/kek.ts): every key wrapped by a key-encryption key
//     {"version": 2, "kek": "local:1a2b3c4d", "activeKeyId": "k-20261126-ab12cd",
//      "keys": {"k-20261126-ab12cd": {"wrapped": base64, "createdAt": ISO}},
//      "fingerprintKey": {"wrapped": base64}}
//
// A keyring loaded from a file follows that file: refreshKeyring (at most one stat a
// second) re-reads it after a rotation by another process and updates `keys` and
// `activeKeyId` in place, so everything holding the Keyring object (the codec, the
// activities) encrypts with the new key from then on and still reads the old ones.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../platform/config';
import { LocalKeyWrapper, type KeyWrapper } from './kek';

export interface Keyring {
  /**
   * `activeKeyId` and `keys` are replaced in place by refreshKeyring (a new Map each time,
   * never mutated): read them from the keyring at each use instead of keeping a copy.
   */
  activeKeyId: string;
  keys: ReadonlyMap<string, Buffer>;
  /** Never changes for the life of a keyring: fingerprints must stay comparable. */
  readonly fingerprintKey: Buffer;
}

/** The plain (version 1) form of a key file, also used for keys from the environment. Keys are base64 of 32 random bytes. */
export interface KeyringFile {
  activeKeyId: string;
  keys: Record<string, string>;
  fingerprintKey: string;
}

/** The envelope (version 2) form of a key file: keys wrapped by the key-encryption key named in `kek`. */
export interface KeyringFileV2 {
  version: 2;
  kek: string;
  activeKeyId: string;
  keys: Record<string, { wrapped: string; createdAt: string }>;
  fingerprintKey: { wrapped: string };
}

/** The configuration loadKeyring and masterKeyWrapper read (keys.masterKey = PII_MASTER_KEY, keys.masterKeyFile = PII_MASTER_KEY_FILE). */
export type KeyringConfig = Pick<Config, 'keys' | 'dataDir' | 'production'> & Partial<Pick<Config, 'codecKeys'>>;

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

/** The associated data a data key is wrapped with. */
export const dataKeyContext = (keyId: string): string => `data-key:${keyId}`;
/** The associated data the fingerprint key is wrapped with. */
export const FINGERPRINT_KEY_CONTEXT = 'fingerprint-key';

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const DEFAULT_REFRESH_INTERVAL_MS = 1000;

const ENV_ROTATION_HINT =
  'Keys in the environment are rotated by hand: make a key with `openssl rand -base64 32`, add it as new-id:key to PII_ENCRYPTION_KEYS ' +
  '(keep every old id:key, older ciphertext needs them), set PII_ACTIVE_KEY_ID=new-id, leave PII_FINGERPRINT_KEY as it is, and restart the workers and clients.';

export class KeyringError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyringError';
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const errorMessage = (err: unknown) => (err instanceof Error ? err.message : String(err));

function decodeKey(value: string, where: string): Buffer {
  const key = Buffer.from(value, 'base64');
  if (key.length !== 32 || key.toString('base64') !== value.replace(/\s/g, '')) {
    throw new KeyringError(`${where} must be 32 bytes, base64-encoded (make one with: openssl rand -base64 32)`);
  }
  return key;
}

function decodeBase64(value: string, where: string): Buffer {
  const bytes = Buffer.from(value, 'base64');
  if (bytes.length === 0 || bytes.toString('base64') !== value) throw new KeyringError(`${where} must be non-empty base64`);
  return bytes;
}

/** Validates a plain (version 1) key file's content; `source` names it in errors. */
export function keyringFromFile(file: KeyringFile, source: string): Keyring {
  if (typeof file !== 'object' || file === null || typeof file.keys !== 'object' || file.keys === null) {
    throw new KeyringError(`${source}: expected {"activeKeyId", "keys": {id: base64}, "fingerprintKey"}`);
  }
  const keys = new Map<string, Buffer>();
  for (const [id, value] of Object.entries(file.keys)) {
    if (!KEY_ID.test(id)) throw new KeyringError(`${source}: key ID ${JSON.stringify(id)} must match ${KEY_ID}`);
    keys.set(id, decodeKey(String(value), `${source}: key ${id}`));
  }
  if (!keys.has(file.activeKeyId)) {
    throw new KeyringError(`${source}: activeKeyId ${JSON.stringify(file.activeKeyId)} is not one of the keys (${[...keys.keys()].join(', ') || 'none'})`);
  }
  return { activeKeyId: file.activeKeyId, keys, fingerprintKey: decodeKey(String(file.fingerprintKey), `${source}: fingerprintKey`) };
}

/** `PII_ENCRYPTION_KEYS=id1:base64,id2:base64` + `PII_ACTIVE_KEY_ID` + `PII_FINGERPRINT_KEY`. */
function keyringFromEnv(keys: Config['keys']): Keyring {
  if (!keys.encryptionKeys || !keys.fingerprintKey) {
    throw new KeyringError('PII_ENCRYPTION_KEYS and PII_FINGERPRINT_KEY must be set together (or use PII_KEYRING_FILE)');
  }
  const entries: Record<string, string> = {};
  for (const part of keys.encryptionKeys.split(',')) {
    const at = part.indexOf(':');
    if (at < 1) throw new KeyringError('PII_ENCRYPTION_KEYS must be a comma-separated list of id:base64key');
    entries[part.slice(0, at).trim()] = part.slice(at + 1).trim();
  }
  const ids = Object.keys(entries);
  const activeKeyId = keys.activeKeyId ?? (ids.length === 1 ? ids[0] : undefined);
  if (!activeKeyId) throw new KeyringError('PII_ACTIVE_KEY_ID must name one of the keys in PII_ENCRYPTION_KEYS when there are several');
  return keyringFromFile({ activeKeyId, keys: entries, fingerprintKey: keys.fingerprintKey }, 'PII_ENCRYPTION_KEYS');
}

// ---------------------------------------------------------------------------------------
// Version 2: parsing and unwrapping

interface CheckedV2 {
  kek: string;
  activeKeyId: string;
  entries: [string, { wrapped: string; createdAt: string }][];
  fingerprintWrapped: string;
}

const V2_SHAPE = 'expected {"version": 2, "kek", "activeKeyId", "keys": {id: {"wrapped", "createdAt"}}, "fingerprintKey": {"wrapped"}}';

function checkV2(content: Record<string, unknown>, source: string): CheckedV2 {
  const { kek, activeKeyId, keys, fingerprintKey } = content;
  if (typeof kek !== 'string' || !kek || typeof activeKeyId !== 'string' || !isObject(keys) || !isObject(fingerprintKey)) {
    throw new KeyringError(`${source}: ${V2_SHAPE}`);
  }
  const entries: CheckedV2['entries'] = [];
  for (const [id, entry] of Object.entries(keys)) {
    if (!KEY_ID.test(id)) throw new KeyringError(`${source}: key ID ${JSON.stringify(id)} must match ${KEY_ID}`);
    if (!isObject(entry) || typeof entry.wrapped !== 'string' || typeof entry.createdAt !== 'string' || Number.isNaN(Date.parse(entry.createdAt))) {
      throw new KeyringError(`${source}: key ${id}: expected {"wrapped": base64, "createdAt": ISO date}`);
    }
    decodeBase64(entry.wrapped, `${source}: key ${id}: wrapped`);
    entries.push([id, { wrapped: entry.wrapped, createdAt: entry.createdAt }]);
  }
  if (!entries.some(([id]) => id === activeKeyId)) {
    throw new KeyringError(`${source}: activeKeyId ${JSON.stringify(activeKeyId)} is not one of the keys (${entries.map(([id]) => id).join(', ') || 'none'})`);
  }
  if (typeof fingerprintKey.wrapped !== 'string') throw new KeyringError(`${source}: fingerprintKey: expected {"wrapped": base64}`);
  decodeBase64(fingerprintKey.wrapped, `${source}: fingerprintKey: wrapped`);
  return { kek, activeKeyId, entries, fingerprintWrapped: fingerprintKey.wrapped };
}

function toV2Json(file: CheckedV2): KeyringFileV2 {
  return {
    version: 2,
    kek: file.kek,
    activeKeyId: file.activeKeyId,
    keys: Object.fromEntries(file.entries), // fromEntries defines own properties, whatever the IDs
    fingerprintKey: { wrapped: file.fingerprintWrapped },
  };
}

/** What a key file gave: the keys, and (version 2) the wrapped forms, to skip unwrapping unchanged keys on a reload. */
interface Loaded {
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
    if (err instanceof KeyringError) throw new KeyringError(`${source} is wrapped by key-encryption key ${kek}: ${err.message}`);
    throw err;
  }
  if (wrapper.id !== kek) {
    throw new KeyringError(
      `${source} is wrapped by key-encryption key ${kek}, but the one configured is ${wrapper.id}: set PII_MASTER_KEY (or PII_MASTER_KEY_FILE) to the master key this file was made with`,
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
      `${where} cannot be unwrapped by ${wrapper.id} (${errorMessage(err)}): the file was altered, or PII_MASTER_KEY is not the master key it was made with`,
    );
  }
  if (key.length !== 32) throw new KeyringError(`${where} unwraps to ${key.length} bytes instead of 32`);
  return key;
}

async function unwrapV2(file: CheckedV2, source: string, getWrapper: () => KeyWrapper, previous?: Loaded): Promise<Loaded> {
  const wrapper = configuredWrapper(file.kek, source, getWrapper);
  const reuse = previous && previous.kek === file.kek ? previous : undefined;
  const unchanged = (id: string, wrapped: string) => (reuse?.wrapped.get(id) === wrapped ? reuse.keys.get(id) : undefined);
  const keys = await Promise.all(
    file.entries.map(
      async ([id, { wrapped }]) => [id, unchanged(id, wrapped) ?? (await unwrapKey(wrapper, wrapped, dataKeyContext(id), `${source}: key ${id}`))] as const,
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
async function decodeContent(content: unknown, source: string, getWrapper: () => KeyWrapper, previous?: Loaded): Promise<Loaded> {
  const version = isObject(content) ? content.version : undefined;
  if (version === undefined || version === 1) {
    const plain = keyringFromFile(content as KeyringFile, source);
    return { ...plain, keys: new Map(plain.keys), kek: null, wrapped: new Map(), fingerprintWrapped: null };
  }
  if (version !== 2) throw new KeyringError(`${source}: unsupported key file version ${JSON.stringify(version)} (this program reads versions 1 and 2)`);
  return unwrapV2(checkV2(content as Record<string, unknown>, source), source, getWrapper, previous);
}

// ---------------------------------------------------------------------------------------
// Where each keyring came from, for refresh, rotation and status

interface FileSource {
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
interface EnvSource {
  kind: 'env';
}
const sources = new WeakMap<Keyring, FileSource | EnvSource>();

const stampOf = (stat: fs.Stats) => `${stat.ino}:${stat.size}:${stat.mtimeMs}`;

function once<T>(make: () => T): () => T {
  let made: { value: T } | undefined;
  return () => (made ??= { value: make() }).value;
}

/** Reads and parses a key file; `stat`, when the caller has just made it, saves another one. */
async function readKeyFileText(file: string, name: string, stat?: fs.Stats): Promise<{ content: unknown; stamp: string }> {
  let text: string;
  try {
    stat ??= await fs.promises.stat(file); // before the read: the content is at least as new as the stamp
    text = await fs.promises.readFile(file, 'utf8');
  } catch (err) {
    throw new KeyringError(`${name} cannot be read as JSON: ${errorMessage(err)}`);
  }
  try {
    return { content: JSON.parse(text), stamp: stampOf(stat) };
  } catch {
    // Not JSON.parse's message: it quotes the text around the error, which is key material.
    throw new KeyringError(`${name} cannot be read as JSON: not valid JSON`);
  }
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
      throw new KeyringError(`${source.name}: key ${id} now holds other key material; a key ID must never be reused (this process keeps the old key)`);
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

// ---------------------------------------------------------------------------------------
// Writing key files

function newKeyId(now: Date, taken: { has(id: string): boolean }): string {
  const day = now.toISOString().slice(0, 10).replace(/-/g, '');
  for (;;) {
    const id = `k-${day}-${crypto.randomBytes(3).toString('hex')}`;
    if (!taken.has(id)) return id;
  }
}

/** Plain (version 1) content with one new data key and a fingerprint key: for tests and for keys in the environment. */
export function newKeyringFile(now = new Date()): KeyringFile {
  const id = newKeyId(now, new Set());
  return {
    activeKeyId: id,
    keys: { [id]: crypto.randomBytes(32).toString('base64') },
    fingerprintKey: crypto.randomBytes(32).toString('base64'),
  };
}

/** The version 2 form of plain content: every key wrapped by `wrapper`. Also converts an existing version 1 file. */
export async function wrapKeyringFile(plain: KeyringFile, wrapper: KeyWrapper, now = new Date()): Promise<KeyringFileV2> {
  const keyring = keyringFromFile(plain, 'keyring to wrap');
  const createdAt = now.toISOString();
  const entries = await Promise.all(
    [...keyring.keys].map(async ([id, key]) => [id, { wrapped: (await wrapper.wrap(key, dataKeyContext(id))).toString('base64'), createdAt }] as const),
  );
  return {
    version: 2,
    kek: wrapper.id,
    activeKeyId: keyring.activeKeyId,
    keys: Object.fromEntries(entries),
    fingerprintKey: { wrapped: (await wrapper.wrap(keyring.fingerprintKey, FINGERPRINT_KEY_CONTEXT)).toString('base64') },
  };
}

const tempPathFor = (file: string) =>
  path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`);

/** Writes a new owner-only file and flushes it to disk. */
function writeTempFile(tmp: string, text: string): void {
  const fd = fs.openSync(tmp, 'wx', 0o600);
  try {
    fs.writeFileSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // Not every platform can fsync a directory; the rename itself is still atomic.
  }
}

/** Creates `file` (mode 600) complete or not at all; throws EEXIST if it exists. */
function createExclusive(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = tempPathFor(file);
  writeTempFile(tmp, text);
  try {
    try {
      fs.linkSync(tmp, file); // atomic, refuses to replace: nobody ever reads a half-written key file
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw err;
      fs.writeFileSync(file, text, { mode: 0o600, flag: 'wx' }); // a file system without hard links
    }
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  fsyncDir(path.dirname(file));
}

/** Replaces `file` atomically: a temporary file (mode 600) in the same folder, fsync, rename. */
function replaceAtomically(file: string, text: string): void {
  const tmp = tempPathFor(file);
  try {
    writeTempFile(tmp, text);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(path.dirname(file));
}

/** Writes a key file (either version) readable by its owner only; never overwrites one (throws EEXIST). */
export function writeKeyringFile(file: string, content: KeyringFile | KeyringFileV2): void {
  createExclusive(file, JSON.stringify(content, null, 2) + '\n');
}

/** `client.ts keys init`: a new version 2 key file wrapped by `wrapper`, mode 600; never overwrites one. */
export async function initKeyringFile(file: string, wrapper: KeyWrapper, now = new Date()): Promise<{ activeKeyId: string; kek: string }> {
  const exists = () => new KeyringError(`${file} already exists: a key file is never overwritten (rotate its keys, or write to another path)`);
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

// ---------------------------------------------------------------------------------------
// Rotation

function acquireLock(file: string): string {
  const lock = `${file}.lock`;
  try {
    const fd = fs.openSync(lock, 'wx', 0o600);
    fs.writeSync(fd, `${process.pid}\n`);
    fs.closeSync(fd);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new KeyringError(`${file} is being rotated by another process (${lock} exists; delete it if no rotation is running)`);
    }
    throw new KeyringError(`${file} cannot be rotated: ${errorMessage(err)}`);
  }
  return lock;
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
    const source = sources.get(inMemory);
    if (source?.kind !== 'file') throw new KeyringError(`This keyring does not come from a key file (${keyringStatus(inMemory).source}). ${ENV_ROTATION_HINT}`);
    file = source.file;
  } else {
    file = target as string;
  }

  let result: { newKeyId: string; previousKeyId: string };
  const lock = acquireLock(file);
  try {
    const { content } = await readKeyFileText(file, file);
    if (!isObject(content) || content.version !== 2) {
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
      const source = sources.get(inMemory) as FileSource;
      source.log(`Warning: ${file} was rotated but this process could not reload it yet: ${errorMessage(err)}`);
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------
// The master key and loading

export function devKeyringPath(dataDir: string): string {
  return path.join(dataDir, 'keys', 'keyring.json');
}

export function devMasterKeyPath(dataDir: string): string {
  return path.join(dataDir, 'keys', 'master.key');
}

function readMasterKeyFile(file: string, name: string): Buffer {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new KeyringError(`${name} cannot be read: ${errorMessage(err)}`);
  }
  return decodeKey(text.trim(), name);
}

/**
 * The local key-encryption key: PII_MASTER_KEY (base64 of 32 bytes), else
 * PII_MASTER_KEY_FILE (a file holding that), else outside production the development
 * master key <DATA_DIR>/keys/master.key, generated (mode 600) when `create` is set and it
 * does not exist yet. Throws a KeyringError naming PII_MASTER_KEY when there is none.
 */
export function masterKeyWrapper(config: KeyringConfig, options: { create?: boolean; log?: (msg: string) => void } = {}): LocalKeyWrapper {
  const { masterKey, masterKeyFile } = config.keys;
  if (masterKey && masterKeyFile) throw new KeyringError('Set only one of PII_MASTER_KEY and PII_MASTER_KEY_FILE');
  if (masterKey) return new LocalKeyWrapper(decodeKey(masterKey, 'PII_MASTER_KEY'));
  if (masterKeyFile) return new LocalKeyWrapper(readMasterKeyFile(masterKeyFile, `PII_MASTER_KEY_FILE=${masterKeyFile}`));
  if (config.production) {
    throw new KeyringError(
      'NODE_ENV=production and no master key is configured: set PII_MASTER_KEY (base64 of 32 bytes) or PII_MASTER_KEY_FILE. The development master key is never used in production.',
    );
  }
  const file = devMasterKeyPath(config.dataDir);
  if (!fs.existsSync(file)) {
    if (!options.create) throw new KeyringError(`no master key: set PII_MASTER_KEY or PII_MASTER_KEY_FILE (the development master key ${file} does not exist)`);
    try {
      createExclusive(file, crypto.randomBytes(32).toString('base64') + '\n');
      (options.log ?? console.log)(`Generated a development master key in ${file} (local only, git-ignored; production needs PII_MASTER_KEY).`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err; // another process made it first
    }
  }
  return new LocalKeyWrapper(readMasterKeyFile(file, file));
}

/**
 * The keyring for this process: PII_KEYRING_FILE (either version; version 2 unwrapped by
 * `wrapper`, default masterKeyWrapper(config)), else the PII_* variables, else (outside
 * production only) a development master key and version 2 key file generated once into
 * <DATA_DIR>/keys. Keyrings from a file follow it through refreshKeyring.
 */
export async function loadKeyring(
  config: KeyringConfig,
  log: (msg: string) => void = console.log,
  wrapper?: KeyWrapper,
  options: KeyringRefreshOptions = {},
): Promise<Keyring> {
  const keyring = await loadPiiKeyring(config, log, wrapper, options);
  const { codecKeys } = config;
  if (codecKeys) attachCodecKeys(keyring, () => loadCodecKeys({ codecKeys, dataDir: config.dataDir, production: config.production }, log));
  return keyring;
}

async function loadPiiKeyring(config: KeyringConfig, log: (msg: string) => void, wrapper: KeyWrapper | undefined, options: KeyringRefreshOptions): Promise<Keyring> {
  const { keys } = config;
  const configured = () => wrapper ?? masterKeyWrapper(config);
  if (keys.keyringFile) {
    return loadKeyringFile(keys.keyringFile, { ...options, wrapper: configured, log, name: `PII_KEYRING_FILE=${keys.keyringFile}` });
  }
  if (keys.encryptionKeys || keys.fingerprintKey) {
    const keyring = keyringFromEnv(keys);
    sources.set(keyring, { kind: 'env' });
    return keyring;
  }
  if (config.production) {
    throw new KeyringError(
      'NODE_ENV=production and no PII keys are configured: set PII_KEYRING_FILE and PII_MASTER_KEY (or PII_ENCRYPTION_KEYS, PII_ACTIVE_KEY_ID and PII_FINGERPRINT_KEY). Development keys are never generated in production.',
    );
  }
  const file = devKeyringPath(config.dataDir);
  if (!fs.existsSync(file)) {
    // Only here may a development master key be generated: one for an existing file would never match it.
    const kek = wrapper ?? masterKeyWrapper(config, { create: true, log });
    try {
      writeKeyringFile(file, await wrapKeyringFile(newKeyringFile(), kek));
      log(`Generated development PII keys in ${file}, wrapped by ${kek.id} (local only, git-ignored; production refuses to start without real keys).`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err; // another process made them first
    }
  }
  return loadKeyringFile(file, { ...options, wrapper: configured, log });
}

// ---------------------------------------------------------------------------------------
// The payload codec's keys: separate from the PII data keys and the fingerprint key.
//
// Every process that talks to Temporal needs them (the worker, the CLI, the codec server),
// so they open the workflow history and nothing else: operators' CLIs and the codec server
// load these and never the key file, the master key or a data key. Sources, in order:
// TEMPORAL_CODEC_KEY_FILE ({"activeKeyId", "keys": {id: base64}}, mode 600), else
// TEMPORAL_CODEC_KEYS=id:base64,... with TEMPORAL_CODEC_ACTIVE_KEY_ID, else (outside
// production) a development file generated once into <DATA_DIR>/keys/codec-keys.json.

export interface CodecKeys {
  readonly kind: 'codec-keys';
  readonly activeKeyId: string;
  readonly keys: ReadonlyMap<string, Buffer>;
  /** Where they came from (a file path or the variable), for errors. */
  readonly source: string;
}

export type CodecKeysConfig = Pick<Config, 'codecKeys' | 'dataDir' | 'production'>;

export function devCodecKeysPath(dataDir: string): string {
  return path.join(dataDir, 'keys', 'codec-keys.json');
}

function codecKeysFrom(entries: Record<string, string>, activeKeyId: string | undefined, source: string): CodecKeys {
  const keys = new Map<string, Buffer>();
  for (const [id, value] of Object.entries(entries)) {
    if (!KEY_ID.test(id)) throw new KeyringError(`${source}: codec key ID ${JSON.stringify(id)} must match ${KEY_ID}`);
    keys.set(id, decodeKey(String(value), `${source}: codec key ${id}`));
  }
  const ids = [...keys.keys()];
  const active = activeKeyId ?? (ids.length === 1 ? ids[0] : undefined);
  if (!active || !keys.has(active)) {
    throw new KeyringError(`${source}: the active codec key ${JSON.stringify(active ?? null)} is not one of the keys (${ids.join(', ') || 'none'})`);
  }
  return Object.freeze({ kind: 'codec-keys' as const, activeKeyId: active, keys, source });
}

function readCodecKeyFile(file: string, name: string): CodecKeys {
  let content: unknown;
  try {
    content = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    // Never JSON.parse's message: it quotes key material.
    throw new KeyringError(`${name} cannot be read as JSON: ${err instanceof SyntaxError ? 'not valid JSON' : errorMessage(err)}`);
  }
  if (!isObject(content) || !isObject(content.keys) || typeof content.activeKeyId !== 'string') {
    throw new KeyringError(`${name}: expected {"activeKeyId", "keys": {id: base64}}`);
  }
  return codecKeysFrom(content.keys as Record<string, string>, content.activeKeyId, name);
}

/** A new codec key file's content: one random 32-byte key. */
export function newCodecKeyFile(now = new Date()): { activeKeyId: string; keys: Record<string, string> } {
  const id = newKeyId(now, new Set()).replace(/^k-/, 'c-');
  return { activeKeyId: id, keys: { [id]: crypto.randomBytes(32).toString('base64') } };
}

/** The codec keys of this process (see above); no PII key is read. */
export function loadCodecKeys(config: CodecKeysConfig, log: (msg: string) => void = console.log): CodecKeys {
  const { file, keys, activeKeyId } = config.codecKeys;
  if (file && keys) throw new KeyringError('Set only one of TEMPORAL_CODEC_KEY_FILE and TEMPORAL_CODEC_KEYS');
  if (file) return readCodecKeyFile(file, `TEMPORAL_CODEC_KEY_FILE=${file}`);
  if (keys) {
    const entries: Record<string, string> = {};
    for (const part of keys.split(',')) {
      const at = part.indexOf(':');
      if (at < 1) throw new KeyringError('TEMPORAL_CODEC_KEYS must be a comma-separated list of id:base64key');
      entries[part.slice(0, at).trim()] = part.slice(at + 1).trim();
    }
    return codecKeysFrom(entries, activeKeyId, 'TEMPORAL_CODEC_KEYS');
  }
  if (config.production) {
    throw new KeyringError(
      'NODE_ENV=production and no payload codec key is configured: set TEMPORAL_CODEC_KEY_FILE (or TEMPORAL_CODEC_KEYS). It must not be a PII data key; every worker and client of the namespace needs the same one.',
    );
  }
  const dev = devCodecKeysPath(config.dataDir);
  if (!fs.existsSync(dev)) {
    try {
      createExclusive(dev, JSON.stringify(newCodecKeyFile(), null, 2) + '\n');
      log(`Generated a development payload codec key in ${dev} (local only, git-ignored; production needs TEMPORAL_CODEC_KEY_FILE).`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err; // another process made it first
    }
  }
  return readCodecKeyFile(dev, dev);
}

/** The codec keys that belong with a keyring loaded by loadKeyring (loaded on first use). */
const codecKeysOfKeyring = new WeakMap<Keyring, () => CodecKeys>();

/** Throws when a codec key is also a PII data key or the fingerprint key. */
export function assertSeparateKeys(codec: CodecKeys, keyring: Keyring): void {
  for (const [id, key] of codec.keys) {
    const clash = [...keyring.keys.values(), keyring.fingerprintKey].some((k) => k.equals(key));
    if (clash) throw new KeyringError(`${codec.source}: codec key ${id} is also a PII key; the payload codec needs a key of its own (make one with: openssl rand -base64 32)`);
  }
}

/**
 * The payload codec's keys for a keyring that loadKeyring returned, or codec keys as they
 * are. A keyring made in memory has none: that is an error, never a fallback to its data keys.
 */
export function codecKeysOf(keys: Keyring | CodecKeys): CodecKeys {
  if ((keys as CodecKeys).kind === 'codec-keys') return keys as CodecKeys;
  const get = codecKeysOfKeyring.get(keys as Keyring);
  if (!get) throw new KeyringError('This keyring has no payload codec keys (it was not made by loadKeyring): pass CodecKeys from loadCodecKeys');
  return get();
}

/** Associates codec keys with a keyring (loadKeyring does this; tests may too). */
export function attachCodecKeys(keyring: Keyring, codec: CodecKeys | (() => CodecKeys)): void {
  let cached: CodecKeys | undefined;
  codecKeysOfKeyring.set(keyring, () => {
    if (!cached) {
      cached = typeof codec === 'function' ? codec() : codec;
      assertSeparateKeys(cached, keyring);
    }
    return cached;
  });
}
