// Unit tests: one SQS rule each, through the broker's plan -> append -> apply loop.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { LogRecord } from '../storage/types.js';
import { queueConfigFromAttributes } from './config.js';
import { QueueMachine, sequenceNumberOf, type Receipt, type ReceivePlanInput } from './machine.js';
import { RecordType, decodeEnqueue, decodeStoredMessage, encodeEnqueue, encodeRelocate, enqueuePayloadOf, type EnqueuePayload } from './records.js';
import type { QueueConfig } from './types.js';

const startMs = 1_700_000_000_000;

function standardConfig(overrides: Partial<QueueConfig> = {}): QueueConfig {
  return { ...queueConfigFromAttributes({}, { replicaCount: 1 }), ...overrides };
}

function fifoConfig(overrides: Partial<QueueConfig> = {}): QueueConfig {
  return { ...queueConfigFromAttributes({ FifoQueue: 'true' }, { replicaCount: 1 }), ...overrides };
}

/** A fake broker over an in-memory log. */
class Harness {
  readonly log: LogRecord[] = [];
  nowMs = startMs;
  private counter = 0;
  machine: QueueMachine;

  constructor(config: QueueConfig, windowMessagesMax?: number) {
    this.machine = new QueueMachine(config, windowMessagesMax === undefined ? {} : { windowMessagesMax });
  }

  append(type: RecordType, payload: Uint8Array): { offset: number; becameVisible: boolean } {
    const record: LogRecord = { offset: this.log.length, type, payload, epoch: 1, timestampMs: this.nowMs, leafHash: new Uint8Array(32) };
    this.log.push(record);
    return { offset: record.offset, ...this.machine.apply(record) };
  }

  payload(fields: Partial<EnqueuePayload> = {}): EnqueuePayload {
    const messageId = `m${this.counter++}`;
    return { messageId, body: `body ${messageId}`, attributes: {}, systemAttributes: {}, senderId: 's', sentTimestampMs: this.nowMs, delaySeconds: 0, replicaCount: 1, ...fields };
  }

  send(fields: Partial<EnqueuePayload> = {}): { offset: number; messageId: string } {
    const payload = this.payload(fields);
    const plan = this.machine.planSend(payload);
    if (plan.kind === 'duplicate') return { offset: plan.offset, messageId: plan.messageId };
    assert.equal(plan.kind, 'append', JSON.stringify(plan));
    if (plan.kind !== 'append') throw new Error('unreachable');
    return { offset: this.append(plan.type, plan.payload).offset, messageId: payload.messageId };
  }

  receive(maxMessages = 10, extra: Partial<ReceivePlanInput> = {}): { offsets: number[]; receipts: Receipt[]; plan: ReturnType<QueueMachine['planReceive']> } {
    const plan = this.machine.planReceive({ nowMs: this.nowMs, maxMessages, ...extra });
    if (plan.payload === undefined) return { offsets: plan.deliver, receipts: plan.deliver.map((offset) => this.machine.message(offset)!.receipt!).filter(Boolean), plan };
    const { offset } = this.append(RecordType.Receive, plan.payload);
    return { offsets: plan.deliver, receipts: plan.deliver.map((messageOffset) => ({ messageOffset, receiveOffset: offset })), plan };
  }

  delete(receipt: Receipt): 'deleted' | 'noop' | string {
    const plan = this.machine.planDelete(receipt, this.nowMs);
    if ('error' in plan) return plan.error;
    if ('noop' in plan) return 'noop';
    this.append(RecordType.Delete, plan.payload);
    return 'deleted';
  }

  changeVisibility(receipt: Receipt, seconds: number): 'changed' | string {
    const plan = this.machine.planChangeVisibility(receipt, seconds, this.nowMs);
    if ('error' in plan) return plan.error;
    this.append(RecordType.ChangeVisibility, plan.payload);
    return 'changed';
  }

  loadAll(): void {
    for (let from = this.machine.loadFrom(this.nowMs); from !== undefined; from = this.machine.loadFrom(this.nowMs)) {
      if (this.machine.load(this.log.slice(from), this.nowMs) === 0) break;
    }
  }

  ids(offsets: number[]): string[] {
    return offsets.map((offset) => this.machine.message(offset)!.messageId);
  }
}

describe('records', () => {
  test('enqueue payload round-trips, including attributes, binary values and non-ASCII text', () => {
    const payload: EnqueuePayload = {
      messageId: 'id-1',
      body: 'héllo wörld ✓ 𝄞',
      attributes: { a: { dataType: 'String', stringValue: 'x' }, b: { dataType: 'Binary.custom', binaryValue: new Uint8Array([0, 1, 255]) } },
      systemAttributes: { AWSTraceHeader: { dataType: 'String', stringValue: 'Root=1' } },
      groupId: 'g',
      deduplicationId: 'd',
      senderId: 'AKID',
      sentTimestampMs: startMs,
      delaySeconds: 5,
      deadLetterQueueSourceArn: 'arn:aws:sqs:us-east-1:000000000000:src',
      replicaCount: 3,
    };
    assert.deepEqual(decodeEnqueue(encodeEnqueue(payload)), payload);
    const relocated = { type: RecordType.Relocate, payload: encodeRelocate(7, encodeEnqueue(payload)) };
    assert.deepEqual(decodeStoredMessage(relocated), payload);
    assert.deepEqual(enqueuePayloadOf(relocated), encodeEnqueue(payload));
  });

  test('a long body (1 MiB) round-trips', () => {
    const body = 'x'.repeat(1024 * 1024);
    const payload: EnqueuePayload = { messageId: 'id', body, attributes: {}, systemAttributes: {}, senderId: 's', sentTimestampMs: 1, delaySeconds: 0, replicaCount: 1 };
    assert.equal(decodeEnqueue(encodeEnqueue(payload)).body.length, body.length);
  });

  test('sequence numbers are 20-digit zero-padded offsets', () => {
    assert.equal(sequenceNumberOf(42), '00000000000000000042');
    assert.ok(sequenceNumberOf(9) < sequenceNumberOf(10));
  });
});

describe('config', () => {
  test('SQS defaults and parsed attributes', () => {
    const standard = queueConfigFromAttributes({}, { replicaCount: 1 });
    assert.equal(standard.fifo, false);
    assert.equal(standard.visibilityTimeoutSeconds, 30);
    assert.equal(standard.messageRetentionPeriodSeconds, 345_600);
    assert.equal(standard.maximumMessageSize, 262_144);
    assert.equal(standard.inflightMessagesMax, 120_000);
    assert.equal(standard.redrive, undefined);
    const fifo = queueConfigFromAttributes(
      {
        FifoQueue: 'true',
        VisibilityTimeout: '5',
        DeduplicationScope: 'messageGroup',
        ReplicaCount: '3',
        RedrivePolicy: '{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq.fifo","maxReceiveCount":3}',
      },
      { replicaCount: 1 },
    );
    assert.equal(fifo.fifo, true);
    assert.equal(fifo.visibilityTimeoutSeconds, 5);
    assert.equal(fifo.deduplicationScope, 'messageGroup');
    assert.equal(fifo.replicaCount, 3);
    assert.deepEqual(fifo.redrive, { deadLetterQueueName: 'dlq.fifo', deadLetterTargetArn: 'arn:aws:sqs:us-east-1:000000000000:dlq.fifo', maxReceiveCount: 3 });
  });
});

describe('visibility and delay', () => {
  test('a received message is hidden until its visibility timeout passes, then delivered again', () => {
    const h = new Harness(standardConfig({ visibilityTimeoutSeconds: 30 }));
    h.send();
    const first = h.receive();
    assert.equal(first.offsets.length, 1);
    assert.equal(h.machine.counts(h.nowMs).inflight, 1);
    h.nowMs += 29_999;
    assert.equal(h.receive().offsets.length, 0);
    assert.equal(h.machine.nextVisibleAtMs(h.nowMs), startMs + 30_000);
    h.nowMs += 1;
    const second = h.receive();
    assert.deepEqual(second.offsets, first.offsets);
    const view = h.machine.message(second.offsets[0]!)!;
    assert.equal(view.receiveCount, 2);
    assert.equal(view.firstReceiveTimestampMs, startMs);
  });

  test('a per-call visibility timeout overrides the queue default', () => {
    const h = new Harness(standardConfig({ visibilityTimeoutSeconds: 30 }));
    h.send();
    h.receive(1, { visibilityTimeoutSeconds: 2 });
    h.nowMs += 2_000;
    assert.equal(h.receive().offsets.length, 1);
  });

  test('a delayed message is not visible until sent time + delay, and counts as delayed', () => {
    const h = new Harness(standardConfig());
    h.send({ delaySeconds: 10 });
    assert.deepEqual(h.machine.counts(h.nowMs), { visible: 0, inflight: 0, delayed: 1, oldestMessageAgeSeconds: 0 });
    assert.equal(h.receive().offsets.length, 0);
    assert.equal(h.machine.nextVisibleAtMs(h.nowMs), startMs + 10_000);
    h.nowMs += 10_000;
    assert.equal(h.receive().offsets.length, 1);
  });

  test('change visibility: 0 makes it visible now; not in flight -> MessageNotInflight; over 12 h from the receive -> InvalidParameterValue', () => {
    const h = new Harness(standardConfig());
    h.send();
    const [receipt] = h.receive().receipts;
    assert.ok(receipt);
    assert.equal(h.changeVisibility(receipt, 43_200), 'changed');
    h.nowMs += 1_000;
    assert.equal(h.changeVisibility(receipt, 43_200), 'InvalidParameterValue');
    assert.equal(h.changeVisibility(receipt, 43_199), 'changed');
    assert.equal(h.changeVisibility(receipt, 43_201), 'InvalidParameterValue');
    assert.equal(h.changeVisibility(receipt, 0), 'changed');
    assert.equal(h.changeVisibility(receipt, 10), 'MessageNotInflight');
    assert.equal(h.receive().offsets.length, 1);
  });

  test('change visibility with the receipt of an earlier receive -> receipt handle has expired', () => {
    const h = new Harness(standardConfig({ visibilityTimeoutSeconds: 1 }));
    h.send();
    const [old] = h.receive().receipts;
    h.nowMs += 1_000;
    h.receive();
    const plan = h.machine.planChangeVisibility(old!, 5, h.nowMs);
    assert.ok('error' in plan);
    assert.equal(plan.error, 'InvalidParameterValue');
    assert.match(plan.message, /expired/);
  });
});

describe('delete', () => {
  test('current receipt deletes; stale receipt succeeds without deleting; deleting twice succeeds; a never-received message -> ReceiptHandleIsInvalid', () => {
    const h = new Harness(standardConfig({ visibilityTimeoutSeconds: 1 }));
    const { offset } = h.send();
    assert.equal(h.delete({ messageOffset: offset, receiveOffset: offset + 1 }), 'ReceiptHandleIsInvalid');
    const [stale] = h.receive().receipts;
    h.nowMs += 1_000;
    const [current] = h.receive().receipts;
    assert.equal(h.delete(stale!), 'noop');
    assert.equal(h.machine.counts(h.nowMs).inflight, 1);
    assert.equal(h.delete(current!), 'deleted');
    assert.equal(h.machine.counts(h.nowMs).inflight, 0);
    assert.equal(h.delete(current!), 'noop');
    assert.equal(h.delete({ messageOffset: offset, receiveOffset: 10_000 }), 'ReceiptHandleIsInvalid');
  });
});

describe('FIFO', () => {
  test('a group is blocked while any of its messages is in flight; one receive takes several of a group in order, and several groups', () => {
    const h = new Harness(fifoConfig());
    for (const groupId of ['a', 'a', 'a', 'b']) h.send({ groupId, deduplicationId: `${Math.random()}` });
    const first = h.receive(2);
    assert.deepEqual(h.ids(first.offsets), ['m0', 'm1']);
    const second = h.receive(10);
    assert.deepEqual(h.ids(second.offsets), ['m3'], 'group a is blocked, group b is served');
    assert.equal(h.delete(first.receipts[0]!), 'deleted');
    assert.equal(h.receive(10).offsets.length, 0, 'm1 of group a is still in flight');
    assert.equal(h.delete(first.receipts[1]!), 'deleted');
    assert.deepEqual(h.ids(h.receive(10).offsets), ['m2']);
  });

  test('a message whose visibility expires goes back to the head of its group', () => {
    const h = new Harness(fifoConfig({ visibilityTimeoutSeconds: 5 }));
    for (let index = 0; index < 3; index++) h.send({ groupId: 'g', deduplicationId: `d${index}` });
    assert.deepEqual(h.ids(h.receive(1).offsets), ['m0']);
    h.nowMs += 5_000;
    assert.deepEqual(h.ids(h.receive(10).offsets), ['m0', 'm1', 'm2']);
  });

  test('deduplication returns the first messageId and offset for 5 minutes, even after delete; scope per group', () => {
    const h = new Harness(fifoConfig());
    const first = h.send({ groupId: 'g', deduplicationId: 'same' });
    const duplicate = h.machine.planSend(h.payload({ groupId: 'other', deduplicationId: 'same' }));
    assert.deepEqual(duplicate, { kind: 'duplicate', messageId: first.messageId, offset: first.offset });
    const [receipt] = h.receive().receipts;
    h.delete(receipt!);
    h.nowMs += 5 * 60 * 1000 - 1;
    assert.equal(h.machine.planSend(h.payload({ groupId: 'g', deduplicationId: 'same' })).kind, 'duplicate');
    h.nowMs += 1;
    assert.equal(h.machine.planSend(h.payload({ groupId: 'g', deduplicationId: 'same' })).kind, 'append');

    const scoped = new Harness(fifoConfig({ deduplicationScope: 'messageGroup' }));
    scoped.send({ groupId: 'a', deduplicationId: 'same' });
    assert.equal(scoped.machine.planSend(scoped.payload({ groupId: 'b', deduplicationId: 'same' })).kind, 'append');
    assert.equal(scoped.machine.planSend(scoped.payload({ groupId: 'a', deduplicationId: 'same' })).kind, 'duplicate');
  });

  test('a FIFO send without a group or deduplication id is refused', () => {
    const h = new Harness(fifoConfig());
    const noGroup = h.machine.planSend(h.payload({ deduplicationId: 'd' }));
    assert.equal(noGroup.kind === 'error' && noGroup.error, 'MissingParameter');
    const noDedup = h.machine.planSend(h.payload({ groupId: 'g' }));
    assert.equal(noDedup.kind === 'error' && noDedup.error, 'InvalidParameterValue');
  });

  test('ReceiveRequestAttemptId: a retry returns the same messages and receipts while they are in flight', () => {
    const h = new Harness(fifoConfig());
    h.send({ groupId: 'g', deduplicationId: '1' });
    h.send({ groupId: 'g', deduplicationId: '2' });
    const first = h.receive(10, { attemptId: 'attempt' });
    const retry = h.machine.planReceive({ nowMs: h.nowMs + 1000, maxMessages: 10, attemptId: 'attempt' });
    assert.equal(retry.payload, undefined);
    assert.equal(retry.repeated, true);
    assert.deepEqual(retry.deliver, first.offsets);
    h.delete(first.receipts[0]!);
    h.delete(first.receipts[1]!);
    const afterDelete = h.machine.planReceive({ nowMs: h.nowMs, maxMessages: 10, attemptId: 'attempt' });
    assert.equal(afterDelete.repeated, undefined);
    assert.deepEqual(afterDelete.deliver, []);
  });

  test('in-flight limit: FIFO returns fewer, standard answers OverLimit', () => {
    const fifo = new Harness(fifoConfig({ inflightMessagesMax: 2 }));
    for (let index = 0; index < 4; index++) fifo.send({ groupId: `g${index}`, deduplicationId: `d${index}` });
    assert.equal(fifo.receive(10).offsets.length, 2);
    const more = fifo.receive(10);
    assert.equal(more.offsets.length, 0);
    assert.equal(more.plan.overLimit, false);

    const standard = new Harness(standardConfig({ inflightMessagesMax: 2 }));
    for (let index = 0; index < 4; index++) standard.send();
    assert.equal(standard.receive(10).offsets.length, 2);
    assert.equal(standard.receive(10).plan.overLimit, true);
  });
});

describe('fair standard queues', () => {
  test('messages with a group are served round-robin so one noisy group cannot starve others', () => {
    const h = new Harness(standardConfig());
    for (let index = 0; index < 50; index++) h.send({ groupId: 'noisy' });
    h.send({ groupId: 'quiet' });
    h.send();
    const offsets = h.receive(3).offsets;
    const groups = offsets.map((offset) => h.machine.message(offset)!.groupId ?? '(none)').sort();
    assert.deepEqual(groups, ['(none)', 'noisy', 'quiet']);
  });
});

describe('redrive, retention, purge', () => {
  test('a message at maxReceiveCount is listed for the dead-letter queue instead of delivered, and DeadLettered removes it', () => {
    const h = new Harness(standardConfig({ visibilityTimeoutSeconds: 1, redrive: { deadLetterQueueName: 'dlq', deadLetterTargetArn: 'arn:dlq', maxReceiveCount: 2 } }));
    const { offset } = h.send();
    h.receive();
    h.nowMs += 1_000;
    h.receive();
    h.nowMs += 1_000;
    const third = h.receive();
    assert.deepEqual(third.offsets, []);
    assert.deepEqual(third.plan.deadLetter, [offset]);
    assert.deepEqual(h.machine.planReceive({ nowMs: h.nowMs, maxMessages: 10, exclude: new Set([offset]) }).deadLetter, [], 'excluded while the broker copies it');
    const { becameVisible } = h.append(RecordType.DeadLettered, h.machine.planDeadLettered([offset]).payload);
    assert.equal(becameVisible, false);
    assert.deepEqual(h.machine.counts(h.nowMs), { visible: 0, inflight: 0, delayed: 0, oldestMessageAgeSeconds: 0 });
  });

  test('a message past its retention period is never delivered and is removed by the receive or the expire sweep', () => {
    const h = new Harness(standardConfig({ messageRetentionPeriodSeconds: 60 }));
    const { offset } = h.send();
    h.nowMs += 30_000;
    const young = h.send();
    h.nowMs += 30_000;
    assert.deepEqual(h.machine.counts(h.nowMs).visible, 1);
    const expire = h.machine.planExpire(h.nowMs);
    assert.ok(expire);
    h.append(RecordType.Expire, expire.payload);
    assert.equal(h.machine.message(offset), undefined);
    assert.equal(h.machine.planExpire(h.nowMs), undefined);
    h.nowMs += 30_000;
    const received = h.receive();
    assert.deepEqual(received.offsets, []);
    assert.deepEqual(received.plan.expired, [young.offset]);
    assert.equal(h.machine.message(young.offset), undefined);
  });

  test('purge removes every earlier message, in flight and backlog too; a second purge within 60 s -> PurgeQueueInProgress', () => {
    const h = new Harness(standardConfig(), 2);
    for (let index = 0; index < 5; index++) h.send();
    h.receive(1);
    const purge = h.machine.planPurge(h.nowMs);
    assert.ok('payload' in purge);
    h.append(RecordType.Purge, purge.payload);
    assert.deepEqual(h.machine.counts(h.nowMs), { visible: 0, inflight: 0, delayed: 0, oldestMessageAgeSeconds: 0 });
    assert.equal(h.machine.loadFrom(h.nowMs), undefined);
    h.send();
    assert.equal(h.machine.counts(h.nowMs).visible, 1);
    h.nowMs += 59_999;
    const again = h.machine.planPurge(h.nowMs);
    assert.ok('error' in again && again.error === 'PurgeQueueInProgress');
    h.nowMs += 1;
    assert.ok('payload' in h.machine.planPurge(h.nowMs));
  });

  test('SetConfig replaces the config for later decisions', () => {
    const h = new Harness(standardConfig({ visibilityTimeoutSeconds: 30 }));
    const next = standardConfig({ visibilityTimeoutSeconds: 1 });
    const { becameVisible } = h.append(RecordType.SetConfig, h.machine.planSetConfig(next).payload);
    assert.equal(becameVisible, true);
    assert.deepEqual(h.machine.config, next);
    h.send();
    h.receive();
    h.nowMs += 1_000;
    assert.equal(h.receive().offsets.length, 1);
  });
});

describe('window, ACK level and compaction', () => {
  test('memory holds a bounded window; the backlog is counted and loaded on demand', () => {
    const h = new Harness(standardConfig(), 10);
    for (let index = 0; index < 1000; index++) h.send();
    const [stats] = h.machine.windowStats();
    assert.equal(stats!.windowMessages, 10);
    assert.equal(stats!.backlogMessages, 990);
    assert.equal(h.machine.counts(h.nowMs).visible, 1000);
    let received = 0;
    for (;;) {
      h.loadAll();
      const { receipts } = h.receive(10);
      if (receipts.length === 0) break;
      received += receipts.length;
      for (const receipt of receipts) assert.equal(h.delete(receipt), 'deleted');
      assert.ok(h.machine.windowStats()[0]!.windowMessages <= 10);
    }
    assert.equal(received, 1000);
    assert.equal(h.machine.ackLevel(), h.log.length);
  });

  test('FIFO: when every window message belongs to a blocked group, the window loads past its limit (up to the hard cap)', () => {
    const h = new Harness(fifoConfig(), 2);
    for (let index = 0; index < 6; index++) h.send({ groupId: 'a', deduplicationId: `a${index}` });
    h.send({ groupId: 'b', deduplicationId: 'b' });
    assert.deepEqual(h.ids(h.receive(1).offsets), ['m0']);
    assert.equal(h.receive(10).offsets.length, 0, 'window holds only blocked group a');
    assert.notEqual(h.machine.loadFrom(h.nowMs), undefined);
    h.loadAll();
    assert.deepEqual(h.ids(h.receive(10).offsets), ['m6']);
  });

  test('ACK level: the lowest offset still needed; a long in-flight message is relocated so it no longer pins the log, and its old receipt still works', () => {
    const h = new Harness(standardConfig({ visibilityTimeoutSeconds: 43_200 }));
    const pinned = h.send();
    const [receipt] = h.receive(1).receipts;
    for (let index = 0; index < 100; index++) {
      h.send();
      const got = h.receive(1, { visibilityTimeoutSeconds: 0 });
      for (const each of got.receipts) h.delete(each);
    }
    assert.equal(h.machine.ackLevel(), pinned.offset);
    assert.deepEqual(h.machine.planCompaction(h.log.length, { compactBehindRecords: 1_000 }), []);
    const offsets = h.machine.planCompaction(h.log.length, { compactBehindRecords: 50 });
    assert.deepEqual(offsets, [pinned.offset]);
    const relocated = h.append(RecordType.Relocate, encodeRelocate(pinned.offset, enqueuePayloadOf(h.log[pinned.offset]!))).offset;
    assert.equal(h.machine.ackLevel(), relocated);
    const view = h.machine.message(pinned.offset)!;
    assert.equal(view.offset, relocated);
    assert.equal(view.sequenceNumber, sequenceNumberOf(pinned.offset), 'the sequence number stays the original');
    assert.equal(view.receiveCount, 1);
    assert.equal(view.state, 'inflight');
    assert.equal(h.delete(receipt!), 'deleted');
    assert.equal(h.machine.ackLevel(), h.log.length);
  });

  test('replay from a snapshot applies records that name messages still in the backlog', () => {
    const h = new Harness(standardConfig(), 2);
    for (let index = 0; index < 6; index++) h.send();
    const checkpoint = h.machine.snapshot();
    const checkpointEnd = h.log.length;
    h.loadAll();
    const first = h.receive(10);
    for (const receipt of first.receipts) h.delete(receipt);
    h.loadAll();
    const second = h.receive(10);
    const replayed = QueueMachine.restore(checkpoint);
    for (const record of h.log.slice(checkpointEnd)) replayed.apply(record);
    assert.deepEqual(replayed.counts(h.nowMs), h.machine.counts(h.nowMs));
    for (const offset of second.offsets) assert.deepEqual(replayed.message(offset), h.machine.message(offset));
    // Loading later skips the messages replay took in ahead of the cursor.
    for (let from = replayed.loadFrom(); from !== undefined; from = replayed.loadFrom()) if (replayed.load(h.log.slice(from)) === 0) break;
    assert.deepEqual(replayed.counts(h.nowMs), h.machine.counts(h.nowMs));
  });

  test('becameVisible tells the broker when a waiting receiver may find a message', () => {
    const h = new Harness(fifoConfig());
    const payload = h.machine.planSend(h.payload({ groupId: 'g', deduplicationId: 'x' }));
    assert.ok(payload.kind === 'append');
    assert.equal(h.append(payload.type, payload.payload).becameVisible, true);
    const [receipt] = h.receive().receipts;
    const plan = h.machine.planDelete(receipt!, h.nowMs);
    assert.ok('payload' in plan);
    assert.equal(h.append(RecordType.Delete, plan.payload).becameVisible, true, 'a FIFO delete may unblock the group');
  });
});

describe('snapshot', () => {
  test('restore of a machine with many in-flight entries is compact and fast (figure logged)', () => {
    const entries = Number(process.env.QUEUE_SNAPSHOT_ENTRIES ?? 200_000);
    const h = new Harness(standardConfig({ inflightMessagesMax: 2_000_000 }), entries);
    for (let index = 0; index < entries; index++) h.send({ messageId: `00000000-0000-4000-8000-${String(index).padStart(12, '0')}` });
    for (let received = 0; received < entries; ) {
      const plan = h.machine.planReceive({ nowMs: h.nowMs, maxMessages: 10_000 });
      if (plan.payload === undefined) break;
      h.append(RecordType.Receive, plan.payload);
      received += plan.deliver.length;
    }
    assert.equal(h.machine.counts(h.nowMs).inflight, entries);
    const snapshotStart = performance.now();
    const bytes = h.machine.snapshot();
    const snapshotMs = performance.now() - snapshotStart;
    const restoreStart = performance.now();
    const restored = QueueMachine.restore(bytes);
    const restoreMs = performance.now() - restoreStart;
    assert.deepEqual(restored.counts(h.nowMs), h.machine.counts(h.nowMs));
    console.log(`snapshot of ${entries} in-flight entries: ${(bytes.length / 1e6).toFixed(1)} MB, ${(bytes.length / entries).toFixed(0)} B/entry, snapshot ${snapshotMs.toFixed(0)} ms, restore ${restoreMs.toFixed(0)} ms`);
  });
});
