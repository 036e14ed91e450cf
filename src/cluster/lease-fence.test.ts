import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LeaseFence } from './lease-fence.js';

const ttlMs = 10_000;
const marginMs = 1_000;

/** A fence opened the usual way: a lease granted (sent at 0, done at 10), then a view read at 20. */
function openFence(): LeaseFence {
  const fence = new LeaseFence(ttlMs, marginMs);
  fence.granted(0, 10);
  fence.viewRead(20);
  return fence;
}

test('the fence opens only after a grant and a view read that started after it, until sent + TTL - margin', () => {
  const fence = new LeaseFence(ttlMs, marginMs);
  assert.equal(fence.acknowledgeUntilMs(), 0, 'shut before any lease');
  fence.viewRead(0);
  assert.equal(fence.acknowledgeUntilMs(), 0, 'a view alone does not open it');
  fence.granted(100, 150);
  assert.equal(fence.acknowledgeUntilMs(), 0, 'granted, but no view read since');
  fence.viewRead(140);
  assert.equal(fence.acknowledgeUntilMs(), 0, 'a read that started before the grant completed does not count');
  fence.viewRead(150);
  assert.equal(fence.acknowledgeUntilMs(), 100 + ttlMs - marginMs, 'measured from when the grant was sent');
});

test('keepalives extend the fence from their send time and never shorten it', () => {
  const fence = openFence();
  fence.renewed(3_000);
  assert.equal(fence.acknowledgeUntilMs(), 3_000 + ttlMs - marginMs);
  fence.renewed(2_000); // an older keepalive confirmed late
  assert.equal(fence.acknowledgeUntilMs(), 3_000 + ttlMs - marginMs);
});

test('after a loss the fence stays shut through late keepalives until a new grant and a fresh view', () => {
  const fence = openFence();
  fence.lost();
  assert.equal(fence.acknowledgeUntilMs(), 0);
  fence.renewed(5_000); // a keepalive of the lost lease, answered late
  fence.viewRead(5_100); // a view read before the new grant
  assert.equal(fence.acknowledgeUntilMs(), 0, 'a paused node must learn it was replaced first');
  fence.granted(6_000, 6_050);
  assert.equal(fence.acknowledgeUntilMs(), 0);
  fence.viewRead(6_050);
  assert.equal(fence.acknowledgeUntilMs(), 6_000 + ttlMs - marginMs);
});

test('a new grant needs its own view read, even when the fence was open before it', () => {
  const fence = openFence();
  fence.granted(1_000, 1_010);
  assert.equal(fence.acknowledgeUntilMs(), 0);
  fence.viewRead(1_010);
  assert.equal(fence.acknowledgeUntilMs(), 1_000 + ttlMs - marginMs);
});

test('a closed fence stays shut', () => {
  const fence = openFence();
  fence.close();
  assert.equal(fence.acknowledgeUntilMs(), 0);
  fence.granted(100, 110);
  fence.renewed(200);
  fence.viewRead(300);
  assert.equal(fence.acknowledgeUntilMs(), 0);
});
