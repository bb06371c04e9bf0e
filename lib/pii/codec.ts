// Payload codec: every payload the worker and the clients send to Temporal (workflow and
// activity inputs, results, queries, signals, updates) is encrypted with AES-256-GCM before
// it leaves the process, so the workflow history holds no plaintext. It has keys of its own
// (lib/pii/keyring/codec-keys.ts loadCodecKeys): never a PII data key or the fingerprint key, so whoever
// can read the history (an operator's CLI, the codec server) cannot read a stored value.
// The key ID travels in the payload's metadata.
//
// `requireEncrypted` (the recovery worker): a payload that is not encrypted with one of our
// keys is refused instead of passed through, so nobody can hand its activities plain input.
import { METADATA_ENCODING_KEY, type Payload, type PayloadCodec, ValueError } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { open, seal } from './crypto';
import { codecKeysOf, type CodecKeys, type Keyring } from './keyring';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const METADATA_KEY_ID = 'encryption-key-id';
const CONTEXT = 'temporal-payload';

const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null | undefined) => (b ? Buffer.from(b).toString('utf8') : '');

export interface EncryptionCodecOptions {
  /** Refuse payloads that are not encrypted (default: pass them through, as the Temporal CLI sends them). */
  requireEncrypted?: boolean;
}

export class EncryptionCodec implements PayloadCodec {
  private readonly keys: CodecKeys;

  /** `keys`: codec keys, or a keyring from loadKeyring (then the codec keys loaded with it, never its data keys). */
  constructor(
    keys: CodecKeys | Keyring,
    private readonly options: EncryptionCodecOptions = {},
  ) {
    this.keys = codecKeysOf(keys);
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const sealed = seal(this.keys, temporal.api.common.v1.Payload.encode(payload).finish(), CONTEXT);
      return {
        metadata: { [METADATA_ENCODING_KEY]: utf8(ENCRYPTED_ENCODING), [METADATA_KEY_ID]: utf8(sealed.keyId) },
        data: sealed.blob,
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    const decoded: Payload[] = [];
    for (const payload of payloads) {
      if (text(payload.metadata?.[METADATA_ENCODING_KEY]) !== ENCRYPTED_ENCODING) {
        if (this.options.requireEncrypted) {
          throw new ValueError(
            'Refused an unencrypted payload: this worker only accepts payloads encrypted with the project codec (lib/pii/codec.ts)',
          );
        }
        decoded.push(payload);
        continue;
      }
      const keyId = text(payload.metadata?.[METADATA_KEY_ID]);
      if (!keyId || !payload.data) throw new ValueError('Encrypted payload without key ID or data');
      if (!this.keys.keys.has(keyId)) {
        throw new ValueError(
          `Payload encrypted with codec key ${JSON.stringify(keyId.slice(0, 64))}, which ${this.keys.source} does not hold`,
        );
      }
      const plain = open(this.keys, { keyId, blob: Buffer.from(payload.data) }, CONTEXT);
      decoded.push(temporal.api.common.v1.Payload.decode(plain));
    }
    return decoded;
  }
}
