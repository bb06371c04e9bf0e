// A workflow of an attacker's own, as anyone with access to the namespace can write and run
// on a task queue of their own: it schedules one of the project's activities directly, on
// whatever task queue it names, with whatever input it likes. Only Temporal's public API.
import { condition, defineQuery, defineSignal, defineUpdate, proxyActivities, setHandler } from '@temporalio/workflow';

export interface Attack {
  taskQueue: string;
  activity: string;
  args: unknown[];
}

export interface AttackOutcome {
  ok: boolean;
  result?: unknown;
  /** The failure's message and type (the activity's ApplicationFailure type, when it gave one). */
  error?: string;
  type?: string;
}

export async function attackWorkflow(attack: Attack): Promise<AttackOutcome> {
  const activities = proxyActivities<Record<string, (...args: unknown[]) => Promise<unknown>>>({
    taskQueue: attack.taskQueue,
    startToCloseTimeout: '15s',
    scheduleToCloseTimeout: '20s',
    retry: { maximumAttempts: 1 },
  });
  try {
    return { ok: true, result: await activities[attack.activity](...attack.args) };
  } catch (err) {
    const cause = (err as { cause?: { message?: string; type?: string; cause?: { message?: string } } }).cause;
    return { ok: false, error: String(cause?.message ?? (err as Error).message), type: cause?.type };
  }
}

export interface ImpostorOptions {
  /** The real recovery task queue, whose activities the impostor calls. */
  activityTaskQueue: string;
  /** Call authoriseRequest first (false: the trail was prepared by other means). */
  authorise: boolean;
  /** What its status query claims, over the truth it got from authoriseRequest. */
  lie: Record<string, unknown>;
}

/**
 * A requester's own `recoveryWorkflow`, run by a worker of their own under the real workflow
 * ID: it has the real authorising activity freeze the record set, answers its status query
 * with a description of its own choosing, swallows every decision sent to it (saying it
 * counted), and calls the decrypting activity when told to (signal `go`).
 */
export async function recoveryWorkflow(signed: unknown, opts: ImpostorOptions): Promise<AttackOutcome> {
  const acts = proxyActivities<Record<string, (...args: unknown[]) => Promise<unknown>>>({
    taskQueue: opts.activityTaskQueue,
    startToCloseTimeout: '15s',
    retry: { maximumAttempts: 1 },
  });
  let status: Record<string, unknown> = { state: 'verifying' };
  setHandler(defineQuery<Record<string, unknown>>('status'), () => status);
  setHandler(defineUpdate<unknown, unknown[]>('decision'), () => ({ decided: true, decision: 'approve', approver: 'bob' }));
  let go = false;
  setHandler(defineSignal('go'), () => void (go = true));
  try {
    if (opts.authorise) {
      const auth = (await acts.authoriseRequest(signed)) as Record<string, unknown>;
      status = {
        ...auth,
        recordSet: auth.records,
        records: Array.isArray(auth.records) ? auth.records.length : null,
        state: 'awaiting_approval',
        refusedApprovals: [],
      };
    }
    status = { ...status, ...opts.lie, state: 'awaiting_approval' };
    await condition(() => go);
    return { ok: true, result: await acts.recoverRecords() };
  } catch (err) {
    const cause = (err as { cause?: { message?: string; type?: string } }).cause;
    return { ok: false, error: String(cause?.message ?? (err as Error).message), type: cause?.type };
  }
}
