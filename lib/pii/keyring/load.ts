// The keyring of a process, from its configuration. Sources, in order: PII_KEYRING_FILE
// (either version; version 2 unwrapped by the master key), else PII_ENCRYPTION_KEYS /
// PII_ACTIVE_KEY_ID / PII_FINGERPRINT_KEY, else (outside production only) a development
// master key and key file generated once into <DATA_DIR>/keys. The master key is
// PII_MASTER_KEY or PII_MASTER_KEY_FILE (the development one outside production).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../../platform/config';
import { LocalKeyWrapper, type KeyWrapper } from '../kek';
import { KmsKeyWrapper } from '../kms';
import { KMS_KEK_PREFIX, parseKmsKeyId } from '../kms-key-id';
import {
  attachCodecKeys,
  codecKeyFileOf,
  isWrappedCodecContent,
  loadCodecKeys,
  readCodecKeyJson,
  type CodecKeys,
  type CodecKeysConfig,
} from './codec-keys';
import { unwrapCodecKeyContent } from './codec-wrap';
import { wrapKeyringFile } from './envelope';
import { decodeKey, KeyringError, keyringFromFile, newKeyringFile, type Keyring } from './format';
import { errorMessage } from '../../platform/guards';
import { loadKeyringFile, markFromEnvironment, type KeyringRefreshOptions } from './refresh';
import { createExclusive, writeKeyringFile } from './store';

/** The configuration loadKeyring and masterKeyWrapper read (keys.masterKey = PII_MASTER_KEY, keys.masterKeyFile = PII_MASTER_KEY_FILE). */
export type KeyringConfig = Pick<Config, 'keys' | 'dataDir' | 'production'> & Partial<Pick<Config, 'codecKeys'>>;

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
  if (!activeKeyId)
    throw new KeyringError('PII_ACTIVE_KEY_ID must name one of the keys in PII_ENCRYPTION_KEYS when there are several');
  return keyringFromFile({ activeKeyId, keys: entries, fingerprintKey: keys.fingerprintKey }, 'PII_ENCRYPTION_KEYS');
}

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
export function masterKeyWrapper(
  config: KeyringConfig,
  options: { create?: boolean; log?: (msg: string) => void } = {},
): LocalKeyWrapper {
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
    if (!options.create)
      throw new KeyringError(
        `no master key: set PII_MASTER_KEY or PII_MASTER_KEY_FILE (the development master key ${file} does not exist)`,
      );
    try {
      createExclusive(file, crypto.randomBytes(32).toString('base64') + '\n');
      (options.log ?? console.log)(
        `Generated a development master key in ${file} (local only, git-ignored; production needs PII_MASTER_KEY).`,
      );
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err; // another process made it first
    }
  }
  return new LocalKeyWrapper(readMasterKeyFile(file, file));
}

/**
 * The key-encryption key this process is configured with: PII_KEK=aws-kms:<key> (KMS,
 * lib/pii/kms.ts), else the local master key (masterKeyWrapper; `create` as there).
 */
export function configuredKeyWrapper(
  config: KeyringConfig,
  options: { create?: boolean; log?: (msg: string) => void } = {},
): KeyWrapper {
  const kek = config.keys.kek;
  if (kek?.kind === 'aws-kms') return new KmsKeyWrapper(kek);
  return masterKeyWrapper(config, options);
}

/** The KMS key `aws-kms:<key>` names, in its ARN's region or AWS_REGION, at AWS_ENDPOINT_URL_KMS when set. */
function kmsWrapperFor(kekId: string, config: Pick<Config, 'keys'>): KmsKeyWrapper {
  const parsed = parseKmsKeyId(kekId.slice(KMS_KEK_PREFIX.length), config.keys.awsRegion);
  if (typeof parsed === 'string') throw new KeyringError(parsed);
  return new KmsKeyWrapper({ kind: 'aws-kms', ...parsed, endpoint: config.keys.kmsEndpoint });
}

/**
 * The wrapper for a key-encryption key named by its ID (as a key file's "kek" names it): a
 * KMS key by its name (region from its ARN, else the configured AWS_REGION / endpoint), or
 * the local master key, which must then be the one configured. For `keys rewrap`, which
 * reads a file wrapped by one KEK and writes it under another.
 */
export function keyWrapperFor(kekId: string, config: KeyringConfig): KeyWrapper {
  if (kekId.startsWith(KMS_KEK_PREFIX)) return kmsWrapperFor(kekId, config);
  if (kekId !== 'local' && !kekId.startsWith('local:'))
    throw new KeyringError(`unknown key-encryption key ${JSON.stringify(kekId)}: use local or aws-kms:<key ARN or alias>`);
  const local = masterKeyWrapper(config);
  if (kekId !== 'local' && local.id !== kekId)
    throw new KeyringError(
      `the key file is wrapped by ${kekId}, but the master key configured is ${local.id}: set PII_MASTER_KEY (or PII_MASTER_KEY_FILE) to the one it was made with`,
    );
  return local;
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
  if (codecKeys) {
    const codecConfig = { codecKeys, keys: config.keys, dataDir: config.dataDir, production: config.production };
    // A KMS-wrapped codec key file needs KMS, which is asynchronous: unwrapped now. A plain one stays lazy.
    const wrapped = wrappedCodecKeyContent(codecConfig);
    attachCodecKeys(
      keyring,
      wrapped
        ? await unwrapCodecKeyContent(wrapped.content, wrapped.name, (kek) => codecKeyWrapperFor(kek, config))
        : () => loadCodecKeys(codecConfig, log),
    );
  }
  return keyring;
}

/** The KEK of a wrapped codec key file: a KMS key only (the local master key stays with the PII key file). */
export function codecKeyWrapperFor(kekId: string, config: Pick<Config, 'keys'>): KeyWrapper {
  if (!kekId.startsWith(KMS_KEK_PREFIX))
    throw new KeyringError(`a codec key file is wrapped only by an AWS KMS key (aws-kms:<key ARN or alias>), not by ${kekId}`);
  return kmsWrapperFor(kekId, config);
}

/** The content of the configured codec key file when it is the wrapped form (a file it cannot read is left to loadCodecKeys, which names the problem). */
function wrappedCodecKeyContent(config: CodecKeysConfig): { content: unknown; name: string } | undefined {
  const at = codecKeyFileOf(config);
  if (!at || config.codecKeys.keys || !fs.existsSync(at.file)) return undefined; // loadCodecKeys names the conflict
  let content: unknown;
  try {
    content = readCodecKeyJson(at.file, at.name);
  } catch {
    return undefined; // loadCodecKeys reports it, as it did before
  }
  return isWrappedCodecContent(content) ? { content, name: at.name } : undefined;
}

/**
 * The codec keys of this process, as loadCodecKeys gives them, and also from a codec key file
 * wrapped by AWS KMS (unwrapped through KMS: the KMS key the file names, in AWS_REGION or its
 * ARN's region, at AWS_ENDPOINT_URL_KMS when set). Use this wherever the codec keys are loaded.
 */
export async function loadCodecKeysAsync(
  config: CodecKeysConfig & Pick<Config, 'keys'>,
  log: (msg: string) => void = console.log,
): Promise<CodecKeys> {
  const wrapped = wrappedCodecKeyContent(config);
  if (!wrapped) return loadCodecKeys(config, log);
  return unwrapCodecKeyContent(wrapped.content, wrapped.name, (kek) => codecKeyWrapperFor(kek, config));
}

async function loadPiiKeyring(
  config: KeyringConfig,
  log: (msg: string) => void,
  wrapper: KeyWrapper | undefined,
  options: KeyringRefreshOptions,
): Promise<Keyring> {
  const { keys } = config;
  const configured = () => wrapper ?? configuredKeyWrapper(config);
  if (keys.keyringFile) {
    return loadKeyringFile(keys.keyringFile, {
      ...options,
      wrapper: configured,
      log,
      name: `PII_KEYRING_FILE=${keys.keyringFile}`,
    });
  }
  if (keys.encryptionKeys || keys.fingerprintKey) {
    const keyring = keyringFromEnv(keys);
    markFromEnvironment(keyring);
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
    const kek = wrapper ?? configuredKeyWrapper(config, { create: true, log });
    try {
      writeKeyringFile(file, await wrapKeyringFile(newKeyringFile(), kek));
      log(
        `Generated development PII keys in ${file}, wrapped by ${kek.id} (local only, git-ignored; production refuses to start without real keys).`,
      );
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err; // another process made them first
    }
  }
  return loadKeyringFile(file, { ...options, wrapper: configured, log });
}
