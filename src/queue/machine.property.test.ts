// Model-based property tests: random operation sequences run against the QueueMachine (fed
// through a fake broker with a log, a loader and snapshots) and against the plain
// reference model in src/testing/queue-model.ts; every step is checked.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { LogRecord } from '../storage/types.js';
import { QueueModel, type ModelMessage } from '../testing/queue-model.js';
import { QueueMachine, type Receipt } from './machine.js';
import { RecordType, decodeOffsetList, encodeRelocate, enqueuePayloadOf, type EnqueuePayload } from './records.js';
import type { QueueConfig } from './types.js';

type Command =
  | { kind: 'send'; group: number | null; dedup: number | null; delaySeconds: number }
  | { kind: 'receive'; maxMessages: number; visibilityTimeoutSeconds: number | undefined }
  | { kind: 'delete'; pick: number; stale: boolean }
  | { kind: 'deleteBatch'; picks: Array<{ pick: number; stale: boolean }> }
  | { kind: 'changeVisibility'; pick: number; stale: boolean; timeoutSeconds: number }
  | { kind: 'bogusReceipt'; pick: number; shift: number }
  | { kind: 'purge' }
  | { kind: 'setConfig'; visibilityTimeoutSeconds: number; retentionSeconds: number; maxReceiveCount: number | null; delaySeconds: number }
  | { kind: 'tick'; ms: number }
  | { kind: 'expire' }
  | { kind: 'deadLetter' }
  | { kind: 'compact' }
  | { kind: 'load'; records: number }
  | { kind: 'snapshot' };

const commandArbitrary: fc.Arbitrary<Command> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('send' as const), group: fc.option(fc.nat(3)), dedup: fc.option(fc.nat(4)), delaySeconds: fc.constantFrom(0, 0, 0, 2, 10) }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('receive' as const), maxMessages: fc.integer({ min: 1, max: 10 }), visibilityTimeoutSeconds: fc.constantFrom(undefined, 0, 2, 5, 30) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('delete' as const), pick: fc.nat(), stale: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('deleteBatch' as const), picks: fc.array(fc.record({ pick: fc.nat(), stale: fc.boolean() }), { minLength: 1, maxLength: 5 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('changeVisibility' as const), pick: fc.nat(), stale: fc.boolean(), timeoutSeconds: fc.constantFrom(0, 1, 3, 10, 43_200, 50_000) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('bogusReceipt' as const), pick: fc.nat(), shift: fc.integer({ min: -3, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('purge' as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('setConfig' as const),
      visibilityTimeoutSeconds: fc.constantFrom(1, 3, 10),
      retentionSeconds: fc.constantFrom(20, 60, 600),
      maxReceiveCount: fc.option(fc.constantFrom(1, 2, 3)),
      delaySeconds: fc.constantFrom(0, 0, 1),
    }),
  },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.oneof(fc.integer({ min: 0, max: 4000 }), fc.constantFrom(61_000, 400_000)) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('expire' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('deadLetter' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('compact' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('load' as const), records: fc.integer({ min: 1, max: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('snapshot' as const) }) },
);

interface Setup {
  fifo: boolean;
  windowMessagesMax: number;
  inflightMessagesMax: number;
  deduplicationScope: 'queue' | 'messageGroup';
  maxReceiveCount: number | null;
  retentionSeconds: number;
  visibilityTimeoutSeconds: number;
}

function configOf(setup: Setup): QueueConfig {
  const config: QueueConfig = {
    fifo: setup.fifo,
    visibilityTimeoutSeconds: setup.visibilityTimeoutSeconds,
    delaySeconds: 0,
    messageRetentionPeriodSeconds: setup.retentionSeconds,
    maximumMessageSize: 262_144,
    receiveMessageWaitTimeSeconds: 0,
    contentBasedDeduplication: false,
    deduplicationScope: setup.deduplicationScope,
    fifoThroughputLimit: 'perQueue',
    inflightMessagesMax: setup.inflightMessagesMax,
    replicaCount: 1,
  };
  if (setup.maxReceiveCount !== null) {
    config.redrive = { deadLetterQueueName: 'dlq', deadLetterTargetArn: 'arn:aws:sqs:us-east-1:000000000000:dlq', maxReceiveCount: setup.maxReceiveCount };
  }
  return config;
}

const setupArbitrary = (windows: number[]): fc.Arbitrary<Setup> =>
  fc.record({
    fifo: fc.boolean(),
    windowMessagesMax: fc.constantFrom(...windows),
    inflightMessagesMax: fc.constantFrom(120_000, 120_000, 4),
    deduplicationScope: fc.constantFrom('queue' as const, 'messageGroup' as const),
    maxReceiveCount: fc.option(fc.constantFrom(1, 2, 3)),
    retentionSeconds: fc.constantFrom(30, 600),
    visibilityTimeoutSeconds: fc.constantFrom(2, 10, 30),
  });

const emptyHash = new Uint8Array(32);

/** How often each interesting path ran, so a run that exercises nothing is visible in the log. */
const coverage: Record<string, number> = {};
function count(name: string, by = 1): void {
  coverage[name] = (coverage[name] ?? 0) + by;
}

/** A fake broker: plan, append to an in-memory log, apply; a loader; snapshots. */
class Driver {
  readonly log: LogRecord[] = [];
  machine: QueueMachine;
  readonly model: QueueModel;
  nowMs = 1_700_000_000_000;
  receipts: Receipt[] = [];
  pendingDeadLetter: number[] = [];
  private messageCounter = 0;
  midSnapshot: { bytes: Uint8Array; endOffset: number } | undefined;
  readonly exactWindow: boolean;

  constructor(readonly setup: Setup) {
    this.machine = new QueueMachine(configOf(setup), { windowMessagesMax: setup.windowMessagesMax });
    this.model = new QueueModel(configOf(setup));
    this.exactWindow = setup.windowMessagesMax >= 1000;
  }

  append(type: RecordType, payload: Uint8Array): number {
    const record: LogRecord = { offset: this.log.length, type, epoch: 1, timestampMs: this.nowMs, payload, leafHash: emptyHash };
    this.log.push(record);
    this.machine.apply(record);
    return record.offset;
  }

  /** What the broker does before a receive: feed the window while it asks. */
  loadAll(): void {
    for (let from = this.machine.loadFrom(this.nowMs); from !== undefined; from = this.machine.loadFrom(this.nowMs)) {
      if (this.machine.load(this.log.slice(from), this.nowMs) === 0) break;
    }
  }

  private pickReceipt(pick: number, stale: boolean): Receipt | undefined {
    if (this.receipts.length === 0) return undefined;
    const receipt = this.receipts[pick % this.receipts.length]!;
    if (stale) return receipt;
    const view = this.machine.message(receipt.messageOffset);
    return view?.receipt !== undefined ? { messageOffset: receipt.messageOffset, receiveOffset: view.receipt.receiveOffset } : receipt;
  }

  run(command: Command): void {
    const { machine, model } = this;
    switch (command.kind) {
      case 'send': {
        const fifo = model.config.fifo;
        const messageId = `message-${this.messageCounter++}`;
        const groupId = fifo ? `g${command.group ?? 0}` : command.group === null ? undefined : `g${command.group}`;
        const deduplicationId = fifo ? (command.dedup === null ? `unique-${messageId}` : `d${command.dedup}`) : undefined;
        const delaySeconds = fifo ? model.config.delaySeconds : command.delaySeconds;
        const payload: EnqueuePayload = { messageId, body: `body of ${messageId}`, attributes: {}, systemAttributes: {}, senderId: 'sender', sentTimestampMs: this.nowMs, delaySeconds, replicaCount: 1 };
        if (groupId !== undefined) payload.groupId = groupId;
        if (deduplicationId !== undefined) payload.deduplicationId = deduplicationId;
        const plan = machine.planSend(payload);
        const expected = model.send({ messageId, groupId, deduplicationId, delaySeconds }, this.nowMs);
        if (expected.duplicateOf !== undefined) {
          assert.deepEqual(plan, { kind: 'duplicate', ...expected.duplicateOf });
        } else {
          assert.equal(plan.kind, 'append');
          if (plan.kind === 'append') this.append(plan.type, plan.payload);
        }
        count(expected.duplicateOf !== undefined ? 'send duplicate' : 'send');
        break;
      }
      case 'receive':
        this.receive(command.maxMessages, command.visibilityTimeoutSeconds);
        break;
      case 'delete':
      case 'bogusReceipt': {
        let receipt: Receipt | undefined;
        if (command.kind === 'delete') receipt = this.pickReceipt(command.pick, command.stale);
        else {
          const messages = model.messages;
          if (messages.length === 0) break;
          const message = messages[command.pick % messages.length]!;
          receipt = { messageOffset: message.sequenceOffset, receiveOffset: Math.max(0, message.sequenceOffset + command.shift) };
        }
        if (receipt === undefined) break;
        const expected = model.planDelete(receipt);
        const plan = machine.planDelete(receipt, this.nowMs);
        const actual = 'payload' in plan ? 'apply' : 'noop' in plan ? 'noop' : plan.error;
        assert.equal(actual, expected, `delete ${JSON.stringify(receipt)}`);
        count(`delete ${actual}`);
        if ('payload' in plan) {
          this.append(RecordType.Delete, plan.payload);
          model.delete(receipt);
        }
        break;
      }
      case 'deleteBatch': {
        // One Delete record for several receipts (a DeleteMessageBatch): every receipt is
        // planned against the state before the record, as the model plans them one by one
        // before applying any; a second receipt of the same message is a plain success.
        const receipts = command.picks.map((item) => this.pickReceipt(item.pick, item.stale)).filter((receipt): receipt is Receipt => receipt !== undefined);
        if (receipts.length === 0) break;
        const expected = receipts.map((receipt) => model.planDelete(receipt));
        const plan = machine.planDeleteBatch(receipts);
        plan.outcomes.forEach((outcome, index) => {
          const wanted = expected[index] === 'apply' || expected[index] === 'noop' ? null : expected[index];
          assert.equal(outcome === null ? null : outcome.error, wanted, `batch delete ${JSON.stringify(receipts[index])}`);
        });
        assert.equal(plan.payload !== undefined, expected.includes('apply'), 'a record exactly when some receipt deletes');
        count(`delete batch of ${receipts.length}`);
        if (plan.payload !== undefined) {
          this.append(RecordType.Delete, plan.payload);
          model.deleteBatch(receipts.filter((_, index) => expected[index] === 'apply'));
        }
        break;
      }
      case 'changeVisibility': {
        const receipt = this.pickReceipt(command.pick, command.stale);
        if (receipt === undefined) break;
        const expected = model.planChangeVisibility(receipt, command.timeoutSeconds, this.nowMs);
        const plan = machine.planChangeVisibility(receipt, command.timeoutSeconds, this.nowMs);
        const actual = 'payload' in plan ? 'apply' : plan.error;
        assert.equal(actual, expected, `change visibility ${JSON.stringify(receipt)} to ${command.timeoutSeconds}`);
        count(`change visibility ${actual}`);
        if ('payload' in plan) {
          this.append(RecordType.ChangeVisibility, plan.payload);
          model.changeVisibility(receipt, command.timeoutSeconds, this.nowMs);
        }
        break;
      }
      case 'purge': {
        const plan = machine.planPurge(this.nowMs);
        const expected = model.planPurge(this.nowMs);
        assert.equal('payload' in plan ? 'apply' : plan.error, expected);
        if ('payload' in plan) {
          this.append(RecordType.Purge, plan.payload);
          model.purge(this.nowMs);
          this.pendingDeadLetter = [];
        }
        break;
      }
      case 'setConfig': {
        const config: QueueConfig = {
          ...model.config,
          visibilityTimeoutSeconds: command.visibilityTimeoutSeconds,
          messageRetentionPeriodSeconds: command.retentionSeconds,
          delaySeconds: command.delaySeconds,
        };
        delete config.redrive;
        if (command.maxReceiveCount !== null) config.redrive = { deadLetterQueueName: 'dlq', deadLetterTargetArn: 'arn:aws:sqs:us-east-1:000000000000:dlq', maxReceiveCount: command.maxReceiveCount };
        this.append(RecordType.SetConfig, machine.planSetConfig(config).payload);
        model.setConfig(config);
        assert.deepEqual(machine.config, config);
        break;
      }
      case 'tick':
        this.nowMs += command.ms;
        break;
      case 'expire': {
        const plan = machine.planExpire(this.nowMs);
        const offsets = plan === undefined ? [] : decodeOffsets(plan.payload);
        for (const offset of offsets) {
          const message = model.find(offset);
          assert.ok(message !== undefined && model.expired(message, this.nowMs), `expire lists ${offset}, which is not an expired message`);
        }
        if (this.exactWindow) {
          assert.equal(offsets.length, model.present().filter((message) => model.expired(message, this.nowMs)).length, 'expire lists every expired message');
        }
        if (plan !== undefined) {
          this.append(RecordType.Expire, plan.payload);
          model.remove(offsets);
        }
        break;
      }
      case 'deadLetter': {
        if (this.pendingDeadLetter.length === 0) break;
        this.append(RecordType.DeadLettered, machine.planDeadLettered(this.pendingDeadLetter).payload);
        model.remove(this.pendingDeadLetter);
        this.pendingDeadLetter = [];
        break;
      }
      case 'compact': {
        const offsets = machine.planCompaction(this.log.length, { compactBehindRecords: 6, maxRelocations: 3 });
        for (const offset of offsets) {
          const record = this.log[offset]!;
          assert.ok(record.type === RecordType.Enqueue || record.type === RecordType.Relocate, 'compaction names a message record');
          this.append(RecordType.Relocate, encodeRelocate(offset, enqueuePayloadOf(record)));
          model.relocate(offset);
          count('relocate');
        }
        break;
      }
      case 'load': {
        const from = machine.loadFrom();
        if (from !== undefined) machine.load(this.log.slice(from, from + command.records));
        break;
      }
      case 'snapshot': {
        const bytes = machine.snapshot();
        const restored = QueueMachine.restore(bytes);
        assert.deepEqual(restored.snapshot(), bytes, 'snapshot -> restore -> snapshot is byte-identical');
        this.machine = restored;
        this.midSnapshot ??= { bytes, endOffset: restored.appliedEndOffset };
        break;
      }
    }
    this.check();
  }

  private receive(maxMessages: number, visibilityTimeoutSeconds: number | undefined): void {
    const { machine, model, nowMs } = this;
    this.loadAll();
    const exclude = new Set(this.pendingDeadLetter);
    const expected = model.deliverable(nowMs, exclude);
    const inflight = model.inflightCount(nowMs);
    const input: Parameters<QueueMachine['planReceive']>[0] = { nowMs, maxMessages, exclude };
    if (visibilityTimeoutSeconds !== undefined) input.visibilityTimeoutSeconds = visibilityTimeoutSeconds;
    const plan = machine.planReceive(input);
    const room = Math.min(maxMessages, model.config.inflightMessagesMax - inflight);
    if (!model.config.fifo && room <= 0) {
      assert.equal(plan.overLimit, true, 'standard queue at the in-flight limit answers OverLimit');
      assert.equal(plan.deliver.length, 0);
      return;
    }
    assert.equal(plan.overLimit, false);
    // Every delivered message is allowed; FIFO: per group, a prefix of the deliverable run, in order.
    const deliveredByGroup = new Map<string, ModelMessage[]>();
    for (const offset of plan.deliver) {
      const message = model.find(offset);
      assert.ok(message !== undefined, `delivered ${offset} is not a present message`);
      assert.equal(model.currentOffset(message), offset, 'delivers current offsets');
      const key = message.groupId ?? '';
      assert.ok(expected.byGroup.get(key)?.includes(message), `delivered ${offset} (${message.messageId}) is not deliverable now`);
      deliveredByGroup.set(key, [...(deliveredByGroup.get(key) ?? []), message]);
      assert.ok(message.visibleAtMs <= nowMs, 'never delivered before its visibility deadline');
    }
    assert.equal(new Set(plan.deliver).size, plan.deliver.length, 'no message twice in one receive');
    if (model.config.fifo) {
      for (const [groupId, delivered] of deliveredByGroup) {
        assert.deepEqual(delivered, expected.byGroup.get(groupId)!.slice(0, delivered.length), `FIFO group ${groupId} delivered in order from its head`);
      }
    }
    const wanted = Math.max(0, Math.min(room, expected.total));
    count('receive');
    count('delivered', plan.deliver.length);
    count('expired by receive', plan.expired.length);
    count('dead-letter candidates', plan.deadLetter.length);
    if (plan.deliver.length < wanted) count('receive fewer than allowed (small window)');
    if (this.exactWindow) {
      assert.equal(plan.deliver.length, wanted, 'delivers as many as allowed');
    } else {
      assert.ok(plan.deliver.length <= wanted);
      if (wanted > 0 && plan.deliver.length === 0 && this.pendingDeadLetter.length === 0) {
        const stats = machine.windowStats()[0]!;
        assert.ok(stats.unreceivedMessages >= stats.hardCapMessages, 'nothing delivered although deliverable messages exist and the window is below its hard cap');
      }
    }
    for (const offset of plan.expired) {
      const message = model.find(offset);
      assert.ok(message !== undefined && model.expired(message, nowMs), `receive expires ${offset}, which is not expired`);
    }
    for (const offset of plan.deadLetter) {
      const message = model.find(offset);
      assert.ok(message !== undefined && expected.deadLetter.has(message), `dead-letter candidate ${offset} not allowed`);
    }
    if (plan.payload === undefined) {
      assert.equal(plan.deliver.length + plan.expired.length, 0);
    } else {
      const receiveOffset = this.append(RecordType.Receive, plan.payload);
      model.receive(plan.deliver, plan.expired, (visibilityTimeoutSeconds ?? model.config.visibilityTimeoutSeconds) * 1000, nowMs);
      for (const offset of plan.deliver) {
        this.receipts.push({ messageOffset: offset, receiveOffset });
        const view = machine.message(offset, nowMs)!;
        const message = model.find(offset)!;
        assert.equal(view.receiveCount, message.receiveCount);
        assert.equal(view.messageId, message.messageId);
        assert.deepEqual(view.receipt, { messageOffset: offset, receiveOffset });
      }
    }
    this.pendingDeadLetter.push(...plan.deadLetter.filter((offset) => !this.pendingDeadLetter.includes(offset)));
  }

  check(): void {
    const { machine, model, nowMs } = this;
    assert.equal(model.logEndOffset, this.log.length, 'model and log agree on the end');
    assert.equal(machine.appliedEndOffset, this.log.length);
    assert.deepEqual(machine.counts(nowMs), model.counts(nowMs), 'counts');
    const expectedNext = model
      .present()
      .filter((message) => !model.expired(message, nowMs) && message.visibleAtMs > nowMs)
      .reduce((min, message) => Math.min(min, message.visibleAtMs), Infinity);
    assert.equal(machine.nextVisibleAtMs(nowMs), expectedNext === Infinity ? undefined : expectedNext, 'nextVisibleAtMs');
    const ackLevel = machine.ackLevel();
    for (const message of model.present()) {
      assert.ok(model.currentOffset(message) >= ackLevel, `ACK level ${ackLevel} passed live message at ${model.currentOffset(message)}`);
    }
    checkReceivedState(machine, model);
  }
}

/** The state of every received message (what the outside sees through receipts and attributes). */
function checkReceivedState(machine: QueueMachine, model: QueueModel): void {
  for (const message of model.present()) {
    if (message.receiveCount === 0) continue;
    const view = machine.message(model.currentOffset(message));
    assert.ok(view !== undefined, `received message ${message.messageId} unknown to the machine`);
    assert.equal(view.receiveCount, message.receiveCount);
    assert.equal(view.firstReceiveTimestampMs, message.firstReceiveTimestampMs);
    assert.equal(view.visibleAtMs, message.visibleAtMs);
    assert.equal(view.receipt?.receiveOffset, message.receiptOffset);
    assert.equal(view.sequenceOffset, message.sequenceOffset);
  }
}

function decodeOffsets(payload: Uint8Array): number[] {
  return decodeOffsetList(payload).offsets;
}

/** After the run: a fresh machine replaying the log, and one restored mid-run, agree with the model. */
function checkDeterminism(driver: Driver): void {
  const { log, model, nowMs, setup } = driver;
  const replayed = new QueueMachine(configOf(setup), { windowMessagesMax: setup.windowMessagesMax });
  for (const record of log) {
    replayed.apply(record);
    for (let from = replayed.loadFrom(); from !== undefined; from = replayed.loadFrom()) {
      if (replayed.load(log.slice(from, replayed.appliedEndOffset)) === 0) break;
    }
  }
  const machines = [replayed];
  if (driver.midSnapshot !== undefined) {
    // Replay from a checkpoint without ever loading: records name messages still in the backlog.
    const restored = QueueMachine.restore(driver.midSnapshot.bytes);
    for (const record of log.slice(driver.midSnapshot.endOffset)) restored.apply(record);
    machines.push(restored);
    count('replay from mid-run snapshot');
  }
  for (const machine of machines) {
    for (const atMs of [nowMs, nowMs + 1_000, nowMs + 100_000]) {
      assert.deepEqual(machine.counts(atMs), driver.machine.counts(atMs), 'replayed counts');
      assert.deepEqual(machine.counts(atMs), model.counts(atMs), 'replayed counts vs model');
    }
    assert.equal(machine.nextVisibleAtMs(nowMs), driver.machine.nextVisibleAtMs(nowMs));
    checkReceivedState(machine, model);
  }
}

function runProperty(windows: number[], numRuns: number): void {
  fc.assert(
    fc.property(setupArbitrary(windows), fc.array(commandArbitrary, { minLength: 40, maxLength: 160, size: 'max' }), (setup, commands) => {
      const driver = new Driver(setup);
      for (const command of commands) driver.run(command);
      checkDeterminism(driver);
    }),
    { numRuns, includeErrorInReport: true, seed: process.env.QUEUE_SEED ? Number(process.env.QUEUE_SEED) : undefined },
  );
  console.log(`coverage (windows ${windows.join(',')}): ${JSON.stringify(coverage)}`);
  for (const key of Object.keys(coverage)) delete coverage[key];
}

describe('queue machine against the reference model', () => {
  test('large window (everything in memory): exact agreement', () => {
    runProperty([20_000], 300);
  });

  test('tiny windows with a loader at random points: the window is invisible', () => {
    runProperty([1, 2, 3, 5], 400);
  });
});
