// The shapes that travel between activities (and so through the workflow history, where
// the payload codec encrypts them). Plain JSON: no Buffers, no Dates. Anything else here is
// pure, so workflow code may import it.

/** One SQS message as the receive activity hands it on. */
export interface ReceivedMessage {
  messageId: string;
  receiptHandle: string;
  /** The body, cut to MAX_BODY_CHARS characters when longer (then bodyTruncated is true). */
  body: string;
  bodyBytes: number;
  bodyTruncated: boolean;
  /** SQS SentTimestamp, epoch milliseconds; null when the queue did not send it. */
  sentTimestamp: number | null;
  receiveCount: number | null;
}

/** A message that became a row of `user_logins`. Ciphertexts are base64. */
export interface LoginRow {
  messageId: string;
  userId: string;
  deviceType: string;
  maskedIp: string;
  maskedDeviceId: string;
  ipCiphertext: string;
  deviceIdCiphertext: string;
  piiKeyId: string;
  locale: string | null;
  appVersion: string;
  appVersionMajor: number;
  appVersionMinor: number;
  appVersionPatch: number;
  loginFingerprint: string;
  /** ISO 8601. */
  createDate: string;
}

/** A message that could not become a row. The body is base64 AES-256-GCM ciphertext. */
export interface QuarantineEntry {
  messageId: string;
  reasons: string[];
  bodyCiphertext: string;
  piiKeyId: string;
  bodyBytes: number;
  bodyTruncated: boolean;
  /** ISO 8601, or null. */
  sentAt: string | null;
}

export interface TransformedBatch {
  rows: LoginRow[];
  quarantine: QuarantineEntry[];
}

export interface PersistResult {
  /** Rows newly written to user_logins. */
  persisted: number;
  /** Entries newly written to quarantine, and how many times each reason code occurred. */
  quarantined: number;
  quarantinedByReason: Record<string, number>;
  /** Message IDs that were already in the ledger (redeliveries): nothing was written. */
  alreadySeen: number;
  /** New rows whose login fingerprint equals an earlier row's (same login, new message ID). */
  duplicateLogins: number;
}

/** Two PersistResults as one (pure: the workflow adds up its batches with it too). */
export function addPersistResults(a: PersistResult, b: PersistResult): PersistResult {
  const byReason = { ...a.quarantinedByReason };
  for (const [reason, n] of Object.entries(b.quarantinedByReason)) byReason[reason] = (byReason[reason] ?? 0) + n;
  return {
    persisted: a.persisted + b.persisted,
    quarantined: a.quarantined + b.quarantined,
    quarantinedByReason: byReason,
    alreadySeen: a.alreadySeen + b.alreadySeen,
    duplicateLogins: a.duplicateLogins + b.duplicateLogins,
  };
}

export interface AcknowledgeResult {
  deleted: number;
  /** Entries SQS refused to delete (e.g. an expired receipt handle): they come back and are deduplicated. */
  failed: { messageId: string; code: string }[];
}

export interface QueueDepth {
  visible: number;
  inFlight: number;
}
