// Crash test with real processes: a child appends under load and prints each record only
// after it is durable; we SIGKILL it at a seeded random moment (after a seeded number of
// acknowledgements), reopen the log and check that every acknowledged record is present
// with the right payload, every record passes its checksum and offsets are dense.
// Each seed continues the previous seed's log, so recovery runs on logs with torn tails
// and several segments.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SeededRandom } from '../src/core/random.js';
import { NodeFileSystem } from '../src/io/node-filesystem.js';
import { openPartitionLog } from '../src/storage/segmented-log.js';

const writerScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'storage-crash-writer.js');
const seeds = 16;
const childTimeoutMs = 20_000;

interface ChildRun {
  acknowledged: Map<number, string>;
  startOffset: number;
}

/** Runs the writer until `killAfter` acknowledgements, SIGKILLs it, and collects every complete line it printed. */
function runChild(directory: string, seed: number, killAfter: number): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writerScript, directory, String(seed), '64'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acknowledged = new Map<number, string>();
    let startOffset = -1;
    let pendingText = '';
    let stderr = '';
    let killed = false;
    const guard = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`seed ${seed}: writer did not reach ${killAfter} acknowledgements in ${childTimeoutMs} ms; stderr: ${stderr}`));
    }, childTimeoutMs);
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.stdout.on('data', (chunk: Buffer) => {
      pendingText += chunk.toString();
      const lines = pendingText.split('\n');
      pendingText = lines.pop() ?? '';
      for (const line of lines) {
        const [first, second] = line.split(' ');
        if (first === 'ready') {
          startOffset = Number(second);
          continue;
        }
        acknowledged.set(Number(first), second ?? '');
      }
      if (!killed && acknowledged.size >= killAfter) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      if (signal !== 'SIGKILL' || !killed) {
        reject(new Error(`seed ${seed}: writer exited early (code ${code}, signal ${signal}); stderr: ${stderr}`));
        return;
      }
      // A partial last line (cut by the kill) was never a complete acknowledgement: ignore it.
      resolve({ acknowledged, startOffset });
    });
  });
}

test(`SIGKILL under load loses no acknowledged record (${seeds} seeds)`, { timeout: 120_000 }, async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'berth-crash-'));
  const directory = path.join(root, 'partition');
  const fs = new NodeFileSystem();
  const allAcknowledged = new Map<number, string>();
  let tornTotal = 0;
  try {
    for (let seed = 1; seed <= seeds; seed++) {
      const random = new SeededRandom(seed);
      const killAfter = 1 + random.int(1500);
      const run = await runChild(directory, seed, killAfter);
      for (const [offset, hash] of run.acknowledged) {
        assert.ok(offset >= run.startOffset, `seed ${seed}: acknowledged offset ${offset} below the start ${run.startOffset}`);
        allAcknowledged.set(offset, hash);
      }
      const log = await openPartitionLog(fs, directory, { segmentBytesMax: 2 * 1024 * 1024 });
      try {
        tornTotal += log.recovery.tornTailBytesTruncated;
        let next = 0;
        for (;;) {
          // read verifies every checksum and the dense offsets (it throws otherwise).
          const records = await log.read(next, 500, 1 << 20);
          if (records.length === 0) break;
          for (const record of records) {
            assert.equal(record.offset, next, `seed ${seed}: offsets not dense`);
            const expected = allAcknowledged.get(record.offset);
            if (expected !== undefined) {
              const actual = createHash('sha256').update(record.payload).digest('hex').slice(0, 32);
              assert.equal(actual, expected, `seed ${seed}: payload of offset ${record.offset} differs`);
            }
            next++;
          }
        }
        assert.equal(next, log.endOffset, `seed ${seed}`);
        for (const offset of run.acknowledged.keys()) {
          assert.ok(offset < log.endOffset, `seed ${seed}: acknowledged offset ${offset} lost (log ends at ${log.endOffset})`);
        }
      } finally {
        await log.close();
      }
    }
    assert.ok(allAcknowledged.size > seeds, 'the writers acknowledged records');
    process.stdout.write(`# crash test: ${allAcknowledged.size} acknowledged records checked over ${seeds} kills, ${tornTotal} torn tail bytes cut\n`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
