// AWS KMS as the key-encryption key (README, "Masking and keys"): the KeyWrapper of
// lib/pii/kek.ts over KMS Encrypt/Decrypt. The 32-byte data and fingerprint keys are sent to
// KMS to be encrypted under a KMS key that never leaves KMS, and the key file holds only
// KMS's ciphertext. Each wrap's context (`data-key:<id>`, `fingerprint-key`, and the payload
// codec's `codec-key:<id>`, keyring/codec-wrap.ts) is bound as the
// KMS encryption context {"pii-key": context}: KMS refuses to decrypt under another one, and
// an IAM policy can allow kms:Decrypt only with `kms:EncryptionContext:pii-key` set.
//
// The wrapper's ID, written into the key file as "kek", is `aws-kms:` + the key ARN, alias or
// key ID as configured (PII_KEK); its region comes from the ARN, else AWS_REGION, and its
// credentials from the AWS SDK's usual chain (environment, web identity / IRSA, profile …).
import { DecryptCommand, EncryptCommand, KMSClient, type KMSClientConfig } from '@aws-sdk/client-kms';
import type { KeyWrapper } from './kek';
import { KMS_KEK_PREFIX, type KmsKek } from './kms-key-id';
import { errorMessage } from '../platform/guards';

/** The encryption context's key: `kms:EncryptionContext:pii-key` in an IAM condition. */
export const KMS_CONTEXT_KEY = 'pii-key';
export { KMS_KEK_PREFIX, type KmsKek };

/** What went wrong with a KMS call, with the fix; never the key material (there is none in these errors). */
export function explainKmsError(err: unknown, kek: KmsKek, operation: 'Encrypt' | 'Decrypt'): string {
  const name = (err as { name?: string })?.name ?? '';
  const where = `KMS key ${kek.keyId} in ${kek.region}`;
  switch (name) {
    case 'NotFoundException':
      return `${where} does not exist (${errorMessage(err)}): check PII_KEK and AWS_REGION (a key or alias exists in one region only)`;
    case 'AccessDeniedException':
      return `access to ${where} denied for kms:${operation} (${errorMessage(err)}): grant this process's role kms:${operation} on the key with the condition on kms:EncryptionContext:${KMS_CONTEXT_KEY} (README, "Masking and keys")`;
    case 'DisabledException':
    case 'KMSInvalidStateException':
      return `${where} cannot be used (${name}: ${errorMessage(err)}): enable the key, or cancel its scheduled deletion`;
    case 'InvalidCiphertextException':
      return `KMS refused to decrypt (another KMS key, another context than the one wrapped, or altered bytes)`;
    case 'IncorrectKeyException':
      return `the value was wrapped by another KMS key than ${kek.keyId}`;
    case 'UnrecognizedClientException':
    case 'InvalidSignatureException':
    case 'CredentialsProviderError':
      return `AWS did not accept this process's credentials for ${where} (${name}): check the role (IRSA service account, AWS_PROFILE or AWS_ACCESS_KEY_ID)`;
    default:
      return `kms:${operation} on ${where} failed: ${name ? `${name}: ` : ''}${errorMessage(err)}`;
  }
}

/** KMS Encrypt/Decrypt as the key-encryption key; the wrapped form is KMS's ciphertext blob. */
export class KmsKeyWrapper implements KeyWrapper {
  readonly id: string;
  readonly #client: KMSClient;
  readonly #kek: KmsKek;

  constructor(kek: KmsKek, clientConfig: KMSClientConfig = {}) {
    this.#kek = kek;
    this.id = `${KMS_KEK_PREFIX}${kek.keyId}`;
    this.#client = new KMSClient({
      region: kek.region,
      ...(kek.endpoint ? { endpoint: kek.endpoint } : {}),
      maxAttempts: 5,
      ...clientConfig,
    });
  }

  async wrap(key: Buffer, context: string): Promise<Buffer> {
    try {
      const out = await this.#client.send(
        new EncryptCommand({ KeyId: this.#kek.keyId, Plaintext: key, EncryptionContext: { [KMS_CONTEXT_KEY]: context } }),
      );
      if (!out.CiphertextBlob?.length) throw new Error('KMS returned no ciphertext');
      return Buffer.from(out.CiphertextBlob);
    } catch (err) {
      throw new Error(explainKmsError(err, this.#kek, 'Encrypt'));
    }
  }

  async unwrap(wrapped: Buffer, context: string): Promise<Buffer> {
    try {
      // KeyId too: KMS then refuses a ciphertext made under any other key.
      const out = await this.#client.send(
        new DecryptCommand({
          KeyId: this.#kek.keyId,
          CiphertextBlob: wrapped,
          EncryptionContext: { [KMS_CONTEXT_KEY]: context },
        }),
      );
      if (!out.Plaintext) throw new Error('KMS returned no plaintext');
      return Buffer.from(out.Plaintext);
    } catch (err) {
      throw new Error(explainKmsError(err, this.#kek, 'Decrypt'));
    }
  }

  destroy(): void {
    this.#client.destroy();
  }
}
