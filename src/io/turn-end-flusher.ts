// Starts the logs' group commits at the end of the event loop's turn, and lets a turn's
// only flush fsync on the main thread.
//
// Through the thread pool, an fsync costs the main thread a hand-off to another thread and
// back, and its completion waits for the next turn of a busy event loop: on this 2-core VM
// a 0.2 ms fdatasync took 5-7 ms from start to acknowledgement at load. Redis with
// appendfsync always does what this does: gather the turn's writes, fsync once, then
// answer. Started after the first append of a turn (a microtask, the log's default), a
// blocking fsync would run once per socket read instead, and measured far worse (BENCHMARKS.md).
//
// When several logs flush in one turn, they all go through the thread pool, so their
// fsyncs overlap instead of running one after another on the main thread.
//
// Flushes run in the order setImmediate callbacks were scheduled: work deferred before the
// turn's first append (a primary's shipping to its backups) goes out before the fsync.

import type { FlushScheduler } from '../storage/types.js';

export class TurnEndFlusher implements FlushScheduler {
  private queued: Array<(syncBlocking: boolean) => void> = [];

  schedule(flush: (syncBlocking: boolean) => void): void {
    this.queued.push(flush);
    if (this.queued.length === 1) setImmediate(this.run);
  }

  private readonly run = (): void => {
    const flushes = this.queued;
    this.queued = [];
    const alone = flushes.length === 1;
    for (const flush of flushes) {
      try {
        flush(alone);
      } catch (error) {
        // A throwing flush is a bug: crash loudly, but only after the other logs' flushes ran.
        queueMicrotask(() => { throw error; });
      }
    }
  };
}
