// A primary's commit tracker hears of every append before the log takes it: a cluster
// primary schedules its shipping there, so that at the turn's end the records leave for
// the backups ahead of the log's fsync (TurnEndFlusher runs deferred work in the order it
// was scheduled, and the log schedules its flush on the turn's first append).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../core/clock.js';
import { openTestRunner } from '../testing/test-partition.js';
import { testPayload } from '../testing/test-payloads.js';
import type { CommitTracker, PartitionRunner } from './partition.js';

test('the tracker hears of each append before the log takes it', async () => {
  const clock = new ManualClock();
  let opened: PartitionRunner | undefined;
  const endsBeforeAppend: number[] = [];
  const tracker: CommitTracker = {
    waitCommitted: async (endOffset) => {
      await opened!.waitLocallyDurable(endOffset);
    },
    beforeAppend: () => {
      endsBeforeAppend.push(opened!.endOffset);
    },
  };
  const runner = await openTestRunner({ name: 'tracked', clock, replication: { role: 'primary', epoch: 1, tracker } });
  opened = runner;
  try {
    const start = runner.endOffset;
    await runner.send([testPayload(clock, 0)]);
    const deliveries = await runner.receive({ maxMessages: 10, waitTimeSeconds: 0, visibilityTimeoutSeconds: 600 });
    assert.deepEqual(await runner.deleteMessages([deliveries[0]!.receipt]), [null]);
    const appended = runner.endOffset - start;
    assert.ok(appended >= 3, 'a send, a receive and a delete appended records');
    assert.deepEqual(endsBeforeAppend, Array.from({ length: appended }, (_, index) => start + index), 'called once per record, with the log not yet holding it');
  } finally {
    await runner.close();
  }
});
