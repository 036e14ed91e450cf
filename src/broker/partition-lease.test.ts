// A receive is handed out only once its receive record is durable. When that commit takes
// longer than the lease it grants (a stalled disk, slow replicas), the messages are visible
// again meanwhile and may be received by someone else: those must not be handed out twice.
// A lease that only ran out is still the latest one, and is handed out (as to a consumer
// that overran its visibility timeout). The simulated disk stalls every fsync until the
// test lets it go, and the clock moves only when the test moves it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../core/clock.js';
import { SimFileSystem } from '../testing/sim-filesystem.js';
import { openTestRunner } from '../testing/test-partition.js';
import { testPayload } from '../testing/test-payloads.js';
import type { Delivery, PartitionRunner } from './partition.js';

async function openStallable(name: string, attributes: Record<string, string> = {}): Promise<{ runner: PartitionRunner; clock: ManualClock; fs: SimFileSystem }> {
  const clock = new ManualClock();
  const fs = new SimFileSystem();
  return { runner: await openTestRunner({ name, clock, fs, attributes }), clock, fs };
}

/** Lets pending callbacks and I/O completions run, a bounded number of turns (no time passes). */
async function settle(until: () => boolean = () => false): Promise<void> {
  for (let turn = 0; turn < 200 && !until(); turn++) await new Promise((resolve) => setImmediate(resolve));
}

interface Pending {
  done: boolean;
  deliveries: Delivery[];
}

function receiveInBackground(runner: PartitionRunner, visibilityTimeoutSeconds: number, maxMessages = 10): Pending {
  const pending: Pending = { done: false, deliveries: [] };
  void runner.receive({ maxMessages, waitTimeSeconds: 0, visibilityTimeoutSeconds }).then((deliveries) => {
    pending.deliveries = deliveries;
    pending.done = true;
  });
  return pending;
}

const bodies = (deliveries: Delivery[]): string[] => deliveries.map((delivery) => delivery.payload.body).sort();

/** One receive while every fsync hangs, the clock moved `stallMs` before the disk is let go: its answer. */
async function receiveAcrossStall(stallable: { runner: PartitionRunner; clock: ManualClock; fs: SimFileSystem }, visibilityTimeoutSeconds: number, stallMs: number): Promise<Delivery[]> {
  const { runner, clock, fs } = stallable;
  fs.stall();
  const stalled = receiveInBackground(runner, visibilityTimeoutSeconds);
  await settle();
  assert.equal(stalled.done, false, 'the receive waits for its fsync');
  clock.advance(stallMs);
  fs.unstall();
  await settle(() => stalled.done);
  assert.equal(stalled.done, true, 'the receive answers once the disk is back');
  return stalled.deliveries;
}

test('a receive whose commit outlasts its 1 s lease, with no other receive meanwhile, hands the messages out, and their receipts delete them', async () => {
  const stallable = await openStallable('lapsed');
  const { runner, clock } = stallable;
  try {
    await runner.send([0, 1, 2].map((index) => testPayload(clock, index)));
    const delivered = await receiveAcrossStall(stallable, 1, 1_500);
    assert.deepEqual(bodies(delivered), ['body-0', 'body-1', 'body-2'], 'still the latest lease of each message');
    const results = await runner.deleteMessages(delivered.map((delivery) => delivery.receipt));
    assert.deepEqual(results, [null, null, null]);
    const after = await runner.receive({ maxMessages: 10, waitTimeSeconds: 0, visibilityTimeoutSeconds: 30 });
    assert.deepEqual(after, [], 'the deletes removed them');
  } finally {
    await runner.close();
  }
});

test('two receives during one stall, the second after the first lease ran out: only the second hands the messages out', async () => {
  const { runner, clock, fs } = await openStallable('taken-over');
  try {
    await runner.send([0, 1].map((index) => testPayload(clock, index)));
    fs.stall();
    const first = receiveInBackground(runner, 1);
    await settle();
    clock.advance(1_500);
    const second = receiveInBackground(runner, 30);
    await settle();
    assert.equal(first.done || second.done, false, 'both wait for the stalled disk');
    fs.unstall();
    await settle(() => first.done && second.done);
    assert.deepEqual(first.deliveries, [], 'the first lease was taken over: no message is handed to two consumers');
    assert.deepEqual(bodies(second.deliveries), ['body-0', 'body-1']);
    // The holder's receipts work: both deletes succeed.
    const results = await runner.deleteMessages(second.deliveries.map((delivery) => delivery.receipt));
    assert.deepEqual(results, [null, null]);
  } finally {
    await runner.close();
  }
});

test('a commit within the lease and a 0 s lease hand the messages out; a 0 s receive is not handed what a later receive leased while both waited', async () => {
  const stallable = await openStallable('in-time');
  const { runner, clock, fs } = stallable;
  try {
    await runner.send([0, 1, 2, 3].map((index) => testPayload(clock, index)));
    const inTime = await receiveAcrossStall(stallable, 2, 1_500);
    assert.equal(inTime.length, 4, 'a 1.5 s wait within a 2 s lease delivers');
    clock.advance(1_000); // the lease ends; all four are visible again
    const zero = await receiveAcrossStall(stallable, 0, 5_000);
    assert.deepEqual(bodies(zero), ['body-0', 'body-1', 'body-2', 'body-3'], 'VisibilityTimeout=0 leases nothing');
    fs.stall();
    const unleased = receiveInBackground(runner, 0);
    await settle();
    const leasing = receiveInBackground(runner, 30);
    await settle();
    fs.unstall();
    await settle(() => unleased.done && leasing.done);
    assert.deepEqual(unleased.deliveries, [], 'held by the later receive');
    assert.equal(leasing.deliveries.length, 4);
  } finally {
    await runner.close();
  }
});

test('FIFO: when a later receive takes the head of a group from a lapsed one, the lapsed receive withholds the rest of that group, and hands out the other groups', async () => {
  const { runner, clock, fs } = await openStallable('fifo', { FifoQueue: 'true', ContentBasedDeduplication: 'false' });
  try {
    const inGroup = (index: number, groupId: string) => ({ ...testPayload(clock, index), groupId, deduplicationId: `d-${index}` });
    // Group a: 0, 1, 2; group b: 3.
    await runner.send([inGroup(0, 'a'), inGroup(1, 'a'), inGroup(2, 'a'), inGroup(3, 'b')]);
    fs.stall();
    const lapsed = receiveInBackground(runner, 1);
    await settle();
    clock.advance(1_500);
    // One message: the head of the first group with visible messages.
    const taking = receiveInBackground(runner, 30, 1);
    await settle();
    fs.unstall();
    await settle(() => lapsed.done && taking.done);
    assert.deepEqual(bodies(taking.deliveries), ['body-0']);
    assert.deepEqual(bodies(lapsed.deliveries), ['body-3'], 'group a is in flight elsewhere from its head: body-1 and body-2 must not go out before it');
  } finally {
    await runner.close();
  }
});
