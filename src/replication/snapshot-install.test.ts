// Snapshot install on real partition runners over the simulated disk: a backup takes a
// primary's checkpoint, its log restarts at the primary's log start, the records below the
// checkpoint come by replication (stored for their payloads, not applied again), and the
// backup then serves exactly what the primary would, also after a restart in the middle.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../core/clock.js';
import { SimFileSystem } from '../testing/sim-filesystem.js';
import { openTestRunner } from '../testing/test-partition.js';
import { testPayload } from '../testing/test-payloads.js';
import type { PartitionRole, PartitionRunner } from '../broker/partition.js';
import type { EnqueuePayload } from '../queue/records.js';

function openRunner(fs: SimFileSystem, clock: ManualClock, name: string, role: PartitionRole, epoch: number): Promise<PartitionRunner> {
  // Small segments, so that deletion happens.
  return openTestRunner({ name, clock, fs, replication: { role, epoch }, logOptions: { segmentBytesMax: 4096 } });
}

function payload(clock: ManualClock, index: number): EnqueuePayload {
  return testPayload(clock, index, `body-${index}-${'x'.repeat(400)}`);
}

/** Every visible message's body (received with a long visibility timeout, not deleted). */
async function receiveAll(runner: PartitionRunner): Promise<string[]> {
  const bodies: string[] = [];
  for (;;) {
    const deliveries = await runner.receive({ maxMessages: 10, waitTimeSeconds: 0, visibilityTimeoutSeconds: 600 });
    if (deliveries.length === 0) return bodies.sort();
    bodies.push(...deliveries.map((delivery) => delivery.payload.body));
  }
}

describe('snapshot install (partition runners on the simulated disk)', () => {
  for (const restartMidway of [false, true]) {
    test(`the backup serves what the primary holds${restartMidway ? ', also after a restart before it reached the checkpoint' : ''}`, async () => {
      const fs = new SimFileSystem();
      const clock = new ManualClock();
      const primary = await openRunner(fs, clock, 'primary', 'primary', 2);
      // 60 messages; the first 40 are received and deleted, so the ACK level and the log start move.
      await primary.send(Array.from({ length: 60 }, (_, index) => payload(clock, index)));
      for (let round = 0; round < 4; round++) {
        const deliveries = await primary.receive({ maxMessages: 10, waitTimeSeconds: 0, visibilityTimeoutSeconds: 600 });
        assert.equal(deliveries.length, 10);
        await primary.deleteMessages(deliveries.map((delivery) => delivery.receipt));
      }
      await primary.checkpointIfDue(true);
      const checkpoint = (await primary.latestCheckpoint())!;
      assert.ok(primary.startOffset > 0, 'segments were deleted');
      assert.ok(primary.startOffset < checkpoint.offset, 'live messages keep records below the checkpoint');
      await primary.send([payload(clock, 60), payload(clock, 61)]);
      const primaryEnd = primary.endOffset;
      const records = await primary.readForShipping(primary.startOffset, primaryEnd, 16 * 1024 * 1024);
      assert.equal(records.length, primaryEnd - primary.startOffset);

      // A backup with an older log of its own (two records of another history).
      let backup = await openRunner(fs, clock, 'backup', 'primary', 1);
      await backup.send([payload(clock, 900), payload(clock, 901)]);
      backup.setReplication({ role: 'backup', epoch: 2 });
      await backup.installSnapshot(primary.startOffset, checkpoint.offset, checkpoint.state, checkpoint.lastEpoch);
      assert.equal(backup.startOffset, primary.startOffset);
      assert.equal(backup.endOffset, primary.startOffset);
      assert.equal(backup.logHoldsState, false, 'the state is ahead of the log until the records below the checkpoint arrived');

      const belowCheckpoint = records.filter((record) => record.offset < checkpoint.offset);
      const rest = records.filter((record) => record.offset >= checkpoint.offset);
      backup.applyReplicated(belowCheckpoint.slice(0, 3));
      if (restartMidway) {
        await backup.waitLocallyDurable(backup.endOffset);
        await backup.close();
        backup = await openRunner(fs, clock, 'backup', 'backup', 2);
        assert.equal(backup.logHoldsState, false);
        assert.equal(backup.cutFloorOffset, backup.endOffset, 'mid catch-up, the only cut allowed is none');
      }
      backup.applyReplicated(belowCheckpoint.slice(3));
      assert.equal(backup.logHoldsState, true);
      backup.applyReplicated(rest);
      await backup.waitLocallyDurable(backup.endOffset);
      assert.equal(backup.endOffset, primaryEnd);
      assert.deepEqual(backup.counts(), primary.counts());

      // Promoted, it delivers exactly the 22 undeleted messages, payloads included.
      backup.setReplication({ role: 'primary', epoch: 3 });
      const expected = Array.from({ length: 22 }, (_, index) => payload(clock, 40 + index).body).sort();
      assert.deepEqual(await receiveAll(backup), expected);
      await backup.close();
      await primary.close();
    });
  }
});
