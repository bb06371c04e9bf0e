// The shapes the pipeline passes between its steps inside the worker (messages, rows,
// quarantine entries: they never leave the worker), and the counts that do travel through
// the workflow history. Plain JSON: no Buffers, no Dates. Pure, so workflow code may import it.

/** One SQS message as the receive activity hands it on. */
export interface ReceivedMessage {
  messageId: string;
  receiptHandle: string;
  /** The body, cut to MAX_BODY_BYTES UTF-8 bytes when longer (then bodyTruncated is true). */
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

/** Time spent in each stage of a drain, in milliseconds summed over its calls. */
export interface StageTimes {
  receive: number;
  transform: number;
  persist: number;
  acknowledge: number;
}

/** What one drain of the queue (one activity, or one thread's part of it) did: counts only. */
export interface DrainResult extends PersistResult {
  received: number;
  /** Deletes SQS refused; those messages come back and count as alreadySeen then. */
  ackFailed: number;
  /** Messages whose visibility was extended because their commit took long (a database outage, say). */
  visibilityExtended: number;
  /** ReceiveMessage calls that failed and were retried. */
  receiveErrors: number;
  /** Commits that failed with an error worth retrying, and were retried. */
  persistRetries: number;
  /** Chunks committed (one transaction each). */
  commits: number;
  stageMs: StageTimes;
  /**
   * empty: the queue gave nothing to several receives in a row; budget: maxMessages reached;
   * time: the drain's time slice ended; stopped: asked to stop (cancellation, shutdown).
   */
  endedBy: 'empty' | 'budget' | 'time' | 'stopped';
}

export function emptyDrainResult(): DrainResult {
  return {
    received: 0,
    persisted: 0,
    quarantined: 0,
    quarantinedByReason: {},
    alreadySeen: 0,
    duplicateLogins: 0,
    ackFailed: 0,
    visibilityExtended: 0,
    receiveErrors: 0,
    persistRetries: 0,
    commits: 0,
    stageMs: { receive: 0, transform: 0, persist: 0, acknowledge: 0 },
    endedBy: 'empty',
  };
}

/** Two drain results as one (the counts added; endedBy is the second's). */
export function addDrainResults(a: DrainResult, b: DrainResult): DrainResult {
  return {
    ...addPersistResults(a, b),
    received: a.received + b.received,
    ackFailed: a.ackFailed + b.ackFailed,
    visibilityExtended: a.visibilityExtended + b.visibilityExtended,
    receiveErrors: a.receiveErrors + b.receiveErrors,
    persistRetries: a.persistRetries + b.persistRetries,
    commits: a.commits + b.commits,
    stageMs: {
      receive: a.stageMs.receive + b.stageMs.receive,
      transform: a.stageMs.transform + b.stageMs.transform,
      persist: a.stageMs.persist + b.stageMs.persist,
      acknowledge: a.stageMs.acknowledge + b.stageMs.acknowledge,
    },
    endedBy: b.endedBy,
  };
}

/**
 * queue_empty: every drain found the queue empty, and SQS counts nothing visible or in
 * flight. messages_unavailable: the same, but SQS still counted messages (in flight with
 * another receiver, e.g. a worker that died mid-drain) after waiting longer than a
 * visibility timeout; they are left for the next run.
 */
export type StopReason = 'queue_empty' | 'max_messages' | 'messages_unavailable';

/** A drain's counts added up over the whole ingest (every run of it), and how it went. */
export interface IngestSummary extends Omit<DrainResult, 'endedBy'> {
  /** What SQS still counted when the run stopped with messages_unavailable. */
  leftInQueue: QueueDepth | null;
  /** Drain activities run (each one time slice of receive → transform → persist → acknowledge). */
  slices: number;
  /** Runs of this workflow ID so far (continue-as-new starts a new run). */
  runs: number;
  queueDepthAtStart: number;
  startedAt: string;
  finishedAt: string | null;
  durationMs: number;
  stopReason: StopReason | null;
}
