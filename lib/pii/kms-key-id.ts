// The name of a KMS key as PII_KEK gives it (`aws-kms:<key ARN | alias ARN | alias/name | key
// ID>`), parsed without the AWS SDK: configuration (lib/platform/config.ts) validates it
// once at start; lib/pii/kms.ts uses it.
export const KMS_KEK_PREFIX = 'aws-kms:';

/** The KMS key as configured: `aws-kms:<key ARN | alias ARN | alias/name | key ID>`. */
export interface KmsKek {
  kind: 'aws-kms';
  /** As given after `aws-kms:`. */
  keyId: string;
  /** From the ARN, else AWS_REGION. */
  region: string;
  /** AWS_ENDPOINT_URL_KMS (an emulator, or a VPC endpoint). */
  endpoint?: string;
}

const ARN = /^arn:aws[a-z-]*:kms:([a-z]{2}(?:-[a-z]+)+-\d):\d{12}:(key\/[A-Za-z0-9-]+|alias\/[A-Za-z0-9/_-]+)$/;
const BARE = /^(alias\/[A-Za-z0-9/_-]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$/;

/**
 * Parses what follows `aws-kms:` (pure, for configuration). Returns the key and its region,
 * or a problem in words: a malformed name, no region, or an ARN in another region than AWS_REGION.
 */
export function parseKmsKeyId(keyId: string, awsRegion: string | undefined): { keyId: string; region: string } | string {
  const arn = ARN.exec(keyId);
  if (arn) {
    if (awsRegion && awsRegion !== arn[1])
      return `PII_KEK names a KMS key in region ${arn[1]} but AWS_REGION is ${awsRegion}: a KMS key lives in one region; use the key's own region (or a multi-Region replica's ARN in ${awsRegion})`;
    return { keyId, region: arn[1] };
  }
  if (!BARE.test(keyId))
    return `PII_KEK=aws-kms:${keyId} is not a KMS key: use aws-kms:<key ARN>, aws-kms:<alias ARN>, aws-kms:alias/<name> or aws-kms:<key ID>`;
  if (!awsRegion) return `PII_KEK=aws-kms:${keyId} needs AWS_REGION (or give the key's full ARN, which names its region)`;
  return { keyId, region: awsRegion };
}
