// Comparing the audit trail with its anchors (pure). An anchor is the trail's head as it
// was at some time: how many entries, the last one's ID and hash. It is written outside the
// database (lib/recovery/anchor.ts: an S3 object under Object Lock, or a local append-only
// file), so that whoever can rewrite the database (the owner role) cannot rewrite it. The
// hash chain alone (verifyAuditChain) proves that no entry was changed *relative to the
// others*; it cannot see the newest entries deleted, or the whole chain recomputed. An
// anchor can:
//   * its last entry is gone and the chain now ends before it: entries deleted from the end;
//   * its last entry is there with another hash: the chain was rewritten (by the owner);
//   * fewer entries up to its last one than it counted: entries deleted before it.
import { GENESIS_HASH } from './audit';

export const ANCHOR_VERSION = 1;

export interface AuditHead {
  /** How many entries the chain has. */
  entries: number;
  /** The last entry's ID, or null for an empty chain. */
  lastId: string | null;
  /** The last entry's hash (the genesis hash for an empty chain). */
  lastHash: string;
}

export interface Anchor extends AuditHead {
  version: typeof ANCHOR_VERSION;
  /** When it was taken (ISO 8601). */
  at: string;
}

/** An anchor as read, with where it was read from (an S3 key, a file and line) for reports. */
export interface ReadAnchor {
  where: string;
  anchor: Anchor | null;
  /** Why it could not be parsed (anchor is null then). */
  problem?: string;
}

/** What the chain holds at an anchored entry: its hash and its position (1 = first entry). */
export interface ChainPoint {
  hash: string;
  position: number;
}

export interface AnchorFinding {
  /** The anchor (where it was read from). */
  anchor: string;
  /** The entry the finding is about (the anchored last ID), or null. */
  entry: string | null;
  problem: string;
}

const HEX64 = /^[0-9a-f]{64}$/;

/** An anchor's JSON text checked, or a problem in words. */
export function parseAnchor(text: string): Anchor | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'not valid JSON';
  }
  const a = value as Partial<Anchor>;
  if (
    typeof value !== 'object' ||
    value === null ||
    a.version !== ANCHOR_VERSION ||
    !Number.isSafeInteger(a.entries) ||
    (a.entries as number) < 0 ||
    !(a.lastId === null || (typeof a.lastId === 'string' && /^\d+$/.test(a.lastId))) ||
    typeof a.lastHash !== 'string' ||
    !HEX64.test(a.lastHash) ||
    typeof a.at !== 'string' ||
    Number.isNaN(Date.parse(a.at))
  )
    return `not an anchor (expected {"version": ${ANCHOR_VERSION}, "entries", "lastId", "lastHash", "at"})`;
  return { version: ANCHOR_VERSION, entries: a.entries as number, lastId: a.lastId, lastHash: a.lastHash, at: a.at };
}

export function newAnchor(head: AuditHead, now = new Date()): Anchor {
  return { version: ANCHOR_VERSION, entries: head.entries, lastId: head.lastId, lastHash: head.lastHash, at: now.toISOString() };
}

/**
 * Every way the chain disagrees with the anchors. `points` gives, for each anchored last
 * ID still in the chain, its hash and position; `head` is the chain's head now.
 */
export function compareWithAnchors(
  head: AuditHead,
  points: ReadonlyMap<string, ChainPoint>,
  anchors: readonly ReadAnchor[],
): AnchorFinding[] {
  const findings: AnchorFinding[] = [];
  for (const { where, anchor, problem } of anchors) {
    if (!anchor) {
      findings.push({ anchor: where, entry: null, problem: `anchor ${where} cannot be read: ${problem ?? 'unknown'}` });
      continue;
    }
    if (anchor.lastId === null) {
      if (anchor.lastHash !== GENESIS_HASH || anchor.entries !== 0)
        findings.push({ anchor: where, entry: null, problem: `anchor ${where} is malformed (no last entry but a hash)` });
      continue;
    }
    const id = anchor.lastId;
    const point = points.get(id);
    if (!point) {
      const endsAt = head.lastId === null ? 'the chain is empty' : `the chain ends at entry ${head.lastId}`;
      findings.push({
        anchor: where,
        entry: id,
        problem:
          head.lastId === null || BigInt(head.lastId) < BigInt(id)
            ? `entry ${id} (anchored by ${where} at ${anchor.at}) is gone and ${endsAt}: entries were deleted from the end of the trail`
            : `entry ${id} (anchored by ${where} at ${anchor.at}) is gone from the middle of the chain: entries were deleted or the chain was rewritten`,
      });
      continue;
    }
    if (point.hash !== anchor.lastHash) {
      findings.push({
        anchor: where,
        entry: id,
        problem: `entry ${id} has hash ${point.hash} but ${where} anchored ${anchor.lastHash} at ${anchor.at}: the chain was rewritten up to this entry`,
      });
    }
    if (point.position !== anchor.entries) {
      findings.push({
        anchor: where,
        entry: id,
        problem: `${where} counted ${anchor.entries} entries up to entry ${id} at ${anchor.at}, the chain now has ${point.position}: entries were ${point.position < anchor.entries ? 'deleted' : 'inserted'} before it`,
      });
    }
  }
  return findings;
}
