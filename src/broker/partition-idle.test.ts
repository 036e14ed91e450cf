// An idle partition lets go of what it keeps only for speed: the recent records a primary
// ships to backups from memory, the log's read-ahead and spare write buffers. In a cluster
// that was ~10 MiB per partition on every node, held for good by every drained queue.
// Real partition runner on the simulated disk, a clock moved only by the test.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../core/clock.js';
import { openTestRunner } from '../testing/test-partition.js';
import { testPayload } from '../testing/test-payloads.js';
import { defaultPartitionOptions } from './partition.js';

const idleReleaseMs = defaultPartitionOptions.idleReleaseMs;

test('a partition keeps its recent records and log buffers while appends come, frees them after idleReleaseMs without one, and still ships every record from disk', async () => {
  const clock = new ManualClock();
  const runner = await openTestRunner({ name: 'idle', clock, replication: { role: 'primary', epoch: 1, recentRecordsMax: 100 } });
  try {
    await runner.send(Array.from({ length: 40 }, (_, index) => testPayload(clock, index)));
    const held = runner.heldForSpeed;
    assert.equal(held.recentRecords, 40);
    assert.ok(held.logBufferedBytes > 0, 'the flushed batch buffer is kept as a spare');

    await runner.maintain(); // first look at this end offset: the idle time starts here
    clock.advance(idleReleaseMs - 1);
    await runner.maintain();
    assert.equal(runner.heldForSpeed.recentRecords, 40, 'not idle long enough yet');

    await runner.send([testPayload(clock, 40)]); // an append restarts the idle time
    clock.advance(idleReleaseMs);
    await runner.maintain();
    assert.equal(runner.heldForSpeed.recentRecords, 41, 'the append was seen by this tick, so the idle time starts now');
    clock.advance(idleReleaseMs);
    await runner.maintain();
    assert.deepEqual(runner.heldForSpeed, { recentRecords: 0, logBufferedBytes: 0 });

    const shipped = await runner.readForShipping(0, runner.endOffset, 1024 * 1024);
    assert.deepEqual(shipped.map((record) => record.offset), Array.from({ length: 41 }, (_, index) => index), 'read back from disk');

    await runner.send([testPayload(clock, 41)]);
    assert.equal(runner.heldForSpeed.recentRecords, 1, 'new appends are kept again');
  } finally {
    await runner.close();
  }
});
