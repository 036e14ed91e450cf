import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InflightTracker, MessageEntry } from './logical-queue.js';

function entry(offset: number, visibleAtMs: number): MessageEntry {
  const created = new MessageEntry(offset, `m-${offset}`, undefined, undefined, 0, 1);
  created.visibleAtMs = visibleAtMs;
  return created;
}

test('deleted in-flight entries do not stay in the deadline heap until their deadline (memory follows the in-flight count)', () => {
  const tracker = new InflightTracker();
  const deadlineMs = 12 * 3600 * 1000; // the longest visibility timeout
  for (let offset = 0; offset < 100_000; offset++) {
    const received = entry(offset, deadlineMs + offset);
    tracker.track(received);
    tracker.untrack(received); // deleted at once
  }
  assert.equal(tracker.trackedCount, 0);
  assert.ok(tracker.heapSize <= 128, `heap holds ${tracker.heapSize} items for 0 messages in flight`);
});

test('with one message in flight, deleted entries do not pile up behind it: at most 2 x 64 items wait', () => {
  const tracker = new InflightTracker();
  const held = entry(0, 12 * 3600 * 1000);
  tracker.track(held);
  for (let offset = 1; offset <= 10_000; offset++) {
    const received = entry(offset, 12 * 3600 * 1000 + offset);
    tracker.track(received);
    tracker.untrack(received);
    assert.ok(tracker.heapSize <= 128, `heap holds ${tracker.heapSize} items for 1 message in flight after ${offset} deletes`);
  }
  assert.equal(tracker.inflightCount(0), 1);
  assert.equal(tracker.next(0), held);
});

test('lease extensions do not pile up stale deadlines; counts stay exact through compactions', () => {
  const tracker = new InflightTracker();
  const live: MessageEntry[] = [];
  for (let offset = 0; offset < 100; offset++) {
    const received = entry(offset, 1_000 + offset);
    tracker.track(received);
    live.push(received);
  }
  for (let round = 1; round <= 500; round++) {
    for (const received of live) {
      received.visibleAtMs = 1_000 + round * 1_000 + received.sequenceOffset;
      tracker.track(received);
    }
  }
  assert.ok(tracker.heapSize <= 2 * 100 + 1, `heap holds ${tracker.heapSize} items for 100 in flight`);
  assert.equal(tracker.inflightCount(0), 100);
  // Past every deadline but the last round's: all still in flight; past the last: none.
  assert.equal(tracker.inflightCount(1_000 + 500 * 1_000 - 1), 100);
  assert.equal(tracker.inflightCount(1_000 + 500 * 1_000 + 99), 0);
  assert.equal(tracker.heapSize, 0);
});

test('once nothing is in flight the deadline heap holds nothing: a drained queue keeps no deleted entries alive', () => {
  const tracker = new InflightTracker();
  const received = Array.from({ length: 60 }, (_, offset) => entry(offset, 12 * 3600 * 1000 + offset));
  for (const each of received) tracker.track(each);
  for (const each of received.slice(0, 59)) tracker.untrack(each);
  assert.equal(tracker.heapSize, 60, 'below the compaction threshold, deleted entries wait as stale items while one is in flight');
  tracker.untrack(received[59]!);
  assert.equal(tracker.heapSize, 0);
  assert.equal(tracker.inflightCount(0), 0);
  const again = entry(1_000, 5_000);
  tracker.track(again);
  assert.equal(tracker.inflightCount(0), 1, 'tracking works as before after the heap was emptied');
  assert.equal(tracker.next(0), again);
});
