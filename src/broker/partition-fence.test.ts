// A primary whose commit tracker says it could not acknowledge (a cluster node whose etcd
// lease is not confirmed, or one replaced by a newer primary) refuses a caller's change
// before appending it: nothing is enqueued or leased out that its caller is told failed.
// A long poll that finds nothing keeps waiting, since the fence may open again.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../core/clock.js';
import { BerthError } from '../protocol/errors.js';
import { openTestRunner } from '../testing/test-partition.js';
import { testPayload } from '../testing/test-payloads.js';
import type { CommitTracker, PartitionRunner } from './partition.js';

async function openFencedPrimary(): Promise<{ runner: PartitionRunner; clock: ManualClock; fence: { open: boolean } }> {
  const clock = new ManualClock();
  const fence = { open: true };
  let opened: PartitionRunner | undefined;
  const refuse = (): void => {
    if (!fence.open) throw new BerthError('ServiceUnavailable', 'the fence is shut');
  };
  const tracker: CommitTracker = {
    waitCommitted: async (endOffset) => {
      refuse();
      await opened!.waitLocallyDurable(endOffset);
      refuse();
    },
    refuseUnlessAcknowledgeable: refuse,
  };
  const runner = await openTestRunner({ name: 'fenced', clock, replication: { role: 'primary', epoch: 1, tracker } });
  opened = runner;
  return { runner, clock, fence };
}

const serviceUnavailable = (error: unknown): boolean => error instanceof BerthError && error.code === 'ServiceUnavailable';

test('with the fence shut, sends, receives and deletes fail without appending; once it opens, the message is delivered for the first time', async () => {
  const { runner, clock, fence } = await openFencedPrimary();
  try {
    await runner.send([testPayload(clock, 0)]);
    const endBefore = runner.endOffset;
    fence.open = false;
    await assert.rejects(runner.send([testPayload(clock, 1)]), serviceUnavailable);
    await assert.rejects(runner.receive({ maxMessages: 10, waitTimeSeconds: 0, visibilityTimeoutSeconds: 600 }), serviceUnavailable);
    assert.equal(runner.endOffset, endBefore, 'nothing appended while the fence was shut');

    fence.open = true;
    const deliveries = await runner.receive({ maxMessages: 10, waitTimeSeconds: 0, visibilityTimeoutSeconds: 600 });
    assert.deepEqual(deliveries.map((delivery) => delivery.payload.body), ['body-0'], 'the refused send left no message behind');
    assert.equal(deliveries[0]!.receiveCount, 1, 'the refused receive leased nothing');

    fence.open = false;
    const endLeased = runner.endOffset;
    await assert.rejects(runner.deleteMessages([deliveries[0]!.receipt]), serviceUnavailable);
    assert.equal(runner.endOffset, endLeased);
    fence.open = true;
    assert.deepEqual(await runner.deleteMessages([deliveries[0]!.receipt]), [null]);
  } finally {
    await runner.close();
  }
});

test('with the fence shut, a long poll that finds nothing keeps waiting instead of failing', async () => {
  const { runner, clock, fence } = await openFencedPrimary();
  try {
    fence.open = false;
    let outcome: 'pending' | 'resolved' | 'rejected' = 'pending';
    const poll = runner.receive({ maxMessages: 1, waitTimeSeconds: 20, visibilityTimeoutSeconds: 600 });
    poll.then(() => (outcome = 'resolved'), () => (outcome = 'rejected'));
    for (let turn = 0; turn < 50; turn++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(outcome, 'pending');
    fence.open = true;
    await runner.send([testPayload(clock, 0)]);
    const deliveries = await poll;
    assert.deepEqual(deliveries.map((delivery) => delivery.payload.body), ['body-0']);
  } finally {
    await runner.close();
  }
});
