import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { FileHandle } from '../core/filesystem.js';
import { DiskStall } from './disk-stall.js';
import { NodeFileSystem } from './node-filesystem.js';

const quietLogger = { warn: (): void => undefined };

/** A DiskStall on a flag file in a fresh directory, and a small file written there, for `run`. */
async function withStallAndFile(run: (stall: DiskStall, file: FileHandle, logged: string[], fs: NodeFileSystem) => Promise<void>): Promise<void> {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'berth-disk-stall-'));
  const logged: string[] = [];
  const stall = DiskStall.fromEnvironment({ BERTH_TEST_DISK_STALL_FILE: path.join(directory, 'stall') }, { warn: (_fields, message) => logged.push(message) });
  assert.ok(stall !== undefined);
  try {
    const fs = new NodeFileSystem({ stall, watchSyncs: true });
    const file = await fs.open(path.join(directory, 'log'), { create: true });
    await file.write(new Uint8Array([1, 2, 3]), 0);
    await run(stall, file, logged, fs);
    await file.close();
  } finally {
    stall.close();
    rmSync(directory, { recursive: true, force: true });
  }
}

/** Creates the flag file and waits until the stall's poll has seen it. */
async function startStall(stall: DiskStall): Promise<void> {
  writeFileSync(stall.flagPath, '');
  await new Promise((resolve) => setTimeout(resolve, 120));
  assert.equal(stall.active, true);
}

test('without BERTH_TEST_DISK_STALL_FILE there is no stall', () => {
  assert.equal(DiskStall.fromEnvironment({}, quietLogger), undefined);
  assert.equal(DiskStall.fromEnvironment({ BERTH_TEST_DISK_STALL_FILE: '' }, quietLogger), undefined);
});

test('a thread-pool fsync waits while the flag file exists, and goes on once it is removed; the file system tells how long it has waited', async () => {
  await withStallAndFile(async (stall, file, logged, fs) => {
    await file.sync(); // no flag: no stall
    assert.equal(fs.pendingSyncAgeMs(), 0, 'no fsync is running');
    await startStall(stall);
    let synced = false;
    const syncing = file.sync().then(() => {
      synced = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(synced, false, 'the fsync returned while the disk was stalled');
    // What a cluster node's lease watch reads (src/io/cluster-runtime.ts): at least the 200 ms just waited.
    assert.ok(fs.pendingSyncAgeMs() >= 150, `pending fsync age ${fs.pendingSyncAgeMs()} ms`);
    rmSync(stall.flagPath);
    await syncing;
    assert.equal(fs.pendingSyncAgeMs(), 0, 'the held fsync is done');
    assert.equal(stall.active, false);
    assert.equal(logged.filter((message) => message.includes('the stalled disk is back')).length, 1, logged.join('\n'));
  });
});

test('a main-thread fsync blocks the thread until another removes the flag file', async () => {
  await withStallAndFile(async (stall, file) => {
    await startStall(stall);
    // Nothing on this thread can run while it is blocked: a worker removes the file.
    const remover = new Worker(
      `const { rmSync } = require('node:fs'); setTimeout(() => rmSync(${JSON.stringify(stall.flagPath)}), 300);`,
      { eval: true },
    );
    await new Promise((resolve) => remover.once('online', resolve));
    file.syncBlocking!();
    assert.equal(existsSync(stall.flagPath), false, 'syncBlocking returned before the stall ended');
    await new Promise((resolve) => remover.once('exit', resolve));
  });
});
