// The physical queue's segmented log: one directory per partition, holding
//   <20-digit base offset>.log    records (format in ./types.ts), dense offsets from base
//   <20-digit base offset>.index  sparse offset -> position index of a sealed segment
//   checkpoint, checkpoint.prev   derived state as of an offset (see writeCheckpoint)
//   reset.<20-digit start offset> a snapshot install in progress (see resetTo); recovery finishes it
//
// Life of a record:
//   assigned  append() gave it an offset and encoded it into the pending batch (memory)
//   writing   the flusher took its batch and is writing/fsyncing it
//   durable   its batch was written and fdatasync'd: offset < durableEndOffset; only now
//             is it readable and are its waitDurable waiters resolved
//
// Life of a segment:
//   active    the last segment; appends go here. Rolled (a new active segment is assigned)
//             by append() when the next record would pass segmentBytesMax
//   sealing   rolled, but the flusher has not yet fsynced its last bytes and written its index
//   sealed    complete and fsynced, index file written and fsynced; may be deleted by deleteBelow.
//             Its sparse index lives in memory only while it is among the last
//             sealedIndexesInMemoryMax sealed segments a read used (or that were sealed);
//             otherwise it is re-read from its index file when a read needs it, so the
//             memory of the indexes does not grow with the backlog on disk
//   deleted   removed by deleteBelow (its handle closes when the last reader leaves)
// A new segment's file is created by the flusher, after the previous one is sealed, and
// the directory is fsynced before any record in it is reported durable. With
// preallocateBytes, the active segment's file runs ahead of its records with zeros behind
// small batches (see preallocate); recovery keeps such a zero tail, sealing cuts it off.
//
// Life of the log:
//   open -> (failed: a write or fsync threw; appends throw, waiters reject, for good)
//        -> closed
// After a failed fsync the page cache state is unknown, so the log never retries: it stops
// and the partition must be reopened (which runs recovery from what the disk really holds).
//
// Group commit: at most one flusher runs. It takes every pending chunk (up to
// groupCommitBytesMax), writes each with one positional write, fdatasyncs each segment it
// touched once, then advances durableEndOffset. Appends made while it runs form the next
// batch; the next flush is started from a microtask after waiters were resolved, so
// writers woken by one batch can join the next. A FlushScheduler (options) may start
// flushes instead: the server's starts them at the end of the event loop's turn and lets
// a turn's only flush fsync on the main thread (src/io/turn-end-flusher.ts).

import type { Clock, TimerHandle } from '../core/clock.js';
import { writeAndSync, writeFileDurably, type FileHandle, type FileSystem } from '../core/filesystem.js';
import { assert } from '../core/assert.js';
import { crc32c } from '@node-rs/crc32';
import { BerthError } from '../protocol/errors.js';
import { StorageCorruptionError } from './errors.js';
import {
  checkRecordAt,
  copyOf,
  decodeCheckedRecord,
  encodeRecordInto,
  getUint64,
  recordBytesMax,
  setUint64,
  viewOf,
} from './record.js';
import {
  defaultPartitionLogOptions,
  recordHeaderBytes,
  type AppendInput,
  type FlushScheduler,
  type GroupCommitStats,
  type LogRecord,
  type PartitionLogOptions,
  type RecoveryReport,
  type ReplicaLog,
  type StoredCheckpoint,
} from './types.js';

const segmentSuffix = '.log';
const indexSuffix = '.index';
const checkpointName = 'checkpoint';
const checkpointPreviousName = 'checkpoint.prev';
const checkpointTemporaryName = 'checkpoint.tmp';
const resetNamePattern = /^reset\.(\d{20})$/;
const resetNameOf = (startOffset: number): string => `reset.${String(startOffset).padStart(20, '0')}`;
const resetTemporaryName = 'reset.tmp';
const segmentNamePattern = /^(\d{20})\.log$/;
const indexNamePattern = /^(\d{20})\.index$/;

const indexMagic = 0x58444942; // "BIDX"
const indexVersion = 1;
const indexHeaderBytes = 48;
const indexEntryBytes = 8;
const checkpointMagic = 0x50434b42; // "BKCP"
const checkpointVersion = 1;
const checkpointHeaderBytes = 32;
const twoTo32 = 0x1_0000_0000;
const batchBufferBytesMin = 64 * 1024;
const cursorCacheEntriesMax = 32;
const readCacheEntriesMax = 4;
const readOneBytes = 16 * 1024;
/** Sealed segments whose sparse index stays in memory (most recently used); the rest are read from their index files on demand. */
const sealedIndexesInMemoryMax = 4;

/**
 * Checkpoint file: u32 magic, u16 version, u16 0, u32 crc32c (of bytes 12..end), u32 epoch
 * of the record before `offset` (0: unknown; older checkpoints left it 0), u64 offset,
 * u64 state bytes, state.
 */
function encodeCheckpoint(offset: number, state: Uint8Array, lastEpoch: number): Uint8Array {
  assert(Number.isInteger(lastEpoch) && lastEpoch >= 0 && lastEpoch < twoTo32, () => `checkpoint epoch ${lastEpoch} out of range`);
  const bytes = new Uint8Array(checkpointHeaderBytes + state.length);
  const view = viewOf(bytes);
  view.setUint32(0, checkpointMagic, true);
  view.setUint16(4, checkpointVersion, true);
  view.setUint32(12, lastEpoch, true);
  setUint64(view, 16, offset);
  setUint64(view, 24, state.length);
  bytes.set(state, checkpointHeaderBytes);
  view.setUint32(8, crc32c(bytes.subarray(12)), true);
  return bytes;
}

/** The most zeros a log writes ahead of its records (option preallocateBytes). */
export const preallocateBytesMax = 256 * 1024 * 1024;

export function segmentFileName(baseOffset: number): string {
  return `${String(baseOffset).padStart(20, '0')}${segmentSuffix}`;
}

export function indexFileName(baseOffset: number): string {
  return `${String(baseOffset).padStart(20, '0')}${indexSuffix}`;
}

/** Sparse map from relative offset to file position: one entry per indexIntervalBytes. */
class SparseIndex {
  relativeOffsets = new Uint32Array(64);
  positions = new Uint32Array(64);
  count = 0;

  constructor(private readonly intervalBytes: number) {}

  /** Offers a record at `position`; kept when it is the first or far enough past the last entry. */
  offer(relativeOffset: number, position: number): void {
    if (this.count > 0 && position - (this.positions[this.count - 1] ?? 0) < this.intervalBytes) return;
    if (this.count === this.relativeOffsets.length) {
      const offsets = new Uint32Array(this.count * 2);
      offsets.set(this.relativeOffsets);
      const positions = new Uint32Array(this.count * 2);
      positions.set(this.positions);
      this.relativeOffsets = offsets;
      this.positions = positions;
    }
    this.relativeOffsets[this.count] = relativeOffset;
    this.positions[this.count] = position;
    this.count++;
  }

  /** The entry with the largest relative offset <= the one asked for (there always is one: entry 0 is offset 0). */
  floor(relativeOffset: number): { relativeOffset: number; position: number } {
    assert(this.count > 0 && this.relativeOffsets[0] === 0, 'sparse index has no entry for the segment base');
    let low = 0;
    let high = this.count - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if ((this.relativeOffsets[middle] ?? 0) <= relativeOffset) low = middle;
      else high = middle - 1;
    }
    return { relativeOffset: this.relativeOffsets[low] ?? 0, position: this.positions[low] ?? 0 };
  }

  /** Drops entries at or above a relative offset (truncateFrom). */
  truncate(relativeOffset: number): void {
    while (this.count > 0 && (this.relativeOffsets[this.count - 1] ?? 0) >= relativeOffset) this.count--;
  }
}

interface Segment {
  readonly baseOffset: number;
  readonly path: string;
  readonly indexPath: string;
  /** One past the last record assigned to this segment (pending records included). */
  endOffset: number;
  /** File size once every assigned record is written. */
  bytesAssigned: number;
  /** Bytes [0, durableBytes) are written and fsynced: the only bytes reads look at. */
  durableBytes: number;
  /** The file's size: the records written plus zero-filled space ahead of them (preallocateBytes). */
  fileBytes: number;
  /** Undefined only for a sealed segment whose index was dropped from memory (its index file has it). */
  index: SparseIndex | undefined;
  /** A read of the dropped index from its file, in progress (concurrent readers share it). */
  indexLoading: Promise<SparseIndex> | undefined;
  /** The file exists on disk and its directory entry was fsynced. */
  created: boolean;
  /** No more appends go here (a later segment exists). */
  rolled: boolean;
  /** Rolled, fully durable, index file written: deleteBelow may remove it. */
  sealed: boolean;
  deleted: boolean;
  handle: FileHandle | undefined;
  opening: Promise<FileHandle> | undefined;
  readers: number;
}

/** Records of one segment waiting to be written, encoded back to back. */
interface BatchChunk {
  segment: Segment;
  buffer: Uint8Array;
  view: DataView;
  bytes: number;
  /** Where chunk byte 0 goes in the segment file. */
  filePosition: number;
  firstOffset: number;
  records: number;
}

interface ReadCacheEntry {
  segment: Segment;
  filePosition: number;
  bytes: Uint8Array;
  view: DataView;
}

interface Cursor {
  segment: Segment;
  position: number;
}

interface ScanResult {
  endOffset: number;
  validBytes: number;
  records: number;
  bad: { position: number; reason: string } | undefined;
}

/**
 * Opens (creating if needed) the partition log in `directory` and recovers it: sealed
 * segments with a valid index are trusted by their index; the last segment (and any
 * segment without a good index) is scanned record by record. A torn tail at the end of
 * the last segment is cut; any other damage throws StorageCorruptionError.
 */
export async function openPartitionLog(
  fs: FileSystem,
  directory: string,
  options?: Partial<PartitionLogOptions>,
): Promise<ReplicaLog> {
  const resolved = validateOptions({ ...defaultPartitionLogOptions, ...options });
  const log = new SegmentedLog(fs, directory, resolved);
  await log.recover();
  return log;
}

function validateOptions(options: PartitionLogOptions): PartitionLogOptions {
  const integerAtLeast = (key: keyof PartitionLogOptions, minimum: number, maximum = Number.MAX_SAFE_INTEGER): void => {
    const value = options[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < minimum || value > maximum) {
      throw new BerthError('InvalidParameterValue',
        `partition log option ${key} must be an integer in [${minimum}, ${maximum}], got ${String(value)}`);
    }
  };
  integerAtLeast('segmentBytesMax', 1024, twoTo32 - 1 - recordBytesMax);
  integerAtLeast('groupCommitDelayMs', 0, 60_000);
  integerAtLeast('groupCommitBytesMax', 4096, 1024 * 1024 * 1024);
  integerAtLeast('readAheadBytes', 4096, 256 * 1024 * 1024);
  integerAtLeast('indexIntervalBytes', 64, 64 * 1024 * 1024);
  integerAtLeast('preallocateBytes', 0, preallocateBytesMax);
  if (options.groupCommitDelayMs > 0 && options.clock === undefined) {
    throw new BerthError('InvalidParameterValue', 'partition log option groupCommitDelayMs > 0 needs a clock');
  }
  return options;
}

/** Read-only zeros for preallocation, shared by every log of the process. */
let zeros = new Uint8Array(0);

function zeroBytes(length: number): Uint8Array {
  if (zeros.length < length) zeros = new Uint8Array(length);
  return zeros.subarray(0, length);
}

/** Whether bytes [from, size) of the file are all zero (preallocated space, never written). */
async function isZeroFilled(handle: FileHandle, from: number, size: number): Promise<boolean> {
  for (let position = from; position < size;) {
    const bytes = await handle.read(position, Math.min(4 * 1024 * 1024, size - position));
    if (bytes.length === 0) return false;
    for (const byte of bytes) if (byte !== 0) return false;
    position += bytes.length;
  }
  return true;
}

/** Without a FlushScheduler: a flush starts in a microtask after the first append, and fsyncs through the thread pool. */
const microtaskFlushes: FlushScheduler = {
  schedule: (flush) => queueMicrotask(() => flush(false)),
};

/** Sparse index entries a log holds in memory (tests: they stay bounded whatever the log's size). */
export function indexEntriesInMemoryOf(log: ReplicaLog): number {
  assert(log instanceof SegmentedLog, 'not a segmented log');
  return log.indexEntriesInMemory;
}

class SegmentedLog implements ReplicaLog {
  recovery: RecoveryReport = { segmentsScanned: 0, recordsScanned: 0, tornTailBytesTruncated: 0, endOffset: 0, durationMs: 0 };
  readonly stats: GroupCommitStats = { batches: 0, records: 0, bytes: 0, lastBatchRecords: 0, fsyncMsTotal: 0 };
  endOffset = 0;
  durableEndOffset = 0;

  /** Ascending by base offset, dense: each segment's endOffset is the next one's base. Never empty after recover(). */
  private segments: Segment[] = [];
  private pending: BatchChunk[] = [];
  private pendingBytes = 0;
  /**
   * Released batch buffers kept for the next chunks: two, so that the chunk filling while
   * the flusher writes the other needs no allocation, and an idle log holds little memory.
   */
  private spareBuffers: Uint8Array[] = [];
  private flushing = false;
  private flushScheduled = false;
  private flushTimer: TimerHandle | undefined;
  /** The segment the flusher wrote last: sealed by the flusher when a chunk of a later segment comes. */
  private writeSegment: Segment | undefined;

  // waitDurable waiters, ascending by offset from waiterHead on.
  private waiterOffsets: number[] = [];
  private waiterResolves: (() => void)[] = [];
  private waiterRejects: ((error: Error) => void)[] = [];
  private waiterHead = 0;

  private failure: BerthError | undefined;
  private closing = false;
  private closed = false;
  private closePromise: Promise<void> | undefined;
  private truncating = false;
  /** Serialises deleteBelow, truncateFrom, checkpoints and close. */
  private maintenanceTail: Promise<unknown> = Promise.resolve();

  private readonly cursors = new Map<number, Cursor>();
  private readCache: ReadCacheEntry[] = [];
  /** Sealed segments whose index is in memory, least recently used first (at most sealedIndexesInMemoryMax). */
  private sealedIndexed: Segment[] = [];

  constructor(
    private readonly fs: FileSystem,
    private readonly directory: string,
    private readonly options: PartitionLogOptions,
  ) {}

  get stoppedError(): BerthError | undefined {
    return this.failure;
  }

  get startOffset(): number {
    const first = this.segments[0];
    assert(first !== undefined, 'log has no segment');
    return first.baseOffset;
  }

  // ---------------------------------------------------------------- recovery

  async recover(): Promise<void> {
    const startedMs = this.nowMs();
    await this.fs.mkdirp(this.directory);
    await this.finishInterruptedReset();
    const names = await this.fs.list(this.directory);
    const segmentBases: number[] = [];
    const indexBases = new Set<number>();
    for (const name of names) {
      const segmentMatch = segmentNamePattern.exec(name);
      if (segmentMatch?.[1] !== undefined) segmentBases.push(Number(segmentMatch[1]));
      const indexMatch = indexNamePattern.exec(name);
      if (indexMatch?.[1] !== undefined) indexBases.add(Number(indexMatch[1]));
    }
    segmentBases.sort((a, b) => a - b);
    let directoryChanged = false;
    for (const base of indexBases) {
      if (!segmentBases.includes(base)) {
        // An index left behind by an interrupted deleteBelow or truncateFrom.
        await this.fs.remove(this.pathOf(indexFileName(base)));
        directoryChanged = true;
      }
    }
    if (segmentBases.length === 0) {
      segmentBases.push(0);
      const handle = await this.fs.open(this.pathOf(segmentFileName(0)), { create: true });
      await handle.close();
      directoryChanged = true;
    }

    let expectedBase: number | undefined;
    for (let i = 0; i < segmentBases.length; i++) {
      const base = segmentBases[i] ?? 0;
      const isLast = i === segmentBases.length - 1;
      const segment = this.newSegment(base);
      segment.created = true;
      if (expectedBase !== undefined && base !== expectedBase) {
        const previous = this.segments[this.segments.length - 1];
        throw new StorageCorruptionError(segment.path, 0,
          `segment starts at offset ${base} but the previous segment ${previous?.path ?? ''} ends at offset ${expectedBase} (a segment file is missing or damaged)`);
      }
      const handle = await this.fs.open(segment.path, { create: false });
      const size = await handle.size();
      let trusted = false;
      if (!isLast && indexBases.has(base)) {
        trusted = await this.loadIndex(segment, size);
      }
      if (trusted) {
        await handle.close();
      } else {
        const scan = await this.scanSegment(handle, segment, size);
        this.recovery.segmentsScanned++;
        this.recovery.recordsScanned += scan.records;
        let fileBytes = scan.validBytes;
        if (scan.bad !== undefined && isLast && await isZeroFilled(handle, scan.bad.position, size)) {
          // Space preallocated ahead of the records (preallocateBytes), not a torn write: kept for the next appends.
          fileBytes = size;
        } else if (scan.bad !== undefined) {
          const badPosition = scan.bad.position;
          if (!isLast || await this.validRecordAfter(handle, badPosition, size, scan.endOffset)) {
            await handle.close();
            throw new StorageCorruptionError(segment.path, badPosition,
              isLast ? `${scan.bad.reason}, followed by valid records (damage in the middle of the log, not a torn tail)`
                : `${scan.bad.reason} in a sealed segment`);
          }
          // A torn tail: a write cut short by a crash, never acknowledged. Cut it off.
          await handle.truncate(badPosition);
          await handle.sync();
          this.recovery.tornTailBytesTruncated += size - badPosition;
        }
        // What the scan read may still be only in the page cache (the process died before
        // its fsync): make it durable before anything is built on it, or a checkpoint could
        // cover records that a power loss then removes.
        await handle.sync();
        segment.endOffset = scan.endOffset;
        segment.bytesAssigned = scan.validBytes;
        segment.durableBytes = scan.validBytes;
        segment.fileBytes = fileBytes;
        if (isLast) {
          segment.handle = handle;
          if (indexBases.has(base)) {
            // Left by a roll whose new segment did not survive a crash: this segment grows again, and is re-indexed when it rolls.
            await this.fs.remove(segment.indexPath);
            directoryChanged = true;
          }
        } else {
          await handle.close();
          await this.writeIndex(segment);
          directoryChanged = true;
        }
      }
      if (!isLast) {
        segment.rolled = true;
        segment.sealed = true;
      }
      this.segments.push(segment);
      if (segment.sealed) this.keepIndexInMemory(segment);
      expectedBase = segment.endOffset;
    }
    if (directoryChanged) await this.fs.syncDirectory(this.directory);
    const last = this.segments[this.segments.length - 1];
    assert(last !== undefined, 'recovery produced no segment');
    this.writeSegment = last;
    this.endOffset = last.endOffset;
    this.durableEndOffset = last.endOffset;
    this.recovery.endOffset = this.endOffset;
    this.recovery.durationMs = this.nowMs() - startedMs;
  }

  /** Reads every record of a segment, verifying length, checksum and offset, and builds its sparse index. */
  private async scanSegment(handle: FileHandle, segment: Segment, size: number): Promise<ScanResult> {
    const chunkBytes = Math.max(this.options.readAheadBytes, 4 * 1024 * 1024);
    const index = new SparseIndex(this.options.indexIntervalBytes);
    segment.index = index;
    let position = 0;
    let expected = segment.baseOffset;
    let records = 0;
    let needed = chunkBytes;
    while (position < size) {
      const bytes = await handle.read(position, Math.min(Math.max(chunkBytes, needed), size - position));
      const view = viewOf(bytes);
      let local = 0;
      for (;;) {
        const result = checkRecordAt(bytes, view, local);
        if (result.kind === 'incomplete') {
          if (position + local + result.lengthNeeded > size) {
            return { endOffset: expected, validBytes: position + local, records,
              bad: { position: position + local, reason: `partial record (${size - position - local} of ${result.lengthNeeded}+ bytes)` } };
          }
          needed = result.lengthNeeded;
          break;
        }
        if (result.kind === 'invalid') {
          return { endOffset: expected, validBytes: position + local, records, bad: { position: position + local, reason: result.reason } };
        }
        if (result.offset !== expected) {
          return { endOffset: expected, validBytes: position + local, records,
            bad: { position: position + local, reason: `record has offset ${result.offset} where ${expected} was expected` } };
        }
        index.offer(expected - segment.baseOffset, position + local);
        expected++;
        records++;
        local += result.length;
        if (local === bytes.length) break;
      }
      position += local;
    }
    return { endOffset: expected, validBytes: position, records, bad: undefined };
  }

  /**
   * Whether any valid record (checksum holds, plausible offset) starts after `badPosition`:
   * if so the damage is in the middle of the log; if not, it is a torn tail.
   */
  private async validRecordAfter(handle: FileHandle, badPosition: number, size: number, badOffset: number): Promise<boolean> {
    const bytes = await handle.read(badPosition, size - badPosition);
    const view = viewOf(bytes);
    const offsetLimit = badOffset + Math.ceil(bytes.length / recordHeaderBytes) + 1;
    for (let local = 1; local + recordHeaderBytes <= bytes.length; local++) {
      const length = view.getUint32(local, true);
      if (length < recordHeaderBytes || length > bytes.length - local) continue;
      const offset = getUint64(view, local + 16);
      if (offset < badOffset || offset > offsetLimit) continue;
      if (checkRecordAt(bytes, view, local).kind === 'record') return true;
    }
    return false;
  }

  /** Loads a sealed segment's index file; false (scan instead) when absent, damaged or stale. */
  private async loadIndex(segment: Segment, segmentSize: number): Promise<boolean> {
    const loaded = await this.readIndexFile(segment, segmentSize);
    if (loaded === undefined) return false;
    segment.index = loaded.index;
    segment.endOffset = loaded.endOffset;
    segment.bytesAssigned = segmentSize;
    segment.durableBytes = segmentSize;
    segment.fileBytes = segmentSize;
    return true;
  }

  /** A sealed segment's index file, checked against the segment; undefined when absent, damaged or stale. */
  private async readIndexFile(segment: Segment, segmentSize: number): Promise<{ index: SparseIndex; endOffset: number } | undefined> {
    let bytes: Uint8Array;
    try {
      const handle = await this.fs.open(segment.indexPath, { create: false });
      try {
        bytes = await handle.read(0, await handle.size());
      } finally {
        await handle.close();
      }
    } catch {
      return undefined;
    }
    if (bytes.length < indexHeaderBytes) return undefined;
    const view = viewOf(bytes);
    if (view.getUint32(0, true) !== indexMagic || view.getUint16(4, true) !== indexVersion) return undefined;
    const count = view.getUint32(12, true);
    if (bytes.length !== indexHeaderBytes + count * indexEntryBytes || count === 0) return undefined;
    if (view.getUint32(8, true) !== crc32c(bytes.subarray(12))) return undefined;
    const baseOffset = getUint64(view, 16);
    const endOffset = getUint64(view, 24);
    const segmentBytes = getUint64(view, 32);
    if (baseOffset !== segment.baseOffset || segmentBytes !== segmentSize || endOffset <= baseOffset) return undefined;
    const index = new SparseIndex(this.options.indexIntervalBytes);
    index.relativeOffsets = new Uint32Array(count);
    index.positions = new Uint32Array(count);
    for (let i = 0; i < count; i++) {
      index.relativeOffsets[i] = view.getUint32(indexHeaderBytes + i * indexEntryBytes, true);
      index.positions[i] = view.getUint32(indexHeaderBytes + i * indexEntryBytes + 4, true);
    }
    index.count = count;
    if (index.relativeOffsets[0] !== 0 || index.positions[0] !== 0) return undefined;
    return { index, endOffset };
  }

  /**
   * A segment's sparse index: in memory, or (a sealed segment whose index was dropped) read
   * again from its index file; a missing or damaged file is rebuilt by scanning the segment.
   */
  private async indexFor(segment: Segment): Promise<SparseIndex> {
    if (segment.index !== undefined) {
      if (segment.sealed) this.keepIndexInMemory(segment);
      return segment.index;
    }
    assert(segment.sealed, () => `segment ${segment.path} has no index and is not sealed`);
    segment.indexLoading ??= (async () => {
      try {
        const loaded = await this.readIndexFile(segment, segment.durableBytes);
        if (loaded !== undefined && loaded.endOffset === segment.endOffset) return loaded.index;
        const handle = await this.handleFor(segment);
        const scan = await this.scanSegment(handle, segment, segment.durableBytes);
        if (scan.bad !== undefined || scan.endOffset !== segment.endOffset) {
          throw new StorageCorruptionError(segment.path, scan.validBytes, scan.bad?.reason ?? `sealed segment ends at offset ${scan.endOffset}, not ${segment.endOffset}`);
        }
        return segment.index!;
      } finally {
        segment.indexLoading = undefined;
      }
    })();
    const index = await segment.indexLoading;
    if (segment.sealed && !segment.deleted) {
      segment.index = index;
      this.keepIndexInMemory(segment);
    }
    return index;
  }

  /** Marks a sealed segment's in-memory index as most recently used and drops the least recently used beyond the bound. */
  private keepIndexInMemory(segment: Segment): void {
    const indexed = this.sealedIndexed;
    const at = indexed.lastIndexOf(segment);
    if (at === indexed.length - 1 && at >= 0) return;
    if (at >= 0) indexed.splice(at, 1);
    indexed.push(segment);
    while (indexed.length > sealedIndexesInMemoryMax) {
      const dropped = indexed.shift()!;
      if (dropped.sealed) dropped.index = undefined;
    }
  }

  /** The segment's index stays in memory for good (it is about to grow again: truncateFrom), or the segment is gone. */
  private releaseIndexSlot(segment: Segment): void {
    const at = this.sealedIndexed.indexOf(segment);
    if (at >= 0) this.sealedIndexed.splice(at, 1);
  }

  /** Sparse index entries held in memory over all segments (tests: bounded by the active segment and sealedIndexesInMemoryMax sealed ones). */
  get indexEntriesInMemory(): number {
    let entries = 0;
    for (const segment of this.segments) entries += segment.index?.count ?? 0;
    return entries;
  }

  /** Writes and fsyncs a sealed segment's index file (the caller fsyncs the directory). */
  private async writeIndex(segment: Segment): Promise<void> {
    const index = segment.index;
    assert(index !== undefined, () => `segment ${segment.path} has no index to write`);
    const count = index.count;
    const bytes = new Uint8Array(indexHeaderBytes + count * indexEntryBytes);
    const view = viewOf(bytes);
    view.setUint32(0, indexMagic, true);
    view.setUint16(4, indexVersion, true);
    view.setUint32(12, count, true);
    setUint64(view, 16, segment.baseOffset);
    setUint64(view, 24, segment.endOffset);
    setUint64(view, 32, segment.bytesAssigned);
    for (let i = 0; i < count; i++) {
      view.setUint32(indexHeaderBytes + i * indexEntryBytes, index.relativeOffsets[i] ?? 0, true);
      view.setUint32(indexHeaderBytes + i * indexEntryBytes + 4, index.positions[i] ?? 0, true);
    }
    view.setUint32(8, crc32c(bytes.subarray(12)), true);
    await writeAndSync(this.fs, segment.indexPath, bytes);
  }

  // ---------------------------------------------------------------- appending

  append(input: AppendInput): number {
    const offset = this.endOffset;
    this.appendAt(offset, input.type, input.epoch, input.timestampMs, input.payload, undefined);
    return offset;
  }

  appendReplicated(record: LogRecord): void {
    assert(record.offset === this.endOffset, () => `replicated record has offset ${record.offset} but the log ends at ${this.endOffset}`);
    this.appendAt(record.offset, record.type, record.epoch, record.timestampMs, record.payload, record.leafHash);
  }

  private appendAt(offset: number, type: number, epoch: number, timestampMs: number, payload: Uint8Array, leafHash: Uint8Array | undefined): void {
    this.checkWritable();
    assert(!this.truncating, 'append during truncateFrom');
    const length = recordHeaderBytes + payload.length;
    assert(length <= recordBytesMax, () => `record of ${length} bytes exceeds recordBytesMax ${recordBytesMax}`);
    let segment = this.segments[this.segments.length - 1];
    assert(segment !== undefined && !segment.rolled, 'no active segment');
    if (segment.bytesAssigned > 0 && segment.bytesAssigned + length > this.options.segmentBytesMax) {
      segment.rolled = true;
      segment = this.newSegment(offset);
      this.segments.push(segment);
    }
    const chunk = this.chunkFor(segment, length);
    encodeRecordInto(chunk.buffer, chunk.view, chunk.bytes, offset, type, epoch, timestampMs, payload, leafHash);
    assert(segment.index !== undefined, 'the active segment has its index in memory');
    segment.index.offer(offset - segment.baseOffset, segment.bytesAssigned);
    segment.bytesAssigned += length;
    segment.endOffset = offset + 1;
    chunk.bytes += length;
    chunk.records++;
    this.pendingBytes += length;
    this.endOffset = offset + 1;
    this.scheduleFlush();
  }

  /** The pending chunk the next record of `segment` goes into, with room for `length` bytes. */
  private chunkFor(segment: Segment, length: number): BatchChunk {
    const last = this.pending[this.pending.length - 1];
    if (last !== undefined && last.segment === segment) {
      if (last.bytes + length <= last.buffer.length) return last;
      if (last.buffer.length < this.options.groupCommitBytesMax) {
        // Grow (amortised doubling) rather than split: one write per segment per batch.
        const grown = new Uint8Array(Math.max(last.bytes + length, Math.min(last.buffer.length * 2, this.options.groupCommitBytesMax)));
        grown.set(last.buffer.subarray(0, last.bytes));
        last.buffer = grown;
        last.view = viewOf(grown);
        return last;
      }
    }
    let buffer: Uint8Array | undefined;
    const spareIndex = this.spareBuffers.findIndex((spare) => spare.length >= length);
    if (spareIndex >= 0) {
      buffer = this.spareBuffers[spareIndex];
      this.spareBuffers.splice(spareIndex, 1);
    }
    buffer ??= new Uint8Array(Math.max(length, Math.min(batchBufferBytesMin, this.options.groupCommitBytesMax)));
    const chunk: BatchChunk = {
      segment, buffer, view: viewOf(buffer), bytes: 0, filePosition: segment.bytesAssigned, firstOffset: this.endOffset, records: 0,
    };
    this.pending.push(chunk);
    return chunk;
  }

  waitDurable(endOffset: number): Promise<void> {
    if (endOffset <= this.durableEndOffset) return Promise.resolve();
    if (this.failure !== undefined) return Promise.reject(this.failure);
    assert(endOffset <= this.endOffset, () => `waitDurable(${endOffset}) past the log end ${this.endOffset}`);
    return new Promise<void>((resolve, reject) => {
      const offsets = this.waiterOffsets;
      let at = offsets.length;
      // Waiters almost always arrive in offset order: push; otherwise binary-insert.
      if (at > this.waiterHead && (offsets[at - 1] ?? 0) > endOffset) {
        let low = this.waiterHead;
        let high = at;
        while (low < high) {
          const middle = (low + high) >> 1;
          if ((offsets[middle] ?? 0) <= endOffset) low = middle + 1;
          else high = middle;
        }
        at = low;
        offsets.splice(at, 0, endOffset);
        this.waiterResolves.splice(at, 0, resolve);
        this.waiterRejects.splice(at, 0, reject);
      } else {
        offsets.push(endOffset);
        this.waiterResolves.push(resolve);
        this.waiterRejects.push(reject);
      }
    });
  }

  private scheduleFlush(): void {
    if (this.flushing || this.failure !== undefined) return;
    const delayMs = this.options.groupCommitDelayMs;
    if (delayMs > 0 && this.pendingBytes < this.options.groupCommitBytesMax && !this.closing) {
      if (this.flushScheduled) return;
      this.flushScheduled = true;
      const clock = this.options.clock;
      assert(clock !== undefined, 'groupCommitDelayMs needs a clock');
      this.flushTimer = clock.setTimer(delayMs, () => this.startFlush(false));
      return;
    }
    if (this.flushTimer !== undefined) {
      // The batch is full (or the log is closing): do not wait for the timer.
      this.flushTimer.cancel();
      this.flushTimer = undefined;
      this.flushScheduled = false;
    }
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    (this.options.flushScheduler ?? microtaskFlushes).schedule(this.startFlush);
  }

  private readonly startFlush = (syncBlocking: boolean): void => {
    this.flushScheduled = false;
    this.flushTimer = undefined;
    if (this.flushing || this.failure !== undefined || this.pending.length === 0) return;
    this.flushing = true;
    this.flushOnce(syncBlocking).then(
      () => {
        this.flushing = false;
        if (this.pending.length > 0) this.scheduleFlush();
      },
      (error: unknown) => {
        this.flushing = false;
        this.fail(error);
      },
    );
  };

  /**
   * Writes and fsyncs one batch: the pending chunks up to groupCommitBytesMax (at least
   * one). `syncBlocking`: fsync on this thread when the file can (see FlushScheduler).
   */
  private async flushOnce(syncBlocking: boolean): Promise<void> {
    let takeCount = 0;
    let takeBytes = 0;
    for (const chunk of this.pending) {
      if (takeCount > 0 && takeBytes + chunk.bytes > this.options.groupCommitBytesMax) break;
      takeCount++;
      takeBytes += chunk.bytes;
    }
    const batch = this.pending.splice(0, takeCount);
    this.pendingBytes -= takeBytes;
    let records = 0;
    let syncMs = 0;
    for (let i = 0; i < batch.length; i++) {
      const chunk = batch[i];
      assert(chunk !== undefined, 'batch chunk missing');
      const segment = chunk.segment;
      if (segment !== this.writeSegment) {
        const previous = this.writeSegment;
        assert(previous !== undefined && previous.rolled && previous.durableBytes === previous.bytesAssigned,
          'the flusher moved on from a segment that is not complete and durable');
        if (previous.fileBytes > previous.durableBytes) {
          // A sealed segment ends at its last record: its preallocated zeros go before its index is written.
          const previousHandle = await this.handleFor(previous);
          await previousHandle.truncate(previous.durableBytes);
          await previousHandle.sync();
          previous.fileBytes = previous.durableBytes;
        }
        await this.writeIndex(previous);
        previous.sealed = true;
        this.keepIndexInMemory(previous);
        segment.handle = await this.fs.open(segment.path, { create: true });
        // One directory fsync makes both the index and the new segment's entry durable.
        await this.fs.syncDirectory(this.directory);
        segment.created = true;
        this.writeSegment = segment;
      }
      assert(chunk.filePosition === segment.durableBytes + this.writtenNotSynced(batch, i), 'chunk is not at the end of its segment');
      const handle = segment.handle;
      assert(handle !== undefined, 'active segment has no handle');
      await handle.write(chunk.buffer.subarray(0, chunk.bytes), chunk.filePosition);
      const end = chunk.filePosition + chunk.bytes;
      const zeros = this.zerosAhead(segment, end, takeBytes);
      segment.fileBytes = Math.max(segment.fileBytes, end);
      if (zeros > 0) {
        await handle.write(zeroBytes(zeros), end);
        segment.fileBytes = end + zeros;
      }
      records += chunk.records;
      const next = batch[i + 1];
      if (next === undefined || next.segment !== segment) {
        const syncStartedMs = this.nowMs();
        if (syncBlocking && handle.syncBlocking !== undefined) handle.syncBlocking();
        else await handle.sync();
        syncMs += this.nowMs() - syncStartedMs;
        segment.durableBytes = chunk.filePosition + chunk.bytes;
      }
      this.releaseBuffer(chunk.buffer);
    }
    const last = batch[batch.length - 1];
    assert(last !== undefined, 'empty batch');
    const batchEndOffset = last.firstOffset + last.records;
    assert(batchEndOffset > this.durableEndOffset, 'durable end must advance');
    this.durableEndOffset = batchEndOffset;
    this.stats.batches++;
    this.stats.records += records;
    this.stats.bytes += takeBytes;
    this.stats.lastBatchRecords = records;
    this.stats.fsyncMsTotal += syncMs;
    this.resolveWaiters();
    const onBatchDurable = this.options.onBatchDurable;
    if (onBatchDurable !== undefined) {
      try {
        onBatchDurable({ records, bytes: takeBytes, syncMs });
      } catch (error) {
        // A throwing observer is a bug of the caller, not a disk error: crash loudly rather than fail the log.
        queueMicrotask(() => { throw error; });
      }
    }
  }

  /**
   * After records were written up to `end` (the segment's fileBytes not yet moved past
   * them): how many zeros to write after them (0: none).
   * Once a small batch reaches the end of the file, zeros go after it (made durable by the
   * batch's own fsync), so the group commits that follow overwrite allocated blocks and
   * their fdatasync does not also commit a new file size to the journal. Real zeros, not
   * fallocate: a first write into an unwritten extent commits metadata just the same. A
   * batch of a quarter of preallocateBytes or more grows the file itself: the journal
   * commit is small beside its data, and zeros would double the bytes written (on this
   * VM's ext4, 256 KiB batches with 256 KiB of zeros each ran 30% slower). The zeros grow
   * with the file (as much as it holds, from 4 KiB up to preallocateBytes), so a queue that
   * holds a few records neither carries nor writes the full amount.
   */
  private zerosAhead(segment: Segment, end: number, batchBytes: number): number {
    const bytesMax = this.options.preallocateBytes;
    // A rolled segment takes no more records: its zeros would be cut off when it is sealed.
    if (bytesMax <= 0 || end < segment.fileBytes || segment.rolled || batchBytes * 4 >= bytesMax) return 0;
    return Math.min(bytesMax, Math.max(4096, end));
  }

  /** Bytes of earlier chunks of the same segment in this batch, written but not yet fsynced. */
  private writtenNotSynced(batch: BatchChunk[], index: number): number {
    let bytes = 0;
    const segment = batch[index]?.segment;
    for (let i = index - 1; i >= 0; i--) {
      const chunk = batch[i];
      if (chunk === undefined || chunk.segment !== segment) break;
      bytes += chunk.bytes;
    }
    return bytes;
  }

  get bufferedBytes(): number {
    let bytes = 0;
    for (const spare of this.spareBuffers) bytes += spare.byteLength;
    for (const entry of this.readCache) bytes += entry.bytes.byteLength;
    return bytes;
  }

  releaseBuffers(): void {
    this.spareBuffers = [];
    this.readCache = [];
  }

  private releaseBuffer(buffer: Uint8Array): void {
    if (buffer.length > this.options.groupCommitBytesMax) return;
    this.spareBuffers.push(buffer);
    this.spareBuffers.sort((a, b) => b.length - a.length);
    if (this.spareBuffers.length > 2) this.spareBuffers.length = 2;
  }

  private resolveWaiters(): void {
    const offsets = this.waiterOffsets;
    let head = this.waiterHead;
    while (head < offsets.length && (offsets[head] ?? 0) <= this.durableEndOffset) {
      const resolve = this.waiterResolves[head];
      assert(resolve !== undefined, 'waiter without resolve');
      resolve();
      head++;
    }
    if (head === offsets.length) {
      this.waiterOffsets = [];
      this.waiterResolves = [];
      this.waiterRejects = [];
      this.waiterHead = 0;
    } else if (head > 1024 && head * 2 > offsets.length) {
      this.waiterOffsets = offsets.slice(head);
      this.waiterResolves = this.waiterResolves.slice(head);
      this.waiterRejects = this.waiterRejects.slice(head);
      this.waiterHead = 0;
    } else {
      this.waiterHead = head;
    }
  }

  /** A write or fsync failed: stop for good. Nothing not fsynced is ever reported durable. */
  private fail(cause: unknown): void {
    if (this.failure !== undefined) return;
    const causeText = cause instanceof Error ? cause.message : String(cause);
    this.failure = new BerthError('ServiceUnavailable',
      `partition log ${this.directory} stopped after a disk error: ${causeText}; restart the server once the disk is fixed`,
      { cause });
    this.pending = [];
    this.pendingBytes = 0;
    const rejects = this.waiterRejects.slice(this.waiterHead);
    this.waiterOffsets = [];
    this.waiterResolves = [];
    this.waiterRejects = [];
    this.waiterHead = 0;
    for (const reject of rejects) reject(this.failure);
  }

  private checkWritable(): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.closing || this.closed) {
      throw new BerthError('ServiceUnavailable', `partition log ${this.directory} is closed`);
    }
  }

  // ---------------------------------------------------------------- reading

  async read(fromOffset: number, maxRecords: number, maxBytes: number): Promise<LogRecord[]> {
    assert(Number.isSafeInteger(fromOffset), () => `read from a non-integer offset ${fromOffset}`);
    assert(fromOffset >= this.startOffset, () => `read from offset ${fromOffset} below the log start ${this.startOffset}`);
    const records: LogRecord[] = [];
    const endOffset = this.durableEndOffset;
    if (fromOffset >= endOffset || maxRecords <= 0) return records;
    let cursor = await this.locate(fromOffset);
    let offset = fromOffset;
    let bytes = 0;
    let segment = cursor.segment;
    segment.readers++;
    try {
      let position = cursor.position;
      while (offset < endOffset && records.length < maxRecords) {
        if (offset >= segment.endOffset || position >= segment.durableBytes) {
          const next = this.segmentFor(offset);
          assert(next !== segment && next.baseOffset === offset, () => `offset ${offset} missing between segments`);
          this.leave(segment);
          segment = next;
          segment.readers++;
          position = 0;
        }
        const { bytes: buffer, view, local } = await this.fetch(segment, position, this.options.readAheadBytes);
        const length = this.checkAt(segment, buffer, view, local, position, offset);
        if (records.length > 0 && bytes + length > maxBytes) break;
        records.push(decodeCheckedRecord(buffer, view, local, length));
        bytes += length;
        position += length;
        offset++;
      }
      cursor = { segment, position };
    } finally {
      this.leave(segment);
    }
    this.rememberCursor(offset, cursor);
    return records;
  }

  async readOne(offset: number): Promise<LogRecord> {
    assert(Number.isSafeInteger(offset), () => `readOne of a non-integer offset ${offset}`);
    assert(offset >= this.startOffset && offset < this.durableEndOffset,
      () => `readOne(${offset}) outside the durable log [${this.startOffset}, ${this.durableEndOffset})`);
    const { segment, position } = await this.locate(offset);
    segment.readers++;
    try {
      const { bytes, view, local } = await this.fetch(segment, position, readOneBytes);
      const length = this.checkAt(segment, bytes, view, local, position, offset);
      return decodeCheckedRecord(bytes, view, local, length);
    } finally {
      this.leave(segment);
    }
  }

  /** Verifies the record at a position holds `offset` and its checksum; returns its length. */
  private checkAt(segment: Segment, bytes: Uint8Array, view: DataView, local: number, position: number, offset: number): number {
    const result = checkRecordAt(bytes, view, local);
    if (result.kind === 'invalid') throw new StorageCorruptionError(segment.path, position, result.reason);
    if (result.kind === 'incomplete') throw new StorageCorruptionError(segment.path, position, 'record runs past the durable end of the segment');
    if (result.offset !== offset) {
      throw new StorageCorruptionError(segment.path, position, `record has offset ${result.offset} where ${offset} was expected`);
    }
    return result.length;
  }

  /** Finds the file position of a durable offset: cursor cache, then sparse index and a forward scan of headers. */
  private async locate(offset: number): Promise<Cursor> {
    const cached = this.cursors.get(offset);
    if (cached !== undefined && !cached.segment.deleted && offset < cached.segment.endOffset) return cached;
    const segment = this.segmentFor(offset);
    segment.readers++;
    try {
      const entry = (await this.indexFor(segment)).floor(offset - segment.baseOffset);
      let position = entry.position;
      let current = segment.baseOffset + entry.relativeOffset;
      while (current < offset) {
        const { bytes, view, local } = await this.fetch(segment, position, readOneBytes);
        position += this.checkAt(segment, bytes, view, local, position, current);
        current++;
      }
      return { segment, position };
    } finally {
      this.leave(segment);
    }
  }

  /**
   * Bytes holding the whole record at `position` (durable bytes only), from the read-ahead
   * cache when it has them, else by one read of `readBytes` (or the record's length if larger).
   */
  private async fetch(segment: Segment, position: number, readBytes: number): Promise<{ bytes: Uint8Array; view: DataView; local: number }> {
    for (const entry of this.readCache) {
      if (entry.segment !== segment || position < entry.filePosition) continue;
      const local = position - entry.filePosition;
      if (local + recordHeaderBytes > entry.bytes.length) continue;
      const length = entry.view.getUint32(local, true);
      if (length >= recordHeaderBytes && local + length <= entry.bytes.length) {
        return { bytes: entry.bytes, view: entry.view, local };
      }
    }
    assert(position < segment.durableBytes, () => `read at ${position} past the durable end of ${segment.path}`);
    const handle = await this.handleFor(segment);
    let want = Math.min(readBytes, segment.durableBytes - position);
    let bytes = await handle.read(position, want);
    if (bytes.length >= recordHeaderBytes) {
      const length = viewOf(bytes).getUint32(0, true);
      if (length > bytes.length && length <= recordBytesMax && position + length <= segment.durableBytes) {
        want = length;
        bytes = await handle.read(position, want);
      }
    }
    if (bytes.length < want) {
      throw new StorageCorruptionError(segment.path, position + bytes.length,
        `file is shorter than its durable length ${segment.durableBytes}`);
    }
    const entry: ReadCacheEntry = { segment, filePosition: position, bytes, view: viewOf(bytes) };
    this.readCache.unshift(entry);
    if (this.readCache.length > readCacheEntriesMax) this.readCache.pop();
    return { bytes, view: entry.view, local: 0 };
  }

  private async handleFor(segment: Segment): Promise<FileHandle> {
    if (segment.handle !== undefined) return segment.handle;
    segment.opening ??= this.fs.open(segment.path, { create: false }).then((handle) => {
      segment.handle = handle;
      segment.opening = undefined;
      return handle;
    });
    return segment.opening;
  }

  private leave(segment: Segment): void {
    segment.readers--;
    if (segment.deleted && segment.readers === 0) void this.closeHandle(segment);
  }

  private async closeHandle(segment: Segment): Promise<void> {
    const handle = segment.handle ?? await segment.opening?.catch(() => undefined);
    segment.handle = undefined;
    await handle?.close();
  }

  private rememberCursor(offset: number, cursor: Cursor): void {
    this.cursors.delete(offset);
    this.cursors.set(offset, cursor);
    if (this.cursors.size > cursorCacheEntriesMax) {
      const oldest = this.cursors.keys().next();
      if (oldest.done !== true) this.cursors.delete(oldest.value);
    }
  }

  private segmentFor(offset: number): Segment {
    let low = 0;
    let high = this.segments.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if ((this.segments[middle]?.baseOffset ?? 0) <= offset) low = middle;
      else high = middle - 1;
    }
    const segment = this.segments[low];
    assert(segment !== undefined && segment.baseOffset <= offset && offset < segment.endOffset,
      () => `no segment holds offset ${offset}`);
    return segment;
  }

  private invalidateReadState(): void {
    this.cursors.clear();
    this.readCache = [];
  }

  // ---------------------------------------------------------------- maintenance

  deleteBelow(offset: number): Promise<number> {
    return this.exclusive(async () => {
      let removed = 0;
      while (this.segments.length > 1) {
        const first = this.segments[0];
        if (first === undefined || !first.sealed || first.endOffset > offset) break;
        this.segments.shift();
        first.deleted = true;
        this.releaseIndexSlot(first);
        await this.fs.remove(first.path);
        await this.fs.remove(first.indexPath);
        // One directory fsync per segment: removals become durable front to back, so a
        // crash can never leave a gap in the middle of the log (which recovery would call corruption).
        await this.fs.syncDirectory(this.directory);
        if (first.readers === 0) await this.closeHandle(first);
        removed++;
      }
      if (removed > 0) {
        for (const [key, cursor] of this.cursors) if (cursor.segment.deleted) this.cursors.delete(key);
        this.readCache = this.readCache.filter((entry) => !entry.segment.deleted);
      }
      return this.startOffset;
    });
  }

  truncateFrom(offset: number): Promise<void> {
    return this.exclusive(async () => {
      this.checkWritable();
      assert(offset >= this.startOffset && offset <= this.endOffset,
        () => `truncateFrom(${offset}) outside the log [${this.startOffset}, ${this.endOffset}]`);
      // From here until the cut is done, an append is a bug of the caller (asserted).
      this.truncating = true;
      try {
        await this.waitDurable(this.endOffset);
        if (offset === this.endOffset) return;
        const keep = this.segmentFor(offset);
        const keepIndex = this.segments.indexOf(keep);
        const cursor = await this.locate(offset);
        const keepIndexEntries = await this.indexFor(keep);
        // Later segments go first, last to first, and durably, before `keep` is cut: a crash
        // part way leaves a dense prefix of the log, never a cut segment followed by old ones.
        const later = this.segments.splice(keepIndex + 1).reverse();
        for (const segment of later) {
          segment.deleted = true;
          await this.fs.remove(segment.indexPath);
          await this.fs.remove(segment.path);
          if (segment.readers === 0) await this.closeHandle(segment);
        }
        for (const segment of later) this.releaseIndexSlot(segment);
        if (keep.sealed || keep.rolled) {
          // Its index becomes the active segment's again: held in memory, not in the bound.
          keep.index = keepIndexEntries;
          this.releaseIndexSlot(keep);
          keep.sealed = false;
          keep.rolled = false;
          await this.fs.remove(keep.indexPath);
        }
        await this.fs.syncDirectory(this.directory);
        const handle = await this.handleFor(keep);
        await handle.truncate(cursor.position);
        await handle.sync();
        keep.endOffset = offset;
        keep.bytesAssigned = cursor.position;
        keep.durableBytes = cursor.position;
        keep.fileBytes = cursor.position;
        keepIndexEntries.truncate(offset - keep.baseOffset);
        this.writeSegment = keep;
        this.endOffset = offset;
        this.durableEndOffset = offset;
        this.invalidateReadState();
      } catch (error) {
        this.fail(error);
        throw error;
      } finally {
        this.truncating = false;
      }
    });
  }

  /**
   * Replaces the log by an empty one starting at `offset` with the given checkpoint (snapshot install).
   *
   * Steps, each durable before the next: (1) the checkpoint is written as `reset.<offset>`
   * (tmp, fsync, rename, fsync dir): the commit point; (2) every segment, index and older
   * checkpoint is removed and an empty segment at `offset` created (fsync dir); (3) the
   * marker is renamed to `checkpoint` (fsync dir). A crash before (1) is durable leaves the
   * old log untouched; after it, recovery (finishInterruptedReset) redoes (2) and (3), which
   * are idempotent.
   */
  resetTo(offset: number, checkpoint: { offset: number; state: Uint8Array; lastEpoch: number }): Promise<void> {
    assert(Number.isSafeInteger(offset) && offset >= 0 && checkpoint.offset >= offset, () => `resetTo(${offset}) with a checkpoint at ${checkpoint.offset}`);
    return this.exclusive(async () => {
      this.checkWritable();
      this.truncating = true;
      try {
        await this.waitDurable(this.endOffset);
        await this.writeFileDurably(resetTemporaryName, resetNameOf(offset), encodeCheckpoint(checkpoint.offset, checkpoint.state, checkpoint.lastEpoch));
        const old = this.segments;
        this.segments = [];
        this.sealedIndexed = [];
        for (const segment of old) {
          segment.deleted = true;
          if (segment.readers === 0) await this.closeHandle(segment);
        }
        this.invalidateReadState();
        await this.completeReset(offset);
        const segment = this.newSegment(offset);
        segment.created = true;
        segment.handle = await this.fs.open(segment.path, { create: false });
        this.segments = [segment];
        this.writeSegment = segment;
        this.endOffset = offset;
        this.durableEndOffset = offset;
      } catch (error) {
        this.fail(error);
        throw error;
      } finally {
        this.truncating = false;
      }
    });
  }

  /** Recovery: a `reset` marker means a snapshot install passed its commit point; finish it. */
  private async finishInterruptedReset(): Promise<void> {
    const temporaryPath = this.pathOf(resetTemporaryName);
    if (await this.fs.exists(temporaryPath)) await this.fs.remove(temporaryPath);
    const names = (await this.fs.list(this.directory)).filter((name) => resetNamePattern.test(name));
    if (names.length === 0) return;
    // Only one install runs at a time and its marker is renamed away before the next starts.
    assert(names.length === 1, () => `several reset markers in ${this.directory}: ${names.join(', ')}`);
    const name = names[0]!;
    const marker = await this.loadCheckpointFile(this.pathOf(name));
    // Written, fsynced and only then renamed: a damaged marker is damage, not a torn write.
    if (marker === 'damaged' || marker === undefined) throw new StorageCorruptionError(this.pathOf(name), 0, 'reset marker header or checksum is invalid');
    await this.completeReset(Number(resetNamePattern.exec(name)![1]));
  }

  /** Steps (2) and (3) of resetTo; the marker `reset.<offset>` exists and holds the new checkpoint. */
  private async completeReset(offset: number): Promise<void> {
    for (const name of await this.fs.list(this.directory)) {
      if (segmentNamePattern.test(name) || indexNamePattern.test(name) || name === checkpointPreviousName || name === checkpointTemporaryName) {
        await this.fs.remove(this.pathOf(name));
      }
    }
    const handle = await this.fs.open(this.pathOf(segmentFileName(offset)), { create: true });
    try {
      await handle.truncate(0);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await this.fs.syncDirectory(this.directory);
    await this.fs.rename(this.pathOf(resetNameOf(offset)), this.pathOf(checkpointName));
    await this.fs.syncDirectory(this.directory);
  }

  /** Writes `bytes` to `temporaryName`, fsyncs it, renames it to `finalName` and fsyncs the directory. */
  private writeFileDurably(temporaryName: string, finalName: string, bytes: Uint8Array): Promise<void> {
    return writeFileDurably(this.fs, this.directory, this.pathOf(temporaryName), this.pathOf(finalName), bytes);
  }

  /** Writes and fsyncs a whole file (not yet in its final place); returns its path. */
  private async writeTemporaryFile(temporaryName: string, bytes: Uint8Array): Promise<string> {
    const temporaryPath = this.pathOf(temporaryName);
    await writeAndSync(this.fs, temporaryPath, bytes);
    return temporaryPath;
  }

  /**
   * Stores derived state as of `offset`: checkpoint.tmp is written and fsynced, the
   * current checkpoint becomes checkpoint.prev, the new one is renamed into place and the
   * directory fsynced. readCheckpoint falls back to checkpoint.prev when checkpoint is
   * missing or damaged, so a crash or a bad sector at any step still leaves one valid
   * checkpoint.
   */
  writeCheckpoint(offset: number, state: Uint8Array, lastEpoch = 0): Promise<void> {
    assert(Number.isSafeInteger(offset) && offset >= 0, () => `checkpoint offset ${offset} is not a non-negative integer`);
    return this.exclusive(async () => {
      const temporaryPath = await this.writeTemporaryFile(checkpointTemporaryName, encodeCheckpoint(offset, state, lastEpoch));
      const currentPath = this.pathOf(checkpointName);
      if (await this.fs.exists(currentPath)) {
        // Keep the previous checkpoint only if it is valid: never replace a good fallback with a bad one.
        if (await this.loadCheckpointFile(currentPath) !== 'damaged') {
          await this.fs.rename(currentPath, this.pathOf(checkpointPreviousName));
        }
      }
      await this.fs.rename(temporaryPath, currentPath);
      await this.fs.syncDirectory(this.directory);
    });
  }

  readCheckpoint(): Promise<StoredCheckpoint | undefined> {
    return this.exclusive(async () => {
      const currentPath = this.pathOf(checkpointName);
      const current = await this.loadCheckpointFile(currentPath);
      if (current !== 'damaged' && current !== undefined) return current;
      const previousPath = this.pathOf(checkpointPreviousName);
      const previous = await this.loadCheckpointFile(previousPath);
      if (previous === 'damaged') {
        throw new StorageCorruptionError(previousPath, 0,
          `checkpoint header or checksum is invalid${current === 'damaged' ? ' (and so is checkpoint)' : ''}`);
      }
      if (previous === undefined) {
        if (current === 'damaged') throw new StorageCorruptionError(currentPath, 0, 'checkpoint header or checksum is invalid and there is no checkpoint.prev');
        return undefined;
      }
      // Falling back is only sound if the log still holds every record after the older checkpoint.
      if (previous.offset < this.startOffset) {
        throw new StorageCorruptionError(current === 'damaged' ? currentPath : previousPath, 0,
          `the checkpoint is ${current === 'damaged' ? 'damaged' : 'missing'} and checkpoint.prev (offset ${previous.offset}) is older than the log start ${this.startOffset}`);
      }
      return previous;
    });
  }

  private async loadCheckpointFile(filePath: string): Promise<StoredCheckpoint | 'damaged' | undefined> {
    if (!await this.fs.exists(filePath)) return undefined;
    const handle = await this.fs.open(filePath, { create: false });
    let bytes: Uint8Array;
    try {
      bytes = await handle.read(0, await handle.size());
    } finally {
      await handle.close();
    }
    if (bytes.length < checkpointHeaderBytes) return 'damaged';
    const view = viewOf(bytes);
    if (view.getUint32(0, true) !== checkpointMagic || view.getUint16(4, true) !== checkpointVersion) return 'damaged';
    if (getUint64(view, 24) !== bytes.length - checkpointHeaderBytes) return 'damaged';
    if (view.getUint32(8, true) !== crc32c(bytes.subarray(12))) return 'damaged';
    return { offset: getUint64(view, 16), state: copyOf(bytes, checkpointHeaderBytes, bytes.length), lastEpoch: view.getUint32(12, true) };
  }

  close(): Promise<void> {
    this.closePromise ??= this.closeOnce();
    return this.closePromise;
  }

  private async closeOnce(): Promise<void> {
    this.closing = true;
    if (this.failure === undefined && this.endOffset > this.durableEndOffset) {
      this.scheduleFlush();
      await this.waitDurable(this.endOffset).catch(() => undefined);
    }
    await this.exclusive(async () => undefined);
    this.closed = true;
    for (const segment of this.segments) await this.closeHandle(segment);
  }

  // ---------------------------------------------------------------- helpers

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.maintenanceTail.then(work);
    this.maintenanceTail = run.catch(() => undefined);
    return run;
  }

  private newSegment(baseOffset: number): Segment {
    return {
      baseOffset,
      path: this.pathOf(segmentFileName(baseOffset)),
      indexPath: this.pathOf(indexFileName(baseOffset)),
      endOffset: baseOffset,
      bytesAssigned: 0,
      durableBytes: 0,
      fileBytes: 0,
      index: new SparseIndex(this.options.indexIntervalBytes),
      indexLoading: undefined,
      created: false,
      rolled: false,
      sealed: false,
      deleted: false,
      handle: undefined,
      opening: undefined,
      readers: 0,
    };
  }

  private pathOf(name: string): string {
    return `${this.directory.replace(/\/+$/, '')}/${name}`;
  }

  private nowMs(): number {
    return this.options.clock?.monotonicMs() ?? performance.now();
  }
}
