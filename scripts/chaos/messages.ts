// The messages of a chaos run: generated bodies (malformed and duplicate content among
// them) with hostile shapes placed at random slots, and where each hostile one stands with
// the reason it must be quarantined with.
import { generateBodies, random } from '../../lib/ingest/load';
import { hostileBodies } from './hostile';
import type { ChaosOptions } from './options';

export interface Messages {
  bodies: string[];
  /** Index of each hostile body, with the reason it must be quarantined with. */
  hostile: { index: number; kind: string; reason: string }[];
}

export function chaosMessages(
  o: Pick<ChaosOptions, 'messages' | 'seed' | 'malformedShare' | 'duplicateShare' | 'hostileShare'>,
): Messages {
  const rnd = random(o.seed ^ 0x5eed);
  const nHostile = Math.round(o.messages * o.hostileShare);
  const bodies = generateBodies(o.messages - nHostile, {
    malformedShare: o.malformedShare,
    duplicateShare: o.duplicateShare,
    seed: o.seed,
  });
  const slots = new Set<number>();
  while (slots.size < nHostile) slots.add(Math.floor(rnd() * o.messages));
  const hostile = hostileBodies(nHostile, rnd);
  const out: string[] = [];
  const placed: Messages['hostile'] = [];
  let g = 0;
  let h = 0;
  for (let i = 0; i < o.messages; i++) {
    if (slots.has(i)) {
      placed.push({ index: i, kind: hostile[h].kind, reason: hostile[h].reason });
      out.push(hostile[h++].body);
    } else out.push(bodies[g++]);
  }
  return { bodies: out, hostile: placed };
}
