import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { BerthError } from '../protocol/errors.js';
import { decodeReceiptHandle, encodeReceiptHandle } from './receipt.js';

test('receipt handles round-trip every field, across queues and up to the largest safe offsets', () => {
  const fields = fc.record({
    incarnation: fc.uint8Array({ minLength: 8, maxLength: 8 }).map((bytes) => Buffer.from(bytes).toString('hex')),
    partition: fc.integer({ min: 0, max: 0xffff }),
    messageOffset: fc.oneof(fc.nat(), fc.maxSafeNat()),
    receiveOffset: fc.oneof(fc.nat(), fc.maxSafeNat()),
  });
  fc.assert(
    fc.property(fc.array(fields, { minLength: 1, maxLength: 4 }), (list) => {
      // Several queues in turn: the encoder's remembered incarnation must follow.
      const handles = list.map(encodeReceiptHandle);
      handles.forEach((handle, index) => {
        assert.equal(handle.length, 36);
        assert.deepEqual(decodeReceiptHandle(handle), { ...list[index] });
      });
    }),
  );
});

test('malformed receipt handles are ReceiptHandleIsInvalid', () => {
  const good = encodeReceiptHandle({ incarnation: '0123456789abcdef', partition: 1, messageOffset: 5, receiveOffset: 9 });
  const unsafe = Buffer.from(good, 'base64url');
  unsafe.writeUInt32BE(0x20_0000, 11); // message offset >= 2^53
  for (const handle of ['', good.slice(0, 35), `${good}A`, `${good.slice(0, 35)}!`, 'A'.repeat(36), unsafe.toString('base64url')]) {
    assert.throws(() => decodeReceiptHandle(handle), (error: unknown) => error instanceof BerthError && error.code === 'ReceiptHandleIsInvalid', handle);
  }
});
