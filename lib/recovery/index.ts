// The audited recovery of PII. Operators are listed in a registry with their roles and
// Ed25519 public keys (registry.ts); a request to read PII and a second operator's
// approval are documents (documents.ts) signed over their RFC 8785 canonical JSON
// (canonical-json.ts, signing.ts), so who asked for what and who agreed can be proven to a
// third party. The exact records a request covers are frozen and hashed (records.ts), and
// every step is appended to a hash-chained audit trail in PostgreSQL (audit.ts). The
// authority checks themselves run in activities/recovery.ts, never in workflow code. These
// modules use node:crypto and node:fs: activities and tools only. This file is the public
// API of the operators and their documents; import from here.
export { canonicalJson } from './canonical-json';
export {
  requestDigest,
  validateApprovalBody,
  validateRequestBody,
  type ApprovalBody,
  type RecoveryRequestBody,
} from './documents';
export {
  checkRegistration,
  generateOperatorKeys,
  hasRole,
  keyFingerprint,
  loadRegistry,
  parseRegistry,
  readPrivateKey,
  registrationProblem,
  RegistryError,
  ROLES,
  writePrivateKey,
  type Operator,
  type OperatorRegistry,
  type Role,
} from './registry';
export {
  MAX_FUTURE_SKEW_MS,
  MAX_SIGNED_BODY_BYTES,
  sign,
  verifySigned,
  type Signed,
  type VerifyFailure,
  type VerifyResult,
} from './signing';
