// Payload codec: every payload the worker and the clients send to Temporal (workflow and
// activity inputs, results, queries, signals) is encrypted with AES-256-GCM before it
// leaves the process, so the workflow history holds no plaintext. The key ID travels in
// the payload's metadata, so histories written under an older key stay readable after a
// rotation as long as the keyring keeps that key.
import { METADATA_ENCODING_KEY, type Payload, type PayloadCodec, ValueError } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { open, seal } from './crypto';
import { refreshKeyring, type Keyring } from './keyring';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const METADATA_KEY_ID = 'encryption-key-id';
const CONTEXT = 'temporal-payload';

const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null | undefined) => (b ? Buffer.from(b).toString('utf8') : '');

export class EncryptionCodec implements PayloadCodec {
  constructor(private readonly keyring: Keyring) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const sealed = seal(this.keyring, temporal.api.common.v1.Payload.encode(payload).finish(), CONTEXT);
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
        decoded.push(payload);
        continue;
      }
      const keyId = text(payload.metadata?.[METADATA_KEY_ID]);
      if (!keyId || !payload.data) throw new ValueError('Encrypted payload without key ID or data');
      // A key this process has not seen yet: another process rotated; read the key file again.
      if (!this.keyring.keys.has(keyId)) await refreshKeyring(this.keyring, { force: true });
      const plain = open(this.keyring, { keyId, blob: Buffer.from(payload.data) }, CONTEXT);
      decoded.push(temporal.api.common.v1.Payload.decode(plain));
    }
    return decoded;
  }
}
