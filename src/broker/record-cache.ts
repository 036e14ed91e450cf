// Recently appended enqueue payloads, kept so that a consumer keeping up with producers
// is served from memory instead of a disk read. Bounded by bytes; oldest out first.
//
// Eviction order is a plain queue of offsets beside the map: asking a Map for its oldest
// entry after many deletions walks over every deleted slot (quadratic under load).
// Deleted entries leave their offsets in that queue; when a consumer keeps up, entries are
// deleted rather than evicted and the queue's head never moves, so it is compacted once
// its stale offsets outnumber the live entries (without that it held 8 bytes for every
// message ever cached: 40 MB after draining a 5,000,000-message backlog).

import type { BudgetedCache, CacheBudget } from './cache-budget.js';

/** Stale offsets the eviction queue may hold beyond twice the live entries before it is compacted. */
const orderSlackEntries = 4096;

export class RecordCache implements BudgetedCache {
  private readonly entries = new Map<number, Uint8Array>();
  /** Offsets in insertion order from `head`; may name entries already deleted. */
  private order: number[] = [];
  private head = 0;
  private bytes = 0;
  private closed = false;

  /** `budget`: the node's budget over every partition's cache, charged and released with each payload. */
  constructor(
    private readonly bytesMax: number,
    private readonly budget?: CacheBudget,
  ) {
    budget?.register(this);
  }

  put(offset: number, payload: Uint8Array): void {
    // A closed cache holds nothing more: a late put would be charged to the budget for good.
    if (payload.byteLength > this.bytesMax || this.closed) return;
    this.delete(offset);
    this.entries.set(offset, payload);
    this.order.push(offset);
    this.bytes += payload.byteLength;
    while (this.bytes > this.bytesMax && this.evictOldest());
    if (this.head > 4096 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head);
      this.head = 0;
    }
    if (this.order.length - this.head > 2 * this.entries.size + orderSlackEntries) this.compactOrder();
    // Last: the budget may evict from this cache too.
    this.budget?.charge(payload.byteLength);
  }

  evictOldest(): boolean {
    while (this.head < this.order.length) {
      const oldest = this.order[this.head++]!;
      if (this.entries.has(oldest)) {
        this.delete(oldest);
        return true;
      }
    }
    return false;
  }

  /** Keeps one offset per live entry, its latest put, in order: O(order), amortised O(1) per put. */
  private compactOrder(): void {
    const kept: number[] = [];
    const seen = new Set<number>();
    for (let index = this.order.length - 1; index >= this.head; index--) {
      const offset = this.order[index]!;
      if (!this.entries.has(offset) || seen.has(offset)) continue;
      seen.add(offset);
      kept.push(offset);
    }
    this.order = kept.reverse();
    this.head = 0;
  }

  /** Offsets held in the eviction queue, live or stale (for tests: bounded by the live entries). */
  get orderLength(): number {
    return this.order.length - this.head;
  }

  get(offset: number): Uint8Array | undefined {
    return this.entries.get(offset);
  }

  delete(offset: number): void {
    const payload = this.entries.get(offset);
    if (payload === undefined) return;
    this.entries.delete(offset);
    this.bytes -= payload.byteLength;
    this.budget?.release(payload.byteLength);
  }

  /** Forgets every payload (an idle partition lets go of what it keeps for speed). */
  clear(): void {
    this.budget?.release(this.bytes);
    this.entries.clear();
    this.order = [];
    this.head = 0;
    this.bytes = 0;
  }

  /** Clears and leaves the node's budget (the partition closes). */
  close(): void {
    this.closed = true;
    this.clear();
    this.budget?.unregister(this);
  }

  /** Forgets every payload at or above `offset` (a cut tail: those offsets will hold other records). */
  deleteFrom(offset: number): void {
    for (const cached of [...this.entries.keys()]) if (cached >= offset) this.delete(cached);
  }

  get sizeBytes(): number {
    return this.bytes;
  }
}
