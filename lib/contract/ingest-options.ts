// The ingest's options: their defaults and allowed ranges, in one place that configuration,
// the CLI, the workflow and the activity all read. Pure and workflow-safe.

export interface IngestOptions {
  /** Messages per commit (one transaction each). */
  batchSize?: number;
  /** Drains in flight at once (activities, spread over the workers of the task queue). */
  concurrency?: number;
  /** Stop after receiving this many messages (default: drain the queue). */
  maxMessages?: number;
  /** Long-poll wait of each ReceiveMessage call, seconds. */
  waitTimeSeconds?: number;
  /** Concurrent ReceiveMessage loops in each drain thread. */
  receiveConcurrency?: number;
  /** Visibility timeout of received messages; extended while a live drain still holds them. */
  visibilityTimeoutSeconds?: number;
  /** How long one drain activity runs before it reports and the workflow starts the next. */
  sliceSeconds?: number;
  /** Commits under way at once in each drain thread. */
  commitsInFlight?: number;
  /** Drain activities per run before continuing as new, which keeps the history bounded. */
  slicesPerRun?: number;
}

type Limits = Record<keyof IngestOptions, { min: number; max: number; default?: number; env: string }>;

export const INGEST_LIMITS: Limits = {
  batchSize: { min: 1, max: 5000, default: 1000, env: 'INGEST_BATCH_SIZE' },
  concurrency: { min: 1, max: 64, default: 1, env: 'INGEST_CONCURRENCY' },
  maxMessages: { min: 1, max: Number.MAX_SAFE_INTEGER, env: 'INGEST_MAX_MESSAGES' },
  waitTimeSeconds: { min: 0, max: 20, default: 1, env: 'SQS_WAIT_TIME_SECONDS' },
  receiveConcurrency: { min: 1, max: 50, default: 8, env: 'SQS_RECEIVE_CONCURRENCY' },
  visibilityTimeoutSeconds: { min: 5, max: 43_200, default: 30, env: 'SQS_VISIBILITY_TIMEOUT_SECONDS' },
  sliceSeconds: { min: 1, max: 3600, default: 60, env: 'INGEST_SLICE_SECONDS' },
  commitsInFlight: { min: 1, max: 16, default: 2, env: 'INGEST_COMMITS_IN_FLIGHT' },
  slicesPerRun: { min: 1, max: 10_000, default: 100, env: 'INGEST_SLICES_PER_RUN' },
};

export type ResolvedIngestOptions = Required<Omit<IngestOptions, 'maxMessages'>> & Pick<IngestOptions, 'maxMessages'>;

export function withDefaults(options: IngestOptions): ResolvedIngestOptions {
  const resolved = { ...options } as Record<string, number | undefined>;
  for (const [name, limit] of Object.entries(INGEST_LIMITS)) {
    if (resolved[name] === undefined && limit.default !== undefined) resolved[name] = limit.default;
  }
  return resolved as ResolvedIngestOptions;
}

/** The first option out of range, as a sentence naming it and the range; null when all are fine. */
export function checkIngestOptions(options: IngestOptions): string | null {
  for (const [name, { min, max }] of Object.entries(INGEST_LIMITS)) {
    const v = (options as Record<string, unknown>)[name];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)) {
      return `Ingest option ${name}=${JSON.stringify(v)} must be a whole number from ${min} to ${max}`;
    }
  }
  return null;
}

/** What the workflow asks one drain activity to do. */
export interface DrainInput {
  /** Receive at most this many messages. */
  maxMessages: number;
  /** Stop receiving after this long; what was received is still committed and deleted. */
  maxSeconds: number;
  /** Concurrent ReceiveMessage loops (in each drain thread). */
  pollers: number;
  waitTimeSeconds: number;
  visibilityTimeoutSeconds: number;
  /** Messages per commit. */
  chunkSize: number;
  /** Commits under way at once (in each drain thread). */
  commitsInFlight: number;
}

/** Splits a budget into n whole shares that add up to it (the drains of a round, the threads of a drain). */
export function shares(total: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.floor(total / n) + (i < total % n ? 1 : 0));
}

export function drainInput(o: ResolvedIngestOptions, maxMessages: number): DrainInput {
  return {
    maxMessages,
    maxSeconds: o.sliceSeconds,
    pollers: o.receiveConcurrency,
    waitTimeSeconds: o.waitTimeSeconds,
    visibilityTimeoutSeconds: o.visibilityTimeoutSeconds,
    chunkSize: o.batchSize,
    commitsInFlight: o.commitsInFlight,
  };
}

/** The drain activity's own check of its input (which anyone with namespace access can write). */
export function checkDrainInput(input: DrainInput): string | null {
  if (typeof input !== 'object' || input === null) return 'drainQueue needs an object of options';
  const asOptions: IngestOptions = {
    maxMessages: input.maxMessages,
    sliceSeconds: input.maxSeconds,
    receiveConcurrency: input.pollers,
    waitTimeSeconds: input.waitTimeSeconds,
    visibilityTimeoutSeconds: input.visibilityTimeoutSeconds,
    batchSize: input.chunkSize,
    commitsInFlight: input.commitsInFlight,
  };
  for (const [name, v] of Object.entries(asOptions)) if (v === undefined) return `drainQueue option ${name} is missing`;
  return checkIngestOptions(asOptions);
}
