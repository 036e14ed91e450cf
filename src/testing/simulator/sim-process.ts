// What one simulated server process sees of the world: a view of the shared simulated disk
// and of the shared simulated time that dies with the process.
//
// Why views: a crash in the simulator abandons the old LocalBroker object, but its
// promises and timers still exist in this one JavaScript process. Without a barrier, an
// abandoned group commit could open a file or fsync a directory on the NEW disk image, or
// an abandoned maintenance timer could fire into the next incarnation: writes by a process
// that is dead. Every operation through a dead view throws EBADF before it reaches the
// disk, and a dead view's timers never fire.
//
// States of a process view: alive -> dead (kill()); never back.
//
// SimTimeline is the one simulated time of a run: timers of every process in one list,
// fired one at a time in (time, creation) order by the simulator's loop, which lets the
// promises each timer starts settle before it fires the next.

import type { Clock, TimerHandle } from '../../core/clock.js';
import { PendingSyncs } from '../../core/pending-syncs.js';
import type { FileHandle, FileSystem } from '../../core/filesystem.js';
import { SeededRandom } from '../../core/random.js';
import { SimError } from '../sim-filesystem.js';

interface TimelineTimer {
  atMs: number;
  sequence: number;
  callback: () => void;
  cancelled: boolean;
  owner: ProcessClock;
}

/**
 * The log options a simulated process adds with --preallocate: zeros written ahead of its
 * records (preallocateBytes, as `berth serve` does), 64-4,160 bytes chosen by seed so that
 * crashes tear writes into that space. Drawn apart from the schedule's random, so that the
 * option changes nothing else about a seed.
 */
export function preallocationOf(seed: number, preallocate: boolean | undefined): { preallocateBytes?: number } {
  return preallocate === true ? { preallocateBytes: 64 + new SeededRandom(seed ^ 0x2545f491).int(4096) } : {};
}

export class SimTimeline {
  private currentMs: number;
  private timers: TimelineTimer[] = [];
  private sequence = 0;

  constructor(startMs: number) {
    this.currentMs = startMs;
  }

  nowMs(): number {
    return this.currentMs;
  }

  add(owner: ProcessClock, delayMs: number, callback: () => void): TimerHandle {
    const timer: TimelineTimer = { atMs: this.currentMs + Math.max(0, delayMs), sequence: this.sequence++, callback, cancelled: false, owner };
    this.timers.push(timer);
    return { cancel: () => { timer.cancelled = true; } };
  }

  /** When the next live timer is due, if any. */
  nextDueMs(): number | undefined {
    this.prune();
    let earliest: number | undefined;
    for (const timer of this.timers) if (earliest === undefined || timer.atMs < earliest) earliest = timer.atMs;
    return earliest;
  }

  /**
   * Fires the single earliest live timer due at or before `targetMs` (moving time to it)
   * and returns true; or moves time to `targetMs` and returns false when none is due.
   */
  fireNext(targetMs: number): boolean {
    this.prune();
    let next: TimelineTimer | undefined;
    for (const timer of this.timers) {
      if (next === undefined || timer.atMs < next.atMs || (timer.atMs === next.atMs && timer.sequence < next.sequence)) next = timer;
    }
    if (next === undefined || next.atMs > targetMs) {
      this.currentMs = Math.max(this.currentMs, targetMs);
      return false;
    }
    this.timers.splice(this.timers.indexOf(next), 1);
    this.currentMs = Math.max(this.currentMs, next.atMs);
    next.callback();
    return true;
  }

  private prune(): void {
    this.timers = this.timers.filter((timer) => !timer.cancelled && timer.owner.alive);
  }
}

/** One process's clock: the timeline's time; its timers die with the process. */
export class ProcessClock implements Clock {
  alive = true;

  constructor(private readonly timeline: SimTimeline) {}

  nowMs(): number {
    return this.timeline.nowMs();
  }

  monotonicMs(): number {
    return this.timeline.nowMs();
  }

  setTimer(delayMs: number, callback: () => void): TimerHandle {
    if (!this.alive) return { cancel: () => undefined };
    return this.timeline.add(this, delayMs, callback);
  }
}

/** One process's file system: every call and every handle fails once the process is dead. */
export class ProcessFileSystem implements FileSystem {
  alive = true;
  /** The syncs running now, watched when a clock was given (NodeFileSystem's counterpart). */
  private readonly pending: PendingSyncs | undefined;

  /** `nowMs`: the process's monotonic clock, to watch its running syncs (off: syncs run exactly as before, turn for turn). */
  constructor(
    private readonly disk: FileSystem,
    nowMs?: () => number,
  ) {
    this.pending = nowMs === undefined ? undefined : new PendingSyncs(nowMs);
  }

  /** How long the oldest sync still running has waited, in ms (0: none, or not watched). */
  pendingSyncAgeMs(): number {
    return this.pending?.oldestAgeMs() ?? 0;
  }

  /** `sync`, watched when this file system watches its syncs. */
  watchSync(sync: () => Promise<void>): Promise<void> {
    return this.pending === undefined ? sync() : this.pending.track(sync());
  }

  check(what: string): void {
    if (!this.alive) throw new SimError('EBADF', `${what}: the process is dead`);
  }

  async open(path: string, options: { create: boolean }): Promise<FileHandle> {
    this.check(`open ${path}`);
    const handle = await this.disk.open(path, options);
    this.check(`open ${path}`);
    return new ProcessFileHandle(this, handle, path);
  }

  async list(directory: string): Promise<string[]> {
    this.check(`list ${directory}`);
    return this.disk.list(directory);
  }

  async mkdirp(directory: string): Promise<void> {
    this.check(`mkdirp ${directory}`);
    return this.disk.mkdirp(directory);
  }

  async rename(from: string, to: string): Promise<void> {
    this.check(`rename ${from}`);
    return this.disk.rename(from, to);
  }

  async remove(path: string): Promise<void> {
    this.check(`remove ${path}`);
    return this.disk.remove(path);
  }

  async exists(path: string): Promise<boolean> {
    this.check(`exists ${path}`);
    return this.disk.exists(path);
  }

  async syncDirectory(directory: string): Promise<void> {
    this.check(`syncDirectory ${directory}`);
    return this.watchSync(() => this.disk.syncDirectory(directory));
  }
}

class ProcessFileHandle implements FileHandle {
  constructor(
    private readonly process: ProcessFileSystem,
    private readonly handle: FileHandle,
    private readonly path: string,
  ) {}

  async write(data: Uint8Array, position: number): Promise<void> {
    this.process.check(`write ${this.path}`);
    return this.handle.write(data, position);
  }

  async read(position: number, length: number): Promise<Uint8Array> {
    this.process.check(`read ${this.path}`);
    return this.handle.read(position, length);
  }

  async sync(): Promise<void> {
    this.process.check(`sync ${this.path}`);
    return this.process.watchSync(() => this.handle.sync());
  }

  async size(): Promise<number> {
    this.process.check(`size ${this.path}`);
    return this.handle.size();
  }

  async truncate(length: number): Promise<void> {
    this.process.check(`truncate ${this.path}`);
    return this.handle.truncate(length);
  }

  async close(): Promise<void> {
    // Closing a handle of a dead process is harmless and keeps finally-blocks quiet.
    if (!this.process.alive) return;
    return this.handle.close();
  }
}
