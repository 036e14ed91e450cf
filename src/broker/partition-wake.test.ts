// Long-polling receivers on a real partition runner (simulated disk, a clock moved only by
// the test, never as far as a long poll's 20 s): a newly visible message wakes one waiting
// receiver, and a receiver that got messages wakes the next. No long poll can end by its
// own timer, so a receiver that was not woken stays pending: a lost wake fails the test.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../core/clock.js';
import { openTestRunner } from '../testing/test-partition.js';
import { testPayload } from '../testing/test-payloads.js';
import type { EnqueuePayload } from '../queue/records.js';
import type { Delivery, PartitionRunner } from './partition.js';

async function openPrimary(): Promise<{ runner: PartitionRunner; clock: ManualClock }> {
  const clock = new ManualClock();
  return { runner: await openTestRunner({ name: 'wake', clock }), clock };
}

function payloads(clock: ManualClock, from: number, count: number): EnqueuePayload[] {
  return Array.from({ length: count }, (_, index) => testPayload(clock, from + index));
}

/** Lets every pending callback and I/O completion run, a bounded number of turns (no time passes). */
async function settle(until: () => boolean): Promise<void> {
  for (let turn = 0; turn < 500 && !until(); turn++) await new Promise((resolve) => setImmediate(resolve));
}

interface Waiting {
  done: boolean;
  deliveries: Delivery[];
}

function longPoll(runner: PartitionRunner, maxMessages: number): Waiting {
  const waiting: Waiting = { done: false, deliveries: [] };
  void runner.receive({ maxMessages, waitTimeSeconds: 20, visibilityTimeoutSeconds: 600 }).then((deliveries) => {
    waiting.deliveries = deliveries;
    waiting.done = true;
  });
  return waiting;
}

test('eight long polls and eight messages, sent together and one by one: every poll gets one, none waits for its timer', async () => {
  const { runner, clock } = await openPrimary();
  try {
    const polls = Array.from({ length: 8 }, () => longPoll(runner, 1));
    await settle(() => false); // every poll is now waiting
    assert.equal(polls.filter((poll) => poll.done).length, 0, 'nothing to receive yet');
    await runner.send(payloads(clock, 0, 5));
    for (let index = 5; index < 8; index++) await runner.send(payloads(clock, index, 1));
    await settle(() => polls.every((poll) => poll.done));
    assert.deepEqual(polls.map((poll) => poll.deliveries.length), [1, 1, 1, 1, 1, 1, 1, 1]);
    const bodies = polls.map((poll) => poll.deliveries[0]!.payload.body).sort();
    assert.deepEqual(bodies, Array.from({ length: 8 }, (_, index) => `body-${index}`).sort());
  } finally {
    await runner.close();
  }
});

test('25 leases end together with four long polls of 10 waiting: one timer wakes one receiver, and each that got messages wakes the next until the 25 are out', async () => {
  const { runner, clock } = await openPrimary();
  const polls: Waiting[] = [];
  try {
    await runner.send(payloads(clock, 0, 25));
    // Lease all 25 for 1 s, so they become visible again at one moment (one wake-up timer).
    let leased = 0;
    while (leased < 25) leased += (await runner.receive({ maxMessages: 10, waitTimeSeconds: 0, visibilityTimeoutSeconds: 1 })).length;
    polls.push(...Array.from({ length: 4 }, () => longPoll(runner, 10)));
    await settle(() => false);
    assert.equal(polls.filter((poll) => poll.done).length, 0, 'everything is in flight');
    clock.advance(1_100);
    await settle(() => polls.reduce((sum, poll) => sum + poll.deliveries.length, 0) === 25);
    const delivered = polls.flatMap((poll) => poll.deliveries.map((delivery) => delivery.payload.body));
    assert.equal(delivered.length, 25, 'every message delivered again, passed on from receiver to receiver');
    assert.equal(new Set(delivered).size, 25, 'each once');
    assert.ok(polls.some((poll) => !poll.done), 'a receiver that found nothing is still long-polling');
  } finally {
    await runner.close();
  }
  await settle(() => polls.every((poll) => poll.done));
  assert.ok(polls.every((poll) => poll.done), 'closing the partition answers every waiting receiver');
});
