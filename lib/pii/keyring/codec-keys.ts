// The payload codec's keys: separate from the PII data keys and the fingerprint key.
//
// Every process that talks to Temporal needs them (the worker, the CLI, the codec server),
// so they open the workflow history and nothing else: operators' CLIs and the codec server
// load these and never the key file, the master key or a data key. Sources, in order:
// TEMPORAL_CODEC_KEY_FILE ({"activeKeyId", "keys": {id: base64}}, mode 600), else
// TEMPORAL_CODEC_KEYS=id:base64,... with TEMPORAL_CODEC_ACTIVE_KEY_ID, else (outside
// production) a development file generated once into <DATA_DIR>/keys/codec-keys.json.
// The file may instead hold its keys wrapped by AWS KMS ({"kek", "activeKeyId", "wrappedKeys"},
// codec-wrap.ts); only the asynchronous loader (load.ts loadCodecKeysAsync) reads that form.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../../platform/config';
import { isRecord } from '../../platform/guards';
import { decodeKey, KEY_ID, KeyringError, newKeyId, type Keyring } from './format';
import { errorMessage } from '../../platform/guards';
import { createExclusive } from './store';

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

export function codecKeysFrom(entries: Record<string, string>, activeKeyId: string | undefined, source: string): CodecKeys {
  const keys = new Map<string, Buffer>();
  for (const [id, value] of Object.entries(entries)) {
    if (!KEY_ID.test(id)) throw new KeyringError(`${source}: codec key ID ${JSON.stringify(id)} must match ${KEY_ID}`);
    keys.set(id, decodeKey(String(value), `${source}: codec key ${id}`));
  }
  const ids = [...keys.keys()];
  const active = activeKeyId ?? (ids.length === 1 ? ids[0] : undefined);
  if (!active || !keys.has(active)) {
    throw new KeyringError(
      `${source}: the active codec key ${JSON.stringify(active ?? null)} is not one of the keys (${ids.join(', ') || 'none'})`,
    );
  }
  return Object.freeze({ kind: 'codec-keys' as const, activeKeyId: active, keys, source });
}

/** The codec key file this configuration reads (TEMPORAL_CODEC_KEY_FILE, else outside production the development one), if any. */
export function codecKeyFileOf(config: CodecKeysConfig): { file: string; name: string } | undefined {
  const { file, keys } = config.codecKeys;
  if (file) return { file, name: `TEMPORAL_CODEC_KEY_FILE=${file}` };
  if (keys || config.production) return undefined;
  const dev = devCodecKeysPath(config.dataDir);
  return { file: dev, name: dev };
}

/** A codec key file's JSON content; errors never quote it. */
export function readCodecKeyJson(file: string, name: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    // Never JSON.parse's message: it quotes key material.
    throw new KeyringError(
      `${name} cannot be read as JSON: ${err instanceof SyntaxError ? 'not valid JSON' : errorMessage(err)}`,
    );
  }
}

/** Whether a codec key file's content is the wrapped form ({"kek", "activeKeyId", "wrappedKeys"}). */
export function isWrappedCodecContent(content: unknown): content is Record<string, unknown> {
  return isRecord(content) && ('wrappedKeys' in content || 'kek' in content);
}

function readCodecKeyFile(file: string, name: string): CodecKeys {
  const content = readCodecKeyJson(file, name);
  if (isWrappedCodecContent(content)) {
    throw new KeyringError(
      `${name} is wrapped by ${typeof content.kek === 'string' ? content.kek : 'a key-encryption key'} and this code path cannot unwrap it: load it with loadCodecKeysAsync (lib/pii/keyring), or unwrap the file with \`keys codec-rewrap --to plain\``,
    );
  }
  if (!isRecord(content) || !isRecord(content.keys) || typeof content.activeKeyId !== 'string') {
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
      log(
        `Generated a development payload codec key in ${dev} (local only, git-ignored; production needs TEMPORAL_CODEC_KEY_FILE).`,
      );
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
    if (clash)
      throw new KeyringError(
        `${codec.source}: codec key ${id} is also a PII key; the payload codec needs a key of its own (make one with: openssl rand -base64 32)`,
      );
  }
}

/**
 * The payload codec's keys for a keyring that loadKeyring returned, or codec keys as they
 * are. A keyring made in memory has none: that is an error, never a fallback to its data keys.
 */
export function codecKeysOf(keys: Keyring | CodecKeys): CodecKeys {
  if ((keys as CodecKeys).kind === 'codec-keys') return keys as CodecKeys;
  const get = codecKeysOfKeyring.get(keys as Keyring);
  if (!get)
    throw new KeyringError(
      'This keyring has no payload codec keys (it was not made by loadKeyring): pass CodecKeys from loadCodecKeys',
    );
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
