// The queue machine: one partition of a queue (its physical queue), a deterministic state
// machine applied from log records. No I/O, no clock: time comes with each record
// (timestampMs) or as a `nowMs` argument to the plans.
//
// The broker's loop for every state change:
//   plan = machine.planX(...)                 pure: what to append, or an expected error
//   offset = log.append({type, payload, timestampMs: nowMs, epoch})
//   machine.apply({...record, offset})        state changes now, in log order
//   await log.waitDurable(offset + 1)         only then is the result shown to a client
// The timestampMs appended must be the same nowMs given to the plan: deadlines are
// computed at apply time from the record's timestamp.
//
// The state after applying a log depends only on the records, never on when apply ran
// or on what the window held (the Receive record carries what replay needs).
//
// Inside a machine sit logical queues (logical-queue.ts); a plain queue has only id 0.
// A topic's partition has one per subscription instead: a Subscribe record creates one
// (or changes its settings), an Unsubscribe record ends it; ids are never reused, and a
// record naming an id that no longer exists is ignored (a dead-letter move may finish
// after its subscription was removed). An enqueue fans out to every logical queue whose
// filter policy (filter.ts) matches the message's attributes, decided at apply time.
// A new logical queue starts at the log's end: it never sees earlier messages.
// Each logical queue keeps its own visibility, receive counts, dead-letter settings and
// ACK level; FIFO-ness and deduplication are the partition's. The physical ACK level is
// the lowest over the logical queues (none left: nothing needs the log).
//
// Memory grows with the messages in the window (in flight, delayed, or waiting up to
// `windowMessagesMax`), not with the backlog. The broker keeps the window fed:
//   from = machine.loadFrom(nowMs)   // an offset, when the window is low and the backlog is not empty
//   machine.load(await log.read(from, n, bytes), nowMs)
// FIFO: when nothing in the window is deliverable (its groups are blocked or delayed),
// loadFrom asks for more even though the window is full, up to a hard cap of
// `windowMessagesMax * windowHardCapFactor` waiting messages; beyond that, a FIFO queue
// whose first messages all belong to blocked groups delivers nothing until those groups
// move (documented limit).

import { assert, unreachable } from '../core/assert.js';
import type { ErrorCode } from '../protocol/errors.js';
import type { LogRecord } from '../storage/types.js';
import { Reader, Writer } from './codec.js';
import { matchesFilterPolicy, parseFilterPolicy, type FilterPolicy } from './filter.js';
import { LogicalQueue, MessageEntry } from './logical-queue.js';
import {
  RecordType,
  decodeChangeVisibility,
  decodeDelete,
  decodeEnqueueAttributes,
  decodeEnqueueMetadata,
  decodeOffsetList,
  decodePurge,
  decodeReceive,
  decodeRelocate,
  decodeSetConfig,
  decodeSubscribe,
  decodeUnsubscribe,
  encodeChangeVisibility,
  encodeDelete,
  encodeDeleteList,
  encodeEnqueue,
  encodeOffsetList,
  encodePurge,
  encodeReceive,
  encodeSetConfig,
  encodeSubscribe,
  encodeUnsubscribe,
  type DeletePayload,
  type DeliveredMessageRecord,
  type EnqueueMetadata,
  type EnqueuePayload,
} from './records.js';
import { fifoDeduplicationWindowMs, purgeIntervalMs, type MessageAttributes, type QueueConfig, type QueueCounts } from './types.js';

export interface Receipt {
  /** The message's offset (its original enqueue offset or any offset it was relocated to). */
  messageOffset: number;
  /** Offset of the Receive record that delivered it. */
  receiveOffset: number;
}

export type PlanError = { error: ErrorCode; message: string };

export type SendPlan =
  | { kind: 'append'; type: RecordType; payload: Uint8Array }
  | { kind: 'duplicate'; messageId: string; offset: number }
  | ({ kind: 'error' } & PlanError);

export interface ReceivePlanInput {
  nowMs: number;
  maxMessages: number;
  visibilityTimeoutSeconds?: number;
  attemptId?: string;
  /** Offsets being dead-lettered by the broker right now: never planned again. */
  exclude?: ReadonlySet<number>;
  /** The logical queue (a topic's subscription); default 0, a plain queue's. */
  logicalQueueId?: number;
}

export interface ReceivePlan {
  /** A Receive record to append (type RecordType.Receive); undefined when nothing needs recording. */
  payload?: Uint8Array;
  /** Current offsets of the messages to deliver, in delivery order. */
  deliver: number[];
  /** Messages whose receive count reached maxReceiveCount: the broker copies them to the DLQ, then appends planDeadLettered. */
  deadLetter: number[];
  /** Messages past their retention period; the Receive record removes them. */
  expired: number[];
  /** Standard queues: the in-flight limit is reached (answer OverLimit). */
  overLimit: boolean;
  /** True when `deliver` repeats an earlier receive with the same attemptId (nothing to append). */
  repeated?: boolean;
}

export type MessageState = 'visible' | 'inflight' | 'delayed';

export interface MessageView {
  offset: number;
  sequenceOffset: number;
  messageId: string;
  groupId?: string;
  deduplicationId?: string;
  sentTimestampMs: number;
  visibleAtMs: number;
  receiveCount: number;
  firstReceiveTimestampMs: number;
  receipt?: Receipt;
  sequenceNumber: string;
  state: MessageState;
}

export interface WindowStats {
  logicalQueueId: number;
  windowMessages: number;
  unreceivedMessages: number;
  backlogMessages: number;
  readCursorOffset: number;
  /** Waiting messages allowed when nothing is deliverable. */
  hardCapMessages: number;
}

export interface QueueMachineOptions {
  /** Waiting (never received) messages kept in memory per logical queue; in-flight ones come on top. Default 20,000. */
  windowMessagesMax?: number;
}

export const windowMessagesMaxDefault = 20_000;
export const windowHardCapFactor = 10;
/** SQS: a visibility timeout may reach at most 12 hours past the receive. */
export const visibilityTimeoutSecondsMax = 43_200;
const attemptWindowMs = 5 * 60 * 1000;
const expireRecordOffsetsMax = 10_000;
/** Version 2 adds each logical queue's subscription settings; version 1 is still read. */
const snapshotVersion = 2;

interface DeduplicationEntry {
  messageId: string;
  offset: number;
  timestampMs: number;
}

export function sequenceNumberOf(offset: number): string {
  return String(offset).padStart(20, '0');
}

export class QueueMachine {
  private currentConfig: QueueConfig;
  private readonly windowMessagesMax: number;
  /** The live logical queues in ascending id order. */
  private readonly queues: LogicalQueue[] = [new LogicalQueue(0)];
  /** FIFO dedup key -> first send; pruned 5 minutes after the send (by record time), kept after delete. */
  private readonly deduplication = new Map<string, DeduplicationEntry>();
  private appliedEnd = 0;
  private lastAppliedTimestampMs = 0;

  constructor(config: QueueConfig, options: QueueMachineOptions = {}) {
    this.currentConfig = config;
    this.windowMessagesMax = options.windowMessagesMax ?? windowMessagesMaxDefault;
    assert(Number.isInteger(this.windowMessagesMax) && this.windowMessagesMax >= 1, 'windowMessagesMax must be a positive integer');
  }

  get config(): QueueConfig {
    return this.currentConfig;
  }

  /** 1 + offset of the last applied record. */
  get appliedEndOffset(): number {
    return this.appliedEnd;
  }

  /** The live logical queue with this id, or undefined (never created, or unsubscribed). */
  private logicalQueue(id: number): LogicalQueue | undefined {
    for (const queue of this.queues) if (queue.id === id) return queue;
    return undefined;
  }

  /** A logical queue's settings: a subscription's own, else the partition's. FIFO-ness is always the partition's. */
  private configOf(queue: LogicalQueue): QueueConfig {
    return queue.config ?? this.currentConfig;
  }

  private retentionMsOf(queue: LogicalQueue): number {
    return this.configOf(queue).messageRetentionPeriodSeconds * 1000;
  }

  /** Ids of the live logical queues, ascending. */
  logicalQueueIds(): number[] {
    return this.queues.map((queue) => queue.id);
  }

  /** A live logical queue's subscription settings (config undefined: the partition's), or undefined when it does not exist. */
  subscription(logicalQueueId: number): { config?: QueueConfig; filterPolicy?: string } | undefined {
    const queue = this.logicalQueue(logicalQueueId);
    if (queue === undefined) return undefined;
    const result: { config?: QueueConfig; filterPolicy?: string } = {};
    if (queue.config !== undefined) result.config = queue.config;
    if (queue.filterPolicy !== undefined) result.filterPolicy = queue.filterPolicy;
    return result;
  }

  private deduplicationKey(groupId: string | undefined, deduplicationId: string): string {
    return this.currentConfig.deduplicationScope === 'messageGroup' ? `${groupId ?? ''}\u0000${deduplicationId}` : deduplicationId;
  }

  // ---------------------------------------------------------------- plans

  planSend(p: EnqueuePayload): SendPlan {
    if (this.currentConfig.fifo) {
      if (p.groupId === undefined) return { kind: 'error', error: 'MissingParameter', message: 'The request must contain the parameter MessageGroupId.' };
      if (p.deduplicationId === undefined) {
        return { kind: 'error', error: 'InvalidParameterValue', message: 'The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly' };
      }
      const first = this.deduplication.get(this.deduplicationKey(p.groupId, p.deduplicationId));
      if (first !== undefined && p.sentTimestampMs < first.timestampMs + fifoDeduplicationWindowMs) {
        return { kind: 'duplicate', messageId: first.messageId, offset: first.offset };
      }
    }
    return { kind: 'append', type: RecordType.Enqueue, payload: encodeEnqueue(p) };
  }

  planReceive(input: ReceivePlanInput): ReceivePlan {
    const { nowMs } = input;
    assert(Number.isInteger(input.maxMessages) && input.maxMessages >= 1, 'maxMessages must be >= 1');
    const queue = this.logicalQueue(input.logicalQueueId ?? 0);
    if (queue === undefined) return { deliver: [], deadLetter: [], expired: [], overLimit: false };
    const config = this.configOf(queue);
    if (input.attemptId !== undefined) {
      const repeated = this.repeatAttempt(queue, input.attemptId, nowMs);
      if (repeated !== undefined) return { deliver: repeated, deadLetter: [], expired: [], overLimit: false, repeated: true };
    }
    const inflight = queue.inflightCount(nowMs);
    const roomByLimit = config.inflightMessagesMax - inflight;
    const fifo = this.currentConfig.fifo;
    if (!fifo && roomByLimit <= 0) return { deliver: [], deadLetter: [], expired: [], overLimit: true };
    const collected = queue.collect({
      nowMs,
      room: Math.min(input.maxMessages, roomByLimit),
      fifo,
      retentionMs: this.retentionMsOf(queue),
      maxReceiveCount: config.redrive?.maxReceiveCount,
      exclude: input.exclude,
    });
    const plan: ReceivePlan = { deliver: collected.deliver.map((entry) => entry.offset), deadLetter: collected.deadLetter, expired: collected.expired, overLimit: false };
    if (collected.deliver.length > 0 || collected.expired.length > 0) {
      const visibilityTimeoutSeconds = input.visibilityTimeoutSeconds ?? config.visibilityTimeoutSeconds;
      const delivered: DeliveredMessageRecord[] = collected.deliver.map((entry) => ({
        offset: entry.offset,
        messageId: entry.messageId,
        groupId: entry.groupId,
        deduplicationId: entry.deduplicationId,
        sentTimestampMs: entry.sentTimestampMs,
        sizeBytes: entry.sizeBytes,
      }));
      const payload = { logicalQueueId: queue.id, visibilityTimeoutMs: visibilityTimeoutSeconds * 1000, delivered, expired: collected.expired };
      plan.payload = encodeReceive(input.attemptId !== undefined && delivered.length > 0 ? { ...payload, attemptId: input.attemptId } : payload);
    }
    return plan;
  }

  // ReceiveRequestAttemptId: a retry within 5 minutes gets the same messages and receipts
  // while all of them are still in flight under that receipt; otherwise it is a new receive.
  private repeatAttempt(queue: LogicalQueue, attemptId: string, nowMs: number): number[] | undefined {
    const attempt = queue.attempts.get(attemptId);
    if (attempt === undefined || nowMs >= attempt.timestampMs + attemptWindowMs) return undefined;
    for (const offset of attempt.offsets) {
      const entry = queue.lookup(offset);
      if (entry === undefined || entry.receiptOffset !== attempt.receiveOffset || entry.visibleAtMs <= nowMs) return undefined;
    }
    return attempt.offsets.map((offset) => queue.lookup(offset)!.offset);
  }

  planDelete(receipt: Receipt, nowMs: number, logicalQueueId = 0): { payload: Uint8Array } | { noop: true } | PlanError {
    void nowMs;
    const queue = this.logicalQueue(logicalQueueId);
    if (queue === undefined) return noLogicalQueue(logicalQueueId);
    const target = this.deleteTarget(queue, receipt);
    if ('messageOffset' in target) return { payload: encodeDelete({ logicalQueueId: queue.id, ...target }) };
    return target;
  }

  /**
   * Plans deleting several messages by receipt as one Delete record: `outcomes[i]` is the
   * error for receipts[i], or null (deleted by the record, or nothing to do). `payload` is
   * undefined when nothing needs deleting; `noop` tells whether some receipt needed nothing.
   */
  planDeleteBatch(receipts: readonly Receipt[], logicalQueueId = 0): { outcomes: Array<PlanError | null>; payload: Uint8Array | undefined; deletedOffsets: number[]; noop: boolean } {
    const queue = this.logicalQueue(logicalQueueId);
    if (queue === undefined) return { outcomes: receipts.map(() => noLogicalQueue(logicalQueueId)), payload: undefined, deletedOffsets: [], noop: false };
    const outcomes: Array<PlanError | null> = [];
    const targets: DeletePayload['targets'] = [];
    let noop = false;
    for (const receipt of receipts) {
      const target = this.deleteTarget(queue, receipt);
      if ('messageOffset' in target) {
        targets.push(target);
        outcomes.push(null);
      } else if ('noop' in target) {
        noop = true;
        outcomes.push(null);
      } else {
        outcomes.push(target);
      }
    }
    const payload = targets.length === 0 ? undefined : encodeDeleteList({ logicalQueueId: queue.id, targets });
    return { outcomes, payload, deletedOffsets: targets.map((target) => target.messageOffset), noop };
  }

  private deleteTarget(queue: LogicalQueue, receipt: Receipt): { messageOffset: number; receiveOffset: number } | { noop: true } | PlanError {
    const entry = queue.lookup(receipt.messageOffset);
    if (entry === undefined) {
      if (!this.plausibleReceipt(queue, receipt)) return invalidReceipt();
      return { noop: true }; // deleted, expired, purged or dead-lettered already: idempotent success
    }
    if (entry.receiptOffset === -1 || receipt.receiveOffset > entry.receiptOffset) return invalidReceipt();
    if (receipt.receiveOffset < entry.receiptOffset) return { noop: true }; // stale receipt: SQS answers success and keeps the message
    return { messageOffset: entry.offset, receiveOffset: receipt.receiveOffset };
  }

  planChangeVisibility(receipt: Receipt, visibilityTimeoutSeconds: number, nowMs: number, logicalQueueId = 0): { payload: Uint8Array } | PlanError {
    if (!Number.isInteger(visibilityTimeoutSeconds) || visibilityTimeoutSeconds < 0 || visibilityTimeoutSeconds > visibilityTimeoutSecondsMax) {
      return { error: 'InvalidParameterValue', message: `Value ${visibilityTimeoutSeconds} for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200.` };
    }
    const queue = this.logicalQueue(logicalQueueId);
    if (queue === undefined) return noLogicalQueue(logicalQueueId);
    const entry = queue.lookup(receipt.messageOffset);
    if (entry === undefined) {
      if (!this.plausibleReceipt(queue, receipt)) return invalidReceipt();
      return notAvailableForChange();
    }
    if (entry.receiptOffset === -1 || receipt.receiveOffset > entry.receiptOffset) return invalidReceipt();
    if (receipt.receiveOffset < entry.receiptOffset) {
      return { error: 'InvalidParameterValue', message: 'Value for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired.' };
    }
    if (entry.sentTimestampMs + this.retentionMsOf(queue) <= nowMs) return notAvailableForChange();
    if (entry.visibleAtMs <= nowMs) return { error: 'MessageNotInflight', message: 'The message referred to is not in flight.' };
    if (nowMs + visibilityTimeoutSeconds * 1000 > entry.receivedAtMs + visibilityTimeoutSecondsMax * 1000) {
      return {
        error: 'InvalidParameterValue',
        message: `Value ${visibilityTimeoutSeconds} for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout for the message is beyond the limit [43200 seconds]`,
      };
    }
    return {
      payload: encodeChangeVisibility({ logicalQueueId: queue.id, messageOffset: entry.offset, receiveOffset: receipt.receiveOffset, visibilityTimeoutMs: visibilityTimeoutSeconds * 1000 }),
    };
  }

  // A receipt for a message that is no longer here is plausible when it names a receive
  // after the message and before the end of what was applied, and the message is not still
  // waiting in the backlog (a message there has never been received).
  private plausibleReceipt(queue: LogicalQueue, receipt: Receipt): boolean {
    return (
      Number.isSafeInteger(receipt.messageOffset) &&
      Number.isSafeInteger(receipt.receiveOffset) &&
      receipt.messageOffset >= 0 &&
      receipt.receiveOffset > receipt.messageOffset &&
      receipt.receiveOffset < this.appliedEnd &&
      !queue.inBacklog(receipt.messageOffset)
    );
  }

  planPurge(nowMs: number, logicalQueueId = 0): { payload: Uint8Array } | PlanError {
    const queue = this.logicalQueue(logicalQueueId);
    if (queue === undefined) return noLogicalQueue(logicalQueueId);
    const last = queue.lastPurgeTimestampMs;
    if (last !== undefined && nowMs < last + purgeIntervalMs) {
      return { error: 'PurgeQueueInProgress', message: 'Only one PurgeQueue operation on the queue is allowed every 60 seconds.' };
    }
    return { payload: encodePurge(queue.id) };
  }

  planSetConfig(config: QueueConfig): { payload: Uint8Array } {
    return { payload: encodeSetConfig(config) };
  }

  /** Applied after the dead-letter copies are durable; a logical queue removed meanwhile makes it a no-op. */
  planDeadLettered(offsets: number[], logicalQueueId = 0): { payload: Uint8Array } {
    return { payload: encodeOffsetList({ logicalQueueId, offsets }) };
  }

  /**
   * A Subscribe record: a new logical queue starting at the log's end, or new settings for
   * an existing one. `config` holds the subscription's own visibility, retention, redrive
   * and in-flight limit; an invalid filter policy is an InvalidParameterValue.
   */
  planSubscribe(logicalQueueId: number, config: QueueConfig, filterPolicy?: string): { payload: Uint8Array } | PlanError {
    assert(Number.isSafeInteger(logicalQueueId) && logicalQueueId >= 0, () => `logical queue id ${logicalQueueId} invalid`);
    if (filterPolicy !== undefined) {
      const parsed = parseFilterPolicy(filterPolicy);
      if ('error' in parsed) return { error: 'InvalidParameterValue', message: `Invalid filter policy: ${parsed.error}` };
    }
    return { payload: encodeSubscribe(filterPolicy === undefined ? { logicalQueueId, config } : { logicalQueueId, config, filterPolicy }) };
  }

  planUnsubscribe(logicalQueueId: number): { payload: Uint8Array } {
    return { payload: encodeUnsubscribe(logicalQueueId) };
  }

  /** An Expire record removing window messages past retention (at most 10,000 per record) of the first logical queue that has any, or undefined. */
  planExpire(nowMs: number): { payload: Uint8Array } | undefined {
    for (const queue of this.queues) {
      const retentionMs = this.retentionMsOf(queue);
      const offsets: number[] = [];
      for (const entry of queue.bySequence.values()) {
        if (entry.sentTimestampMs + retentionMs <= nowMs) {
          offsets.push(entry.offset);
          if (offsets.length >= expireRecordOffsetsMax) break;
        }
      }
      if (offsets.length > 0) return { payload: encodeOffsetList({ logicalQueueId: queue.id, offsets }) };
    }
    return undefined;
  }

  /**
   * Old live messages worth relocating to the tail so the ACK level can move up: when the
   * ACK level is more than `compactBehindRecords` (default 1,000,000) behind `tailOffset`,
   * the window messages below min(tail - compactBehindRecords / 2, read cursor), lowest
   * first, at most `maxRelocations` (default 1,000). The broker reads each one's record,
   * appends encodeRelocate(offset, enqueuePayloadOf(record)) as RecordType.Relocate and
   * applies it.
   */
  planCompaction(tailOffset: number, options: { compactBehindRecords?: number; maxRelocations?: number } = {}): number[] {
    const compactBehindRecords = options.compactBehindRecords ?? 1_000_000;
    const maxRelocations = options.maxRelocations ?? 1_000;
    if (tailOffset - this.ackLevel() <= compactBehindRecords) return [];
    const offsets: number[] = [];
    for (const queue of this.queues) {
      const below = Math.min(tailOffset - Math.floor(compactBehindRecords / 2), queue.readCursorOffset);
      for (const entry of queue.bySequence.values()) if (entry.offset < below) offsets.push(entry.offset);
    }
    offsets.sort((a, b) => a - b);
    return [...new Set(offsets)].slice(0, maxRelocations);
  }

  // ---------------------------------------------------------------- apply

  /** Applies one record in log order. `becameVisible`: a receiver waiting now may find a message. */
  apply(record: LogRecord): { becameVisible: boolean } {
    assert(record.offset >= this.appliedEnd, () => `record ${record.offset} applied out of order (applied up to ${this.appliedEnd})`);
    const timestampMs = record.timestampMs;
    let becameVisible = false;
    const type = record.type as RecordType;
    switch (type) {
      case RecordType.Enqueue: {
        const metadata = decodeEnqueueMetadata(record.payload);
        this.rememberDeduplication(metadata, record.offset, timestampMs);
        let attributes: MessageAttributes | undefined;
        for (const queue of this.queues) {
          if (queue.filter !== undefined) {
            attributes ??= decodeEnqueueAttributes(record.payload);
            if (!matchesFilterPolicy(queue.filter, attributes)) continue;
          }
          if (queue.backlogCount === 0 && queue.unreceivedCount < this.windowMessagesMax) {
            queue.insert(this.newEntry(record.offset, metadata));
            queue.readCursorOffset = record.offset + 1;
          } else {
            queue.addToBacklog(record.offset, metadata);
          }
        }
        becameVisible = metadata.delaySeconds === 0;
        break;
      }
      case RecordType.Receive: {
        const payload = decodeReceive(record.payload);
        const queue = this.logicalQueue(payload.logicalQueueId);
        if (queue === undefined) break;
        for (const offset of payload.expired) queue.removeOffset(offset);
        const visibleAtMs = timestampMs + payload.visibilityTimeoutMs;
        let lastGroupKey: string | undefined;
        const offsets: number[] = [];
        for (const delivered of payload.delivered) {
          let entry = queue.lookup(delivered.offset);
          if (entry === undefined) {
            // Replay: live had loaded this message into its window; here it is still in the backlog.
            queue.takeFromBacklog(delivered.offset);
            entry = new MessageEntry(delivered.offset, delivered.messageId, delivered.groupId, delivered.deduplicationId, delivered.sentTimestampMs, delivered.sizeBytes);
            queue.insert(entry);
          }
          queue.receive(entry, record.offset, timestampMs, visibleAtMs);
          lastGroupKey = LogicalQueue.groupKey(entry.groupId);
          offsets.push(entry.offset);
        }
        if (lastGroupKey !== undefined) queue.lastServedGroupKey = lastGroupKey;
        if (payload.attemptId !== undefined) {
          pruneByTime(queue.attempts, timestampMs - attemptWindowMs);
          queue.attempts.set(payload.attemptId, { timestampMs, receiveOffset: record.offset, offsets });
        }
        becameVisible = payload.visibilityTimeoutMs === 0 && offsets.length > 0;
        break;
      }
      case RecordType.ChangeVisibility: {
        const payload = decodeChangeVisibility(record.payload);
        const queue = this.logicalQueue(payload.logicalQueueId);
        const entry = queue?.lookup(payload.messageOffset);
        if (entry !== undefined && entry.receiptOffset === payload.receiveOffset) {
          queue!.changeVisibility(entry, timestampMs + payload.visibilityTimeoutMs);
          becameVisible = payload.visibilityTimeoutMs === 0;
        }
        break;
      }
      case RecordType.Delete: {
        const payload = decodeDelete(record.payload);
        const queue = this.logicalQueue(payload.logicalQueueId);
        if (queue === undefined) break;
        for (const target of payload.targets) {
          const entry = queue.lookup(target.messageOffset);
          // A second receipt of the same message in one batch finds it gone: nothing to do.
          if (entry !== undefined && entry.receiptOffset === target.receiveOffset) {
            queue.remove(entry);
            becameVisible = this.currentConfig.fifo; // the group may be unblocked
          }
        }
        break;
      }
      case RecordType.Purge: {
        const payload = decodePurge(record.payload);
        this.logicalQueue(payload.logicalQueueId)?.purge(record.offset, timestampMs);
        break;
      }
      case RecordType.SetConfig: {
        this.currentConfig = decodeSetConfig(record.payload);
        becameVisible = true;
        break;
      }
      case RecordType.DeadLettered:
      case RecordType.Expire: {
        const payload = decodeOffsetList(record.payload);
        const queue = this.logicalQueue(payload.logicalQueueId);
        if (queue === undefined) break;
        for (const offset of payload.offsets) queue.removeOffset(offset);
        becameVisible = this.currentConfig.fifo && payload.offsets.length > 0;
        break;
      }
      case RecordType.Relocate: {
        const { originalOffset, enqueuePayload } = decodeRelocate(record.payload);
        let attributes: MessageAttributes | undefined;
        const joined = (queue: LogicalQueue): boolean => {
          // The cursor has not passed it, but a message the filter refused was never in this backlog.
          const filter = queue.filterAt(originalOffset);
          if (filter === undefined) return true;
          attributes ??= decodeEnqueueAttributes(enqueuePayload);
          return matchesFilterPolicy(filter, attributes);
        };
        for (const queue of this.queues) {
          let entry = queue.lookup(originalOffset);
          if (entry === undefined && queue.inBacklog(originalOffset) && joined(queue)) {
            queue.takeFromBacklog(originalOffset);
            entry = this.newEntry(originalOffset, decodeEnqueueMetadata(enqueuePayload));
            queue.insert(entry);
          }
          // Otherwise the message left this logical queue after compaction was planned, or it
          // never was in it (filtered out, subscribed later): nothing to move.
          if (entry !== undefined) queue.relocate(entry, record.offset);
          // Every logical queue must know this record holds no backlog message, or a later
          // relocation of the same message (naming this offset) would look for it in its backlog.
          else if (queue.backlogCount > 0 && record.offset >= queue.readCursorOffset) queue.relocationsAhead.add(record.offset);
        }
        break;
      }
      case RecordType.Subscribe: {
        const payload = decodeSubscribe(record.payload);
        let queue = this.logicalQueue(payload.logicalQueueId);
        if (queue === undefined) {
          queue = new LogicalQueue(payload.logicalQueueId);
          queue.readCursorOffset = record.offset + 1;
          this.queues.push(queue);
          this.queues.sort((a, b) => a.id - b.id);
        }
        if (queue.filterPolicy !== payload.filterPolicy && queue.backlogCount > 0) {
          queue.filterHistory.push({ untilOffset: record.offset, filterPolicy: queue.filterPolicy, filter: queue.filter });
        }
        setSubscription(queue, payload.config, payload.filterPolicy);
        becameVisible = true;
        break;
      }
      case RecordType.Unsubscribe: {
        const { logicalQueueId } = decodeUnsubscribe(record.payload);
        const index = this.queues.findIndex((queue) => queue.id === logicalQueueId);
        if (index >= 0) this.queues.splice(index, 1);
        break;
      }
      default:
        unreachable(type, 'unknown queue record type');
    }
    this.appliedEnd = record.offset + 1;
    this.lastAppliedTimestampMs = timestampMs;
    for (const queue of this.queues) queue.settleCursor(this.appliedEnd);
    return { becameVisible };
  }

  private newEntry(offset: number, metadata: EnqueueMetadata): MessageEntry {
    const entry = new MessageEntry(offset, metadata.messageId, metadata.groupId, metadata.deduplicationId, metadata.sentTimestampMs, metadata.sizeBytes);
    entry.visibleAtMs = metadata.sentTimestampMs + metadata.delaySeconds * 1000;
    return entry;
  }

  private rememberDeduplication(metadata: EnqueueMetadata, offset: number, timestampMs: number): void {
    if (!this.currentConfig.fifo || metadata.deduplicationId === undefined) return;
    pruneByTime(this.deduplication, timestampMs - fifoDeduplicationWindowMs);
    const key = this.deduplicationKey(metadata.groupId, metadata.deduplicationId);
    const existing = this.deduplication.get(key);
    if (existing !== undefined && metadata.sentTimestampMs < existing.timestampMs + fifoDeduplicationWindowMs) return;
    this.deduplication.delete(key); // re-insert so Map order stays roughly time order for pruning
    this.deduplication.set(key, { messageId: metadata.messageId, offset, timestampMs: metadata.sentTimestampMs });
  }

  // ---------------------------------------------------------------- window loading

  private hardCapMessages(): number {
    return this.windowMessagesMax * windowHardCapFactor;
  }

  private hasDeliverable(queue: LogicalQueue, nowMs: number): boolean {
    const collected = queue.collect({
      nowMs,
      room: 1,
      fifo: this.currentConfig.fifo,
      retentionMs: this.retentionMsOf(queue),
      maxReceiveCount: this.configOf(queue).redrive?.maxReceiveCount,
      exclude: undefined,
    });
    return collected.deliver.length > 0;
  }

  private wantsLoad(queue: LogicalQueue, nowMs: number | undefined): boolean {
    if (queue.backlogCount === 0) return false;
    const lowWater = Math.max(1, Math.floor(this.windowMessagesMax / 2));
    if (queue.unreceivedCount < lowWater) return true;
    return nowMs !== undefined && queue.unreceivedCount < this.hardCapMessages() && !this.hasDeliverable(queue, nowMs);
  }

  /**
   * The offset to read from when a logical queue's window is below its low-water mark
   * (half of windowMessagesMax) and its backlog is not empty, or (given `nowMs`) when
   * nothing in the window is deliverable and the hard cap is not reached; else undefined.
   */
  loadFrom(nowMs?: number): number | undefined {
    let from: number | undefined;
    for (const queue of this.queues) {
      if (this.wantsLoad(queue, nowMs) && (from === undefined || queue.readCursorOffset < from)) from = queue.readCursorOffset;
    }
    return from;
  }

  /**
   * Takes the enqueue records at or after each logical queue's cursor into its window, in
   * order, while there is room (windowMessagesMax waiting messages; up to the hard cap when,
   * given `nowMs`, nothing is deliverable), and moves the cursor past what it took. Records
   * must be consecutive log records as read from the log, already applied; other record
   * types are skipped (they were applied). Returns the number of messages loaded.
   */
  load(records: readonly LogRecord[], nowMs?: number): number {
    let loaded = 0;
    for (const queue of this.queues) {
      if (queue.backlogCount === 0) continue;
      // Another logical queue asked for a later stretch (this one's window is full), or this
      // one asked but was purged meanwhile: it can only take records from its own cursor on.
      if (records.length > 0 && records[0]!.offset > queue.readCursorOffset) continue;
      // Past windowMessagesMax only while nothing is deliverable (re-checked every quarter window).
      let limit = this.windowMessagesMax;
      const recheckEvery = Math.max(1, Math.floor(this.windowMessagesMax / 4));
      const overLimit = (): boolean => {
        if (queue.unreceivedCount < limit) return false;
        if (nowMs === undefined || limit >= this.hardCapMessages() || this.hasDeliverable(queue, nowMs)) return true;
        limit = Math.min(this.hardCapMessages(), queue.unreceivedCount + recheckEvery);
        return false;
      };
      for (const record of records) {
        if (record.offset < queue.readCursorOffset) continue;
        if (record.offset >= this.appliedEnd) break;
        assert(record.offset === queue.readCursorOffset, () => `load needs consecutive records: expected ${queue.readCursorOffset}, got ${record.offset}`);
        queue.relocationsAhead.delete(record.offset);
        if (record.type === RecordType.Enqueue) {
          if (queue.aheadSequences.has(record.offset)) {
            queue.aheadSequences.delete(record.offset);
          } else if (queue.filterAt(record.offset) !== undefined && !matchesFilterPolicy(queue.filterAt(record.offset)!, decodeEnqueueAttributes(record.payload))) {
            // Refused by the filter at apply time: never in this backlog.
          } else {
            if (overLimit()) break;
            queue.backlog.remove(record.offset);
            queue.backlogCount--;
            queue.insert(this.newEntry(record.offset, decodeEnqueueMetadata(record.payload)));
            loaded++;
          }
        }
        queue.readCursorOffset = record.offset + 1;
        if (queue.backlogCount === 0) {
          queue.settleCursor(this.appliedEnd);
          break;
        }
      }
    }
    return loaded;
  }

  windowStats(): WindowStats[] {
    return this.queues.map((queue) => ({
      logicalQueueId: queue.id,
      windowMessages: queue.windowSize,
      unreceivedMessages: queue.unreceivedCount,
      backlogMessages: queue.backlogCount,
      readCursorOffset: queue.readCursorOffset,
      hardCapMessages: this.hardCapMessages(),
    }));
  }

  // ---------------------------------------------------------------- queries

  /**
   * The window entry of a message, for the receive hot path (`message` builds a view
   * object). Read-only, and only until the next record is applied: copy what you need.
   */
  entry(offset: number, logicalQueueId = 0): Readonly<Pick<MessageEntry, 'offset' | 'sequenceOffset' | 'receiptOffset' | 'receiveCount' | 'firstReceiveTimestampMs' | 'groupId'>> | undefined {
    return this.logicalQueue(logicalQueueId)?.lookup(offset);
  }

  /**
   * Whether no logical queue took a message just applied into its window: each has a
   * backlog, and the message is in it (or that queue's filter refused it). It is read from
   * the log when its turn comes, so keeping its payload in memory until then is of no use.
   * Cheap while no queue has a backlog.
   */
  backloggedEverywhere(offset: number): boolean {
    // A queue with a backlog takes new messages into it and leaves its read cursor behind
    // them; one that took this message into its window moved its cursor past it.
    for (const queue of this.queues) if (queue.backlogCount === 0 || offset < queue.readCursorOffset) return false;
    return this.queues.length > 0;
  }

  message(offset: number, nowMs: number = this.lastAppliedTimestampMs, logicalQueueId = 0): MessageView | undefined {
    const entry = this.logicalQueue(logicalQueueId)?.lookup(offset);
    if (entry === undefined) return undefined;
    const view: MessageView = {
      offset: entry.offset,
      sequenceOffset: entry.sequenceOffset,
      messageId: entry.messageId,
      sentTimestampMs: entry.sentTimestampMs,
      visibleAtMs: entry.visibleAtMs,
      receiveCount: entry.receiveCount,
      firstReceiveTimestampMs: entry.firstReceiveTimestampMs,
      sequenceNumber: sequenceNumberOf(entry.sequenceOffset),
      state: entry.visibleAtMs <= nowMs ? 'visible' : entry.receiveCount > 0 ? 'inflight' : 'delayed',
    };
    if (entry.groupId !== undefined) view.groupId = entry.groupId;
    if (entry.deduplicationId !== undefined) view.deduplicationId = entry.deduplicationId;
    if (entry.receiptOffset >= 0) view.receipt = { messageOffset: entry.offset, receiveOffset: entry.receiptOffset };
    return view;
  }

  /** Messages past retention count as gone. FIFO messages behind an in-flight one of their group count as visible (like SQS). */
  counts(nowMs: number, logicalQueueId = 0): QueueCounts {
    const queue = this.logicalQueue(logicalQueueId);
    if (queue === undefined) return { visible: 0, inflight: 0, delayed: 0, oldestMessageAgeSeconds: 0 };
    const retentionMs = this.retentionMsOf(queue);
    let visible = 0;
    let inflight = 0;
    let delayed = 0;
    let oldestSentMs = Infinity;
    for (const entry of queue.bySequence.values()) {
      if (entry.sentTimestampMs + retentionMs <= nowMs) continue;
      if (entry.sentTimestampMs < oldestSentMs) oldestSentMs = entry.sentTimestampMs;
      if (entry.visibleAtMs <= nowMs) visible++;
      else if (entry.receiveCount > 0) inflight++;
      else delayed++;
    }
    const backlog = queue.backlog.tally(nowMs, retentionMs);
    visible += backlog.visible;
    delayed += backlog.delayed;
    oldestSentMs = Math.min(oldestSentMs, backlog.oldestSentTimestampMs);
    const oldestMessageAgeSeconds = oldestSentMs === Infinity ? 0 : Math.max(0, Math.floor((nowMs - oldestSentMs) / 1000));
    return { visible, inflight, delayed, oldestMessageAgeSeconds };
  }

  /** The earliest time after `nowMs` at which a delayed or in-flight message becomes visible (for long-poll timers). */
  nextVisibleAtMs(nowMs: number): number | undefined {
    let next = Infinity;
    for (const queue of this.queues) {
      const retentionMs = this.retentionMsOf(queue);
      // The window's part comes from heaps: a scan here ran once per waiting receiver and
      // cost O(messages in flight) each time.
      next = Math.min(next, queue.backlog.tally(nowMs, retentionMs).nextVisibleAtMs, queue.windowNextVisibleAtMs(nowMs, retentionMs));
    }
    return next === Infinity ? undefined : next;
  }

  /** The physical ACK level: the lowest offset any logical queue still needs (Infinity when there is none). */
  ackLevel(): number {
    let level = Infinity;
    for (const queue of this.queues) {
      level = Math.min(level, queue.readCursorOffset);
      for (const entry of queue.bySequence.values()) if (entry.offset < level) level = entry.offset;
    }
    return level;
  }

  /** Current offsets of visible window messages (oldest first), state unchanged. */
  peek(nowMs: number, maxMessages: number, logicalQueueId = 0): number[] {
    const queue = this.logicalQueue(logicalQueueId);
    if (queue === undefined) return [];
    const retentionMs = this.retentionMsOf(queue);
    const offsets: number[] = [];
    const entries = [...queue.bySequence.values()].sort((a, b) => a.sequenceOffset - b.sequenceOffset);
    for (const entry of entries) {
      if (offsets.length >= maxMessages) break;
      if (entry.visibleAtMs <= nowMs && entry.sentTimestampMs + retentionMs > nowMs) offsets.push(entry.offset);
    }
    return offsets;
  }

  // ---------------------------------------------------------------- snapshot

  /** Everything needed to continue after the last applied record, compact binary. */
  snapshot(): Uint8Array {
    const writer = new Writer(1024 + this.queues.reduce((sum, queue) => sum + queue.windowSize, 0) * 96);
    writer.u8(snapshotVersion);
    writer.string(JSON.stringify(this.currentConfig));
    writer.varint(this.windowMessagesMax);
    writer.varint(this.appliedEnd);
    writer.f64(this.lastAppliedTimestampMs);
    writer.varint(this.deduplication.size);
    for (const [key, entry] of this.deduplication) writer.string(key).string(entry.messageId).varint(entry.offset).f64(entry.timestampMs);
    writer.varint(this.queues.length);
    for (const queue of this.queues) {
      writer.varint(queue.id);
      writer.optionalString(queue.config === undefined ? undefined : JSON.stringify(queue.config)).optionalString(queue.filterPolicy);
      writer.varint(queue.filterHistory.length);
      for (const past of queue.filterHistory) writer.varint(past.untilOffset).optionalString(past.filterPolicy);
      writer.varint(queue.readCursorOffset).varint(queue.backlogCount);
      writer.f64(queue.lastPurgeTimestampMs ?? Number.NaN);
      writer.optionalString(queue.lastServedGroupKey);
      queue.backlog.write(writer);
      writer.varint(queue.aheadSequences.size);
      for (const offset of queue.aheadSequences) writer.varint(offset);
      writer.varint(queue.relocationsAhead.size);
      for (const offset of queue.relocationsAhead) writer.varint(offset);
      writer.varint(queue.attempts.size);
      for (const [attemptId, attempt] of queue.attempts) {
        writer.string(attemptId).f64(attempt.timestampMs).varint(attempt.receiveOffset).varint(attempt.offsets.length);
        for (const offset of attempt.offsets) writer.varint(offset);
      }
      const entries = [...queue.bySequence.values()].sort((a, b) => a.sequenceOffset - b.sequenceOffset);
      writer.varint(entries.length);
      for (const entry of entries) {
        writer.varint(entry.sequenceOffset).varint(entry.offset - entry.sequenceOffset);
        writer.string(entry.messageId).optionalString(entry.groupId).optionalString(entry.deduplicationId);
        writer.f64(entry.sentTimestampMs).f64(entry.visibleAtMs).varint(entry.receiveCount);
        writer.f64(entry.firstReceiveTimestampMs).varint(entry.receiptOffset + 1).f64(entry.receivedAtMs).varint(entry.sizeBytes);
        const aliases = entry.aliasOffsets ?? [];
        writer.varint(aliases.length);
        for (const alias of aliases) writer.varint(alias);
      }
    }
    return writer.finish();
  }

  static restore(bytes: Uint8Array): QueueMachine {
    const reader = new Reader(bytes);
    const version = reader.u8();
    assert(version === 1 || version === snapshotVersion, () => `unknown queue snapshot version ${version}`);
    const config = JSON.parse(reader.string()) as QueueConfig;
    const machine = new QueueMachine(config, { windowMessagesMax: reader.varint() });
    machine.appliedEnd = reader.varint();
    machine.lastAppliedTimestampMs = reader.f64();
    const deduplicationCount = reader.varint();
    for (let index = 0; index < deduplicationCount; index++) {
      const key = reader.string();
      machine.deduplication.set(key, { messageId: reader.string(), offset: reader.varint(), timestampMs: reader.f64() });
    }
    const queueCount = reader.varint();
    machine.queues.length = 0;
    for (let queueIndex = 0; queueIndex < queueCount; queueIndex++) {
      const queue = new LogicalQueue(reader.varint());
      if (version === 1) assert(queue.id === queueIndex, 'logical queue ids must be dense');
      else assert(queueIndex === 0 || queue.id > machine.queues[queueIndex - 1]!.id, 'logical queue ids must ascend');
      machine.queues.push(queue);
      if (version >= 2) {
        const configText = reader.optionalString();
        setSubscription(queue, configText === undefined ? undefined : (JSON.parse(configText) as QueueConfig), reader.optionalString());
        const historyCount = reader.varint();
        for (let index = 0; index < historyCount; index++) {
          const untilOffset = reader.varint();
          const filterPolicy = reader.optionalString();
          queue.filterHistory.push({ untilOffset, filterPolicy, filter: filterPolicy === undefined ? undefined : parsedFilter(filterPolicy) });
        }
      }
      queue.readCursorOffset = reader.varint();
      queue.backlogCount = reader.varint();
      const lastPurge = reader.f64();
      if (!Number.isNaN(lastPurge)) queue.lastPurgeTimestampMs = lastPurge;
      const lastServed = reader.optionalString();
      if (lastServed !== undefined) queue.lastServedGroupKey = lastServed;
      queue.backlog.read(reader);
      const aheadCount = reader.varint();
      for (let index = 0; index < aheadCount; index++) queue.aheadSequences.add(reader.varint());
      const relocationsAheadCount = reader.varint();
      for (let index = 0; index < relocationsAheadCount; index++) queue.relocationsAhead.add(reader.varint());
      const attemptCount = reader.varint();
      for (let index = 0; index < attemptCount; index++) {
        const attemptId = reader.string();
        const timestampMs = reader.f64();
        const receiveOffset = reader.varint();
        const offsetCount = reader.varint();
        const offsets: number[] = [];
        for (let offsetIndex = 0; offsetIndex < offsetCount; offsetIndex++) offsets.push(reader.varint());
        queue.attempts.set(attemptId, { timestampMs, receiveOffset, offsets });
      }
      const entryCount = reader.varint();
      for (let index = 0; index < entryCount; index++) {
        const sequenceOffset = reader.varint();
        const offset = sequenceOffset + reader.varint();
        const messageId = reader.string();
        const groupId = reader.optionalString();
        const deduplicationId = reader.optionalString();
        const sentTimestampMs = reader.f64();
        const visibleAtMs = reader.f64();
        const receiveCount = reader.varint();
        const firstReceiveTimestampMs = reader.f64();
        const receiptOffset = reader.varint() - 1;
        const receivedAtMs = reader.f64();
        const sizeBytes = reader.varint();
        const entry = new MessageEntry(sequenceOffset, messageId, groupId, deduplicationId, sentTimestampMs, sizeBytes);
        entry.offset = offset;
        entry.visibleAtMs = visibleAtMs;
        entry.receiveCount = receiveCount;
        entry.firstReceiveTimestampMs = firstReceiveTimestampMs;
        entry.receiptOffset = receiptOffset;
        entry.receivedAtMs = receivedAtMs;
        const aliasCount = reader.varint();
        if (aliasCount > 0) {
          entry.aliasOffsets = [];
          for (let aliasIndex = 0; aliasIndex < aliasCount; aliasIndex++) {
            const alias = reader.varint();
            entry.aliasOffsets.push(alias);
            queue.aliases.set(alias, sequenceOffset);
          }
        }
        queue.insert(entry);
      }
    }
    assert(reader.done, 'trailing bytes in queue snapshot');
    return machine;
  }
}

function setSubscription(queue: LogicalQueue, config: QueueConfig | undefined, filterPolicy: string | undefined): void {
  queue.config = config;
  queue.filterPolicy = filterPolicy;
  queue.filter = filterPolicy === undefined ? undefined : parsedFilter(filterPolicy);
}

function parsedFilter(filterPolicy: string): FilterPolicy {
  const parsed = parseFilterPolicy(filterPolicy);
  // planSubscribe validated it; a record that still does not parse is a bug.
  assert('policy' in parsed, () => `stored filter policy invalid: ${'error' in parsed ? parsed.error : ''}`);
  return parsed.policy;
}

function noLogicalQueue(logicalQueueId: number): PlanError {
  return { error: 'QueueDoesNotExist', message: `The subscription (logical queue ${logicalQueueId}) does not exist any more.` };
}

function invalidReceipt(): PlanError {
  return { error: 'ReceiptHandleIsInvalid', message: 'The input receipt handle is invalid.' };
}

function notAvailableForChange(): PlanError {
  return { error: 'InvalidParameterValue', message: 'Value for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change.' };
}

function pruneByTime<T extends { timestampMs: number }>(map: Map<string, T>, olderThanMs: number): void {
  for (const [key, value] of map) {
    if (value.timestampMs > olderThanMs) break;
    map.delete(key);
  }
}
