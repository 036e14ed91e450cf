// Storage benchmark (npm run bench:storage):
//  1. durable appends: W async writers each append a 1 KiB record and await its
//     durability in a loop, for S seconds, on one partition log with default options.
//     Reports appends/s, MB/s and the group-commit batch sizes achieved (records per fsync).
//  2. the machine's raw limit, in the same run and directory: a plain loop replaying the
//     same sequence of batch sizes as sequential write + fdatasync to one file (both with
//     node:fs/promises, as the log uses, and with the synchronous calls), and the ratio.
//  3. open/recovery time of a log holding N 1 KiB records (10 million if the disk has
//     room), with its sealed segments' indexes (the normal case) and with every index
//     removed (a full scan), plus sequential backlog read throughput. Files are deleted.
//
// usage: node dist/bench/storage.js [--seconds 10] [--writers 256] [--recovery-records 10000000] [--preallocate-bytes 262144]
//        [--directory <dir on the disk to measure>] [--skip-recovery]

import { closeSync, fdatasyncSync, mkdirSync, openSync, rmSync, statfsSync, writeFileSync, writeSync, readdirSync, unlinkSync } from 'node:fs';
import { open as openAsync } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { NodeFileSystem } from '../src/io/node-filesystem.js';
import { defaultServerConfig } from '../src/server/config.js';
import { openPartitionLog } from '../src/storage/segmented-log.js';
import { recordHeaderBytes, type ReplicaLog } from '../src/storage/types.js';

interface Arguments {
  seconds: number;
  writers: number;
  recoveryRecords: number;
  directory: string;
  skipRecovery: boolean;
  /** The log's preallocateBytes for the durable-append rounds (berth serve's default unless given). */
  preallocateBytes: number;
}

function parseArguments(argv: string[]): Arguments {
  const result: Arguments = {
    seconds: 10,
    writers: 256,
    recoveryRecords: 10_000_000,
    directory: path.join(os.tmpdir(), `berth-bench-storage-${process.pid}`),
    skipRecovery: false,
    preallocateBytes: defaultServerConfig.preallocateBytes,
  };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i];
    const value = argv[i + 1];
    if (key === '--skip-recovery') { result.skipRecovery = true; continue; }
    if (value === undefined) throw new Error(`missing value for ${key}`);
    if (key === '--seconds') result.seconds = Number(value);
    else if (key === '--writers') result.writers = Number(value);
    else if (key === '--recovery-records') result.recoveryRecords = Number(value);
    else if (key === '--directory') result.directory = value;
    else if (key === '--preallocate-bytes') result.preallocateBytes = Number(value);
    else throw new Error(`unknown option ${key}`);
    i++;
  }
  return result;
}

const payloadBytes = 1024;
const recordBytes = recordHeaderBytes + payloadBytes;
const megabyte = 1024 * 1024;

function percentile(sorted: number[], fraction: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] ?? 0;
}

function format(value: number, digits = 0): string {
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

interface AppendResult {
  appended: number;
  batchRecords: number[];
  fsyncMsTotal: number;
  batches: number;
  seconds: number;
}

/** One round of W writers appending 1 KiB records and awaiting durability, on an already open log. */
async function measureDurableAppends(log: ReplicaLog, batchRecords: number[], writers: number, seconds: number): Promise<AppendResult> {
  const payload = new Uint8Array(payloadBytes).fill(0x61);
  const firstBatch = batchRecords.length;
  const batchesBefore = log.stats.batches;
  const fsyncBefore = log.stats.fsyncMsTotal;
  let stop = false;
  let appended = 0;
  const timer = setTimeout(() => { stop = true; }, seconds * 1000);
  const startedMs = performance.now();
  await Promise.all(Array.from({ length: writers }, async () => {
    while (!stop) {
      const offset = log.append({ type: 1, epoch: 1, timestampMs: 1_700_000_000_000, payload });
      await log.waitDurable(offset + 1);
      appended++;
    }
  }));
  const elapsedSeconds = (performance.now() - startedMs) / 1000;
  clearTimeout(timer);
  return {
    appended,
    batchRecords: batchRecords.slice(firstBatch),
    fsyncMsTotal: log.stats.fsyncMsTotal - fsyncBefore,
    batches: log.stats.batches - batchesBefore,
    seconds: elapsedSeconds,
  };
}

interface RawResult {
  records: number;
  seconds: number;
}

/** Replays the batch sizes as sequential write + fdatasync with node:fs/promises (as the log does). */
async function measureRawAsync(directory: string, batchRecords: number[]): Promise<RawResult> {
  const file = path.join(directory, 'raw-async.bin');
  const handle = await openAsync(file, 'w');
  const largest = Math.max(1, ...batchRecords);
  const buffer = Buffer.alloc(largest * recordBytes, 0x61);
  let position = 0;
  let records = 0;
  const startedMs = performance.now();
  for (const count of batchRecords) {
    await handle.write(buffer, 0, count * recordBytes, position);
    position += count * recordBytes;
    await handle.datasync();
    records += count;
  }
  const seconds = (performance.now() - startedMs) / 1000;
  await handle.close();
  unlinkSync(file);
  return { records, seconds };
}

/** The same with the synchronous calls: no thread-pool hop, the plainest loop there is. */
function measureRawSync(directory: string, batchRecords: number[]): RawResult {
  const file = path.join(directory, 'raw-sync.bin');
  const descriptor = openSync(file, 'w');
  const largest = Math.max(1, ...batchRecords);
  const buffer = Buffer.alloc(largest * recordBytes, 0x61);
  let position = 0;
  let records = 0;
  const startedMs = performance.now();
  for (const count of batchRecords) {
    writeSync(descriptor, buffer, 0, count * recordBytes, position);
    position += count * recordBytes;
    fdatasyncSync(descriptor);
    records += count;
  }
  const seconds = (performance.now() - startedMs) / 1000;
  closeSync(descriptor);
  unlinkSync(file);
  return { records, seconds };
}

interface RecoveryResult {
  records: number;
  gigabytes: number;
  segments: number;
  writeSeconds: number;
  openIndexedMs: number;
  openIndexedSegmentsScanned: number;
  openScanAllMs: number;
  openScanAllSegmentsScanned: number;
  cachesDropped: boolean;
  readMegabytesPerSecond: number;
  readRecords: number;
  readOneMicroseconds: number;
}

function dropCaches(): boolean {
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

async function measureRecovery(directory: string, records: number): Promise<RecoveryResult> {
  const fs = new NodeFileSystem();
  const payload = new Uint8Array(payloadBytes).fill(0x62);
  const writeStartedMs = performance.now();
  const writer = await openPartitionLog(fs, directory, { groupCommitBytesMax: 16 * megabyte });
  const chunk = 8192;
  for (let written = 0; written < records;) {
    const count = Math.min(chunk, records - written);
    let last = 0;
    for (let i = 0; i < count; i++) last = writer.append({ type: 1, epoch: 1, timestampMs: 1_700_000_000_000, payload });
    await writer.waitDurable(last + 1);
    written += count;
    if (written % 1_000_000 < chunk) process.stderr.write(`  written ${format(written)} records\r`);
  }
  await writer.close();
  const writeSeconds = (performance.now() - writeStartedMs) / 1000;
  process.stderr.write('\n');
  const segments = readdirSync(directory).filter((name) => name.endsWith('.log')).length;

  const cachesDropped = dropCaches();
  let startedMs = performance.now();
  const indexed = await openPartitionLog(fs, directory);
  const openIndexedMs = performance.now() - startedMs;
  const openIndexedSegmentsScanned = indexed.recovery.segmentsScanned;
  if (indexed.endOffset !== records) throw new Error(`recovered ${indexed.endOffset} records, wrote ${records}`);

  // Sequential backlog read (a consumer streaming from the start), up to 2 million records.
  dropCaches();
  const readRecords = Math.min(records, 2_000_000);
  startedMs = performance.now();
  for (let next = 0; next < readRecords;) {
    const batch = await indexed.read(next, 1000, 4 * megabyte);
    next += batch.length;
  }
  const readSeconds = (performance.now() - startedMs) / 1000;
  // Random point reads through the sparse index.
  const probes = 2000;
  startedMs = performance.now();
  for (let i = 0; i < probes; i++) await indexed.readOne(Math.floor((i * 7_919_993) % records));
  const readOneMicroseconds = ((performance.now() - startedMs) * 1000) / probes;
  await indexed.close();

  for (const name of readdirSync(directory)) if (name.endsWith('.index')) unlinkSync(path.join(directory, name));
  dropCaches();
  startedMs = performance.now();
  const scanned = await openPartitionLog(fs, directory);
  const openScanAllMs = performance.now() - startedMs;
  const openScanAllSegmentsScanned = scanned.recovery.segmentsScanned;
  await scanned.close();
  return {
    records,
    gigabytes: (records * recordBytes) / 1e9,
    segments,
    writeSeconds,
    openIndexedMs,
    openIndexedSegmentsScanned,
    openScanAllMs,
    openScanAllSegmentsScanned,
    cachesDropped,
    readMegabytesPerSecond: (readRecords * recordBytes) / megabyte / readSeconds,
    readRecords,
    readOneMicroseconds,
  };
}

async function main(): Promise<void> {
  const args = parseArguments(process.argv.slice(2));
  mkdirSync(args.directory, { recursive: true });
  const lines: string[] = [];
  const say = (line: string): void => {
    lines.push(line);
    process.stdout.write(`${line}\n`);
  };
  try {
    say(`storage benchmark: ${os.cpus().length} cores, node ${process.version}, directory ${args.directory}, load average ${os.loadavg().map((value) => value.toFixed(1)).join(' ')}`);
    // The disk is shared and its speed drifts: run the log and the raw loops in alternating
    // rounds, each raw round replaying exactly the batch sizes of the log round before it.
    const rounds = 10;
    const allBatches: number[] = [];
    const log = await openPartitionLog(new NodeFileSystem(), path.join(args.directory, 'append'), {
      preallocateBytes: args.preallocateBytes,
      onBatchDurable: (batch) => { allBatches.push(batch.records); },
    });
    let logRecords = 0;
    let logSeconds = 0;
    let fsyncMsTotal = 0;
    let batches = 0;
    let rawAsyncRecords = 0;
    let rawAsyncSeconds = 0;
    let rawSyncRecords = 0;
    let rawSyncSeconds = 0;
    const roundRatios: number[] = [];
    const roundRatiosAsync: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const appends = await measureDurableAppends(log, allBatches, args.writers, args.seconds / rounds);
      logRecords += appends.appended;
      logSeconds += appends.seconds;
      fsyncMsTotal += appends.fsyncMsTotal;
      batches += appends.batches;
      const rawAsync = await measureRawAsync(args.directory, appends.batchRecords);
      const rawSync = measureRawSync(args.directory, appends.batchRecords);
      rawAsyncRecords += rawAsync.records;
      rawAsyncSeconds += rawAsync.seconds;
      rawSyncRecords += rawSync.records;
      rawSyncSeconds += rawSync.seconds;
      const roundBest = Math.max(rawAsync.records / rawAsync.seconds, rawSync.records / rawSync.seconds);
      roundRatios.push((appends.appended / appends.seconds) / roundBest);
      roundRatiosAsync.push((appends.appended / appends.seconds) / (rawAsync.records / rawAsync.seconds));
    }
    await log.close();
    const sorted = [...allBatches].sort((a, b) => a - b);
    const mean = sorted.reduce((sum, value) => sum + value, 0) / Math.max(1, sorted.length);
    const appendsPerSecond = logRecords / logSeconds;
    const rawAsyncPerSecond = rawAsyncRecords / rawAsyncSeconds;
    const rawSyncPerSecond = rawSyncRecords / rawSyncSeconds;
    const toMegabytes = (recordsPerSecond: number): string => format((recordsPerSecond * payloadBytes) / megabyte, 1);
    say(`durable appends (${args.writers} writers, 1 KiB payloads, preallocateBytes ${args.preallocateBytes}, ${logSeconds.toFixed(1)} s in ${rounds} rounds): ${format(appendsPerSecond)} appends/s, ${toMegabytes(appendsPerSecond)} MB/s of payload`);
    say(`  batches: ${format(batches)}, records per fsync mean ${format(mean, 1)}, p50 ${percentile(sorted, 0.5)}, p99 ${percentile(sorted, 0.99)}, fdatasync mean ${(fsyncMsTotal / Math.max(1, batches)).toFixed(2)} ms`);
    say(`raw write+fdatasync of the same batch sizes, interleaved: fs/promises ${format(rawAsyncPerSecond)} records/s (${toMegabytes(rawAsyncPerSecond)} MB/s); sync calls ${format(rawSyncPerSecond)} records/s (${toMegabytes(rawSyncPerSecond)} MB/s)`);
    const best = Math.max(rawAsyncPerSecond, rawSyncPerSecond);
    const percent = (value: number): string => `${(value * 100).toFixed(0)}%`;
    const median = (values: number[]): number => [...values].sort((a, b) => a - b)[values.length >> 1] ?? 0;
    say(`ratio log / best raw: ${percent(appendsPerSecond / best)} overall (target >= 70%), median of rounds ${percent(median(roundRatios))}; per round: ${roundRatios.map(percent).join(' ')}`);
    say(`ratio log / raw fs/promises: ${percent(appendsPerSecond / rawAsyncPerSecond)} overall, median of rounds ${percent(median(roundRatiosAsync))}`);

    if (!args.skipRecovery) {
      const stats = statfsSync(args.directory);
      const freeBytes = stats.bavail * stats.bsize;
      const affordable = Math.floor((freeBytes * 0.5) / recordBytes);
      const records = Math.min(args.recoveryRecords, affordable);
      if (records < args.recoveryRecords) say(`recovery: disk has ${format(freeBytes / 1e9, 1)} GB free; using ${format(records)} records instead of ${format(args.recoveryRecords)}`);
      const recovery = await measureRecovery(path.join(args.directory, 'recovery'), records);
      say(`recovery log: ${format(recovery.records)} records of 1 KiB (${recovery.gigabytes.toFixed(1)} GB, ${recovery.segments} segments) written in ${recovery.writeSeconds.toFixed(1)} s`);
      say(`  open with indexes: ${format(recovery.openIndexedMs)} ms (${recovery.openIndexedSegmentsScanned} segment scanned)${recovery.cachesDropped ? ', page cache dropped first' : ', page cache NOT dropped (no permission)'}`);
      say(`  open with every index removed (full scan): ${format(recovery.openScanAllMs)} ms (${recovery.openScanAllSegmentsScanned} segments scanned)`);
      say(`  sequential backlog read: ${format(recovery.readMegabytesPerSecond)} MB/s over ${format(recovery.readRecords)} records; readOne at random offsets: ${format(recovery.readOneMicroseconds)} µs each`);
    }
  } finally {
    rmSync(args.directory, { recursive: true, force: true });
  }
}

await main();
