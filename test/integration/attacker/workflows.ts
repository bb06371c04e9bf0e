// A workflow of an attacker's own, as anyone with access to the namespace can write and run
// on a task queue of their own: it schedules one of the project's activities directly, on
// whatever task queue it names, with whatever input it likes. Only Temporal's public API.
import { proxyActivities } from '@temporalio/workflow';

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
