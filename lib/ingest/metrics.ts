// The pipeline's own Prometheus metrics, and the small API the ingest activities record them
// with. Definitions live here only; activities call the functions below (one line each), so
// the data path can change without touching metric names. Recording is cheap and always on;
// the metrics are only served when METRICS_ADDRESS is set (lib/platform/metrics-server.ts).
//
//   login_ingest_messages_total{outcome="received|persisted|quarantined|already_seen|delete_failed"}
//   login_ingest_quarantined_total{reason="invalid_ip|…"}       (a message with two reasons counts in both)
//   login_ingest_duplicate_logins_total                         (new rows with an earlier row's fingerprint)
//   login_ingest_stage_seconds_total{stage="receive|transform|persist|acknowledge"}  (time spent in each stage, all drain threads)
//   login_ingest_stage_duration_seconds{stage}                  (histogram, per batch/chunk, where recordStage/startStage is called)
//   login_ingest_stage_messages_total{stage}                    (messages through each stage, idem)
//   login_ingest_queue_depth{state="visible|in_flight"}         (gauge: SQS's approximate counts, last seen)
//   login_ingest_audit_anchor_failures_total                    (anchors of the audit trail that could not be written: alert on any increase)
//   login_ingest_audit_anchor_last_success_timestamp_seconds    (gauge: when the last anchor was written; alert when it grows old)
//
// No label carries a message ID, a user ID or any other value from a message.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { emptyDrainResult, type DrainResult, type PersistResult, type QueueDepth } from '../contract/types';

export const registry = new Registry();

export const OUTCOMES = ['received', 'persisted', 'quarantined', 'already_seen', 'delete_failed'] as const;
export type Outcome = (typeof OUTCOMES)[number];
export type Stage = 'receive' | 'transform' | 'persist' | 'acknowledge' | (string & {});

const messages = new Counter({
  name: 'login_ingest_messages_total',
  help: 'Messages by outcome: received from SQS, persisted as new rows, quarantined, already seen (redelivered, nothing written), deletes SQS refused.',
  labelNames: ['outcome'],
  registers: [registry],
});
for (const outcome of OUTCOMES) messages.inc({ outcome }, 0); // every series exists from the start

const quarantined = new Counter({
  name: 'login_ingest_quarantined_total',
  help: 'Quarantined messages by reason code (a message with two reasons counts under both).',
  labelNames: ['reason'],
  registers: [registry],
});

const duplicateLogins = new Counter({
  name: 'login_ingest_duplicate_logins_total',
  help: 'New rows whose login fingerprint equals an earlier row (same login, new message ID).',
  registers: [registry],
});

const stageSeconds = new Histogram({
  name: 'login_ingest_stage_duration_seconds',
  help: 'Time one batch spent in a stage of the pipeline, seconds.',
  labelNames: ['stage'],
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
  registers: [registry],
});

const stageMessages = new Counter({
  name: 'login_ingest_stage_messages_total',
  help: 'Messages that went through a stage of the pipeline.',
  labelNames: ['stage'],
  registers: [registry],
});

const stageSecondsTotal = new Counter({
  name: 'login_ingest_stage_seconds_total',
  help: 'Time spent in each stage of the pipeline, seconds, summed over the drain threads (rate() of it: how busy each stage is).',
  labelNames: ['stage'],
  registers: [registry],
});

const queueDepthGauge = new Gauge({
  name: 'login_ingest_queue_depth',
  help: "SQS's approximate number of messages in the queue, visible or in flight, when last asked.",
  labelNames: ['state'],
  registers: [registry],
});

/** Records that one batch spent `seconds` in `stage` (optionally with how many messages). */
const anchorFailures = new Counter({
  name: 'login_ingest_audit_anchor_failures_total',
  help: 'Anchors of the audit trail (AUDIT_ANCHOR) that could not be written. Any increase is an alert: the trail is not anchored.',
  registers: [registry],
});
const anchorLastSuccess = new Gauge({
  name: 'login_ingest_audit_anchor_last_success_timestamp_seconds',
  help: 'When the last anchor of the audit trail was written (Unix seconds; 0 before the first).',
  registers: [registry],
});

/** An anchor written (true) or not (false). */
export function recordAnchor(ok: boolean, now = Date.now()): void {
  if (ok) anchorLastSuccess.set(now / 1000);
  else anchorFailures.inc();
}

export function recordStage(stage: Stage, seconds: number, messageCount?: number): void {
  stageSeconds.observe({ stage }, seconds);
  if (messageCount !== undefined) stageMessages.inc({ stage }, messageCount);
}

/** Starts timing a stage; call the returned function when the batch leaves it. */
export function startStage(stage: Stage): EndStage {
  const started = process.hrtime.bigint();
  return (messageCount) => recordStage(stage, Number(process.hrtime.bigint() - started) / 1e9, messageCount);
}

/** The function startStage returned: ends that stage's timing. */
export type EndStage = (messageCount?: number) => void;

/** Messages received from SQS; with `endReceive`, also ends the receive stage's timing (for `count` messages). */
export function recordReceived(count: number, endReceive?: EndStage): void {
  endReceive?.(count);
  messages.inc({ outcome: 'received' }, count);
}

/** What one persist did: new rows, quarantined (and by reason), already seen, duplicate logins; with `endPersist`, also ends the persist stage's timing. */
export function recordOutcomes(r: PersistResult, endPersist?: EndStage): void {
  endPersist?.(r.persisted + r.quarantined + r.alreadySeen);
  messages.inc({ outcome: 'persisted' }, r.persisted);
  messages.inc({ outcome: 'quarantined' }, r.quarantined);
  messages.inc({ outcome: 'already_seen' }, r.alreadySeen);
  for (const [reason, n] of Object.entries(r.quarantinedByReason)) quarantined.inc({ reason }, n);
  duplicateLogins.inc(r.duplicateLogins);
}

/** Deletes SQS refused (the messages come back and are deduplicated); with `endAcknowledge`, also ends that stage's timing for `messageCount` messages. */
export function recordDeleteFailed(count: number, endAcknowledge?: EndStage, messageCount?: number): void {
  endAcknowledge?.(messageCount);
  messages.inc({ outcome: 'delete_failed' }, count);
}

/** SQS's approximate queue depth, as last asked. */
export function setQueueDepth(d: QueueDepth): void {
  queueDepthGauge.set({ state: 'visible' }, d.visible);
  queueDepthGauge.set({ state: 'in_flight' }, d.inFlight);
}

/** The counts a drain reports, cumulative (lib/contract/types.ts DrainResult). */
export type DrainTotals = Pick<
  DrainResult,
  'received' | 'persisted' | 'quarantined' | 'quarantinedByReason' | 'alreadySeen' | 'duplicateLogins' | 'ackFailed' | 'stageMs'
>;

/**
 * For one drain activity attempt, which reports running totals (its progress callback and its
 * result): returns a function to call with each new total; it records what changed since the
 * last call. Start it from the totals the attempt starts with (a retry's carried totals), so
 * nothing is counted twice.
 */
export function drainRecorder(start?: DrainTotals): (totals: DrainTotals) => void {
  let last: DrainTotals = start ?? emptyDrainResult();
  return (t) => {
    const d = (k: 'received' | 'persisted' | 'quarantined' | 'alreadySeen' | 'duplicateLogins' | 'ackFailed') =>
      Math.max(0, t[k] - last[k]);
    recordReceived(d('received'));
    const byReason: Record<string, number> = {};
    for (const [reason, n] of Object.entries(t.quarantinedByReason)) {
      const delta = n - (last.quarantinedByReason[reason] ?? 0);
      if (delta > 0) byReason[reason] = delta;
    }
    recordOutcomes({
      persisted: d('persisted'),
      quarantined: d('quarantined'),
      quarantinedByReason: byReason,
      alreadySeen: d('alreadySeen'),
      duplicateLogins: d('duplicateLogins'),
    });
    recordDeleteFailed(d('ackFailed'));
    for (const [stage, ms] of Object.entries(t.stageMs)) {
      const delta = ms - (last.stageMs[stage as keyof typeof last.stageMs] ?? 0);
      if (delta > 0) stageSecondsTotal.inc({ stage }, delta / 1000);
    }
    last = structuredClone(t);
  };
}

let defaultMetrics = false;
/** Node's process metrics (CPU, memory, event-loop lag) too; once, by the metrics server. */
export function collectProcessMetrics(): void {
  if (defaultMetrics) return;
  defaultMetrics = true;
  collectDefaultMetrics({ register: registry });
}
