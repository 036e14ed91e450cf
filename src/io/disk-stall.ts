// Fault injection for the chaos harness: a disk whose fsyncs hang. Off unless the server
// is started with BERTH_TEST_DISK_STALL_FILE=<path>; then, while a file exists at that
// path, every fdatasync of this process waits until it is removed, as one on a stalled
// device would. A turn-end flush holds the main thread (the node stops answering, its
// etcd lease lapses), a thread-pool fsync holds only its own promise. Writes are not held:
// a stalled device still takes writes into the page cache.
//
// The flag is a file, not a signal, because the main thread it blocks could not run a
// signal handler to end the stall. While no stall is on, a timer looks for the file every
// 50 ms, so an fsync costs one boolean test.

import { existsSync } from 'node:fs';

const pollIntervalMs = 50;
const blockedCheckMs = 10;

export interface DiskStallLogger {
  warn(fields: Record<string, unknown>, message: string): void;
}

export class DiskStall {
  private stalled = false;
  /** Whether the end of the current stall was logged (once per stall, however many fsyncs it held). */
  private endLogged = true;
  private readonly timer: NodeJS.Timeout;
  /** A private cell to sleep on: Atomics.wait blocks the calling thread for its timeout. */
  private readonly sleeper = new Int32Array(new SharedArrayBuffer(4));

  constructor(
    readonly flagPath: string,
    private readonly logger: DiskStallLogger,
  ) {
    logger.warn({ flagPath }, 'fault injection: fsyncs hang while this file exists (BERTH_TEST_DISK_STALL_FILE); for tests only');
    this.timer = setInterval(() => this.look(), pollIntervalMs);
    this.timer.unref();
    this.look();
  }

  /** A DiskStall when BERTH_TEST_DISK_STALL_FILE is set, else undefined (the production case). */
  static fromEnvironment(environment: NodeJS.ProcessEnv, logger: DiskStallLogger): DiskStall | undefined {
    const flagPath = environment['BERTH_TEST_DISK_STALL_FILE'];
    return flagPath === undefined || flagPath === '' ? undefined : new DiskStall(flagPath, logger);
  }

  /** True while the flag file was last seen: an fsync now must wait. */
  get active(): boolean {
    return this.stalled;
  }

  /** Blocks the calling thread until the flag file is gone. */
  holdBlocking(): void {
    const startedMs = Date.now();
    while (existsSync(this.flagPath)) Atomics.wait(this.sleeper, 0, 0, blockedCheckMs);
    this.released(startedMs, 'main thread');
  }

  /** Resolves once the flag file is gone. */
  async hold(): Promise<void> {
    const startedMs = Date.now();
    while (existsSync(this.flagPath)) await new Promise((resolve) => setTimeout(resolve, blockedCheckMs));
    this.released(startedMs, 'thread pool');
  }

  close(): void {
    clearInterval(this.timer);
  }

  private look(): void {
    const present = existsSync(this.flagPath);
    if (present && !this.stalled) this.endLogged = false;
    this.stalled = present;
  }

  private released(startedMs: number, where: string): void {
    this.stalled = false;
    // The poll may have seen the file go first (a thread-pool hold yields to it): the log
    // line is what the chaos harness reads to know a stall held an fsync, so it is written
    // once per stall whichever way the stall ended.
    if (this.endLogged) return;
    this.endLogged = true;
    this.logger.warn({ heldMs: Date.now() - startedMs, where }, 'fault injection: the stalled disk is back; the held fsync goes on');
  }
}
