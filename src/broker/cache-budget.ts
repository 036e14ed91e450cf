// One memory budget for the record caches of every partition on a node. Each cache keeps
// at most its own bytesMax (64 MiB by default) of recent payloads; without a node-wide
// bound, a node with many queues holding backlogs kept 64 MiB for each of them. Over the
// budget, the largest cache gives up its oldest payloads first: a busy queue keeps the
// cache it reads from, a backlog nobody drains gives way. A payload evicted is read from
// the log when it is received, as for any backlog past the cache.

/** What the budget needs from a cache. */
export interface BudgetedCache {
  readonly sizeBytes: number;
  /** Drops the cache's oldest payload; false when it holds none. */
  evictOldest(): boolean;
}

export class CacheBudget {
  private readonly caches = new Set<BudgetedCache>();
  private usedBytes = 0;
  /** Over the budget, eviction goes this far below it, so that the largest cache is looked for once per slack, not once per put. */
  private readonly slackBytes: number;

  constructor(readonly bytesMax: number) {
    this.slackBytes = Math.min(1024 * 1024, Math.floor(bytesMax / 16));
  }

  get sizeBytes(): number {
    return this.usedBytes;
  }

  register(cache: BudgetedCache): void {
    this.caches.add(cache);
  }

  /** The cache must have released everything it held (cleared) before it leaves. */
  unregister(cache: BudgetedCache): void {
    this.caches.delete(cache);
  }

  release(bytes: number): void {
    this.usedBytes -= bytes;
  }

  /** Counts a payload a cache now holds; over the budget, evicts from the largest caches. */
  charge(bytes: number): void {
    this.usedBytes += bytes;
    if (this.usedBytes <= this.bytesMax) return;
    const target = this.bytesMax - this.slackBytes;
    while (this.usedBytes > target) {
      const { largest, secondBytes } = this.largestTwo();
      if (largest === undefined) return;
      // Down to a slack below the next largest: caches of equal size take turns a slack at
      // a time, so the caches are scanned once per slack evicted, not once per payload.
      const floorBytes = Math.max(0, secondBytes - this.slackBytes);
      let evicted = false;
      while (this.usedBytes > target && (!evicted || largest.sizeBytes > floorBytes) && largest.evictOldest()) evicted = true;
      if (!evicted) return;
    }
  }

  private largestTwo(): { largest: BudgetedCache | undefined; secondBytes: number } {
    let largest: BudgetedCache | undefined;
    let secondBytes = 0;
    for (const cache of this.caches) {
      if (largest === undefined || cache.sizeBytes > largest.sizeBytes) {
        if (largest !== undefined) secondBytes = largest.sizeBytes;
        largest = cache;
      } else if (cache.sizeBytes > secondBytes) secondBytes = cache.sizeBytes;
    }
    return { largest: largest !== undefined && largest.sizeBytes > 0 ? largest : undefined, secondBytes };
  }
}
