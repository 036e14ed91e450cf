import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecordCache } from './record-cache.js';

test('keeps the newest entries within its byte bound, oldest out first', () => {
  const cache = new RecordCache(10 * 100);
  for (let offset = 0; offset < 25; offset++) cache.put(offset, new Uint8Array(100));
  assert.equal(cache.sizeBytes, 1000);
  for (let offset = 0; offset < 15; offset++) assert.equal(cache.get(offset), undefined, `offset ${offset} should be evicted`);
  for (let offset = 15; offset < 25; offset++) assert.ok(cache.get(offset), `offset ${offset} should be cached`);
});

test('deleted entries free their bytes and are skipped by eviction', () => {
  const cache = new RecordCache(300);
  cache.put(1, new Uint8Array(100));
  cache.put(2, new Uint8Array(100));
  cache.delete(1);
  assert.equal(cache.sizeBytes, 100);
  cache.put(3, new Uint8Array(100));
  cache.put(4, new Uint8Array(100));
  assert.ok(cache.get(2) && cache.get(3) && cache.get(4));
  cache.put(5, new Uint8Array(100));
  assert.equal(cache.get(2), undefined);
  assert.equal(cache.sizeBytes, 300);
});

test('a payload larger than the whole cache is not kept', () => {
  const cache = new RecordCache(50);
  cache.put(1, new Uint8Array(51));
  assert.equal(cache.get(1), undefined);
  assert.equal(cache.sizeBytes, 0);
});

test('many puts with evictions keep exactly the newest entries', () => {
  const cache = new RecordCache(64 * 1100);
  const payload = new Uint8Array(1100);
  for (let offset = 0; offset < 300_000; offset++) cache.put(offset, payload);
  assert.equal(cache.sizeBytes, 64 * 1100);
  assert.ok(cache.get(299_999));
  assert.equal(cache.get(299_935), undefined);
  assert.ok(cache.get(299_936));
});

test('deleteFrom forgets every payload at or above the cut and keeps the rest', () => {
  const cache = new RecordCache(1000);
  for (let offset = 0; offset < 6; offset++) cache.put(offset, new Uint8Array(10));
  cache.deleteFrom(3);
  assert.ok(cache.get(0) && cache.get(1) && cache.get(2));
  assert.equal(cache.get(3), undefined);
  assert.equal(cache.get(5), undefined);
  assert.equal(cache.sizeBytes, 30);
});

test('the eviction queue stays bounded by the live entries when entries are deleted rather than evicted', () => {
  // A consumer keeping up: every cached payload is deleted soon after it is put, so the byte
  // bound is never reached and nothing is evicted.
  const cache = new RecordCache(1024 * 1024);
  const payload = new Uint8Array(100);
  for (let offset = 0; offset < 200_000; offset++) {
    cache.put(offset, payload);
    if (offset >= 10) cache.delete(offset - 10);
  }
  assert.equal(cache.sizeBytes, 10 * 100);
  assert.ok(cache.orderLength <= 2 * 10 + 4096 + 1, `eviction queue holds ${cache.orderLength} offsets for 10 live entries`);
  for (let offset = 199_990; offset < 200_000; offset++) assert.ok(cache.get(offset), `offset ${offset} should be cached`);
});

test('after the eviction queue was compacted, eviction still takes the oldest live entry first', () => {
  const cache = new RecordCache(3 * 100);
  cache.put(1, new Uint8Array(100));
  for (let offset = 10; offset < 10_000; offset++) {
    cache.put(offset, new Uint8Array(100));
    cache.delete(offset);
  }
  assert.ok(cache.orderLength < 5000, 'the stale offsets were compacted away');
  cache.put(2, new Uint8Array(100));
  cache.put(3, new Uint8Array(100));
  assert.ok(cache.get(1) && cache.get(2) && cache.get(3));
  cache.put(4, new Uint8Array(100));
  assert.equal(cache.get(1), undefined, 'offset 1 is the oldest live entry');
  cache.put(5, new Uint8Array(100));
  assert.equal(cache.get(2), undefined, 'then offset 2');
  assert.ok(cache.get(3) && cache.get(4) && cache.get(5));
  assert.equal(cache.sizeBytes, 300);
});

test('clear forgets every payload and its bytes; puts after it fill and evict as before', () => {
  const cache = new RecordCache(2 * 100);
  cache.put(1, new Uint8Array(100));
  cache.put(2, new Uint8Array(100));
  cache.clear();
  assert.equal(cache.sizeBytes, 0);
  assert.equal(cache.orderLength, 0);
  assert.equal(cache.get(1), undefined);
  cache.put(3, new Uint8Array(100));
  cache.put(4, new Uint8Array(100));
  cache.put(5, new Uint8Array(100));
  assert.equal(cache.get(3), undefined, 'the oldest entry since the clear goes first');
  assert.ok(cache.get(4) && cache.get(5));
  assert.equal(cache.sizeBytes, 200);
});
