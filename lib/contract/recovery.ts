// What the recovery workflow, its activities and configuration agree on: the policy the
// activities enforce (configuration reads it from PII_RECOVERY_*) and the refusals the
// decrypting activity fails with, which the workflow reports as `refused`. Pure and
// workflow-safe.

export interface RecoveryPolicy {
  /** Most records one request may name (PII_RECOVERY_MAX_RECORDS). */
  maxRecords: number;
  /** A second operator's signed approval is needed (PII_RECOVERY_REQUIRE_APPROVAL; always in production). */
  requireApproval: boolean;
  /** How long a request waits for a decision (PII_RECOVERY_APPROVAL_TIMEOUT_SECONDS). */
  approvalTimeoutSeconds: number;
  /** How old a signed document may be when it is checked (PII_SIGNATURE_MAX_AGE_SECONDS). */
  signatureMaxAgeSeconds: number;
}

/**
 * Refusals of the recovery activities, as ApplicationFailure types: the workflow reports
 * them as refused. `registry_invalid`: the operator registry (PII_OPERATORS_FILE) has a bad
 * line, which no retry can mend (any recovery activity).
 */
export const RECOVERY_REFUSALS = [
  'not_a_recovery',
  'bad_request',
  'bad_approval',
  'not_authorised',
  /** The trail's entries for the request do not verify: a forged or foreign entry (lib/recovery/trail.ts). */
  'forged',
  /** The trail holds a signed denial that counts. */
  'denied',
  'expired',
  'grant_consumed',
  'registry_invalid',
] as const;
export type RecoveryRefusal = (typeof RECOVERY_REFUSALS)[number];

export const isRecoveryRefusal = (type: string | null | undefined): type is RecoveryRefusal =>
  (RECOVERY_REFUSALS as readonly string[]).includes(type ?? '');
