// The messages one drain holds between their receive and their delete: the newest receipt
// handle of each, and until when SQS keeps it from other receivers. The drain asks, every
// tick, which of them expire within half a visibility timeout (a commit running long) and
// extends those, so a live drain never lets a held message expire; most ticks that is none,
// found without looking at each message.
export interface HeldHandle {
  messageId: string;
  receiptHandle: string;
}

export class HeldMessages {
  readonly #byId = new Map<string, { receiptHandle: string; visibleUntil: number }>();
  /** No held message's visibility ends before this (messages only join later; extensions push it out). */
  #earliestVisibleUntil = Infinity;

  constructor(private readonly visibilityMs: number) {}

  get size(): number {
    return this.#byId.size;
  }

  /**
   * Holds a message received at `now`. False if it was held already (a redelivery): it
   * then keeps the newer receipt handle, the one its delete must use.
   */
  hold(messageId: string, receiptHandle: string, now: number): boolean {
    const visibleUntil = now + this.visibilityMs;
    this.#earliestVisibleUntil = Math.min(this.#earliestVisibleUntil, visibleUntil);
    const known = this.#byId.get(messageId);
    if (known) {
      known.receiptHandle = receiptHandle;
      known.visibleUntil = visibleUntil;
      return false;
    }
    this.#byId.set(messageId, { receiptHandle, visibleUntil });
    return true;
  }

  /** The receipt handles of those of `ids` still held. */
  handles(ids: string[]): HeldHandle[] {
    return ids.flatMap((messageId) => {
      const h = this.#byId.get(messageId);
      return h ? [{ messageId, receiptHandle: h.receiptHandle }] : [];
    });
  }

  release(ids: string[]): void {
    for (const id of ids) this.#byId.delete(id);
  }

  /**
   * The held messages whose visibility ends within half a timeout of `now`, counted as
   * extended by a full timeout from `now` (the caller asks SQS to do that).
   */
  takeExpiring(now: number): HeldHandle[] {
    const soon = now + this.visibilityMs / 2;
    if (soon < this.#earliestVisibleUntil) return [];
    const expiring: HeldHandle[] = [];
    this.#earliestVisibleUntil = Infinity;
    for (const [messageId, h] of this.#byId) {
      if (h.visibleUntil < soon) {
        h.visibleUntil = now + this.visibilityMs;
        expiring.push({ messageId, receiptHandle: h.receiptHandle });
      }
      this.#earliestVisibleUntil = Math.min(this.#earliestVisibleUntil, h.visibleUntil);
    }
    return expiring;
  }
}
