// One queue partition on this node: its log (storage) and its queue machine (queue),
// driven together. Every state change follows the same path:
//
//   plan (pure, from the machine) -> append to the log (assigns the offset, synchronous)
//   -> apply to the machine (state changes in log order) -> wait until the record is
//   durable -> only then answer the caller.
//
// A response therefore never depends on a record that is not durable: whatever it shows
// was applied at or before its own record, and the log is durable in order.
//
// Background work (maintenance tick): keep the machine's in-memory window filled from the
// backlog on disk, expire messages past retention, relocate old live messages that pin
// old segments, write checkpoints (only once every record they cover is durable), and
// delete segments below min(physical ACK level, checkpoint).
//
// Replication (cluster mode): a runner is a primary or a backup of its partition.
//   primary: appends at its epoch; every append is handed to the CommitTracker (which ships
//     it to the backups); an answer waits for `waitCommitted(end, replicaCount)` instead of
//     the log's own durability. On a single node the tracker is the log itself.
//   backup: takes no client calls and runs no appending maintenance; `applyReplicated`
//     appends the primary's records with their offsets and applies them to its own machine,
//     so a takeover starts from a warm state; `truncateAndReload` cuts an uncommitted tail
//     and rebuilds the machine from the last checkpoint.
// Checkpoints cover only committed records (`checkpointSafeEnd`), so a cut never goes below one.

import type { Clock, TimerHandle } from '../core/clock.js';
import type { FileSystem } from '../core/filesystem.js';
import { assert } from '../core/assert.js';
import { BerthError } from '../protocol/errors.js';
import type { LogRecord, PartitionLogOptions, ReplicaLog, StoredCheckpoint } from '../storage/types.js';
import { openPartitionLog } from '../storage/segmented-log.js';
import { QueueMachine, type Receipt } from '../queue/machine.js';
import { LogicalQueue } from '../queue/logical-queue.js';
import { RecordType, decodeEnqueue, decodeRelocate, encodeRelocate, type EnqueuePayload } from '../queue/records.js';
import type { QueueConfig, QueueCounts } from '../queue/types.js';
import { takenForMove } from './queue-calls.js';
import type { CacheBudget } from './cache-budget.js';
import { RecordCache } from './record-cache.js';

export interface PartitionLogger {
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
  error(object: object, message: string): void;
}

export interface PartitionHooks {
  /** Durably enqueues copies of these messages in the dead-letter queue of this logical queue (resolves once durable there). */
  deadLetter(payloads: EnqueuePayload[], logicalQueueId: number): Promise<void>;
  /** After each group commit batch of this partition becomes durable (metrics). */
  onDurable?(records: number): void;
}

/**
 * When a record counts as committed: the log's own durability on a single node; r replicas
 * holding it durably in a cluster (src/replication/driver.ts).
 */
export interface CommitTracker {
  /**
   * Resolves once every record below `endOffset` is committed at `replicaCount`. Rejects
   * with BerthError('ServiceUnavailable') when this node may no longer acknowledge
   * (replaced, fenced by its lease) or the replicas did not answer in time.
   */
  waitCommitted(endOffset: number, replicaCount: number): Promise<void>;
  /**
   * Throws BerthError('ServiceUnavailable') when a state change made now could not be
   * acknowledged (waitCommitted would reject it for the same reason). Checked before a
   * caller's change is appended, so a node that has lost its lease or its leadership does
   * not append (and lease out, or enqueue) what its caller is then told failed.
   */
  refuseUnlessAcknowledgeable?(): void;
  /**
   * Called synchronously before every local append (a primary schedules shipping it).
   * Before, not after: work deferred to the turn's end runs in the order it was scheduled,
   * so the records leave for the backups ahead of the log's fsync at the turn's end
   * (TurnEndFlusher), and the backups write them while the primary fsyncs.
   */
  beforeAppend?(): void;
  /** Checkpoints may cover records below this end only (every one committed). */
  checkpointSafeEnd?(): number;
}

export type PartitionRole = 'primary' | 'backup';

export interface PartitionReplication {
  role: PartitionRole;
  epoch: number;
  /** Absent: the log's durability (single node). */
  tracker?: CommitTracker;
  /** Recent appended records kept in memory for shipping to backups (0: none). */
  recentRecordsMax?: number;
}

export interface PartitionOptions {
  logOptions?: Partial<PartitionLogOptions>;
  cacheBytesMax: number;
  /** The node's budget over every partition's record cache (absent: each cache is bounded by cacheBytesMax only). */
  cacheBudget?: CacheBudget;
  maintenanceIntervalMs: number;
  checkpointEveryRecords: number;
  checkpointIntervalMs: number;
  loadBatchRecords: number;
  /** Never-received messages a logical queue keeps in memory (the rest of the backlog stays on disk). */
  windowMessagesMax?: number;
  /**
   * After this long without an append, the partition lets go of what it keeps only for
   * speed (recent records for shipping, the log's read-ahead and spare write buffers):
   * about 10 MiB per partition in a cluster, which every drained queue held for good.
   */
  idleReleaseMs: number;
}

export const defaultPartitionOptions: PartitionOptions = {
  cacheBytesMax: 64 * 1024 * 1024,
  maintenanceIntervalMs: 1000,
  checkpointEveryRecords: 200_000,
  checkpointIntervalMs: 30_000,
  loadBatchRecords: 4096,
  idleReleaseMs: 30_000,
};

export interface Delivery {
  offset: number;
  /** Offset that fixes the SQS SequenceNumber (FIFO; `sequenceNumberOf`): kept if the message is relocated. */
  sequenceOffset: number;
  receipt: Receipt;
  payload: EnqueuePayload;
  receiveCount: number;
  firstReceiveTimestampMs: number;
}

export interface ReceiveRequest {
  maxMessages: number;
  visibilityTimeoutSeconds?: number;
  waitTimeSeconds: number;
  attemptId?: string;
  signal?: AbortSignal;
  /** A topic's subscription; default 0, a plain queue's logical queue. */
  logicalQueueId?: number;
}

export interface PartitionRecoveryFigures {
  checkpointOffset: number | undefined;
  recordsReplayed: number;
  tornTailBytesTruncated: number;
  durationMs: number;
}

const zeroLeafHash = new Uint8Array(32);
/** How long messages whose dead-letter move failed wait before the move is tried again. */
const deadLetterRetryMs = 1000;
const epochSingleNode = 1;

/** Numbers receiveOnce captures per planned delivery: sequence offset, receipt offset, receive count, first receive time, offset. */
const fieldsPerDelivery = 5;

/**
 * Which of a receive's messages are withheld once its commit is done. A message is taken
 * from the receive if, while the receive waited for its commit (a stalled disk, slow
 * replicas), its lease ran out and a later receive leased it again (its receipt moved on),
 * or it is gone (a purge): handing it out would give a consumer a message it does not hold,
 * which another consumer may be processing. In a FIFO queue the rest of a message's group
 * is withheld too once another receive leased it (its earlier messages are in flight
 * elsewhere; the withheld ones stay leased here until their lease ends); a message that is
 * gone holds up no one, and the rest of its group is handed out in order. A lease that
 * merely ran out is handed out: it is still the latest, and its receipt deletes the
 * message, as for a consumer that overran its visibility timeout. (Withholding those too
 * would turn every long commit into a lost response: the receive counted, the previous
 * receipt's delete a no-op, the message delivered again.)
 */
class WithheldDeliveries {
  count = 0;
  /** FIFO: groups with a message another receive leased meanwhile. */
  private groups: Set<string> | undefined;

  constructor(private readonly fifo: boolean) {}

  /** `entry`: the message's state now; `receiptOffset`: the receipt this receive gave it. */
  withholds(entry: { receiptOffset: number; groupId: string | undefined } | undefined, receiptOffset: number): boolean {
    let withheld: boolean;
    if (entry === undefined) {
      withheld = true;
    } else if (entry.receiptOffset !== receiptOffset) {
      withheld = true;
      if (this.fifo) (this.groups ??= new Set()).add(LogicalQueue.groupKey(entry.groupId));
    } else {
      withheld = this.groups?.has(LogicalQueue.groupKey(entry.groupId)) === true;
    }
    if (withheld) this.count++;
    return withheld;
  }
}

export class PartitionRunner {
  private readonly cache: RecordCache;
  /**
   * Long-polling receivers, per logical queue, oldest first. A newly visible message wakes
   * one receiver (not all: with many consumers every send woke every one of them, and all
   * but one found nothing, a herd that saturated the server at 5,000 msg/s); a receiver
   * that got messages wakes the next, since more may be visible. Close and role changes
   * wake everyone.
   */
  private readonly waiters = new Map<number, Set<() => void>>();
  /** Counts wake-ups: a receiver that saw it change while it was not yet waiting tries again instead of sleeping through it. */
  private wakeGeneration = 0;
  private readonly deadLetterPending = new Set<number>();
  private wakeTimer: TimerHandle | undefined;
  private wakeTimerAtMs = Number.POSITIVE_INFINITY;
  private maintenanceTimer: TimerHandle | undefined;
  private maintaining = false;
  private loading: Promise<boolean> | undefined;
  private closed = false;
  private lastNowMs = 0;
  private checkpointOffset: number;
  private checkpointAtMs: number;
  private role: PartitionRole = 'primary';
  private epoch = epochSingleNode;
  private tracker: CommitTracker;
  /** Recently appended records, oldest first, for shipping without a disk read. */
  private recent: LogRecord[] = [];
  private recentRecordsMax = 0;
  /** The log's end as the last maintenance tick saw it, since when (monotonic ms), and whether the idle release ran. */
  private idle = { endOffset: -1, sinceMs: 0, released: false };
  /** Epoch of the record at endOffset - 1 (0 when the log is empty). */
  private lastRecordEpoch = 0;
  private initialConfig: QueueConfig | undefined;
  /** Bumped when the machine is rebuilt (installSnapshot): a checkpoint begun before must not be written. */
  private generation = 0;

  private constructor(
    readonly name: string,
    private readonly log: ReplicaLog,
    private machine: QueueMachine,
    private readonly clock: Clock,
    private readonly hooks: PartitionHooks,
    private readonly logger: PartitionLogger,
    private readonly options: PartitionOptions,
    checkpointOffset: number,
    readonly recoveryFigures: PartitionRecoveryFigures,
  ) {
    this.cache = new RecordCache(options.cacheBytesMax, options.cacheBudget);
    this.checkpointOffset = checkpointOffset;
    this.checkpointAtMs = clock.monotonicMs();
    this.tracker = { waitCommitted: (endOffset) => this.log.waitDurable(endOffset) };
    this.scheduleMaintenance();
  }

  /** Opens the log, restores the machine from the last checkpoint and replays the records after it. */
  static async open(parameters: {
    name: string;
    fs: FileSystem;
    directory: string;
    config: QueueConfig;
    clock: Clock;
    hooks: PartitionHooks;
    logger: PartitionLogger;
    options?: Partial<PartitionOptions>;
    /** Absent: a single-node primary at epoch 1 committing on the log's durability. */
    replication?: PartitionReplication;
  }): Promise<PartitionRunner> {
    const options = { ...defaultPartitionOptions, ...parameters.options };
    const startedMs = parameters.clock.monotonicMs();
    // The log's timers (a group commit delay) run on the partition's clock unless the caller gave one.
    const log = await openPartitionLog(parameters.fs, parameters.directory, { clock: parameters.clock, ...options.logOptions });
    const checkpoint = await log.readCheckpoint();
    const machine = checkpoint === undefined ? new QueueMachine(parameters.config, { windowMessagesMax: options.windowMessagesMax }) : QueueMachine.restore(checkpoint.state);
    let from = checkpoint?.offset ?? log.startOffset;
    let recordsReplayed = 0;
    while (from < log.endOffset) {
      const records = await log.read(from, 8192, 16 * 1024 * 1024);
      if (records.length === 0) break;
      for (const record of records) machine.apply(record);
      recordsReplayed += records.length;
      from = records[records.length - 1]!.offset + 1;
    }
    // Ahead only right after a snapshot install: the log restarted below the checkpoint and
    // the records up to it (payloads of live messages) are still coming from the primary.
    assert(machine.appliedEndOffset <= log.endOffset || machine.appliedEndOffset === checkpoint?.offset, 'queue machine is ahead of its log after recovery');
    const figures: PartitionRecoveryFigures = {
      checkpointOffset: checkpoint?.offset,
      recordsReplayed,
      tornTailBytesTruncated: log.recovery.tornTailBytesTruncated,
      durationMs: parameters.clock.monotonicMs() - startedMs,
    };
    const runner = new PartitionRunner(
      parameters.name,
      log,
      machine,
      parameters.clock,
      parameters.hooks,
      parameters.logger,
      options,
      checkpoint?.offset ?? log.startOffset,
      figures,
    );
    runner.initialConfig = parameters.config;
    if (log.endOffset > log.startOffset) runner.lastRecordEpoch = (await log.readOne(log.endOffset - 1)).epoch;
    else if (checkpoint !== undefined && checkpoint.offset === log.endOffset) runner.lastRecordEpoch = checkpoint.lastEpoch;
    if (parameters.replication !== undefined) runner.setReplication(parameters.replication);
    // The metadata store is the source of truth for attributes; a change that reached it
    // but not this log before a crash is appended now (a backup gets it from its primary).
    if (runner.role === 'primary' && JSON.stringify(machine.config) !== JSON.stringify(parameters.config)) {
      await runner.setConfig(parameters.config);
    }
    return runner;
  }

  // ---- replication ---------------------------------------------------------------

  /** Switches role and epoch (cluster mode). A backup answers its waiting receivers with nothing. */
  setReplication(replication: PartitionReplication): void {
    assert(replication.epoch >= 1, 'epochs start at 1');
    this.role = replication.role;
    this.epoch = replication.epoch;
    this.tracker = replication.tracker ?? { waitCommitted: (endOffset) => this.log.waitDurable(endOffset) };
    this.recentRecordsMax = replication.recentRecordsMax ?? 0;
    if (this.recent.length > this.recentRecordsMax) this.recent.splice(0, this.recent.length - this.recentRecordsMax);
    if (this.role === 'backup') this.wakeAll();
  }

  get currentRole(): PartitionRole {
    return this.role;
  }

  get currentEpoch(): number {
    return this.epoch;
  }

  get durableEndOffset(): number {
    return this.log.durableEndOffset;
  }

  get startOffset(): number {
    return this.log.startOffset;
  }

  get lastEpoch(): number {
    return this.lastRecordEpoch;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Resolves once the local log is durable below endOffset. */
  waitLocallyDurable(endOffset: number): Promise<void> {
    return this.log.waitDurable(endOffset);
  }

  /**
   * Records from `fromOffset` for shipping: from memory when recent, else from disk (durable
   * ones only, so the caller may get fewer than exist).
   */
  async readForShipping(fromOffset: number, toOffset: number, bytesMax: number): Promise<LogRecord[]> {
    const first = this.recent[0];
    if (first !== undefined && fromOffset >= first.offset) {
      const out: LogRecord[] = [];
      let bytes = 0;
      for (let index = fromOffset - first.offset; index < this.recent.length; index++) {
        const record = this.recent[index]!;
        if (record.offset >= toOffset || (out.length > 0 && bytes + record.payload.length > bytesMax)) break;
        out.push(record);
        bytes += record.payload.length + 64;
      }
      return out;
    }
    if (fromOffset < this.log.startOffset) {
      throw new BerthError('ServiceUnavailable', `partition ${this.name}: offset ${fromOffset} is below the log start ${this.log.startOffset} (segments deleted)`);
    }
    const records = await this.log.read(fromOffset, Math.max(1, toOffset - fromOffset), bytesMax);
    return records.filter((record) => record.offset < toOffset);
  }

  /** (offset, epoch) of the last `recordsMax` durable records, for the divergence check. */
  async tailEpochs(recordsMax: number): Promise<{ tailFrom: number; records: Array<{ offset: number; epoch: number }> }> {
    await this.log.waitDurable(this.log.endOffset);
    const end = this.log.endOffset;
    const tailFrom = Math.max(this.log.startOffset, end - recordsMax);
    const records: Array<{ offset: number; epoch: number }> = [];
    let from = tailFrom;
    while (from < end) {
      const batch = await this.log.read(from, end - from, 8 * 1024 * 1024);
      if (batch.length === 0) break;
      for (const record of batch) if (record.offset < end) records.push({ offset: record.offset, epoch: record.epoch });
      from = batch[batch.length - 1]!.offset + 1;
    }
    return { tailFrom, records };
  }

  /** Backup: appends the primary's records (offsets must follow this log) and applies them. */
  applyReplicated(records: readonly LogRecord[]): void {
    this.assertOpen();
    assert(this.role === 'backup', () => `partition ${this.name}: replicated records applied while primary`);
    for (const record of records) {
      this.log.appendReplicated(record);
      // Below the applied end only while a snapshot install catches up: the state has them.
      if (record.offset >= this.machine.appliedEndOffset) this.machine.apply(record);
      this.lastRecordEpoch = record.epoch;
      this.remember(record);
    }
  }

  /**
   * Backup: removes every record at or above `offset` (an uncommitted tail of an older
   * epoch) and rebuilds the machine from the last checkpoint and the records that remain.
   */
  async truncateAndReload(offset: number): Promise<void> {
    this.assertOpen();
    assert(this.role === 'backup', () => `partition ${this.name}: truncate while primary`);
    if (offset >= this.log.endOffset) return;
    const checkpoint = await this.log.readCheckpoint();
    if (checkpoint !== undefined && checkpoint.offset > offset) {
      throw new BerthError('InternalError', `partition ${this.name}: cannot cut at ${offset} below the checkpoint at ${checkpoint.offset}`);
    }
    await this.log.truncateFrom(offset);
    // The cut offsets will hold the new primary's records: a cached payload of a cut record
    // would be served in place of the record there (cluster simulation seed 51).
    this.cache.deleteFrom(offset);
    const machine = checkpoint === undefined ? new QueueMachine(this.initialConfig ?? this.machine.config, { windowMessagesMax: this.options.windowMessagesMax }) : QueueMachine.restore(checkpoint.state);
    let from = checkpoint?.offset ?? this.log.startOffset;
    while (from < this.log.endOffset) {
      const records = await this.log.read(from, 8192, 16 * 1024 * 1024);
      if (records.length === 0) break;
      for (const record of records) machine.apply(record);
      from = records[records.length - 1]!.offset + 1;
    }
    this.machine = machine;
    this.recent = [];
    this.lastRecordEpoch = this.log.endOffset > this.log.startOffset ? (await this.log.readOne(this.log.endOffset - 1)).epoch : 0;
    this.logger.warn({ partition: this.name, offset }, 'cut an uncommitted tail of an older epoch and rebuilt the queue state');
  }

  /** The latest checkpoint (a snapshot a primary ships to a backup behind its log start). */
  latestCheckpoint(): Promise<StoredCheckpoint | undefined> {
    return this.log.readCheckpoint();
  }

  /**
   * Lowest offset truncateAndReload can cut at (never below the checkpoint, except at the
   * log end while a snapshot install still catches up to its checkpoint: a no-op cut).
   */
  get cutFloorOffset(): number {
    return Math.max(this.log.startOffset, Math.min(this.checkpointOffset, this.log.endOffset));
  }

  /** False while the queue state is ahead of the log (a snapshot install catching up): this replica must not lead. */
  get logHoldsState(): boolean {
    return this.log.endOffset >= this.machine.appliedEndOffset;
  }

  /**
   * Backup: replaces the log and the machine by a primary's snapshot as of `offset`. The log
   * restarts empty at `logStartOffset` (the primary's log start, <= offset; see
   * ReplicaLog.resetTo) and records stream from there: those below `offset` hold the
   * payloads of messages the snapshot still lists, and are appended but not applied again.
   */
  async installSnapshot(logStartOffset: number, offset: number, state: Uint8Array, lastEpoch: number): Promise<void> {
    this.assertOpen();
    assert(this.role === 'backup', () => `partition ${this.name}: snapshot install while primary`);
    const machine = QueueMachine.restore(state);
    assert(machine.appliedEndOffset === offset, () => `partition ${this.name}: snapshot applied to ${machine.appliedEndOffset}, announced at ${offset}`);
    this.generation++;
    await this.log.resetTo(logStartOffset, { offset, state, lastEpoch });
    this.machine = machine;
    this.recent = [];
    this.lastRecordEpoch = logStartOffset === offset ? lastEpoch : 0;
    this.checkpointOffset = offset;
    this.checkpointAtMs = this.clock.monotonicMs();
    this.logger.warn({ partition: this.name, logStartOffset, offset, lastEpoch }, 'installed a snapshot from the primary; the log restarts at the primary\'s log start');
  }

  private remember(record: LogRecord): void {
    if (this.recentRecordsMax === 0) return;
    this.recent.push(record);
    // Trimmed an eighth at a time, not per record: a splice shifts the whole array, and once
    // per append that was a visible share of a cluster primary's and backup's CPU.
    if (this.recent.length >= this.recentRecordsMax + Math.max(1, this.recentRecordsMax >> 3)) this.recent.splice(0, this.recent.length - this.recentRecordsMax);
  }

  private commit(endOffset: number, replicaCount: number): Promise<void> {
    return this.tracker.waitCommitted(endOffset, replicaCount);
  }

  get config(): QueueConfig {
    return this.machine.config;
  }

  get logStats(): ReplicaLog['stats'] {
    return this.log.stats;
  }

  get endOffset(): number {
    return this.log.endOffset;
  }

  // ---- state changes -------------------------------------------------------------

  /** Appends every message (deduplicated FIFO sends append nothing) and resolves each once durable. */
  async send(payloads: EnqueuePayload[]): Promise<Array<{ messageId: string; offset: number } | BerthError>> {
    this.assertOpen();
    this.assertPrimary();
    const results: Array<{ messageId: string; offset: number } | BerthError> = [];
    let durableEndNeeded = 0;
    let replicaCount = 1;
    for (const payload of payloads) {
      replicaCount = Math.max(replicaCount, payload.replicaCount);
      const plan = this.machine.planSend(payload);
      if (plan.kind === 'error') {
        results.push(new BerthError(plan.error, plan.message));
      } else if (plan.kind === 'duplicate') {
        results.push({ messageId: plan.messageId, offset: plan.offset });
        durableEndNeeded = Math.max(durableEndNeeded, plan.offset + 1);
      } else {
        const offset = this.appendAndApply(plan.type, plan.payload, payload.sentTimestampMs);
        // A send behind a backlog is read back with the backlog (loadWindow caches it then):
        // cached now, it would only push out payloads the consumers need sooner.
        if (!this.machine.backloggedEverywhere(offset)) this.cache.put(offset, plan.payload);
        results.push({ messageId: payload.messageId, offset });
        durableEndNeeded = offset + 1;
      }
    }
    if (durableEndNeeded > 0) await this.commit(durableEndNeeded, replicaCount);
    return results;
  }

  /** Long-polls up to waitTimeSeconds; resolves with what became deliverable, or nothing. */
  async receive(request: ReceiveRequest): Promise<Delivery[]> {
    const deadlineMs = this.clock.monotonicMs() + request.waitTimeSeconds * 1000;
    if (!this.closed && this.role !== 'primary') throw new BerthError('NotPrimary', `partition ${this.name} is not led by this node any more`);
    for (;;) {
      if (this.closed || this.role !== 'primary') return [];
      const generation = this.wakeGeneration;
      const deliveries = await this.receiveOnce(request);
      if (deliveries.length > 0) return deliveries;
      if (this.machine.loadFrom(this.now()) !== undefined && (await this.loadWindow())) continue;
      const remainingMs = deadlineMs - this.clock.monotonicMs();
      if (remainingMs <= 0 || request.signal?.aborted === true || this.closed) return [];
      if (generation !== this.wakeGeneration) continue; // something became visible while this receive was busy
      await this.waitForWake(remainingMs, request.signal, request.logicalQueueId ?? 0);
    }
  }

  /** Deletes by receipt: one Delete record and one durable wait for the whole batch. */
  async deleteMessages(receipts: Receipt[], logicalQueueId = 0): Promise<Array<BerthError | null>> {
    this.assertPrimary();
    const plan = this.machine.planDeleteBatch(receipts, logicalQueueId);
    let durableEndNeeded = plan.noop ? this.log.endOffset : 0;
    if (plan.payload !== undefined) {
      durableEndNeeded = this.appendAndApply(RecordType.Delete, plan.payload, this.now()) + 1;
      for (const offset of plan.deletedOffsets) this.cache.delete(offset);
    }
    if (durableEndNeeded > 0) await this.commit(durableEndNeeded, this.machine.config.replicaCount);
    return plan.outcomes.map((outcome) => (outcome === null ? null : new BerthError(outcome.error, outcome.message)));
  }

  async changeVisibility(changes: Array<{ receipt: Receipt; visibilityTimeoutSeconds: number }>, logicalQueueId = 0): Promise<Array<BerthError | null>> {
    this.assertPrimary();
    const results: Array<BerthError | null> = [];
    let durableEndNeeded = 0;
    const nowMs = this.now();
    for (const change of changes) {
      const plan = this.machine.planChangeVisibility(change.receipt, change.visibilityTimeoutSeconds, nowMs, logicalQueueId);
      if ('error' in plan) {
        results.push(new BerthError(plan.error, plan.message));
      } else {
        durableEndNeeded = this.appendAndApply(RecordType.ChangeVisibility, plan.payload, nowMs) + 1;
        results.push(null);
      }
    }
    if (durableEndNeeded > 0) await this.commit(durableEndNeeded, this.machine.config.replicaCount);
    return results;
  }

  async purge(logicalQueueId = 0): Promise<void> {
    this.assertPrimary();
    const nowMs = this.now();
    const plan = this.machine.planPurge(nowMs, logicalQueueId);
    if ('error' in plan) throw new BerthError(plan.error, plan.message);
    const offset = this.appendAndApply(RecordType.Purge, plan.payload, nowMs);
    await this.commit(offset + 1, this.machine.config.replicaCount);
  }

  async setConfig(config: QueueConfig): Promise<void> {
    this.assertPrimary();
    const plan = this.machine.planSetConfig(config);
    const offset = this.appendAndApply(RecordType.SetConfig, plan.payload, this.now());
    await this.commit(offset + 1, Math.min(this.machine.config.replicaCount, config.replicaCount));
  }

  /** Starts a logical queue (a topic's subscription) at the log's end, or changes its settings. */
  async subscribe(logicalQueueId: number, config: QueueConfig, filterPolicy: string | undefined): Promise<void> {
    this.assertPrimary();
    const plan = this.machine.planSubscribe(logicalQueueId, config, filterPolicy);
    if ('error' in plan) throw new BerthError(plan.error, plan.message);
    const offset = this.appendAndApply(RecordType.Subscribe, plan.payload, this.now());
    await this.commit(offset + 1, this.machine.config.replicaCount);
  }

  /** Ends a logical queue; its messages stop holding storage. */
  async unsubscribe(logicalQueueId: number): Promise<void> {
    this.assertPrimary();
    const offset = this.appendAndApply(RecordType.Unsubscribe, this.machine.planUnsubscribe(logicalQueueId).payload, this.now());
    await this.commit(offset + 1, this.machine.config.replicaCount);
  }

  /** The live logical queues with their subscription settings (what the log says). */
  subscriptions(): Array<{ logicalQueueId: number; config?: QueueConfig; filterPolicy?: string }> {
    return this.machine.logicalQueueIds().map((logicalQueueId) => ({ logicalQueueId, ...this.machine.subscription(logicalQueueId) }));
  }

  // ---- reads ---------------------------------------------------------------------

  counts(logicalQueueId = 0): QueueCounts {
    return this.machine.counts(this.now(), logicalQueueId);
  }

  /** Visible messages without changing their state (console peek). */
  async peek(maxMessages: number, logicalQueueId = 0): Promise<Delivery[]> {
    this.assertOpen();
    if (this.machine.loadFrom() !== undefined) await this.loadWindow();
    const offsets = this.machine.peek(this.now(), maxMessages, logicalQueueId);
    await this.log.waitDurable(this.log.endOffset);
    const deliveries: Delivery[] = [];
    for (const offset of offsets) {
      const view = this.machine.message(offset, undefined, logicalQueueId);
      if (view === undefined) continue;
      const payload = await this.readEnqueuePayload(offset);
      if (payload === undefined) continue;
      deliveries.push({
        offset,
        sequenceOffset: view.sequenceOffset,
        receipt: { messageOffset: offset, receiveOffset: -1 },
        payload,
        receiveCount: view.receiveCount,
        firstReceiveTimestampMs: view.firstReceiveTimestampMs,
      });
    }
    return deliveries;
  }

  /** Stops timers, answers waiting receivers with nothing, flushes and closes the log. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.maintenanceTimer?.cancel();
    this.wakeTimer?.cancel();
    this.wakeAll();
    this.cache.close();
    await this.log.close();
  }

  // ---- internals -----------------------------------------------------------------

  private assertOpen(): void {
    if (this.closed) throw new BerthError('ServiceUnavailable', `partition ${this.name} is closed`);
  }

  /** Before a caller's state change: this node leads the partition and could acknowledge the change now. */
  private assertPrimary(): void {
    this.assertOpen();
    if (this.role !== 'primary') throw new BerthError('NotPrimary', `partition ${this.name} is not led by this node any more`);
    this.tracker.refuseUnlessAcknowledgeable?.();
  }

  /** Wall-clock time that never goes backwards within this partition. */
  private now(): number {
    this.lastNowMs = Math.max(this.lastNowMs, this.clock.nowMs());
    return this.lastNowMs;
  }

  private appendAndApply(type: RecordType, payload: Uint8Array, timestampMs: number): number {
    const record: LogRecord = {
      type,
      epoch: this.epoch,
      timestampMs,
      payload,
      offset: 0,
      leafHash: zeroLeafHash,
    };
    assert(this.role === 'primary', () => `partition ${this.name}: append while backup`);
    this.tracker.beforeAppend?.();
    record.offset = this.log.append(record);
    const effect = this.machine.apply(record);
    this.lastRecordEpoch = record.epoch;
    this.remember(record);
    if (effect.becameVisible) this.wakeOnePerQueue();
    // Future visibility (delays, in-flight deadlines) is re-armed when a receiver starts
    // waiting and on every maintenance tick, not here: the scan is O(window) and this is
    // the hot path.
    return record.offset;
  }

  private async receiveOnce(request: ReceiveRequest): Promise<Delivery[]> {
    this.assertOpen();
    // A stopped log can record neither a receive nor a DeadLettered record: planning here
    // would start a dead-letter copy whose source record must fail, one more duplicate in
    // the dead-letter queue per receive until the server restarts.
    const stopped = this.log.stoppedError;
    if (stopped !== undefined) throw stopped;
    const nowMs = this.now();
    const plan = this.machine.planReceive({
      nowMs,
      maxMessages: request.maxMessages,
      visibilityTimeoutSeconds: request.visibilityTimeoutSeconds,
      attemptId: request.attemptId,
      exclude: this.deadLetterPending,
      logicalQueueId: request.logicalQueueId,
    });
    // Nor may a node that could not acknowledge the receive lease messages out (they would
    // stay in flight, undelivered, until their visibility timeout). A poll that finds
    // nothing keeps waiting: the fence may open again before anything arrives.
    if (plan.payload !== undefined || plan.deadLetter.length > 0) this.tracker.refuseUnlessAcknowledgeable?.();
    if (plan.deadLetter.length > 0) this.moveToDeadLetter(plan.deadLetter, request.logicalQueueId ?? 0);
    if (plan.payload !== undefined) this.appendAndApply(RecordType.Receive, plan.payload, nowMs);
    if (plan.deliver.length === 0) {
      if (plan.overLimit) {
        throw new BerthError('OverLimit', `Too many messages in flight for queue ${this.name} (limit ${this.machine.config.inflightMessagesMax}).`);
      }
      return [];
    }
    // More may be visible: the next waiting receiver tries now, so its receive record
    // joins this one's group commit instead of waiting for it.
    this.wakeOne(request.logicalQueueId ?? 0);
    // Capture the state this receive produced before anything else can change it: five
    // numbers per message, no view objects (this is the hot path of every receive).
    const logicalQueueId = request.logicalQueueId ?? 0;
    const count = plan.deliver.length;
    const captured = new Array<number>(count * fieldsPerDelivery);
    let receivesEnd = 0;
    for (let index = 0; index < count; index++) {
      const offset = plan.deliver[index]!;
      const entry = this.machine.entry(offset, logicalQueueId);
      assert(entry !== undefined && entry.receiptOffset >= 0, () => `planned delivery of offset ${offset} has no receipt`);
      const at = index * fieldsPerDelivery;
      captured[at] = entry.sequenceOffset;
      captured[at + 1] = entry.receiptOffset;
      captured[at + 2] = entry.receiveCount;
      captured[at + 3] = entry.firstReceiveTimestampMs;
      captured[at + 4] = entry.offset;
      // Wait for the receive records these deliveries come from (this one, or an earlier
      // one a repeated ReceiveRequestAttemptId returns), not for whatever was appended since.
      if (entry.receiptOffset >= receivesEnd) receivesEnd = entry.receiptOffset + 1;
    }
    await this.commit(receivesEnd, this.machine.config.replicaCount);
    const deliveries: Delivery[] = [];
    const withheld = new WithheldDeliveries(this.machine.config.fifo);
    for (let index = 0; index < count; index++) {
      const offset = plan.deliver[index]!;
      const at = index * fieldsPerDelivery;
      if (withheld.withholds(this.machine.entry(offset, logicalQueueId), captured[at + 1]!)) continue;
      const cached = this.cache.get(offset);
      const payload = cached !== undefined ? decodeEnqueue(cached) : await this.readEnqueuePayload(offset);
      if (payload === undefined) continue;
      deliveries.push({
        offset,
        sequenceOffset: captured[at]!,
        receipt: { messageOffset: captured[at + 4]!, receiveOffset: captured[at + 1]! },
        payload,
        receiveCount: captured[at + 2]!,
        firstReceiveTimestampMs: captured[at + 3]!,
      });
    }
    if (withheld.count > 0) {
      this.logger.warn({ partition: this.name, messages: withheld.count, waitedMs: this.now() - nowMs },
        'a receive waited for its log commit longer than its visibility timeout, and some of its messages were received again or removed meanwhile: those (and, in a FIFO queue, the rest of their message groups) are not handed out; a slow disk or slow replicas cause this');
    }
    return deliveries;
  }

  /** The enqueue payload of a message at its current offset (an Enqueue or a Relocate record). */
  private async readEnqueuePayload(offset: number): Promise<EnqueuePayload | undefined> {
    const cached = this.cache.get(offset);
    if (cached !== undefined) return decodeEnqueue(cached);
    try {
      const record = await this.log.readOne(offset);
      if (record.type === RecordType.Relocate) return decodeEnqueue(decodeRelocate(record.payload).enqueuePayload);
      assert(record.type === RecordType.Enqueue, () => `record ${offset} of ${this.name} is type ${record.type}, not a message`);
      return decodeEnqueue(record.payload);
    } catch (error) {
      this.logger.error({ err: error, partition: this.name, offset }, 'could not read a message record');
      if (error instanceof BerthError) throw error;
      throw new BerthError('InternalError', `could not read message at offset ${offset} of ${this.name}`, { cause: error });
    }
  }

  private moveToDeadLetter(offsets: number[], logicalQueueId: number): void {
    for (const offset of offsets) this.deadLetterPending.add(offset);
    const move = async (): Promise<void> => {
      const payloads: EnqueuePayload[] = [];
      for (const offset of offsets) {
        const payload = await this.readEnqueuePayload(offset);
        if (payload === undefined) continue;
        // A deduplication id fixed by this copy of the message, so a move retried after a
        // crash is deduplicated by a FIFO dead-letter queue instead of arriving twice.
        const sequenceOffset = this.machine.message(offset, undefined, logicalQueueId)?.sequenceOffset ?? offset;
        payloads.push(takenForMove(payload, sequenceOffset));
      }
      // Copies first, durably; only then remove from this queue: a crash in between
      // leaves a duplicate (at least once), never a loss.
      await this.hooks.deadLetter(payloads, logicalQueueId);
      if (this.closed || this.role !== 'primary') return;
      const plan = this.machine.planDeadLettered(offsets, logicalQueueId);
      const offset = this.appendAndApply(RecordType.DeadLettered, plan.payload, this.now());
      for (const moved of offsets) this.cache.delete(moved);
      await this.log.waitDurable(offset + 1);
    };
    const release = (): void => {
      for (const offset of offsets) this.deadLetterPending.delete(offset);
      this.wakeOnePerQueue();
    };
    move().then(release, (error: unknown) => {
      this.logger.error({ err: error, partition: this.name, messages: offsets.length }, 'moving messages to the dead-letter queue failed; they stay in the source queue and the move is retried');
      // Keep them out of receives for a while: retrying at once would spin a long poll.
      this.clock.setTimer(deadLetterRetryMs, release);
    });
  }

  /** Reads the next stretch of backlog from disk into the machine's window. True if it loaded anything. */
  private loadWindow(): Promise<boolean> {
    if (this.loading !== undefined) return this.loading;
    const from = this.machine.loadFrom(this.now());
    if (from === undefined) return Promise.resolve(false);
    const load = async (): Promise<boolean> => {
      const records = await this.log.read(from, this.options.loadBatchRecords, 4 * 1024 * 1024);
      if (records.length === 0 || this.closed) return false;
      this.machine.load(records, this.now());
      // Receives of these messages follow soon: keep their payloads instead of reading each
      // one from disk again (the cache only holds recent sends, and the backlog is older).
      for (const record of records) if (record.type === RecordType.Enqueue) this.cache.put(record.offset, record.payload);
      this.wakeOnePerQueue();
      return true;
    };
    this.loading = load().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private waitForWake(timeoutMs: number, signal: AbortSignal | undefined, logicalQueueId: number): Promise<void> {
    return new Promise((resolve) => {
      let waiting = this.waiters.get(logicalQueueId);
      if (waiting === undefined) this.waiters.set(logicalQueueId, (waiting = new Set()));
      const queueWaiters = waiting;
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        queueWaiters.delete(finish);
        timer.cancel();
        signal?.removeEventListener('abort', finish);
        resolve();
      };
      const timer = this.clock.setTimer(timeoutMs, finish);
      signal?.addEventListener('abort', finish, { once: true });
      queueWaiters.add(finish);
      this.scheduleWake();
    });
  }

  private get waiterCount(): number {
    let count = 0;
    for (const waiting of this.waiters.values()) count += waiting.size;
    return count;
  }

  private wakeAll(): void {
    this.wakeGeneration++;
    for (const waiting of this.waiters.values()) {
      if (waiting.size === 0) continue;
      const woken = [...waiting];
      waiting.clear();
      for (const wake of woken) wake();
    }
  }

  /** Wakes the longest-waiting receiver of a logical queue; it removes itself from the set. */
  private wakeOne(logicalQueueId: number): void {
    const waiting = this.waiters.get(logicalQueueId);
    if (waiting === undefined) return;
    for (const wake of waiting) {
      wake();
      return;
    }
  }

  private wakeOnePerQueue(): void {
    this.wakeGeneration++;
    for (const logicalQueueId of this.waiters.keys()) this.wakeOne(logicalQueueId);
  }

  /** Arms one timer for the earliest moment a delayed or in-flight message becomes visible. */
  private scheduleWake(): void {
    const atMs = this.machine.nextVisibleAtMs(this.now());
    if (atMs === undefined || atMs >= this.wakeTimerAtMs) return;
    this.wakeTimer?.cancel();
    this.wakeTimerAtMs = atMs;
    this.wakeTimer = this.clock.setTimer(Math.max(0, atMs - this.clock.nowMs()) + 1, () => {
      this.wakeTimer = undefined;
      this.wakeTimerAtMs = Number.POSITIVE_INFINITY;
      this.wakeOnePerQueue();
    });
  }

  private scheduleMaintenance(): void {
    if (this.closed) return;
    this.maintenanceTimer = this.clock.setTimer(this.options.maintenanceIntervalMs, () => {
      this.maintain()
        .catch((error: unknown) => this.logger.error({ err: error, partition: this.name }, 'partition maintenance failed'))
        .finally(() => this.scheduleMaintenance());
    });
  }

  /** One round of background work; never overlaps itself. */
  async maintain(): Promise<void> {
    if (this.maintaining || this.closed) return;
    this.maintaining = true;
    try {
      this.releaseBuffersWhenIdle();
      if (this.role === 'backup') {
        await this.checkpointIfDue(false);
        return;
      }
      if (this.machine.loadFrom() !== undefined) await this.loadWindow();
      const nowMs = this.now();
      if (this.role !== 'primary') return;
      const expire = this.machine.planExpire(nowMs);
      if (expire !== undefined) this.appendAndApply(RecordType.Expire, expire.payload, nowMs);
      await this.relocateOldMessages();
      await this.checkpointIfDue(false);
      if (this.waiterCount > 0) this.scheduleWake();
    } finally {
      this.maintaining = false;
    }
  }

  private async relocateOldMessages(): Promise<void> {
    const offsets = this.machine.planCompaction(this.log.endOffset);
    if (offsets.length === 0) return;
    let lastOffset = -1;
    for (const offset of offsets) {
      if (this.closed || this.role !== 'primary') return;
      const record = await this.log.readOne(offset);
      // The read waited: the partition may have closed or lost its primacy meanwhile.
      if (this.closed || this.role !== 'primary') return;
      const enqueuePayload = record.type === RecordType.Relocate ? decodeRelocate(record.payload).enqueuePayload : record.payload;
      lastOffset = this.appendAndApply(RecordType.Relocate, encodeRelocate(offset, enqueuePayload), this.now());
      this.cache.delete(offset);
    }
    if (lastOffset >= 0) await this.log.waitDurable(lastOffset + 1);
    this.logger.info({ partition: this.name, messages: offsets.length }, 'relocated old messages so their segments can be deleted');
  }

  /**
   * Frees the buffers kept for speed once nothing was appended for idleReleaseMs. A backup
   * that needs older records reads them from disk, as it does for records past the recent
   * window; a receive reads a payload the record cache let go of from disk, as it does for
   * a backlog past the cache (otherwise an idle queue with a backlog would keep up to
   * cacheBytesMax on its primary for good); the next appends and reads fill them again.
   */
  private releaseBuffersWhenIdle(): void {
    const endOffset = this.log.endOffset;
    const nowMs = this.clock.monotonicMs();
    if (endOffset !== this.idle.endOffset) {
      this.idle = { endOffset, sinceMs: nowMs, released: false };
      return;
    }
    if (this.idle.released || nowMs - this.idle.sinceMs < this.options.idleReleaseMs) return;
    this.idle.released = true;
    this.recent = [];
    this.cache.clear();
    this.log.releaseBuffers();
  }

  /** What the partition holds only for speed, which an idle partition releases. */
  get heldForSpeed(): { recentRecords: number; logBufferedBytes: number; cachedPayloadBytes: number } {
    return { recentRecords: this.recent.length, logBufferedBytes: this.log.bufferedBytes, cachedPayloadBytes: this.cache.sizeBytes };
  }

  /** Writes a checkpoint when enough changed (or `force`), then deletes segments nobody needs. */
  async checkpointIfDue(force: boolean): Promise<void> {
    const appliedEnd = this.machine.appliedEndOffset;
    const changed = appliedEnd - this.checkpointOffset;
    const ageMs = this.clock.monotonicMs() - this.checkpointAtMs;
    if (changed <= 0 || (!force && changed < this.options.checkpointEveryRecords && ageMs < this.options.checkpointIntervalMs)) return;
    // A checkpoint must never cover a record a failover could cut (cluster mode).
    if (appliedEnd > (this.tracker.checkpointSafeEnd?.() ?? Number.POSITIVE_INFINITY)) return;
    const ackLevel = this.machine.ackLevel();
    const state = this.machine.snapshot();
    const generation = this.generation;
    const lastEpoch = appliedEnd === this.log.endOffset ? this.lastRecordEpoch : 0;
    // The snapshot covers records up to appliedEnd; it may be stored only once they are all durable.
    await this.log.waitDurable(appliedEnd);
    if (generation !== this.generation) return;
    await this.log.writeCheckpoint(appliedEnd, state, lastEpoch);
    this.checkpointOffset = appliedEnd;
    this.checkpointAtMs = this.clock.monotonicMs();
    const keepFrom = Math.min(ackLevel, this.checkpointOffset);
    if (keepFrom > this.log.startOffset) await this.log.deleteBelow(keepFrom);
  }
}

