import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkRecordAt, decodeRecord, encodeRecord, encodeRecordInto, recordBytes, viewOf } from './record.js';
import { recordHeaderBytes } from './types.js';

describe('record codec', () => {
  test('round-trips every field (property)', () => {
    fc.assert(fc.property(
      fc.record({
        offset: fc.maxSafeNat(),
        type: fc.integer({ min: 0, max: 255 }),
        epoch: fc.integer({ min: 0, max: 0xffff_ffff }),
        timestampMs: fc.maxSafeNat(),
        payload: fc.uint8Array({ maxLength: 3000 }),
        leafHash: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      }),
      (record) => {
        const bytes = encodeRecord(record);
        assert.equal(bytes.length, recordBytes(record.payload.length));
        assert.deepEqual(decodeRecord(bytes), { ...record });
      },
    ));
  });

  test('header layout is the documented one', () => {
    const bytes = encodeRecord({ offset: 0x1_0000_0002, type: 7, epoch: 9, timestampMs: 1234, payload: new Uint8Array([1, 2, 3]) });
    const view = viewOf(bytes);
    assert.equal(view.getUint32(0, true), 67);
    assert.equal(bytes[8], 7);
    assert.equal(view.getUint32(12, true), 9);
    assert.equal(view.getUint32(16, true), 2);
    assert.equal(view.getUint32(20, true), 1);
    assert.equal(view.getUint32(24, true), 1234);
    assert.deepEqual([...bytes.subarray(64)], [1, 2, 3]);
  });

  test('any single flipped bit is detected', () => {
    const bytes = encodeRecord({ offset: 5, type: 1, epoch: 2, timestampMs: 3, payload: new TextEncoder().encode('hello world') });
    for (let bit = 0; bit < bytes.length * 8; bit++) {
      const damaged = bytes.slice();
      damaged[bit >> 3] = (damaged[bit >> 3] ?? 0) ^ (1 << (bit & 7));
      const result = checkRecordAt(damaged, viewOf(damaged), 0);
      assert.notEqual(result.kind, 'record', `flip of bit ${bit} went unnoticed`);
    }
  });

  test('short buffers are incomplete, bad lengths invalid', () => {
    const bytes = encodeRecord({ offset: 1, type: 1, epoch: 1, timestampMs: 1, payload: new Uint8Array(100) });
    assert.equal(checkRecordAt(bytes.subarray(0, 10), viewOf(bytes.subarray(0, 10)), 0).kind, 'incomplete');
    const partial = bytes.subarray(0, 100);
    assert.deepEqual(checkRecordAt(partial, viewOf(partial), 0), { kind: 'incomplete', lengthNeeded: 164 });
    const zeros = new Uint8Array(200);
    assert.equal(checkRecordAt(zeros, viewOf(zeros), 0).kind, 'invalid');
  });

  test('encodes back to back into one buffer', () => {
    const buffer = new Uint8Array(1000);
    const view = viewOf(buffer);
    let position = 0;
    for (let offset = 0; offset < 5; offset++) {
      position += encodeRecordInto(buffer, view, position, offset, 1, 1, 1, new Uint8Array(offset * 10));
    }
    position = 0;
    for (let offset = 0; offset < 5; offset++) {
      const result = checkRecordAt(buffer, view, position);
      assert.equal(result.kind, 'record');
      if (result.kind === 'record') {
        assert.equal(result.offset, offset);
        position += result.length;
      }
    }
    assert.equal(position, 5 * recordHeaderBytes + 100);
  });
});
