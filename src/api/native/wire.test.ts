// The wire codec: every encoder's output decodes to what went in, whatever the chunking of
// the byte stream; malformed input is a ProtocolViolation and nothing else.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  FrameDecoder,
  FrameType,
  ProtocolViolation,
  decodeAck,
  decodeMessages,
  decodeSend,
  decodeSendResult,
  encodeAck,
  encodeMessages,
  encodeSend,
  encodeSendResult,
  frameBytesMaxDefault,
  type WireMessage,
  type WireSendEntry,
} from './wire.js';

const text = fc.string({ unit: 'grapheme', maxLength: 40 });
const shortText = fc.string({ maxLength: 30 });
const attributes = fc.option(
  fc.dictionary(
    fc.string({ minLength: 1, maxLength: 10 }),
    fc.oneof(
      fc.record({ dataType: fc.constant('String'), stringValue: text }),
      fc.record({ dataType: fc.constant('Binary'), binaryValue: fc.uint8Array({ maxLength: 20 }).map((bytes) => Buffer.from(bytes)) }),
    ),
    { maxKeys: 4, noNullPrototype: true },
  ).map((dictionary) => Object.fromEntries(Object.entries(dictionary).map(([name, value]) => [name, { ...value }]))),
  { nil: undefined },
);

const sendEntry: fc.Arbitrary<WireSendEntry> = fc
  .record({
    body: text,
    groupId: fc.option(shortText, { nil: undefined }),
    deduplicationId: fc.option(shortText, { nil: undefined }),
    delaySeconds: fc.option(fc.integer({ min: 0, max: 900 }), { nil: undefined }),
    replicaCount: fc.option(fc.integer({ min: 1, max: 100 }), { nil: undefined }),
    attributes,
    systemAttributes: attributes,
  })
  .map((entry) => Object.fromEntries(Object.entries(entry).filter(([, value]) => value !== undefined && !(typeof value === 'object' && Object.keys(value as object).length === 0))) as unknown as WireSendEntry);

const message: fc.Arbitrary<WireMessage> = fc
  .record({
    messageId: shortText,
    receiptHandle: shortText,
    body: text,
    sentTimestampMs: fc.integer({ min: 0, max: 2 ** 50 }),
    receiveCount: fc.nat(),
    firstReceiveTimestampMs: fc.integer({ min: 0, max: 2 ** 50 }),
    senderId: shortText,
    groupId: fc.option(shortText, { nil: undefined }),
    sequenceNumber: fc.option(shortText, { nil: undefined }),
    attributes,
  })
  .map((value) => Object.fromEntries(Object.entries(value).filter(([, item]) => item !== undefined && !(typeof item === 'object' && Object.keys(item as object).length === 0))) as unknown as WireMessage);

/** Feeds `bytes` to a decoder in chunks cut at the given points. */
function decodeInChunks(bytes: Buffer, cuts: number[]) {
  const decoder = new FrameDecoder();
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  const frames = [];
  let previous = 0;
  for (const point of [...points, bytes.length]) {
    frames.push(...decoder.push(bytes.subarray(previous, point)).map((frame) => ({ ...frame, payload: Buffer.from(frame.payload) })));
    previous = point;
  }
  assert.equal(decoder.bufferedBytes, 0);
  return frames;
}

describe('native wire codec', () => {
  test('SEND frames round-trip through any chunking', () => {
    fc.assert(
      fc.property(fc.array(sendEntry, { minLength: 1, maxLength: 5 }), fc.array(fc.nat(), { maxLength: 6 }), (entries, cuts) => {
        const bytes = Buffer.concat([encodeSend(7, 'queue', entries), encodeSend(8, 'other', entries)]);
        const frames = decodeInChunks(bytes, cuts);
        assert.equal(frames.length, 2);
        assert.equal(frames[0]!.type, FrameType.Send);
        assert.equal(frames[1]!.requestId, 8);
        assert.deepEqual(decodeSend(frames[0]!.payload), { queue: 'queue', entries });
      }),
      { numRuns: 200 },
    );
  });

  test('bodies of any UTF-8 width and length round-trip (the writer sizes for ASCII and rewrites what did not fit)', () => {
    // Long ASCII runs put a wide character right at the end of the ASCII-sized room.
    const piece = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 60 }), fc.string({ unit: 'binary', maxLength: 60 }), fc.nat({ max: 3000 }).map((count) => 'a'.repeat(count)));
    fc.assert(
      fc.property(fc.array(fc.array(piece, { maxLength: 4 }).map((pieces) => pieces.join('')), { minLength: 1, maxLength: 6 }), (bodies) => {
        const entries: WireSendEntry[] = bodies.map((body) => ({ body }));
        const [frame] = new FrameDecoder().push(encodeSend(1, 'queue', entries));
        assert.deepEqual(decodeSend(frame!.payload).entries.map((entry) => Buffer.from(entry.body, 'utf8')), bodies.map((body) => Buffer.from(body, 'utf8')));
      }),
      { numRuns: 300 },
    );
    for (const body of ['€'.repeat(5000), '😀'.repeat(3000), 'x'.repeat(4000) + '€😀', '']) {
      const [frame] = new FrameDecoder().push(encodeSend(1, 'q', [{ body }, { body: 'after' }]));
      assert.deepEqual(decodeSend(frame!.payload).entries, [{ body }, { body: 'after' }]);
    }
  });

  test('MESSAGES, SEND_RESULT and ACK round-trip', () => {
    fc.assert(
      fc.property(fc.array(message, { maxLength: 5 }), (messages) => {
        const [frame] = new FrameDecoder().push(encodeMessages(FrameType.Delivery, 3, messages));
        assert.deepEqual(decodeMessages(frame!.payload), messages);
      }),
      { numRuns: 200 },
    );
    const outcomes = [{ ok: true as const, messageId: 'm1' }, { ok: true as const, messageId: 'm2', sequenceNumber: '00000000000000000001' }, { ok: false as const, error: { nativeCode: 1071, code: 'InvalidParameterValue', message: 'bad' } }];
    const [result] = new FrameDecoder().push(encodeSendResult(9, outcomes));
    assert.deepEqual(decodeSendResult(result!.payload), outcomes);
    const [ack] = new FrameDecoder().push(encodeAck(4, 'q', ['a', 'b']));
    assert.deepEqual(decodeAck(ack!.payload), { queue: 'q', receiptHandles: ['a', 'b'] });
  });

  test('impossible lengths and versions are violations before the payload arrives', () => {
    const oversized = Buffer.alloc(10);
    oversized.writeUInt32BE(frameBytesMaxDefault + 1, 0);
    oversized[4] = 1;
    assert.throws(() => new FrameDecoder().push(oversized), ProtocolViolation);
    const undersized = Buffer.alloc(10);
    undersized.writeUInt32BE(5, 0);
    assert.throws(() => new FrameDecoder().push(undersized), ProtocolViolation);
    const badVersion = Buffer.from([0, 0, 1, 0, 9]);
    assert.throws(() => new FrameDecoder().push(badVersion), ProtocolViolation);
  });

  test('random payloads decode or fail with ProtocolViolation only', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        for (const decode of [decodeSend, decodeMessages, decodeSendResult, decodeAck]) {
          try {
            decode(Buffer.from(bytes));
          } catch (error) {
            assert.ok(error instanceof ProtocolViolation, `${decode.name}: ${String(error)}`);
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});
