// One suite, two file systems: the real disk (temp dirs) and the simulator. Failure and
// crash tests that need fault injection run on the simulator only.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FileHandle, FileSystem } from '../core/filesystem.js';
import { ManualClock } from '../core/clock.js';
import { SeededRandom } from '../core/random.js';
import { BerthError } from '../protocol/errors.js';
import { NodeFileSystem } from '../io/node-filesystem.js';
import { TurnEndFlusher } from '../io/turn-end-flusher.js';
import { SimFileSystem } from '../testing/sim-filesystem.js';
import { openPartitionLog, segmentFileName, indexFileName, indexEntriesInMemoryOf } from './segmented-log.js';
import { StorageCorruptionError } from './errors.js';
import { recordHeaderBytes, type LogRecord, type PartitionLogOptions, type ReplicaLog } from './types.js';

const temporaryRoots: string[] = [];
after(() => {
  for (const root of temporaryRoots) rmSync(root, { recursive: true, force: true });
});

interface Harness {
  fs: FileSystem;
  directory: string;
}

const harnesses: Record<string, () => Harness> = {
  node: () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'berth-log-'));
    temporaryRoots.push(root);
    return { fs: new NodeFileSystem(), directory: path.join(root, 'partition-0') };
  },
  sim: () => ({ fs: new SimFileSystem(), directory: '/data/partition-0' }),
};

function payloadFor(offset: number, bytes: number): Uint8Array {
  const payload = new Uint8Array(bytes);
  const random = new SeededRandom(offset + 1);
  for (let i = 0; i < bytes; i++) payload[i] = random.int(256);
  return payload;
}

function sizeFor(offset: number): number {
  return (offset * 37) % 300;
}

function inputFor(offset: number): { type: number; epoch: number; timestampMs: number; payload: Uint8Array } {
  return { type: 1 + (offset % 5), epoch: 3, timestampMs: 1_700_000_000_000 + offset, payload: payloadFor(offset, sizeFor(offset)) };
}

async function appendMany(log: ReplicaLog, count: number): Promise<void> {
  let last = 0;
  for (let i = 0; i < count; i++) {
    const offset = log.endOffset;
    last = log.append({ type: 1 + (offset % 5), epoch: 3, timestampMs: 1_700_000_000_000 + offset, payload: payloadFor(offset, sizeFor(offset)) });
    assert.equal(last, offset);
  }
  await log.waitDurable(last + 1);
}

function checkRecord(record: LogRecord | undefined, offset: number): void {
  assert.ok(record !== undefined, `record ${offset} missing`);
  assert.equal(record.offset, offset);
  assert.equal(record.type, 1 + (offset % 5));
  assert.equal(record.epoch, 3);
  assert.equal(record.timestampMs, 1_700_000_000_000 + offset);
  assert.deepEqual(record.payload, payloadFor(offset, sizeFor(offset)));
}

async function readAll(log: ReplicaLog, from: number): Promise<LogRecord[]> {
  const records: LogRecord[] = [];
  let next = from;
  for (;;) {
    const batch = await log.read(next, 97, 16 * 1024);
    if (batch.length === 0) return records;
    records.push(...batch);
    next += batch.length;
  }
}

const small: Partial<PartitionLogOptions> = { segmentBytesMax: 8 * 1024, readAheadBytes: 4096, indexIntervalBytes: 512, groupCommitBytesMax: 16 * 1024 };

for (const [kind, makeHarness] of Object.entries(harnesses)) {
  describe(`segmented log on ${kind}`, () => {
    test('append, read and readOne across segment rolls, then again after reopen from index files', async () => {
      const { fs, directory } = makeHarness();
      const log = await openPartitionLog(fs, directory, small);
      assert.equal(log.endOffset, 0);
      await appendMany(log, 500);
      assert.equal(log.durableEndOffset, 500);
      const names = await fs.list(directory);
      const segments = names.filter((name) => name.endsWith('.log'));
      assert.ok(segments.length > 5, `expected several segments, got ${segments.length}`);
      assert.equal(names.filter((name) => name.endsWith('.index')).length, segments.length - 1);
      const records = await readAll(log, 0);
      assert.equal(records.length, 500);
      records.forEach((record, i) => checkRecord(record, i));
      for (const offset of [0, 1, 77, 250, 499, 311, 3]) checkRecord(await log.readOne(offset), offset);
      const limited = await log.read(10, 3, 1 << 20);
      assert.deepEqual(limited.map((record) => record.offset), [10, 11, 12]);
      const oneAtLeast = await log.read(10, 100, 1);
      assert.equal(oneAtLeast.length, 1);
      await log.close();

      const reopened = await openPartitionLog(fs, directory, small);
      assert.equal(reopened.endOffset, 500);
      assert.equal(reopened.startOffset, 0);
      assert.equal(reopened.recovery.segmentsScanned, 1, 'only the last segment is scanned');
      assert.equal(reopened.recovery.tornTailBytesTruncated, 0);
      (await readAll(reopened, 0)).forEach((record, i) => checkRecord(record, i));
      await appendMany(reopened, 50);
      (await readAll(reopened, 480)).forEach((record, i) => checkRecord(record, 480 + i));
      await reopened.close();
    });

    test('a missing or damaged index file makes recovery scan that segment and rewrite the index', async () => {
      const { fs, directory } = makeHarness();
      const log = await openPartitionLog(fs, directory, small);
      await appendMany(log, 300);
      await log.close();
      const indexes = (await fs.list(directory)).filter((name) => name.endsWith('.index'));
      assert.ok(indexes.length >= 2);
      await fs.remove(`${directory}/${indexes[0]}`);
      const damaged = await fs.open(`${directory}/${indexes[1]}`, { create: false });
      await damaged.write(new Uint8Array([0xff, 0xff]), 60);
      await damaged.close();
      const reopened = await openPartitionLog(fs, directory, small);
      assert.equal(reopened.recovery.segmentsScanned, 3);
      (await readAll(reopened, 0)).forEach((record, i) => checkRecord(record, i));
      await reopened.close();
      const again = await openPartitionLog(fs, directory, small);
      assert.equal(again.recovery.segmentsScanned, 1, 'the rewritten indexes are trusted');
      await again.close();
    });

    test('sealed segments keep their sparse index in memory only while recently used: memory stays bounded as the log grows', async () => {
      const { fs, directory } = makeHarness();
      const options = { ...small, segmentBytesMax: 8 * 1024, indexIntervalBytes: 256 };
      // Every segment holds at most segmentBytesMax / indexIntervalBytes + 1 entries; the
      // active segment, one being sealed and at most 4 recently used sealed ones are in memory.
      const perSegmentMax = 8 * 1024 / 256 + 1;
      const bound = 6 * perSegmentMax;
      const log = await openPartitionLog(fs, directory, options);
      await appendMany(log, 4000);
      const segments = (await fs.list(directory)).filter((name) => name.endsWith('.log')).length;
      assert.ok(segments > 50, `expected many segments, got ${segments}`);
      assert.ok(indexEntriesInMemoryOf(log) <= bound, `${indexEntriesInMemoryOf(log)} index entries in memory for ${segments} segments (bound ${bound})`);
      const random = new SeededRandom(7);
      for (let i = 0; i < 300; i++) {
        const offset = random.int(4000);
        checkRecord(await log.readOne(offset), offset);
      }
      (await readAll(log, 0)).forEach((record, i) => checkRecord(record, i));
      assert.ok(indexEntriesInMemoryOf(log) <= bound, `${indexEntriesInMemoryOf(log)} index entries in memory after reads (bound ${bound})`);
      // A dropped index whose file is gone is rebuilt by scanning its segment.
      await fs.remove(`${directory}/${indexFileName(0)}`);
      checkRecord(await log.readOne(5), 5);
      // Truncating inside a sealed segment whose index was dropped makes it the active one again.
      await log.truncateFrom(1234);
      assert.equal(log.endOffset, 1234);
      await appendMany(log, 100);
      (await readAll(log, 1100)).forEach((record, i) => checkRecord(record, 1100 + i));
      await log.close();

      const reopened = await openPartitionLog(fs, directory, options);
      assert.equal(reopened.endOffset, 1334);
      assert.ok(indexEntriesInMemoryOf(reopened) <= bound, `${indexEntriesInMemoryOf(reopened)} index entries in memory after recovery (bound ${bound})`);
      for (let i = 0; i < 100; i++) {
        const offset = random.int(1334);
        checkRecord(await reopened.readOne(offset), offset);
      }
      await reopened.close();
    });

    test('read returns durable records only', async () => {
      const { fs, directory } = makeHarness();
      const log = await openPartitionLog(fs, directory, small);
      const offset = log.append({ type: 1, epoch: 1, timestampMs: 1, payload: new Uint8Array(10) });
      assert.deepEqual(await log.read(0, 10, 1 << 20), []);
      await log.waitDurable(offset + 1);
      assert.equal((await log.read(0, 10, 1 << 20)).length, 1);
      await log.close();
    });

    test('appends in one tick form one group commit', async () => {
      const { fs, directory } = makeHarness();
      let batches = 0;
      const log = await openPartitionLog(fs, directory, { onBatchDurable: () => { batches++; } });
      const waits: Promise<void>[] = [];
      for (let i = 0; i < 100; i++) {
        waits.push(log.waitDurable(log.append({ type: 1, epoch: 1, timestampMs: 1, payload: new Uint8Array(100) }) + 1));
      }
      await Promise.all(waits);
      assert.equal(log.stats.batches, 1);
      assert.equal(log.stats.records, 100);
      assert.equal(log.stats.bytes, 100 * 164);
      assert.equal(batches, 1);
      await log.close();
    });

    test('deleteBelow removes whole sealed segments only, never the active one', async () => {
      const { fs, directory } = makeHarness();
      const log = await openPartitionLog(fs, directory, small);
      await appendMany(log, 400);
      const before = (await fs.list(directory)).filter((name) => name.endsWith('.log')).length;
      const start = await log.deleteBelow(200);
      assert.ok(start > 0 && start <= 200, `start ${start}`);
      assert.equal(log.startOffset, start);
      const names = await fs.list(directory);
      assert.ok(names.filter((name) => name.endsWith('.log')).length < before);
      assert.ok(!names.includes(segmentFileName(0)) && !names.includes(indexFileName(0)));
      (await readAll(log, start)).forEach((record, i) => checkRecord(record, start + i));
      assert.equal(await log.deleteBelow(1_000_000), log.startOffset);
      assert.ok(log.startOffset <= 399, 'the active segment stays');
      await log.close();
      const reopened = await openPartitionLog(fs, directory, small);
      assert.equal(reopened.startOffset, log.startOffset);
      assert.equal(reopened.endOffset, 400);
      await reopened.close();
    });

    test('checkpoints: absent, written, replaced, and the previous one survives a damaged current', async () => {
      const { fs, directory } = makeHarness();
      const log = await openPartitionLog(fs, directory, small);
      assert.equal(await log.readCheckpoint(), undefined);
      await log.writeCheckpoint(10, new TextEncoder().encode('state at 10'));
      assert.deepEqual(await log.readCheckpoint(), { offset: 10, state: new TextEncoder().encode('state at 10'), lastEpoch: 0 });
      await log.writeCheckpoint(20, new TextEncoder().encode('state at 20'));
      assert.equal((await log.readCheckpoint())?.offset, 20);
      const current = await fs.open(`${directory}/checkpoint`, { create: false });
      await current.write(new Uint8Array([0x55]), 40);
      await current.close();
      assert.deepEqual(await log.readCheckpoint(), { offset: 10, state: new TextEncoder().encode('state at 10'), lastEpoch: 0 });
      const previous = await fs.open(`${directory}/checkpoint.prev`, { create: false });
      await previous.truncate(5);
      await previous.close();
      await assert.rejects(log.readCheckpoint(), StorageCorruptionError);
      await log.writeCheckpoint(30, new Uint8Array(0));
      assert.deepEqual(await log.readCheckpoint(), { offset: 30, state: new Uint8Array(0), lastEpoch: 0 });
      await log.close();
    });

    test('truncateFrom cuts a tail across segments; appendReplicated continues with given offsets', async () => {
      const { fs, directory } = makeHarness();
      const log = await openPartitionLog(fs, directory, small);
      await appendMany(log, 300);
      await log.truncateFrom(123);
      assert.equal(log.endOffset, 123);
      assert.equal(log.durableEndOffset, 123);
      const leafHash = new Uint8Array(32).fill(7);
      log.appendReplicated({ offset: 123, type: 9, epoch: 4, timestampMs: 5, payload: new Uint8Array([1, 2]), leafHash });
      await log.waitDurable(124);
      await appendMany(log, 10);
      await log.close();
      const reopened = await openPartitionLog(fs, directory, small);
      assert.equal(reopened.endOffset, 134);
      const records = await readAll(reopened, 0);
      assert.equal(records.length, 134);
      records.slice(0, 123).forEach((record, i) => checkRecord(record, i));
      assert.deepEqual(records[123], { offset: 123, type: 9, epoch: 4, timestampMs: 5, payload: new Uint8Array([1, 2]), leafHash });
      records.slice(124).forEach((record, i) => checkRecord(record, 124 + i));
      await reopened.close();
    });

    test('close flushes pending appends; appends after close throw', async () => {
      const { fs, directory } = makeHarness();
      const log = await openPartitionLog(fs, directory, small);
      for (let i = 0; i < 20; i++) log.append(inputFor(i));
      await log.close();
      assert.throws(() => log.append({ type: 1, epoch: 1, timestampMs: 1, payload: new Uint8Array(1) }), BerthError);
      const reopened = await openPartitionLog(fs, directory, small);
      assert.equal(reopened.endOffset, 20);
      await reopened.close();
    });

    test('preallocation: zeros run ahead of the records, group commits overwrite them, reopen keeps them and sealing cuts them off', async () => {
      const { fs, directory } = makeHarness();
      const preallocateBytes = 4096;
      const options = { ...small, segmentBytesMax: 64 * 1024, preallocateBytes };
      const sizeOf = async (name: string): Promise<number> => {
        const handle = await fs.open(`${directory}/${name}`, { create: false });
        try {
          return await handle.size();
        } finally {
          await handle.close();
        }
      };
      const bytesOf = async (name: string, position: number, length: number): Promise<Uint8Array> => {
        const handle = await fs.open(`${directory}/${name}`, { create: false });
        try {
          return await handle.read(position, length);
        } finally {
          await handle.close();
        }
      };
      const log = await openPartitionLog(fs, directory, options);
      log.append(inputFor(0));
      await log.waitDurable(1);
      const first = segmentFileName(0);
      const recordEnd = await sizeOf(first) - preallocateBytes;
      assert.ok(recordEnd > 0 && recordEnd < 400, `records end at ${recordEnd}`);
      assert.ok((await bytesOf(first, recordEnd, preallocateBytes)).every((byte) => byte === 0), 'the space ahead is zeros');
      // Small group commits inside the zeroed space leave the file's size alone (no size change to commit).
      const sizeAfterFirst = await sizeOf(first);
      for (let i = 0; i < 5; i++) {
        log.append(inputFor(log.endOffset));
        await log.waitDurable(log.endOffset);
      }
      assert.equal(await sizeOf(first), sizeAfterFirst);
      // A batch of a quarter of preallocateBytes or more grows the file itself, without zeros after it.
      const before = log.endOffset;
      while (log.endOffset < before + 60) log.append({ ...inputFor(log.endOffset), payload: new Uint8Array(100).fill(5) });
      const appended = log.endOffset - before;
      await log.waitDurable(log.endOffset);
      assert.ok(appended * 100 >= preallocateBytes / 4);
      const afterLargeBatch = await sizeOf(first);
      assert.ok(afterLargeBatch > sizeAfterFirst);
      assert.ok(!(await bytesOf(first, afterLargeBatch - 16, 16)).every((byte) => byte === 0), 'no zeros after a large batch');
      await log.close();

      const reopened = await openPartitionLog(fs, directory, options);
      assert.equal(reopened.endOffset, 66);
      assert.equal(reopened.recovery.tornTailBytesTruncated, 0);
      (await readAll(reopened, 0)).slice(0, 6).forEach((record, i) => checkRecord(record, i));
      // Small batches again: zeros run ahead once more, and a reopen keeps them (they are not a torn tail).
      for (let i = 0; i < 3; i++) {
        reopened.append(inputFor(reopened.endOffset));
        await reopened.waitDurable(reopened.endOffset);
      }
      const withZeros = await sizeOf(first);
      assert.ok((await bytesOf(first, withZeros - 1024, 1024)).every((byte) => byte === 0), "zeros run ahead again");
      await reopened.close();
      const third = await openPartitionLog(fs, directory, options);
      assert.equal(third.endOffset, 69);
      assert.equal(third.recovery.tornTailBytesTruncated, 0, 'preallocated zeros are not a torn tail');
      assert.equal(await sizeOf(first), withZeros, 'recovery keeps the zeros');
      // Past several rolls: every sealed segment ends at its last record, and its index is trusted.
      await appendMany(third, 1500);
      const segments = (await fs.list(directory)).filter((name) => name.endsWith('.log')).sort();
      assert.ok(segments.length > 3, `expected several segments, got ${segments.length}`);
      for (const name of segments.slice(0, -1)) {
        const size = await sizeOf(name);
        const tail = await bytesOf(name, size - 16, 16);
        assert.ok(!tail.every((byte) => byte === 0), `sealed segment ${name} ends in zeros`);
      }
      await third.close();
      const again = await openPartitionLog(fs, directory, options);
      assert.equal(again.recovery.segmentsScanned, 1, 'only the active segment is scanned');
      assert.equal(again.recovery.tornTailBytesTruncated, 0);
      await again.close();

      // A crash part way through overwriting the zeros leaves record bytes before zeros: a torn tail, cut off.
      const other = makeHarness();
      const fresh = await openPartitionLog(other.fs, other.directory, options);
      fresh.append(inputFor(0));
      await fresh.waitDurable(1);
      await fresh.close();
      const handle = await other.fs.open(`${other.directory}/${first}`, { create: false });
      const freshRecordEnd = await handle.size() - preallocateBytes;
      await handle.write(new Uint8Array([0x40, 0, 0, 0, 7, 7, 7]), freshRecordEnd);
      await handle.close();
      const torn = await openPartitionLog(other.fs, other.directory, options);
      assert.equal(torn.endOffset, 1);
      assert.equal(torn.recovery.tornTailBytesTruncated, preallocateBytes);
      checkRecord(await torn.readOne(0), 0);
      await torn.close();
    });

    test('preallocation grows with the file: a log of a few records carries a few KiB of zeros, not preallocateBytes', async () => {
      const { fs, directory } = makeHarness();
      const log = await openPartitionLog(fs, directory, { ...small, segmentBytesMax: 1024 * 1024, preallocateBytes: 64 * 1024 });
      const fileSize = async (): Promise<number> => {
        const handle = await fs.open(`${directory}/${segmentFileName(0)}`, { create: false });
        try {
          return await handle.size();
        } finally {
          await handle.close();
        }
      };
      let recordBytes = 0;
      for (let offset = 0; offset < 600; offset++) {
        log.append(inputFor(offset));
        recordBytes += recordHeaderBytes + sizeFor(offset);
        await log.waitDurable(offset + 1);
        const zeros = await fileSize() - recordBytes;
        if (offset === 0) assert.equal(zeros, 4096, 'the first zeros are one page');
        assert.ok(zeros >= 0 && zeros <= Math.min(64 * 1024, Math.max(4096, recordBytes)), `${zeros} bytes of zeros ahead of ${recordBytes} bytes of records`);
      }
      assert.ok(recordBytes > 64 * 1024, 'the file grew past preallocateBytes');
      await log.close();
    });

    test('bad options are refused with the key named', async () => {
      const { fs, directory } = makeHarness();
      await assert.rejects(openPartitionLog(fs, directory, { segmentBytesMax: 10 }), /segmentBytesMax/);
      await assert.rejects(openPartitionLog(fs, directory, { groupCommitDelayMs: 5 }), /needs a clock/);
      await assert.rejects(openPartitionLog(fs, directory, { preallocateBytes: -1 }), /preallocateBytes/);
    });
  });
}

describe('segmented log failures (simulated disk)', () => {
  test('ENOSPC fails the log for good and loses nothing that was durable', async () => {
    const fs = new SimFileSystem();
    fs.partialWriteOnFault = true;
    const log = await openPartitionLog(fs, '/d', small);
    await appendMany(log, 100);
    fs.capacityBytes = fs.totalBytes() + 3000;
    const waits: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) {
      const offset = log.append(inputFor(log.endOffset));
      waits.push(log.waitDurable(offset + 1));
    }
    const outcomes = await Promise.allSettled(waits);
    const rejected = outcomes.filter((outcome) => outcome.status === 'rejected');
    assert.ok(rejected.length > 0);
    for (const outcome of rejected) {
      assert.ok(outcome.status === 'rejected' && outcome.reason instanceof BerthError);
      assert.equal(outcome.reason.code, 'ServiceUnavailable');
      assert.match(outcome.reason.message, /stopped after a disk error: ENOSPC.*restart the server once the disk is fixed/);
    }
    const durable = log.durableEndOffset;
    assert.ok(durable >= 100 && durable < 150);
    assert.throws(() => log.append({ type: 1, epoch: 1, timestampMs: 1, payload: new Uint8Array(1) }), /stopped after a disk error/);
    await assert.rejects(log.waitDurable(log.endOffset), /stopped after a disk error/);
    await log.close();
    fs.capacityBytes = Infinity;
    fs.crash();
    const reopened = await openPartitionLog(fs, '/d', small);
    assert.ok(reopened.endOffset >= durable);
    (await readAll(reopened, 0)).forEach((record, i) => checkRecord(record, i));
    await reopened.close();
  });

  test('an fsync error stops the log: nothing unsynced is reported durable, and it is never retried', async () => {
    const fs = new SimFileSystem();
    const log = await openPartitionLog(fs, '/d', small);
    await appendMany(log, 10);
    fs.injectFault({ operation: 'sync', code: 'EIO' });
    const offset = log.append({ type: 1, epoch: 1, timestampMs: 1, payload: new Uint8Array(10) });
    await assert.rejects(log.waitDurable(offset + 1), (error: unknown) => error instanceof BerthError && error.code === 'ServiceUnavailable' && /EIO/.test(error.message));
    assert.equal(log.durableEndOffset, 10);
    const syncs = fs.counts.sync;
    assert.throws(() => log.append({ type: 1, epoch: 1, timestampMs: 1, payload: new Uint8Array(1) }), BerthError);
    await log.close();
    assert.equal(fs.counts.sync, syncs, 'no fsync after the failure');
    assert.equal((await log.read(0, 100, 1 << 20)).length, 10, 'durable records stay readable');
  });

  test('groupCommitDelayMs waits on the clock, or flushes at once when the batch is full', async () => {
    const fs = new SimFileSystem();
    const clock = new ManualClock();
    const log = await openPartitionLog(fs, '/d', { groupCommitDelayMs: 5, groupCommitBytesMax: 8192, clock });
    let durable = false;
    const wait = log.waitDurable(log.append({ type: 1, epoch: 1, timestampMs: 1, payload: new Uint8Array(10) }) + 1).then(() => { durable = true; });
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(durable, false, 'nothing written before the delay');
    clock.advance(5);
    await wait;
    for (let i = 0; i < 60; i++) log.append({ type: 1, epoch: 1, timestampMs: 1, payload: new Uint8Array(200) });
    // 60 records of 264 bytes pass groupCommitBytesMax: the first 8 KiB go without waiting for the clock.
    await log.waitDurable(10);
    assert.equal(log.stats.batches, 2);
    await new Promise<void>((resolve) => setImmediate(resolve)); // let the flusher arm the timer for the rest
    clock.advance(5);
    await log.waitDurable(log.endOffset);
    await log.close();
  });

  test('crash at random points: every acknowledged record survives, torn tails are cut (300 seeds)', async () => {
    let crashes = 0;
    let tornBytes = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const random = new SeededRandom(seed);
      const fs = new SimFileSystem();
      // Half the seeds preallocate: torn writes then also hit zeros written ahead of the records.
      const options = { ...small, segmentBytesMax: 2048 + random.int(8192), preallocateBytes: seed % 2 === 0 ? 0 : 64 + random.int(4096) };
      let log = await openPartitionLog(fs, '/d', options);
      let acknowledged = 0;
      let crashed = false;
      const rounds = 1 + random.int(30);
      for (let round = 0; round < rounds; round++) {
        // Sometimes arm a crash at the n-th disk operation from now: mid-write, before a sync, during a roll.
        let countdown = random.int(4) === 0 ? 1 + random.int(8) : 0;
        fs.onOperation = countdown === 0 ? undefined : () => {
          if (--countdown === 0) {
            crashed = true;
            fs.crash({ torn: true, garbage: random.int(2) === 0, random });
          }
        };
        const count = 1 + random.int(20);
        let last = -1;
        for (let i = 0; i < count; i++) last = log.append(inputFor(log.endOffset));
        try {
          await log.waitDurable(last + 1);
          if (!crashed) acknowledged = last + 1;
        } catch (error) {
          assert.ok(crashed, `seed ${seed}: waitDurable failed without a crash: ${String(error)}`);
        }
        if (crashed) {
          crashes++;
          crashed = false;
          fs.onOperation = undefined;
          await log.close();
          log = await openPartitionLog(fs, '/d', options).catch((error: unknown) => {
            throw new Error(`seed ${seed}: reopen failed: ${String(error)}`);
          });
          tornBytes += log.recovery.tornTailBytesTruncated;
          assert.ok(log.endOffset >= acknowledged, `seed ${seed}: lost acknowledged records (${log.endOffset} < ${acknowledged})`);
          acknowledged = log.endOffset;
        }
      }
      fs.onOperation = undefined;
      await log.close();
      const reopened = await openPartitionLog(fs, '/d', options);
      assert.equal(reopened.endOffset, acknowledged, `seed ${seed}: a clean close keeps exactly what was acknowledged`);
      const records = await readAll(reopened, 0);
      assert.equal(records.length, reopened.endOffset, `seed ${seed}`);
      records.forEach((record, i) => checkRecord(record, i));
    }
    assert.ok(crashes > 50, `only ${crashes} crashes`);
    assert.ok(tornBytes > 0, 'no crash left a torn tail: the test does not exercise recovery');
  });

  test('a crash at any step of deleteBelow or truncateFrom leaves a dense, readable log (60 seeds each)', async () => {
    for (let seed = 1; seed <= 120; seed++) {
      const random = new SeededRandom(seed);
      const fs = new SimFileSystem();
      const options = { ...small, preallocateBytes: seed % 4 < 2 ? 0 : 1024 };
      const log = await openPartitionLog(fs, '/d', options);
      await appendMany(log, 400);
      let countdown = 1 + random.int(12);
      let crashed = false;
      fs.onOperation = () => {
        if (--countdown === 0) {
          crashed = true;
          fs.crash({ torn: true, random });
        }
      };
      const cut = random.int(400);
      const operation = seed % 2 === 0 ? log.deleteBelow(cut) : log.truncateFrom(cut);
      await operation.catch((error: unknown) => assert.ok(crashed, `seed ${seed}: ${String(error)}`));
      fs.onOperation = undefined;
      await log.close();
      if (!crashed) fs.crash();
      const reopened = await openPartitionLog(fs, '/d', options).catch((error: unknown) => {
        throw new Error(`seed ${seed} (crash ${crashed}): reopen failed: ${String(error)}`);
      });
      if (seed % 2 === 0) {
        assert.equal(reopened.endOffset, 400, `seed ${seed}`);
        assert.ok(reopened.startOffset <= cut, `seed ${seed}`);
      } else {
        assert.ok(reopened.endOffset >= cut, `seed ${seed}: truncateFrom(${cut}) lost records below the cut`);
        if (!crashed) assert.equal(reopened.endOffset, cut, `seed ${seed}`);
      }
      const records = await readAll(reopened, reopened.startOffset);
      assert.equal(records.length, reopened.endOffset - reopened.startOffset, `seed ${seed}`);
      records.forEach((record, i) => checkRecord(record, reopened.startOffset + i));
      await reopened.close();
    }
  });
});

describe('segmented log: resetTo (snapshot install)', () => {
  const newState = new Uint8Array([9, 8, 7, 6, 5]);
  const oldState = new Uint8Array([1, 2, 3]);

  for (const [kind, makeHarness] of Object.entries(harnesses)) {
    test(`on ${kind}: the log restarts empty at the offset with the checkpoint, takes replicated records from there, and reopens so`, async () => {
      const { fs, directory } = makeHarness();
      const log = await openPartitionLog(fs, directory, small);
      await appendMany(log, 300);
      await log.writeCheckpoint(150, oldState, 3);
      await log.resetTo(1000, { offset: 1000, state: newState, lastEpoch: 7 });
      assert.equal(log.startOffset, 1000);
      assert.equal(log.endOffset, 1000);
      assert.equal(log.durableEndOffset, 1000);
      assert.deepEqual(await log.readCheckpoint(), { offset: 1000, state: newState, lastEpoch: 7 });
      assert.deepEqual(await log.read(1000, 10, 4096), []);
      for (let offset = 1000; offset < 1100; offset++) log.appendReplicated({ ...inputFor(offset), offset, leafHash: new Uint8Array(32) });
      await log.waitDurable(1100);
      await log.close();
      const reopened = await openPartitionLog(fs, directory, small);
      assert.equal(reopened.startOffset, 1000);
      assert.equal(reopened.endOffset, 1100);
      assert.deepEqual(await reopened.readCheckpoint(), { offset: 1000, state: newState, lastEpoch: 7 });
      const records = await readAll(reopened, 1000);
      assert.equal(records.length, 100);
      records.forEach((record, index) => checkRecord(record, 1000 + index));
      await reopened.close();
    });
  }

  test('a reset below the log end (a divergent backup) also leaves only the new empty log', async () => {
    const fs = new SimFileSystem();
    const log = await openPartitionLog(fs, '/d', small);
    await appendMany(log, 300);
    await log.resetTo(110, { offset: 120, state: newState, lastEpoch: 2 });
    assert.equal(log.startOffset, 110);
    assert.equal(log.endOffset, 110, 'records below the checkpoint come later, by replication');
    for (let offset = 110; offset < 121; offset++) log.appendReplicated({ ...inputFor(offset), offset, leafHash: new Uint8Array(32) });
    await log.waitDurable(121);
    await log.close();
    const reopened = await openPartitionLog(fs, '/d', small);
    assert.equal(reopened.startOffset, 110);
    assert.equal(reopened.endOffset, 121);
    assert.deepEqual(await reopened.readCheckpoint(), { offset: 120, state: newState, lastEpoch: 2 });
    (await readAll(reopened, 110)).forEach((record, index) => checkRecord(record, 110 + index));
    await reopened.close();
  });

  test('a crash at any step of resetTo leaves the old log or the new one, never a mixture (80 seeds)', async () => {
    let crashedOld = 0;
    let crashedNew = 0;
    for (let seed = 1; seed <= 80; seed++) {
      const random = new SeededRandom(seed);
      const fs = new SimFileSystem();
      const log = await openPartitionLog(fs, '/d', small);
      await appendMany(log, 300);
      await log.writeCheckpoint(200, oldState, 3);
      const target = seed % 3 === 0 ? 250 : 700;
      const checkpointOffset = target + (seed % 2) * 30;
      let countdown = 1 + random.int(24);
      let crashed = false;
      fs.onOperation = () => {
        if (--countdown === 0) {
          crashed = true;
          fs.crash({ torn: true, random });
        }
      };
      await log.resetTo(target, { offset: checkpointOffset, state: newState, lastEpoch: 4 }).catch((error: unknown) => assert.ok(crashed, `seed ${seed}: ${String(error)}`));
      fs.onOperation = undefined;
      await log.close();
      if (!crashed) fs.crash();
      const reopened = await openPartitionLog(fs, '/d', small).catch((error: unknown) => {
        throw new Error(`seed ${seed} (crash ${crashed}): reopen failed: ${String(error)}`);
      });
      const checkpoint = await reopened.readCheckpoint();
      if (reopened.startOffset === target) {
        // The new state, whole.
        assert.equal(reopened.endOffset, target, `seed ${seed}`);
        assert.deepEqual(checkpoint, { offset: checkpointOffset, state: newState, lastEpoch: 4 }, `seed ${seed}`);
        if (crashed) crashedNew++;
      } else {
        // The old state, whole: every record and the old checkpoint.
        assert.ok(crashed, `seed ${seed}: a finished reset reopened as the old log`);
        assert.equal(reopened.startOffset, 0, `seed ${seed}`);
        assert.equal(reopened.endOffset, 300, `seed ${seed}`);
        assert.deepEqual(checkpoint, { offset: 200, state: oldState, lastEpoch: 3 }, `seed ${seed}`);
        const records = await readAll(reopened, 0);
        assert.equal(records.length, 300, `seed ${seed}`);
        records.forEach((record, index) => checkRecord(record, index));
        crashedOld++;
      }
      await reopened.close();
    }
    assert.ok(crashedOld > 5 && crashedNew > 5, `crashes left the old log ${crashedOld} times and the new one ${crashedNew} times: both sides must be exercised`);
  });
});

describe('segmented log: group commits from the TurnEndFlusher (real files)', () => {
  /** Real files whose handles count the two kinds of fsync. */
  function countingFileSystem(): { fs: FileSystem; counts: { sync: number; syncBlocking: number }; directory: (name: string) => string } {
    const root = mkdtempSync(path.join(os.tmpdir(), 'berth-log-flusher-'));
    temporaryRoots.push(root);
    const real = new NodeFileSystem();
    const counts = { sync: 0, syncBlocking: 0 };
    const fs: FileSystem = Object.assign(Object.create(real) as FileSystem, {
      async open(filePath: string, options: { create: boolean }): Promise<FileHandle> {
        const handle = await real.open(filePath, options);
        const blocking = handle.syncBlocking?.bind(handle);
        assert.ok(blocking !== undefined, 'the real file can fsync on the calling thread');
        return Object.assign(Object.create(handle) as FileHandle, {
          sync: () => { counts.sync++; return handle.sync(); },
          syncBlocking: () => { counts.syncBlocking++; blocking(); },
        });
      },
    });
    return { fs, counts, directory: (name) => path.join(root, name) };
  }

  const record = (payloadBytes: number) => ({ type: 1, epoch: 1, timestampMs: 1, payload: new Uint8Array(payloadBytes).fill(7) });

  test("a turn's appends, across microtasks, are one batch fsynced on the main thread, and survive a reopen", async () => {
    const { fs, counts, directory } = countingFileSystem();
    const log = await openPartitionLog(fs, directory('a'), { flushScheduler: new TurnEndFlusher() });
    const syncsAtOpen = { ...counts };
    // Appends from several socket reads of one turn: each read's microtasks run between them.
    for (let i = 0; i < 5; i++) {
      log.append(record(100));
      await Promise.resolve();
    }
    await log.waitDurable(5);
    assert.equal(log.stats.batches, 1, 'one group commit for the turn (a microtask-started flush would take the first append alone)');
    assert.equal(counts.syncBlocking - syncsAtOpen.syncBlocking, 1, 'the only flush of the turn fsyncs on the main thread');
    assert.equal(counts.sync - syncsAtOpen.sync, 0, 'and not through the thread pool');
    await log.close();
    const reopened = await openPartitionLog(new NodeFileSystem(), directory('a'));
    assert.equal((await reopened.read(0, 100, 1 << 20)).length, 5);
    await reopened.close();
  });

  test('two logs flushing in one turn both fsync through the thread pool', async () => {
    const { fs, counts, directory } = countingFileSystem();
    const flusher = new TurnEndFlusher();
    const first = await openPartitionLog(fs, directory('a'), { flushScheduler: flusher });
    const second = await openPartitionLog(fs, directory('b'), { flushScheduler: flusher });
    const syncsAtOpen = { ...counts };
    first.append(record(10));
    second.append(record(10));
    await Promise.all([first.waitDurable(1), second.waitDurable(1)]);
    assert.equal(counts.sync - syncsAtOpen.sync, 2);
    assert.equal(counts.syncBlocking - syncsAtOpen.syncBlocking, 0, 'no fsync waits behind another on the main thread');
    await first.close();
    await second.close();
  });
});
