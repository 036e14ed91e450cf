// BatchAcker (unit, with a stand-in for the connection): ackAll calls of one tick leave in
// one ACK frame, each call and each message still gets its own entries' outcome.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { WireMessage } from '../api/native/wire.js';
import { BatchAcker, type Berth } from './berth.js';
import { BerthClientError } from './errors.js';
import { Message } from './message.js';

/** Records every ACK frame; answers entries whose handle starts with "bad" with an error. */
function recordingBerth(): { berth: Berth; frames: string[][] } {
  const frames: string[][] = [];
  const stand = {
    async ack(_queue: string, handles: readonly string[]): Promise<Array<BerthClientError | null>> {
      frames.push([...handles]);
      return handles.map((handle) => (handle.startsWith('bad') ? new BerthClientError('ReceiptHandleIsInvalid', 0, `bad handle ${handle}`) : null));
    },
  };
  return { berth: stand as unknown as Berth, frames };
}

function message(berth: Berth, handle: string): Message {
  const wire: WireMessage = { messageId: handle, receiptHandle: handle, body: handle, receiveCount: 1, sentTimestampMs: 0, firstReceiveTimestampMs: 0, senderId: 'me' };
  return new Message(berth, 'q', wire, undefined);
}

test('ackAll calls made in one tick leave in one ACK frame; each resolves with its own entries', async () => {
  const { berth, frames } = recordingBerth();
  const acker = new BatchAcker(berth, 'q');
  const first = Array.from({ length: 10 }, (_, index) => message(berth, `a${index}`));
  const second = [message(berth, 'b0'), message(berth, 'bad1'), message(berth, 'b2')];
  const third = Array.from({ length: 5 }, (_, index) => message(berth, `c${index}`));
  const outcomes = await Promise.allSettled([acker.ackAll(first), acker.ackAll(second), acker.ackAll(third)]);
  assert.equal(frames.length, 1, 'one ACK frame for the three calls');
  assert.deepEqual(frames[0], [...first, ...second, ...third].map((item) => item.receiptHandle));
  assert.equal(outcomes[0]!.status, 'fulfilled');
  assert.equal(outcomes[1]!.status, 'rejected', 'the call holding the failed entry fails');
  assert.equal(outcomes[2]!.status, 'fulfilled', 'the others see only their own entries');
  // Each message's own outcome is its entry of the shared answer.
  await second[0]!.ack();
  await assert.rejects(second[1]!.ack(), /bad handle bad1/);
  assert.ok([...first, ...second, ...third].every((item) => item.settled));

  // The next tick is a new frame; settled messages are skipped.
  await acker.ackAll([...first, message(berth, 'd0')]);
  assert.equal(frames.length, 2);
  assert.deepEqual(frames[1], ['d0']);
});

test('a tick with more than 1,000 acks is split into frames of at most 1,000', async () => {
  const { berth, frames } = recordingBerth();
  const acker = new BatchAcker(berth, 'q');
  const many = Array.from({ length: 1_500 }, (_, index) => message(berth, `m${index}`));
  await Promise.all([acker.ackAll(many.slice(0, 700)), acker.ackAll(many.slice(700))]);
  assert.deepEqual(frames.map((frame) => frame.length), [1_000, 500]);
  assert.deepEqual(frames.flat(), many.map((item) => item.receiptHandle));
});

test('flush sends the open group at once', async () => {
  const { berth, frames } = recordingBerth();
  const acker = new BatchAcker(berth, 'q');
  const acked = acker.ackAll([message(berth, 'x')]);
  assert.equal(frames.length, 0, 'nothing leaves before the tick ends');
  await acker.flush();
  assert.equal(frames.length, 1);
  await acked;
});

test('single acks and ackAll calls of one tick share the frame; a single ack fails only with its own entry', async () => {
  const { berth, frames } = recordingBerth();
  const acker = new BatchAcker(berth, 'q');
  const batch = [message(berth, 'a0'), message(berth, 'a1')];
  const outcomes = await Promise.allSettled([acker.ack('s0'), acker.ackAll(batch), acker.ack('bad-s1'), acker.ack('s2')]);
  assert.deepEqual(frames, [['s0', 'a0', 'a1', 'bad-s1', 's2']]);
  assert.deepEqual(outcomes.map((outcome) => outcome.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
});
