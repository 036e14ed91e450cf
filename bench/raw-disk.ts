// The machine's raw durable write limit, measured in the same run as the systems: a plain
// loop of write + fdatasync of a batch of 1 KiB records appended to one file. No queue can
// acknowledge durable writes faster than this on this disk with one writer; group commit
// is how the systems beat it per message.

import { closeSync, fdatasyncSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import hdr from 'hdr-histogram-js';
import { messageBytes } from './message.js';

export interface RawDiskResult {
  recordsPerBatch: number;
  batches: number;
  elapsedMs: number;
  fsyncsPerSecond: number;
  recordsPerSecond: number;
  fdatasyncP50Ms: number;
  fdatasyncP99Ms: number;
}

export function measureRawDurableWrites(directory: string, recordsPerBatch: number, durationMs: number): RawDiskResult {
  const path = join(directory, `raw-${recordsPerBatch}.log`);
  const descriptor = openSync(path, 'w');
  const batch = Buffer.alloc(recordsPerBatch * messageBytes, 0x61);
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3, useWebAssembly: false });
  const started = performance.now();
  let batches = 0;
  try {
    while (performance.now() - started < durationMs) {
      writeSync(descriptor, batch);
      const syncStarted = performance.now();
      fdatasyncSync(descriptor);
      histogram.recordValue(Math.max(1, Math.round((performance.now() - syncStarted) * 1000)));
      batches++;
    }
  } finally {
    closeSync(descriptor);
    unlinkSync(path);
  }
  const elapsedMs = performance.now() - started;
  return {
    recordsPerBatch,
    batches,
    elapsedMs,
    fsyncsPerSecond: (batches * 1000) / elapsedMs,
    recordsPerSecond: (batches * recordsPerBatch * 1000) / elapsedMs,
    fdatasyncP50Ms: histogram.getValueAtPercentile(50) / 1000,
    fdatasyncP99Ms: histogram.getValueAtPercentile(99) / 1000,
  };
}
