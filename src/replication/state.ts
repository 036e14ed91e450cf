// Replication of one partition's log, the pure part: no I/O, no clock, no timers. A driver
// (src/replication/driver.ts) performs what these decide.
//
// Primary side, per backup and per epoch (PrimaryReplication):
//
//   syncing --handshake done (backup's log cut to the divergence point d)--> streaming(next = d, durable = d)
//   streaming --ack Ok(durableEnd)--> streaming (durable advances; never backwards)
//   streaming --ack NeedsSync, connection lost--> syncing
//   any --ack StaleEpoch--> stale (a newer primary exists: this one must stop acknowledging)
//
// A record is committed at replica count r once the primary itself and r-1 backups hold it
// durably (the primary always counts: after a restart it still has every acknowledged
// record, so recovery never depends on a backup). Sends are pipelined: up to
// `windowRecordsMax` records beyond a backup's durable end may be in flight.
//
// Backup side (decideReplicate): a backup accepts records only from the epoch it was
// synced to by that primary's handshake, refuses any lower epoch than it knows, and
// appends a record only at its log end (already-held records of the same epoch are
// identical and skipped).
//
// Divergence (divergencePoint): records with the same (offset, epoch) are identical, and so
// are the logs below them, because an epoch has exactly one appender that never cuts its
// own log. After a failover a backup keeps the longest prefix whose last record matches the
// primary's (offset, epoch) and cuts the rest: an uncommitted tail of an older epoch.
//
// Catch-up (decideCatchUp): records when the primary still holds every record from the cut
// on and the backup may cut there (never below its own checkpoint); otherwise a snapshot:
// the primary's latest checkpoint (queue state at offset S) is shipped in SnapshotChunk
// frames; the backup's state becomes the snapshot, its log restarts empty at the primary's
// log start L <= S (ReplicaLog.resetTo), and records stream from L (those below S are
// stored for their payloads, not applied again).
//
// Checkpoint safety on the primary (checkpointSafeEnd): records held by the primary and
// every streaming backup. A backup that is not streaming (down, syncing) does not hold
// checkpoints back as long as at least one backup streams, so a long-dead replica no
// longer pins the primary's log; it catches up by snapshot when it returns. With no
// backup streaming, nothing new is checkpointed (a checkpoint must never cover a record a
// failover to a backup could cut).

import { assert } from '../core/assert.js';
import { AckStatus } from './wire.js';

export type BackupPhase = 'syncing' | 'streaming' | 'stale';

export interface BackupProgress {
  phase: BackupPhase;
  /** Next offset to send (streaming). */
  nextOffset: number;
  /** The backup's durable end as last acknowledged in this epoch; only grows. */
  durableEnd: number;
}

export class PrimaryReplication {
  readonly backups = new Map<string, BackupProgress>();
  /** Set once any backup reported a higher epoch: this primary was replaced. */
  superseded = false;
  /** Scratch for committedEnd: the streaming backups' durable ends. */
  private readonly streamingEnds: number[] = [];

  constructor(
    readonly epoch: number,
    backupIds: readonly string[],
    private readonly windowRecordsMax: number,
  ) {
    for (const id of backupIds) this.backups.set(id, { phase: 'syncing', nextOffset: 0, durableEnd: 0 });
  }

  /** Handshake finished: the backup's log ends (durably) at `fromOffset`, matching ours below it. */
  startStreaming(id: string, fromOffset: number): void {
    const progress = this.require(id);
    if (progress.phase === 'stale') return;
    progress.phase = 'streaming';
    progress.nextOffset = fromOffset;
    progress.durableEnd = fromOffset;
  }

  resync(id: string): void {
    const progress = this.require(id);
    if (progress.phase !== 'stale') progress.phase = 'syncing';
  }

  /** Applies an acknowledgement; returns what the driver must do about it. */
  onAck(id: string, epoch: number, status: AckStatus, durableEnd: number): 'none' | 'resync' | 'superseded' {
    const progress = this.backups.get(id);
    if (progress === undefined) return 'none';
    if (status === AckStatus.StaleEpoch || epoch > this.epoch) {
      progress.phase = 'stale';
      this.superseded = true;
      return 'superseded';
    }
    if (epoch !== this.epoch || progress.phase !== 'streaming') return 'none';
    if (status === AckStatus.NeedsSync) {
      progress.phase = 'syncing';
      return 'resync';
    }
    progress.durableEnd = Math.max(progress.durableEnd, durableEnd);
    return 'none';
  }

  /** The range [from, to) to send to this backup now, within its window; undefined when nothing. */
  nextSend(id: string, logEnd: number, recordsPerFrameMax: number): { from: number; to: number } | undefined {
    const progress = this.backups.get(id);
    if (progress === undefined || progress.phase !== 'streaming') return undefined;
    const windowEnd = progress.durableEnd + this.windowRecordsMax;
    const to = Math.min(logEnd, windowEnd, progress.nextOffset + recordsPerFrameMax);
    if (to <= progress.nextOffset) return undefined;
    return { from: progress.nextOffset, to };
  }

  markSent(id: string, to: number): void {
    const progress = this.require(id);
    assert(to >= progress.nextOffset, 'replication cursor moved backwards');
    progress.nextOffset = to;
  }

  /** Highest offset end below which at least `replicaCount` replicas (the primary among them) are durable. */
  committedEnd(ownDurableEnd: number, replicaCount: number): number {
    // One array reused: this runs on every acknowledgement and commit wait.
    const ends = this.streamingEnds;
    ends.length = 0;
    for (const progress of this.backups.values()) if (progress.phase === 'streaming') ends.push(progress.durableEnd);
    return committedEnd(ownDurableEnd, ends, replicaCount);
  }

  /**
   * End below which checkpoints may cover records: the slowest streaming backup's durable
   * end (backups not streaming are left out while at least one streams; see the header).
   */
  checkpointSafeEnd(ownDurableEnd: number): number {
    return checkpointSafeEnd(ownDurableEnd, this.backups.values());
  }

  /** Durable end of the slowest backup (for lag figures); ownDurableEnd without backups. */
  slowestDurableEnd(ownDurableEnd: number): number {
    let slowest = ownDurableEnd;
    for (const progress of this.backups.values()) slowest = Math.min(slowest, progress.phase === 'streaming' ? progress.durableEnd : 0);
    return slowest;
  }

  private require(id: string): BackupProgress {
    const progress = this.backups.get(id);
    assert(progress !== undefined, () => `unknown backup ${id}`);
    return progress;
  }
}

/** The end below which the primary and at least replicaCount-1 of the given backups are durable. */
export function committedEnd(ownDurableEnd: number, backupDurableEnds: readonly number[], replicaCount: number): number {
  if (replicaCount <= 1) return ownDurableEnd;
  // The (replicaCount - 1)-th largest backup end, found without sorting a copy: this runs
  // on every acknowledgement and commit wait, and the sort was a primary's largest single
  // source of garbage at 1,000 msg/s (about 4.5 KB per message). A replica set is a few nodes.
  let needed = -1;
  for (const candidate of backupDurableEnds) {
    if (candidate <= needed) continue;
    let atLeast = 0;
    for (const other of backupDurableEnds) if (other >= candidate) atLeast++;
    if (atLeast >= replicaCount - 1) needed = candidate;
  }
  return needed < 0 ? 0 : Math.min(ownDurableEnd, needed);
}

export function checkpointSafeEnd(ownDurableEnd: number, backups: Iterable<BackupProgress>): number {
  // One pass, no arrays: every replicate frame a primary sends carries this end.
  let anyBackup = false;
  let anyStreaming = false;
  let end = ownDurableEnd;
  for (const progress of backups) {
    anyBackup = true;
    if (progress.phase !== 'streaming') continue;
    anyStreaming = true;
    if (progress.durableEnd < end) end = progress.durableEnd;
  }
  if (!anyBackup) return ownDurableEnd;
  return anyStreaming ? end : 0;
}

export type CatchUpDecision =
  /** Cut the backup's log at `from` (a no-op when it ends there) and stream records from it. */
  | { action: 'records'; from: number }
  /** Ship the primary's checkpoint: the backup restarts at its offset. */
  | { action: 'snapshot' }
  /** Neither is possible now (no checkpoint yet); retry later. */
  | { action: 'wait'; reason: string };

export function decideCatchUp(input: {
  /** Where the divergence check says the backup's log must be cut. */
  cut: number;
  primaryStartOffset: number;
  primaryEndOffset: number;
  /** Lowest offset the backup can cut at (its checkpoint; its log start). */
  backupFloorOffset: number;
  /** Offset of the primary's latest checkpoint, undefined when it has none. */
  snapshotOffset: number | undefined;
}): CatchUpDecision {
  if (input.cut >= input.primaryStartOffset && input.cut >= input.backupFloorOffset) return { action: 'records', from: input.cut };
  const snapshot = input.snapshotOffset;
  if (snapshot !== undefined && snapshot >= input.primaryStartOffset && snapshot <= input.primaryEndOffset) return { action: 'snapshot' };
  return {
    action: 'wait',
    reason: input.cut < input.primaryStartOffset
      ? `backup needs records from ${input.cut} but the log starts at ${input.primaryStartOffset} and there is no usable checkpoint`
      : `backup cannot cut at ${input.cut} below its checkpoint at ${input.backupFloorOffset} and there is no usable checkpoint`,
  };
}

/**
 * Backup side of a snapshot transfer: collects the chunks of one snapshot (one partition,
 * one epoch, one offset); a chunk of another transfer starts over (a newer epoch, a retry).
 * Chunks arrive in order on one connection; a gap or overlap drops the transfer.
 */
export class SnapshotAssembly {
  private epoch = 0;
  private offset = -1;
  private buffer: Uint8Array | undefined;
  private received = 0;

  /** False when the chunk was dropped (stale epoch, gap); the install request then fails and the primary retries. */
  add(knownEpoch: number, chunk: { epoch: number; snapshotOffset: number; totalBytes: number; position: number; data: Uint8Array }): boolean {
    // A stray chunk of an older primary neither starts nor spoils the transfer in progress.
    if (chunk.epoch < knownEpoch || (this.buffer !== undefined && chunk.epoch < this.epoch)) return false;
    if (chunk.position === 0) {
      this.epoch = chunk.epoch;
      this.offset = chunk.snapshotOffset;
      this.buffer = new Uint8Array(chunk.totalBytes);
      this.received = 0;
    }
    const buffer = this.buffer;
    if (buffer === undefined || chunk.epoch !== this.epoch || chunk.snapshotOffset !== this.offset || chunk.totalBytes !== buffer.length
      || chunk.position !== this.received || chunk.position + chunk.data.length > buffer.length) {
      this.buffer = undefined;
      return false;
    }
    buffer.set(chunk.data, chunk.position);
    this.received += chunk.data.length;
    return true;
  }

  /** The complete snapshot of this epoch and offset, or undefined; forgets it either way. */
  take(epoch: number, snapshotOffset: number, totalBytes: number): Uint8Array | undefined {
    const buffer = this.buffer;
    this.buffer = undefined;
    if (buffer === undefined || epoch !== this.epoch || snapshotOffset !== this.offset || buffer.length !== totalBytes || this.received !== totalBytes) return undefined;
    return buffer;
  }
}

export interface BackupReplicaState {
  /** Highest epoch this backup has seen for the partition (from the map or a primary). */
  knownEpoch: number;
  /** The epoch whose primary synced (handshook) this backup; 0 when none. */
  syncedEpoch: number;
  endOffset: number;
}

export type ReplicateDecision =
  | { action: 'refuse'; status: AckStatus }
  /** Append records from index `skip` on (the ones before are already held). */
  | { action: 'append'; skip: number };

export function decideReplicate(state: BackupReplicaState, epoch: number, firstOffset: number | undefined, count: number): ReplicateDecision {
  if (epoch < state.knownEpoch) return { action: 'refuse', status: AckStatus.StaleEpoch };
  if (epoch !== state.syncedEpoch) return { action: 'refuse', status: AckStatus.NeedsSync };
  if (firstOffset === undefined || count === 0) return { action: 'append', skip: 0 };
  if (firstOffset > state.endOffset) return { action: 'refuse', status: AckStatus.NeedsSync };
  return { action: 'append', skip: Math.min(count, state.endOffset - firstOffset) };
}

/** Runs of equal epoch: each entry is the first offset of a run and the epoch of its records. */
export type EpochRuns = Array<{ offset: number; epoch: number }>;

export function epochRunsOf(records: ReadonlyArray<{ offset: number; epoch: number }>): EpochRuns {
  const runs: EpochRuns = [];
  for (const record of records) {
    const last = runs[runs.length - 1];
    if (last === undefined || last.epoch !== record.epoch) runs.push({ offset: record.offset, epoch: record.epoch });
  }
  return runs;
}

function epochAt(runs: EpochRuns, offset: number): number | undefined {
  let found: number | undefined;
  for (const run of runs) {
    if (run.offset > offset) break;
    found = run.epoch;
  }
  return found;
}

/**
 * Where a backup's log must be cut so it is a prefix of the primary's. Both tails are
 * given as epoch runs covering [tailFrom, end). Returns an offset in [tailFrom, backupEnd].
 */
export function divergencePoint(
  tailFrom: number,
  primaryRuns: EpochRuns,
  primaryEnd: number,
  backupRuns: EpochRuns,
  backupEnd: number,
): number {
  const top = Math.min(primaryEnd, backupEnd);
  if (top <= tailFrom) return Math.min(top, backupEnd);
  // Candidate offsets: the top, and every run boundary below it (a match can only change
  // at a run boundary of either side), checked from high to low.
  const candidates = new Set<number>([top - 1]);
  for (const run of [...primaryRuns, ...backupRuns]) {
    if (run.offset - 1 >= tailFrom && run.offset - 1 < top) candidates.add(run.offset - 1);
    if (run.offset >= tailFrom && run.offset < top) candidates.add(run.offset);
  }
  const ordered = [...candidates].sort((a, b) => b - a);
  for (const offset of ordered) {
    const primaryEpoch = epochAt(primaryRuns, offset);
    if (primaryEpoch !== undefined && primaryEpoch === epochAt(backupRuns, offset)) return offset + 1;
  }
  return tailFrom;
}
