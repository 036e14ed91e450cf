import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EnqueuePayload } from '../queue/records.js';
import { movedCopy, movedDeduplicationId } from './queue-calls.js';

const original: EnqueuePayload = {
  messageId: 'm-1',
  body: 'hello',
  attributes: { colour: { dataType: 'String', stringValue: 'red' } },
  systemAttributes: {},
  groupId: 'g',
  deduplicationId: movedDeduplicationId('m-1', 41),
  senderId: 'sender',
  sentTimestampMs: 1_700_000_000_000,
  delaySeconds: 30,
  replicaCount: 3,
  deadLetterQueueSourceArn: 'arn:aws:sqs:us-east-1:000000000000:older-source',
};

test('a moved copy keeps what identifies the message, including the deduplication id its taker gave it', () => {
  const moved = movedCopy(original, 'arn:aws:sqs:us-east-1:000000000000:source', 3);
  assert.equal(moved.messageId, 'm-1');
  assert.equal(moved.body, 'hello');
  assert.deepEqual(moved.attributes, original.attributes);
  assert.equal(moved.groupId, 'g');
  assert.equal(moved.senderId, 'sender');
  assert.equal(moved.sentTimestampMs, original.sentTimestampMs);
  // A retried move must carry the same id, or a FIFO target takes the retry for a new message.
  assert.equal(moved.deduplicationId, original.deduplicationId);
});

test('a moved copy is not delayed again and keeps no more replicas than its target queue', () => {
  const moved = movedCopy(original, undefined, 1);
  assert.equal(moved.delaySeconds, 0);
  assert.equal(moved.replicaCount, 1);
  assert.equal(movedCopy({ ...original, replicaCount: 2 }, undefined, 3).replicaCount, 2);
});

test('a dead-letter move names its source queue; a redrive out of a dead-letter queue clears it', () => {
  assert.equal(movedCopy(original, 'arn:aws:sqs:us-east-1:000000000000:source', 3).deadLetterQueueSourceArn, 'arn:aws:sqs:us-east-1:000000000000:source');
  const redriven = movedCopy(original, undefined, 3);
  assert.equal(redriven.deadLetterQueueSourceArn, undefined);
  assert.equal('deadLetterQueueSourceArn' in redriven, false);
  assert.equal(original.deadLetterQueueSourceArn, 'arn:aws:sqs:us-east-1:000000000000:older-source', 'the original is not changed');
});

test('moved deduplication ids are stable per message and place, and distinct across either', () => {
  assert.equal(movedDeduplicationId('m-1', 41), movedDeduplicationId('m-1', 41));
  assert.notEqual(movedDeduplicationId('m-1', 41), movedDeduplicationId('m-1', 42));
  assert.notEqual(movedDeduplicationId('m-1', 41), movedDeduplicationId('m-2', 41));
  assert.match(movedDeduplicationId('m-1', 41), /^[\x21-\x7e]{1,128}$/, 'a valid MessageDeduplicationId');
});
