// An idle partition lets go of what it keeps only for speed: the recent records a primary
// ships to backups from memory, the log's read-ahead and spare write buffers, and the
// payloads its record cache holds for receives. In a cluster the first were ~10 MiB per
// partition on every node, held for good by every drained queue; the cache holds up to
// 64 MiB of an idle queue's backlog.
// Real partition runner on the simulated disk, a clock moved only by the test.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../core/clock.js';
import { openTestRunner } from '../testing/test-partition.js';
import { testPayload } from '../testing/test-payloads.js';
import { defaultPartitionOptions } from './partition.js';

const idleReleaseMs = defaultPartitionOptions.idleReleaseMs;

test('a partition keeps its recent records, log buffers and cached payloads while appends come, frees them after idleReleaseMs without one, and still ships and delivers every record from disk', async () => {
  const clock = new ManualClock();
  const runner = await openTestRunner({ name: 'idle', clock, replication: { role: 'primary', epoch: 1, recentRecordsMax: 100 } });
  try {
    await runner.send(Array.from({ length: 40 }, (_, index) => testPayload(clock, index)));
    const held = runner.heldForSpeed;
    assert.equal(held.recentRecords, 40);
    assert.ok(held.logBufferedBytes > 0, 'the flushed batch buffer is kept as a spare');
    assert.ok(held.cachedPayloadBytes > 0, 'sent payloads are cached for receives');

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
    assert.deepEqual(runner.heldForSpeed, { recentRecords: 0, logBufferedBytes: 0, cachedPayloadBytes: 0 });

    const shipped = await runner.readForShipping(0, runner.endOffset, 1024 * 1024);
    assert.deepEqual(shipped.map((record) => record.offset), Array.from({ length: 41 }, (_, index) => index), 'read back from disk');

    const delivered = await runner.receive({ maxMessages: 10, waitTimeSeconds: 0, visibilityTimeoutSeconds: 600 });
    assert.equal(delivered.length, 10, 'the backlog is delivered with its payloads read from disk');
    assert.deepEqual(delivered.map((delivery) => delivery.payload.body), Array.from({ length: 10 }, (_, index) => `body-${index}`));

    await runner.send([testPayload(clock, 41)]);
    assert.ok(runner.heldForSpeed.recentRecords >= 1, 'new appends are kept again');
    assert.ok(runner.heldForSpeed.cachedPayloadBytes > 0, 'and their payloads cached again');
  } finally {
    await runner.close();
  }
});
