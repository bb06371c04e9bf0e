// The CLI's exit codes (README: "Exit codes"), for scripts. One place, so the commands, the
// demo and the documentation cannot disagree.
import type { StopReason } from '../lib/contract/types';

export const EXIT = {
  /** Done: the queue drained (or `--max-messages` reached), a read command answered, a check passed. */
  ok: 0,
  /** Failed: an error (a service unreachable, bad configuration, the workflow failed), or `audit verify` found the chain broken. */
  failure: 1,
  /** Refused: a recovery request or decision refused, denied or expired; nothing was decrypted. */
  refused: 2,
  /** The ingest stopped with messages another receiver still held (`messages_unavailable`); they are left for the next run. */
  messagesUnavailable: 3,
  /** Wrong usage: an unknown command or option, a bad option value. */
  usage: 64,
} as const;

/** The exit code of a finished ingest. */
export function ingestExitCode(stopReason: StopReason | null): number {
  return stopReason === 'messages_unavailable' ? EXIT.messagesUnavailable : EXIT.ok;
}
