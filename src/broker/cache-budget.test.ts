import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../core/clock.js';
import { openTestRunner } from '../testing/test-partition.js';
import { testPayload } from '../testing/test-payloads.js';
import { CacheBudget } from './cache-budget.js';
import { RecordCache } from './record-cache.js';

const payload = (): Uint8Array => new Uint8Array(1024);

/** Offsets a cache still holds among 0..count-1. */
function held(cache: RecordCache, count: number): number[] {
  const offsets: number[] = [];
  for (let offset = 0; offset < count; offset++) if (cache.get(offset) !== undefined) offsets.push(offset);
  return offsets;
}

test('caches under one budget never hold more than it, each within its own bound too', () => {
  const budget = new CacheBudget(64 * 1024);
  const caches = Array.from({ length: 5 }, () => new RecordCache(32 * 1024, budget));
  for (let offset = 0; offset < 200; offset++) {
    for (const cache of caches) cache.put(offset, payload());
    assert.ok(budget.sizeBytes <= budget.bytesMax, `after offset ${offset}: ${budget.sizeBytes} bytes held`);
    assert.equal(budget.sizeBytes, caches.reduce((sum, cache) => sum + cache.sizeBytes, 0));
  }
  for (const cache of caches) {
    assert.ok(cache.sizeBytes <= 32 * 1024);
    // What a cache keeps is its newest payloads.
    const kept = held(cache, 200);
    assert.ok(kept.length > 0);
    assert.deepEqual(kept, Array.from({ length: kept.length }, (_, index) => 200 - kept.length + index));
  }
});

test('over the budget the largest cache gives way: a backlog nobody reads yields to a queue being filled', () => {
  const budget = new CacheBudget(64 * 1024);
  const backlog = new RecordCache(1024 * 1024, budget);
  const busy = new RecordCache(1024 * 1024, budget);
  for (let offset = 0; offset < 64; offset++) backlog.put(offset, payload());
  assert.equal(backlog.sizeBytes, 64 * 1024);
  for (let offset = 0; offset < 28; offset++) busy.put(offset, payload());
  // The busy cache kept every payload it was given; the backlog lost its oldest ones.
  assert.deepEqual(held(busy, 28), Array.from({ length: 28 }, (_, index) => index));
  assert.ok(backlog.sizeBytes < 64 * 1024 - 28 * 1024 + 1, `backlog kept ${backlog.sizeBytes}`);
  assert.equal(backlog.get(0), undefined);
  assert.ok(backlog.get(63) !== undefined);
});

test('deleted, cleared and closed caches give their bytes back', () => {
  const budget = new CacheBudget(1024 * 1024);
  const first = new RecordCache(1024 * 1024, budget);
  const second = new RecordCache(1024 * 1024, budget);
  for (let offset = 0; offset < 10; offset++) {
    first.put(offset, payload());
    second.put(offset, payload());
  }
  assert.equal(budget.sizeBytes, 20 * 1024);
  first.delete(3);
  first.put(4, payload()); // replacing an offset counts it once
  assert.equal(budget.sizeBytes, 19 * 1024);
  first.deleteFrom(5);
  assert.equal(budget.sizeBytes, 14 * 1024);
  first.clear();
  assert.equal(budget.sizeBytes, 10 * 1024);
  second.close();
  assert.equal(budget.sizeBytes, 0);
  // A closed cache takes nothing more (a late put would be charged for good).
  second.put(11, payload());
  assert.equal(second.get(11), undefined);
  assert.equal(budget.sizeBytes, 0);
});

test('a budget of 0 keeps nothing and loses nothing else', () => {
  const budget = new CacheBudget(0);
  const cache = new RecordCache(1024 * 1024, budget);
  for (let offset = 0; offset < 10; offset++) cache.put(offset, payload());
  assert.equal(cache.sizeBytes, 0);
  assert.equal(budget.sizeBytes, 0);
});

test('partitions under one budget: their caches stay within it, every receive still gets its body (from disk past the cache), and a closed partition gives its bytes back', async () => {
  const clock = new ManualClock();
  const budget = new CacheBudget(24 * 1024);
  const runners = await Promise.all(['a', 'b', 'c'].map((name) => openTestRunner({ name, clock, cacheBudget: budget })));
  try {
    for (const runner of runners) await runner.send(Array.from({ length: 200 }, (_, index) => testPayload(clock, index)));
    const cached = runners.map((runner) => runner.heldForSpeed.cachedPayloadBytes);
    assert.ok(cached.every((bytes) => bytes > 0), `every partition keeps some: ${cached.join(', ')}`);
    assert.ok(budget.sizeBytes <= budget.bytesMax, `${budget.sizeBytes} bytes cached`);
    assert.equal(budget.sizeBytes, cached.reduce((sum, bytes) => sum + bytes, 0));
    for (const runner of runners) {
      const bodies: string[] = [];
      while (bodies.length < 200) {
        const delivered = await runner.receive({ maxMessages: 10, waitTimeSeconds: 0, visibilityTimeoutSeconds: 600 });
        assert.ok(delivered.length > 0, `${runner.name}: received ${bodies.length} of 200`);
        bodies.push(...delivered.map((delivery) => delivery.payload.body));
      }
      assert.deepEqual(bodies, Array.from({ length: 200 }, (_, index) => `body-${index}`));
    }
    const before = budget.sizeBytes;
    const closing = runners.pop()!;
    const itsBytes = closing.heldForSpeed.cachedPayloadBytes;
    await closing.close();
    assert.equal(budget.sizeBytes, before - itsBytes);
  } finally {
    for (const runner of runners) await runner.close();
  }
});
