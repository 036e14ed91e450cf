// The physical queue: one segmented, append-only log per queue partition.
//
// Record on disk (little endian), 64-byte header then payload:
//   u32 length       bytes of the whole record, header included
//   u32 crc32c       over every byte after this field (type .. payload end)
//   u8  type         RecordType, owned by the queue layer (storage does not interpret it)
//   u8  flags        reserved, 0
//   u16 reserved     0
//   u32 epoch        partition epoch of the primary that appended it
//   u64 offset       dense, increasing by 1 per record
//   u64 timestampMs  wall clock of the appender
//   32B leafHash     Merkle leaf hash, reserved for the verifiable journal (zeros until then)
//   payload
//
// Offsets are JS numbers (safe to 2^53). A record is durable once the log's
// `durableEndOffset` is past it; nothing that is not durable may be made visible outside.

import type { Clock } from '../core/clock.js';

export const recordHeaderBytes = 64;

export interface AppendInput {
  type: number;
  epoch: number;
  timestampMs: number;
  payload: Uint8Array;
}

export interface LogRecord extends AppendInput {
  offset: number;
  leafHash: Uint8Array;
}

export interface RecoveryReport {
  segmentsScanned: number;
  recordsScanned: number;
  /** Bytes cut from the end of the last segment because they held a torn or partial record. */
  tornTailBytesTruncated: number;
  /** The first offset after recovery: where the next append goes. */
  endOffset: number;
  durationMs: number;
}

export interface GroupCommitStats {
  batches: number;
  records: number;
  bytes: number;
  /** Batch size (records) of the most recent batches, for histograms. */
  lastBatchRecords: number;
  fsyncMsTotal: number;
}

/** One durable group commit, reported to `PartitionLogOptions.onBatchDurable`. */
export interface GroupCommitBatch {
  records: number;
  bytes: number;
  /** Time spent in fdatasync for this batch (all segments it touched). */
  syncMs: number;
}

export interface PartitionLogOptions {
  /** A segment rolls over to a new file past this size. */
  segmentBytesMax: number;
  /** How long the group committer waits for more appends before writing (0 = write at once, batch whatever came while the last fsync ran). */
  groupCommitDelayMs: number;
  /** A batch is written at once when it reaches this many bytes. */
  groupCommitBytesMax: number;
  /** Bytes read per sequential read-ahead. */
  readAheadBytes: number;
  /** A sealed segment's sparse index holds one entry per this many bytes of records. */
  indexIntervalBytes: number;
  /**
   * Most zero-filled bytes written ahead of the records when a small batch (under a
   * quarter of this) reaches the end of the segment file (0: never); fewer while the file
   * is small. The group commits that follow overwrite allocated blocks, and their
   * fdatasync writes only data: an fdatasync that grows the file also commits the size to
   * the file system's journal (ext4: twice the time, a longer tail, more CPU). Larger
   * batches grow the file themselves.
   */
  preallocateBytes: number;
  /** Time source for groupCommitDelayMs timers and durations; required when groupCommitDelayMs > 0. */
  clock?: Clock;
  /** Called after every durable batch (metrics, fsync-latency feedback, benchmarks). Must not throw. */
  onBatchDurable?: (batch: GroupCommitBatch) => void;
  /** When a group commit runs, and whether it may fsync on this thread; default: a microtask after the first append, fsync through sync(). */
  flushScheduler?: FlushScheduler;
}

/**
 * Starts the group commits of the logs of one process (src/io/turn-end-flusher.ts). It
 * calls `flush` soon, with `syncBlocking` true when the log may fsync on the calling
 * thread (FileHandle.syncBlocking) instead of through the thread pool.
 */
export interface FlushScheduler {
  schedule(flush: (syncBlocking: boolean) => void): void;
}

export const defaultPartitionLogOptions: PartitionLogOptions = {
  segmentBytesMax: 128 * 1024 * 1024,
  groupCommitDelayMs: 0,
  groupCommitBytesMax: 4 * 1024 * 1024,
  readAheadBytes: 1024 * 1024,
  indexIntervalBytes: 4096,
  preallocateBytes: 0,
};

export interface PartitionLog {
  readonly recovery: RecoveryReport;
  /** The lowest offset still stored; segments wholly below it were deleted. */
  readonly startOffset: number;
  /** The offset the next append gets. */
  readonly endOffset: number;
  /** Every record below this offset is durable (written and fdatasync'd). */
  readonly durableEndOffset: number;
  readonly stats: GroupCommitStats;
  /**
   * The error that stopped the log (a write or fsync failed), or undefined while it works.
   * Once set it stays set: the partition must be reopened.
   */
  readonly stoppedError: Error | undefined;

  /**
   * Assigns the next offset synchronously (so callers can apply records in log order) and
   * queues the record for the next group commit. Throws BerthError('ServiceUnavailable')
   * once the log has failed.
   */
  append(input: AppendInput): number;

  /**
   * Resolves once every record below `endOffset` is durable. Rejects with
   * BerthError('ServiceUnavailable') if a write or fsync failed: the log then stops for
   * good (memory and disk may disagree) until the partition is reopened.
   */
  waitDurable(endOffset: number): Promise<void>;

  /** Reads records from `fromOffset` (durable ones only), at most `maxRecords` / about `maxBytes`. */
  read(fromOffset: number, maxRecords: number, maxBytes: number): Promise<LogRecord[]>;

  /** Reads one durable record. */
  readOne(offset: number): Promise<LogRecord>;

  /** Deletes every segment whose records are all below `offset`. Returns the new startOffset. */
  deleteBelow(offset: number): Promise<number>;

  /**
   * Atomically stores a checkpoint of derived state valid as of `offset` (write, fsync, rename, fsync dir).
   * `lastEpoch` is the epoch of the record at offset - 1 (0 when unknown or none).
   */
  writeCheckpoint(offset: number, state: Uint8Array, lastEpoch?: number): Promise<void>;
  readCheckpoint(): Promise<StoredCheckpoint | undefined>;

  /** Bytes held only for speed (read-ahead, spare write buffers), which releaseBuffers frees. */
  readonly bufferedBytes: number;

  /** Frees what bufferedBytes counts (an idle partition need not hold it); later reads and writes allocate again. */
  releaseBuffers(): void;

  /** Flushes, fsyncs and closes. Appends after close throw. */
  close(): Promise<void>;
}

export interface StoredCheckpoint {
  offset: number;
  state: Uint8Array;
  /** Epoch of the record at offset - 1; 0 when unknown (checkpoints written before it was kept) or none. */
  lastEpoch: number;
}

/**
 * What replication (a later issue) adds on top of PartitionLog: a backup appends records
 * with the primary's offsets, and a divergent uncommitted tail is cut.
 */
export interface ReplicaLog extends PartitionLog {
  /** Appends a record that already has its offset (must equal endOffset). */
  appendReplicated(record: LogRecord): void;
  /** Removes every record at or above `offset` (durably) and sets endOffset to it. */
  truncateFrom(offset: number): Promise<void>;
  /**
   * Snapshot install (a backup behind its primary's oldest segment): replaces the whole log
   * by an empty one starting at `offset`, with `checkpoint` (state as of checkpoint.offset
   * >= offset) as its checkpoint. The records in [offset, checkpoint.offset) come later by
   * replication: the state needs them only for the payloads of messages still live. Crash
   * safe: the checkpoint is written first as a reset marker; once that is durable, recovery
   * finishes the reset, so a crash leaves the old log or the new one, never a mixture.
   */
  resetTo(offset: number, checkpoint: { offset: number; state: Uint8Array; lastEpoch: number }): Promise<void>;
}
