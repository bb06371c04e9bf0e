// The audit anchor activity: writes the trail's head to the anchor store (lib/recovery/anchor.ts).
// It runs on the ingest task queue, where anyone with namespace access can schedule it: at
// worst they add an anchor of the true head (it reads the head itself and takes no input),
// which makes the trail's evidence stronger, not weaker. A failure is an alert, never a
// silent skip: a metric (login_ingest_audit_anchor_failures_total), an ERROR log line, and
// a failed activity (retried, then a failed workflow run visible in the schedule).
import type { Db } from '../lib/platform/db';
import { recordAnchor } from '../lib/ingest/metrics';
import { errorMessage } from '../lib/platform/guards';
import { logger } from '../lib/platform/log';
import { writeAnchor, type AnchorStore } from '../lib/recovery/anchor';

export interface AnchorResult {
  entries: number;
  lastId: string | null;
  where: string;
}

export function createAnchorActivities(deps: { db: Db; store: AnchorStore }) {
  return {
    async anchorAuditTrail(): Promise<AnchorResult> {
      try {
        const { anchor, where } = await writeAnchor(deps.db, deps.store);
        recordAnchor(true);
        return { entries: anchor.entries, lastId: anchor.lastId, where };
      } catch (err) {
        recordAnchor(false);
        logger.error(
          `ALERT: the audit trail's head could not be anchored to ${deps.store.description}: ${errorMessage(err)}. Until this is fixed, deleting its newest entries would go unnoticed.`,
        );
        throw err;
      }
    },
  };
}

export type AnchorActivities = ReturnType<typeof createAnchorActivities>;
