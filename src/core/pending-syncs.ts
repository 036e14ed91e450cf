// The fsyncs a process has running, by start time, so that it can tell how long the
// oldest has waited: a disk that stops answering an fsync held off the event loop does
// not stop the process, and a cluster node that cannot commit must not keep leading
// (src/cluster/lease-keeper.ts steps aside). NodeFileSystem and the simulator's
// ProcessFileSystem both keep one.

export class PendingSyncs {
  private nextId = 0;
  /** Insertion order is start order: the first entry is the oldest. */
  private readonly startedMs = new Map<number, number>();

  constructor(private readonly nowMs: () => number) {}

  /** `sync`, counted as running until it settles. */
  track(sync: Promise<void>): Promise<void> {
    const id = this.nextId++;
    this.startedMs.set(id, this.nowMs());
    return sync.finally(() => this.startedMs.delete(id));
  }

  /** How long the oldest sync still running has waited, in ms (0: none is running). */
  oldestAgeMs(): number {
    for (const startedMs of this.startedMs.values()) return this.nowMs() - startedMs;
    return 0;
  }
}
