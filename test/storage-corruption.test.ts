// Torn and corrupt writes: recovery must keep every complete record before a cut, cut a
// torn tail and report it, and stop with StorageCorruptionError (naming file and byte
// position) on damage anywhere else. Many seeds, on the simulated disk and the real one.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FileSystem } from '../src/core/filesystem.js';
import { SeededRandom, type Random } from '../src/core/random.js';
import { NodeFileSystem } from '../src/io/node-filesystem.js';
import { SimFileSystem } from '../src/testing/sim-filesystem.js';
import { openPartitionLog, indexFileName } from '../src/storage/segmented-log.js';
import { StorageCorruptionError } from '../src/storage/errors.js';
import { checkRecordAt, viewOf } from '../src/storage/record.js';
import type { LogRecord, ReplicaLog } from '../src/storage/types.js';

const roots: string[] = [];
after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

interface Disk {
  fs: FileSystem;
  directory: string;
  getBytes(name: string): Uint8Array;
  setBytes(name: string, bytes: Uint8Array): void;
}

function simDisk(): Disk {
  const fs = new SimFileSystem();
  const directory = '/data/p';
  return { fs, directory, getBytes: (name) => fs.fileBytes(`${directory}/${name}`), setBytes: (name, bytes) => fs.setFileBytes(`${directory}/${name}`, bytes) };
}

function nodeDisk(): Disk {
  const root = mkdtempSync(path.join(os.tmpdir(), 'berth-corruption-'));
  roots.push(root);
  const directory = path.join(root, 'p');
  return {
    fs: new NodeFileSystem(),
    directory,
    getBytes: (name) => new Uint8Array(readFileSync(path.join(directory, name))),
    setBytes: (name, bytes) => writeFileSync(path.join(directory, name), bytes),
  };
}

const options = { segmentBytesMax: 16 * 1024, indexIntervalBytes: 1024, readAheadBytes: 8192 };

function payloadOf(offset: number, random: Random): Uint8Array {
  return random.bytes(random.int(600) + (offset % 3));
}

/** Writes a log of random records and closes it; returns the payloads by offset. */
async function buildLog(disk: Disk, random: Random): Promise<Uint8Array[]> {
  const log = await openPartitionLog(disk.fs, disk.directory, options);
  const payloads: Uint8Array[] = [];
  const count = 100 + random.int(200);
  for (let offset = 0; offset < count; offset++) {
    const payload = payloadOf(offset, random);
    payloads.push(payload);
    log.append({ type: 1, epoch: 1, timestampMs: offset, payload });
  }
  await log.close();
  return payloads;
}

/** Record boundaries of a segment file: start positions, plus the end. */
function boundaries(bytes: Uint8Array): number[] {
  const view = viewOf(bytes);
  const starts = [0];
  let position = 0;
  while (position < bytes.length) {
    const result = checkRecordAt(bytes, view, position);
    assert.equal(result.kind, 'record');
    if (result.kind !== 'record') break;
    position += result.length;
    starts.push(position);
  }
  return starts;
}

async function readAll(log: ReplicaLog): Promise<LogRecord[]> {
  const records: LogRecord[] = [];
  for (;;) {
    const batch = await log.read(log.startOffset + records.length, 50, 64 * 1024);
    if (batch.length === 0) return records;
    records.push(...batch);
  }
}

function checkPrefix(records: LogRecord[], payloads: Uint8Array[], count: number, seed: number): void {
  assert.equal(records.length, count, `seed ${seed}`);
  records.forEach((record, offset) => {
    assert.equal(record.offset, offset, `seed ${seed}`);
    assert.deepEqual(record.payload, payloads[offset], `seed ${seed}: payload of ${offset}`);
  });
}

async function segmentNames(disk: Disk): Promise<string[]> {
  return (await disk.fs.list(disk.directory)).filter((name) => name.endsWith('.log')).sort();
}

function baseOf(name: string): number {
  return Number(name.slice(0, 20));
}

const disks: [string, () => Disk, number][] = [['sim', simDisk, 80], ['node', nodeDisk, 12]];

for (const [kind, makeDisk, seeds] of disks) {
  describe(`torn and corrupt writes on ${kind}`, () => {
    test(`a last segment cut at a random byte keeps every complete record and reports the cut (${seeds} seeds)`, async () => {
      for (let seed = 1; seed <= seeds; seed++) {
        const random = new SeededRandom(seed);
        const disk = makeDisk();
        const payloads = await buildLog(disk, random);
        const names = await segmentNames(disk);
        const lastName = names[names.length - 1] ?? '';
        const base = baseOf(lastName);
        const bytes = disk.getBytes(lastName);
        const starts = boundaries(bytes);
        const cut = random.int(bytes.length + 1);
        disk.setBytes(lastName, bytes.slice(0, cut));
        const complete = starts.filter((start) => start <= cut).length - 1;
        const keptBytes = starts[complete] ?? 0;
        const log = await openPartitionLog(disk.fs, disk.directory, options);
        assert.equal(log.endOffset, base + complete, `seed ${seed}`);
        assert.equal(log.recovery.tornTailBytesTruncated, cut - keptBytes, `seed ${seed}`);
        checkPrefix(await readAll(log), payloads, base + complete, seed);
        // The cut is durable and the log appends after it.
        const offset = log.append({ type: 1, epoch: 1, timestampMs: 0, payload: new Uint8Array([42]) });
        await log.waitDurable(offset + 1);
        await log.close();
        const again = await openPartitionLog(disk.fs, disk.directory, options);
        assert.equal(again.recovery.tornTailBytesTruncated, 0, `seed ${seed}`);
        assert.equal(again.endOffset, base + complete + 1, `seed ${seed}`);
        await again.close();
      }
    });

    test(`a flipped bit in the last segment is corruption in the middle, or a torn tail if it hit the last record (${seeds} seeds)`, async () => {
      let middle = 0;
      let tail = 0;
      for (let seed = 1; seed <= seeds; seed++) {
        const random = new SeededRandom(1000 + seed);
        const disk = makeDisk();
        const payloads = await buildLog(disk, random);
        const names = await segmentNames(disk);
        const lastName = names[names.length - 1] ?? '';
        const base = baseOf(lastName);
        const bytes = disk.getBytes(lastName);
        const starts = boundaries(bytes);
        const recordCount = starts.length - 1;
        // Bias towards the last record so both outcomes are exercised.
        const victim = random.int(3) === 0 ? recordCount - 1 : random.int(recordCount);
        const start = starts[victim] ?? 0;
        const end = starts[victim + 1] ?? 0;
        const bit = random.int((end - start) * 8);
        const damaged = bytes.slice();
        damaged[start + (bit >> 3)] = (damaged[start + (bit >> 3)] ?? 0) ^ (1 << (bit & 7));
        disk.setBytes(lastName, damaged);
        if (victim === recordCount - 1) {
          tail++;
          const log = await openPartitionLog(disk.fs, disk.directory, options);
          assert.equal(log.endOffset, base + victim, `seed ${seed}`);
          assert.equal(log.recovery.tornTailBytesTruncated, end - start, `seed ${seed}`);
          checkPrefix(await readAll(log), payloads, base + victim, seed);
          await log.close();
        } else {
          middle++;
          await assert.rejects(openPartitionLog(disk.fs, disk.directory, options), (error: unknown) => {
            assert.ok(error instanceof StorageCorruptionError, `seed ${seed}: ${String(error)}`);
            assert.equal(error.file, `${disk.directory}/${lastName}`, `seed ${seed}`);
            assert.equal(error.position, start, `seed ${seed}`);
            assert.ok(error.message.includes(lastName) && error.message.includes(`byte ${start}`), error.message);
            return true;
          });
        }
      }
      assert.ok(middle > 0 && tail > 0);
    });

    test(`a flipped bit in a sealed segment is never served: reads throw, and a scan at open throws (${Math.ceil(seeds / 2)} seeds)`, async () => {
      for (let seed = 1; seed <= Math.ceil(seeds / 2); seed++) {
        const random = new SeededRandom(2000 + seed);
        const disk = makeDisk();
        await buildLog(disk, random);
        const names = await segmentNames(disk);
        assert.ok(names.length >= 2, `seed ${seed}: need a sealed segment`);
        const sealedName = names[random.int(names.length - 1)] ?? '';
        const bytes = disk.getBytes(sealedName);
        const starts = boundaries(bytes);
        const victim = random.int(starts.length - 1);
        const start = starts[victim] ?? 0;
        const end = starts[victim + 1] ?? 0;
        const bit = random.int((end - start) * 8);
        const damaged = bytes.slice();
        damaged[start + (bit >> 3)] = (damaged[start + (bit >> 3)] ?? 0) ^ (1 << (bit & 7));
        disk.setBytes(sealedName, damaged);
        const isCorruptionAt = (error: unknown): boolean => {
          assert.ok(error instanceof StorageCorruptionError, `seed ${seed}: ${String(error)}`);
          assert.equal(error.file, `${disk.directory}/${sealedName}`, `seed ${seed}`);
          assert.equal(error.position, start, `seed ${seed}`);
          return true;
        };
        // The index is trusted at open (no scan of sealed segments), so the damage shows on read.
        const log = await openPartitionLog(disk.fs, disk.directory, options);
        await assert.rejects(readAll(log), isCorruptionAt);
        await log.close();
        // Without its index the segment is scanned at open, and open refuses.
        await disk.fs.remove(`${disk.directory}/${indexFileName(baseOf(sealedName))}`);
        await assert.rejects(openPartitionLog(disk.fs, disk.directory, options), isCorruptionAt);
      }
    });
  });
}
