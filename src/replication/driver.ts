// Drivers that perform what src/replication/state.ts decides, for one partition:
//
// PrimaryDriver (this node leads the partition at `epoch`): the runner's CommitTracker.
//   Per backup, a sync loop: ask the backup for its log tail (replica.state), compute the
//   divergence point, have it cut there and follow this epoch (replica.sync), then stream
//   records in pipelined Replicate frames (from memory when recent, else from disk) and
//   take its acknowledgements. A backup that cannot catch up from records (behind this
//   log's start, or it cannot cut below its own checkpoint) gets a snapshot: this node's
//   latest checkpoint in SnapshotChunk frames, then replica.installSnapshot; its log
//   restarts at this log's start and records stream from there. It counts for commits only once streaming, and
//   then only for records below its acknowledged durable end. A heartbeat frame every heartbeatMs carries the "held by
//   every replica" end, below which backups may checkpoint.
//   waitCommitted(end, r): the local log durable below end, r-1 backups acknowledged it
//   durably, and then the fence: this node's etcd lease is still provably alive and no
//   backup has reported a newer epoch. Anything else rejects (ServiceUnavailable): the
//   client never hears "sent" for a record a newer primary might not have.
//
// The backup side lives with the hosting code (src/cluster/cluster-node.ts), which owns the
// per-partition knownEpoch/syncedEpoch.

import { deferOn, repeatOn, type Clock, type TimerHandle } from '../core/clock.js';
import { BerthError } from '../protocol/errors.js';
import type { LogRecord, StoredCheckpoint } from '../storage/types.js';
import type { CommitTracker, PartitionRunner } from '../broker/partition.js';
import { PrimaryReplication, decideCatchUp, divergencePoint, epochRunsOf, type EpochRuns } from './state.js';
import { AckStatus, FrameKind } from './wire.js';

export interface ReplicaStateAnswer {
  knownEpoch: number;
  endOffset: number;
  tailFrom: number;
  runs: EpochRuns;
  /** Lowest offset the backup can cut its log at (its checkpoint or log start); absent: 0. */
  floorOffset?: number;
}

export type SnapshotChunkFrame = { kind: FrameKind.SnapshotChunk; key: string; epoch: number; snapshotOffset: number; totalBytes: number; position: number; data: Uint8Array };

/** What the driver needs from the network (src/io/peer-transport.ts). */
export interface ReplicationLink {
  request(address: string, method: string, body: unknown, options?: { timeoutMs?: number }): Promise<unknown>;
  replicate(address: string, frame: { kind: FrameKind.Replicate; key: string; epoch: number; committedEnd: number; records: LogRecord[] }): boolean;
  /** Queues one snapshot chunk on the connection to `address`; false when it is not open. */
  snapshotChunk(address: string, frame: SnapshotChunkFrame): boolean;
}

export interface PrimaryDriverOptions {
  key: string;
  epoch: number;
  runner: PartitionRunner;
  backups: Array<{ id: string; address: () => string | undefined }>;
  link: ReplicationLink;
  /** All time (timers, deferrals) comes from here, so the driver runs on simulated time. */
  clock: Clock;
  /** The acknowledgement fence: false once this node's lease may have expired. */
  mayAcknowledge: () => boolean;
  onSuperseded: () => void;
  /** Observes every acknowledgement this driver lets through (the simulator records them). */
  onCommitted?: (endOffset: number, replicaCount: number) => void;
  logger: { info(object: object, message: string): void; warn(object: object, message: string): void };
  commitTimeoutMs: number;
  windowRecordsMax: number;
  heartbeatMs: number;
  tailRecordsMax: number;
}

interface Waiter {
  endOffset: number;
  replicaCount: number;
  resolve(): void;
  reject(error: unknown): void;
  timer: TimerHandle;
}

const recordsPerFrameMax = 1024;
const frameBytesMax = 4 * 1024 * 1024;
const snapshotChunkBytes = 1024 * 1024;

export class PrimaryDriver implements CommitTracker {
  readonly state: PrimaryReplication;
  private readonly waiters = new Set<Waiter>();
  private readonly pumping = new Set<string>();
  private readonly wakeSync = new Map<string, () => void>();
  private heartbeat: TimerHandle | undefined;
  private stopped = false;
  private pumpScheduled = false;

  constructor(private readonly options: PrimaryDriverOptions) {
    this.state = new PrimaryReplication(options.epoch, options.backups.map((backup) => backup.id), options.windowRecordsMax);
  }

  start(): void {
    for (const backup of this.options.backups) void this.syncLoop(backup);
    this.heartbeat = repeatOn(this.options.clock, this.options.heartbeatMs, () => this.sendHeartbeats(), { background: true });
  }

  /** Stops shipping and fails every waiting acknowledgement (this node no longer leads at this epoch). */
  stop(reason: string): void {
    if (this.stopped) return;
    this.stopped = true;
    this.heartbeat?.cancel();
    for (const wake of this.wakeSync.values()) wake();
    for (const waiter of [...this.waiters]) {
      this.waiters.delete(waiter);
      waiter.timer.cancel();
      waiter.reject(new BerthError('ServiceUnavailable', `partition ${this.options.key}: ${reason}; retry`));
    }
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  // ---- CommitTracker -------------------------------------------------------------

  async waitCommitted(endOffset: number, replicaCount: number): Promise<void> {
    this.refuseUnlessAcknowledgeable();
    await this.options.runner.waitLocallyDurable(endOffset);
    if (replicaCount > 1 && this.state.committedEnd(this.options.runner.durableEndOffset, replicaCount) < endOffset) {
      await new Promise<void>((resolve, reject) => {
        const waiter: Waiter = {
          endOffset,
          replicaCount,
          resolve,
          reject,
          timer: this.options.clock.setTimer(this.options.commitTimeoutMs, () => {
            this.waiters.delete(waiter);
            reject(new BerthError('ServiceUnavailable', `partition ${this.options.key}: ${replicaCount} replicas did not hold the record durably within ${this.options.commitTimeoutMs} ms`));
          }),
        };
        // No check here: the committed end was below endOffset just now, synchronously.
        this.waiters.add(waiter);
      });
    }
    this.refuseUnlessAcknowledgeable();
    this.options.onCommitted?.(endOffset, replicaCount);
  }

  beforeAppend(): void {
    this.schedulePump();
  }

  checkpointSafeEnd(): number {
    return this.state.checkpointSafeEnd(this.options.runner.durableEndOffset);
  }

  refuseUnlessAcknowledgeable(): void {
    if (this.stopped || this.state.superseded) throw new BerthError('ServiceUnavailable', `partition ${this.options.key}: this node no longer leads it; retry`);
    if (!this.options.mayAcknowledge()) {
      throw new BerthError('ServiceUnavailable', `partition ${this.options.key}: this node's cluster lease is not confirmed; it may not acknowledge (retry)`);
    }
  }

  // ---- acknowledgements ----------------------------------------------------------

  onAck(backupId: string, epoch: number, status: AckStatus, durableEnd: number): void {
    if (this.stopped) return;
    const outcome = this.state.onAck(backupId, epoch, status, durableEnd);
    if (outcome === 'superseded') {
      this.options.logger.warn({ partition: this.options.key, epoch: this.options.epoch, backup: backupId }, 'a backup knows a newer epoch: this primary was replaced');
      this.stop('replaced by a newer primary');
      this.options.onSuperseded();
      return;
    }
    if (outcome === 'resync') this.wakeSync.get(backupId)?.();
    this.checkWaiters();
    this.schedulePump();
  }

  onDisconnect(backupId: string): void {
    if (this.stopped || !this.state.backups.has(backupId)) return;
    this.state.resync(backupId);
    this.wakeSync.get(backupId)?.();
  }

  // ---- internals -----------------------------------------------------------------

  private checkWaiters(): void {
    if (this.waiters.size === 0) return;
    const durable = this.options.runner.durableEndOffset;
    // One committed end per replica count, not per waiter: an acknowledgement may find
    // hundreds of calls waiting, nearly all at the queue's one replica count.
    const committedEnds = new Map<number, number>();
    for (const waiter of this.waiters) {
      let committed = committedEnds.get(waiter.replicaCount);
      if (committed === undefined) committedEnds.set(waiter.replicaCount, (committed = this.state.committedEnd(durable, waiter.replicaCount)));
      if (committed >= waiter.endOffset) {
        this.waiters.delete(waiter);
        waiter.timer.cancel();
        waiter.resolve();
      }
    }
  }

  private schedulePump(): void {
    if (this.pumpScheduled || this.stopped) return;
    this.pumpScheduled = true;
    deferOn(this.options.clock, () => {
      this.pumpScheduled = false;
      for (const backup of this.options.backups) void this.pump(backup);
    });
  }

  private async pump(backup: { id: string; address: () => string | undefined }): Promise<void> {
    if (this.pumping.has(backup.id) || this.stopped) return;
    this.pumping.add(backup.id);
    try {
      for (;;) {
        if (this.stopped) return;
        const range = this.state.nextSend(backup.id, this.options.runner.endOffset, recordsPerFrameMax);
        if (range === undefined) return;
        const address = backup.address();
        if (address === undefined) return;
        let records = await this.options.runner.readForShipping(range.from, range.to, frameBytesMax);
        if (records.length === 0) {
          // Neither in memory nor durable on disk yet: wait for the local log, then retry.
          await this.options.runner.waitLocallyDurable(range.from + 1);
          records = await this.options.runner.readForShipping(range.from, range.to, frameBytesMax);
          if (records.length === 0) return;
        }
        if (this.stopped || this.state.backups.get(backup.id)?.nextOffset !== range.from) return;
        const sent = this.options.link.replicate(address, {
          kind: FrameKind.Replicate,
          key: this.options.key,
          epoch: this.options.epoch,
          committedEnd: this.checkpointSafeEnd(),
          records,
        });
        if (!sent) {
          this.state.resync(backup.id);
          this.wakeSync.get(backup.id)?.();
          return;
        }
        this.state.markSent(backup.id, records[records.length - 1]!.offset + 1);
      }
    } catch (error) {
      this.options.logger.warn({ err: error, partition: this.options.key, backup: backup.id }, 'shipping to a backup failed; resyncing it');
      if (!this.stopped) {
        this.state.resync(backup.id);
        this.wakeSync.get(backup.id)?.();
      }
    } finally {
      this.pumping.delete(backup.id);
    }
  }

  private sendHeartbeats(): void {
    for (const backup of this.options.backups) {
      const progress = this.state.backups.get(backup.id);
      const address = backup.address();
      if (progress?.phase !== 'streaming' || address === undefined) continue;
      this.options.link.replicate(address, {
        kind: FrameKind.Replicate,
        key: this.options.key,
        epoch: this.options.epoch,
        committedEnd: this.checkpointSafeEnd(),
        records: [],
      });
    }
    this.schedulePump();
  }

  private async syncLoop(backup: { id: string; address: () => string | undefined }): Promise<void> {
    const { key, epoch, runner, link } = this.options;
    let failures = 0;
    while (!this.stopped) {
      const progress = this.state.backups.get(backup.id);
      if (progress === undefined || progress.phase === 'stale') return;
      if (progress.phase === 'streaming') {
        await new Promise<void>((resolve) => this.wakeSync.set(backup.id, resolve));
        continue;
      }
      const address = backup.address();
      try {
        if (address === undefined) throw new BerthError('ServiceUnavailable', `backup ${backup.id} is not registered`);
        const answer = (await link.request(address, 'replica.state', { key, epoch }, { timeoutMs: 5000 })) as ReplicaStateAnswer;
        if (answer.knownEpoch > epoch) {
          this.onAck(backup.id, answer.knownEpoch, AckStatus.StaleEpoch, 0);
          return;
        }
        const tailFrom = Math.max(answer.tailFrom, runner.startOffset);
        const own = await runner.tailEpochs(Math.max(0, runner.endOffset - tailFrom));
        await runner.waitLocallyDurable(runner.endOffset);
        const cut = divergencePoint(tailFrom, epochRunsOf(own.records), runner.endOffset, answer.runs, answer.endOffset);
        const backupFloorOffset = answer.floorOffset ?? 0;
        const checkpoint = cut < runner.startOffset || cut < backupFloorOffset ? await runner.latestCheckpoint() : undefined;
        const decision = decideCatchUp({
          cut,
          primaryStartOffset: runner.startOffset,
          primaryEndOffset: runner.endOffset,
          backupFloorOffset,
          snapshotOffset: checkpoint?.offset,
        });
        if (decision.action === 'wait') {
          // The backup stays out of the commit count until a checkpoint exists.
          this.options.logger.warn({ partition: key, backup: backup.id, backupEnd: answer.endOffset, logStart: runner.startOffset, reason: decision.reason }, 'backup cannot catch up yet');
          await this.pause(5000, backup.id);
          continue;
        }
        if (this.stopped) return;
        let synced: { endOffset: number };
        let expectedEnd = cut;
        if (decision.action === 'snapshot') {
          const snapshot = await this.sendSnapshot(address, backup.id, checkpoint!);
          if (snapshot === undefined) return;
          synced = snapshot;
          expectedEnd = snapshot.endOffset;
        } else {
          synced = (await link.request(address, 'replica.sync', { key, epoch, cutAt: cut }, { timeoutMs: 30_000 })) as { endOffset: number };
        }
        if (this.stopped) return;
        this.state.startStreaming(backup.id, synced.endOffset);
        if (synced.endOffset !== expectedEnd) this.options.logger.warn({ partition: key, backup: backup.id, cut: expectedEnd, end: synced.endOffset }, 'backup ended elsewhere than the cut');
        this.options.logger.info({ partition: key, epoch, backup: backup.id, from: synced.endOffset, primaryEnd: runner.endOffset }, 'backup synced; streaming');
        failures = 0;
        this.schedulePump();
      } catch (error) {
        failures++;
        if (failures === 1 || failures % 20 === 0) this.options.logger.warn({ err: error, partition: key, backup: backup.id }, 'backup sync failed; retrying');
        await this.pause(Math.min(1000, 100 * failures), backup.id);
      }
    }
  }

  /**
   * Ships this node's latest checkpoint to a backup and has it installed. Resolves with the
   * backup's new log end (the checkpoint's offset), undefined once stopped. The backup
   * refuses chunks and the install from an epoch older than it knows.
   */
  private async sendSnapshot(address: string, backupId: string, checkpoint: StoredCheckpoint): Promise<{ endOffset: number } | undefined> {
    const { key, epoch, link } = this.options;
    const totalBytes = checkpoint.state.length;
    this.options.logger.info({ partition: key, epoch, backup: backupId, snapshotOffset: checkpoint.offset, bytes: totalBytes }, 'backup is behind this log\'s start: shipping a snapshot');
    let position = 0;
    do {
      const data = checkpoint.state.subarray(position, Math.min(totalBytes, position + snapshotChunkBytes));
      const queued = link.snapshotChunk(address, { kind: FrameKind.SnapshotChunk, key, epoch, snapshotOffset: checkpoint.offset, totalBytes, position, data });
      if (!queued) throw new BerthError('ServiceUnavailable', `connection to backup ${backupId} is not open`);
      position += data.length;
    } while (position < totalBytes);
    if (this.stopped) return undefined;
    // The backup's log restarts at this log's start: records below the checkpoint still hold
    // the payloads of messages the state lists.
    // (A newer checkpoint may have let segments go meanwhile: then streaming fails and the backup is synced again.)
    const logStartOffset = Math.min(this.options.runner.startOffset, checkpoint.offset);
    return (await link.request(address, 'replica.installSnapshot', { key, epoch, snapshotOffset: checkpoint.offset, logStartOffset, lastEpoch: checkpoint.lastEpoch, totalBytes }, { timeoutMs: 60_000 })) as { endOffset: number };
  }

  private pause(delayMs: number, backupId: string): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.options.clock.setTimer(delayMs, resolve);
      this.wakeSync.set(backupId, () => {
        timer.cancel();
        resolve();
      });
    });
  }
}
