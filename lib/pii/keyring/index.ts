// The keys that protect PII. A process holds AES-256 data keys (versioned by ID: one active
// for new writes, the older ones kept to read older ciphertext) and a separate HMAC key for
// the fingerprints, loaded from its configuration (load.ts): a key file whose keys are
// wrapped by a master key (envelope.ts, lib/pii/kek.ts; the file's two versions in
// format.ts), the PII_* variables, or development keys generated once outside production.
// Key files are written atomically and owner-only (store.ts); `keys init` and `keys rotate`
// make and rotate them (rotation.ts), and every process follows its file through a rotation
// within a second (refresh.ts). The payload codec has keys of its own, never a PII key
// (codec-keys.ts). This file is the folder's public API; import from here.
export {
  assertSeparateKeys,
  attachCodecKeys,
  codecKeyFileOf,
  codecKeysOf,
  devCodecKeysPath,
  loadCodecKeys,
  newCodecKeyFile,
  type CodecKeys,
  type CodecKeysConfig,
} from './codec-keys';
export {
  checkWrappedCodecFile,
  codecKeyContext,
  rewrapCodecKeyFile,
  unwrapCodecKeys,
  wrapCodecKeys,
  type CodecRewrapResult,
  type WrappedCodecKeyFile,
} from './codec-wrap';
export { wrapKeyringFile } from './envelope';
export {
  dataKeyContext,
  FINGERPRINT_KEY_CONTEXT,
  KeyringError,
  keyringFromFile,
  newKeyringFile,
  type Keyring,
  type KeyringFile,
  type KeyringFileV2,
} from './format';
export {
  codecKeyWrapperFor,
  configuredKeyWrapper,
  devKeyringPath,
  devMasterKeyPath,
  keyWrapperFor,
  loadCodecKeysAsync,
  loadKeyring,
  masterKeyWrapper,
  type KeyringConfig,
} from './load';
export { rewrapKeyringFile, type RewrapResult } from './rewrap';
export { keyringStatus, loadKeyringFile, refreshKeyring, type KeyringFileOptions, type KeyringRefreshOptions } from './refresh';
export { initKeyringFile, rotateKeyring } from './rotation';
export { writeKeyringFile } from './store';
