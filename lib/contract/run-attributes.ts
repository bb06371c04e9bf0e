// What an ingest run did, as search attributes the Web UI's workflow list and
// `temporal workflow list --query 'IngestQuarantined > 0'` show and filter. Counts and the
// stop reason only: none of them is PII. Pure and workflow-safe (the workflow calls
// `runAttributes()`, the CLI reads the same keys back in `client.ts runs`).
//
// The names and types must be registered with the server before a run can upsert them:
// the embedded dev server does it at start (`--search-attribute`, services/index.ts),
// compose and Kubernetes with `temporal operator search-attribute create` (REGISTER_COMMAND).
import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributeUpdatePair } from '@temporalio/common';
import type { IngestOptions } from './ingest-options';
import type { IngestSummary } from './types';

export const INGEST_RECEIVED = defineSearchAttributeKey('IngestReceived', SearchAttributeType.INT);
export const INGEST_PERSISTED = defineSearchAttributeKey('IngestPersisted', SearchAttributeType.INT);
export const INGEST_QUARANTINED = defineSearchAttributeKey('IngestQuarantined', SearchAttributeType.INT);
/** `running` until the end, then queue_empty | max_messages | messages_unavailable. */
export const INGEST_STOP_REASON = defineSearchAttributeKey('IngestStopReason', SearchAttributeType.KEYWORD);

/**
 * Three Int attributes at most: Temporal's SQL visibility stores (the dev server's SQLite,
 * PostgreSQL, MySQL) allow no more than three custom Int search attributes per namespace,
 * and the dev server refuses to start with a fourth. "Already seen" stays in the result.
 */
export const INGEST_SEARCH_ATTRIBUTES = [INGEST_RECEIVED, INGEST_PERSISTED, INGEST_QUARANTINED, INGEST_STOP_REASON];

/** `Name=Type` as `temporal server start-dev --search-attribute` and `temporal operator search-attribute create` spell the types. */
const CLI_TYPE: Record<string, string> = { INT: 'Int', KEYWORD: 'Keyword' };
export const SEARCH_ATTRIBUTE_ARGS: string[] = INGEST_SEARCH_ATTRIBUTES.map((k) => `${k.name}=${CLI_TYPE[k.type]}`);

/** The summary as typed search-attribute updates. */
export function ingestSearchAttributes(s: IngestSummary): SearchAttributeUpdatePair[] {
  return [
    { key: INGEST_RECEIVED, value: s.received },
    { key: INGEST_PERSISTED, value: s.persisted },
    { key: INGEST_QUARANTINED, value: s.quarantined },
    { key: INGEST_STOP_REASON, value: s.stopReason ?? 'running' },
  ];
}

/**
 * For the workflow: `update(summary)` after each batch upserts at most once per `everyMs`
 * of workflow time (each upsert is a history event), `final(summary)` always (at the end and
 * before continue-as-new). `upsert` is `upsertSearchAttributes` from @temporalio/workflow,
 * passed in so this module stays importable outside a workflow.
 */
export function runAttributes(upsert: (pairs: SearchAttributeUpdatePair[]) => void, everyMs = 5000) {
  let last = Number.NEGATIVE_INFINITY;
  let lastValue = '';
  const write = (s: IngestSummary) => {
    const pairs = ingestSearchAttributes(s);
    const value = JSON.stringify(pairs.map((p) => p.value));
    if (value === lastValue) return; // nothing changed: no event
    upsert(pairs);
    lastValue = value;
    last = Date.now();
  };
  return {
    update(s: IngestSummary): void {
      if (Date.now() - last >= everyMs) write(s);
    },
    final: write,
  };
}

/** A static summary for the Web UI's run page and list (`staticSummary` on start). */
export function ingestStaticSummary(
  o: Pick<IngestOptions, 'batchSize' | 'concurrency' | 'maxMessages'>,
  startedBy: string,
): string {
  return `Drain the SQS login queue into PostgreSQL (batch ${o.batchSize ?? 'default'} × ${o.concurrency ?? 'default'} in flight${o.maxMessages ? `, at most ${o.maxMessages} messages` : ''}); started by ${startedBy}`;
}
