// The reference model of one queue partition's SQS semantics: every message ever sent in
// one plain array, every rule a direct scan. No window, no backlog, no indexes. Property
// tests drive the real QueueMachine and this model with the same operations and compare.
//
// The model decides what is ALLOWED (which messages a receive may deliver, how many it
// must deliver, what a delete or a visibility change answers); the test then applies the
// machine's actual choice to the model.

import type { QueueConfig, QueueCounts } from '../queue/types.js';

export interface ModelMessage {
  sequenceOffset: number;
  /** Every offset the message has had (original first, then relocations); the last is current. */
  offsets: number[];
  messageId: string;
  groupId: string | undefined;
  deduplicationId: string | undefined;
  sentTimestampMs: number;
  visibleAtMs: number;
  receiveCount: number;
  firstReceiveTimestampMs: number;
  receiptOffset: number;
  receivedAtMs: number;
  /** Removed by a record (delete, purge, expire, dead-letter). */
  gone: boolean;
}

export interface ModelReceipt {
  messageOffset: number;
  receiveOffset: number;
}

export type ModelOutcome = 'apply' | 'noop' | string; /* else an ErrorCode */

const deduplicationWindowMs = 5 * 60 * 1000;
const purgeIntervalMs = 60 * 1000;
const visibilityMaxMs = 43_200 * 1000;

export class QueueModel {
  messages: ModelMessage[] = [];
  private deduplication: { key: string; messageId: string; offset: number; timestampMs: number }[] = [];
  lastPurgeTimestampMs: number | undefined;
  /** Offset the next record gets (the model and the log advance together). */
  logEndOffset = 0;

  constructor(public config: QueueConfig) {}

  private get retentionMs(): number {
    return this.config.messageRetentionPeriodSeconds * 1000;
  }

  expired(message: ModelMessage, nowMs: number): boolean {
    return message.sentTimestampMs + this.retentionMs <= nowMs;
  }

  /** Messages not removed by a record, oldest first. */
  present(): ModelMessage[] {
    return this.messages.filter((message) => !message.gone);
  }

  find(offset: number): ModelMessage | undefined {
    return this.messages.find((message) => !message.gone && message.offsets.includes(offset));
  }

  currentOffset(message: ModelMessage): number {
    return message.offsets[message.offsets.length - 1]!;
  }

  private deduplicationKey(groupId: string | undefined, deduplicationId: string): string {
    return this.config.deduplicationScope === 'messageGroup' ? `${groupId ?? ''}\u0000${deduplicationId}` : deduplicationId;
  }

  /** A send at `nowMs`: a duplicate answer, or the message is appended at logEndOffset. */
  send(input: { messageId: string; groupId?: string; deduplicationId?: string; delaySeconds: number }, nowMs: number): { duplicateOf?: { messageId: string; offset: number } } {
    if (this.config.fifo && input.deduplicationId !== undefined) {
      const key = this.deduplicationKey(input.groupId, input.deduplicationId);
      const first = this.deduplication.find((entry) => entry.key === key && nowMs < entry.timestampMs + deduplicationWindowMs);
      if (first !== undefined) return { duplicateOf: { messageId: first.messageId, offset: first.offset } };
      this.deduplication.push({ key, messageId: input.messageId, offset: this.logEndOffset, timestampMs: nowMs });
    }
    this.messages.push({
      sequenceOffset: this.logEndOffset,
      offsets: [this.logEndOffset],
      messageId: input.messageId,
      groupId: input.groupId,
      deduplicationId: input.deduplicationId,
      sentTimestampMs: nowMs,
      visibleAtMs: nowMs + input.delaySeconds * 1000,
      receiveCount: 0,
      firstReceiveTimestampMs: 0,
      receiptOffset: -1,
      receivedAtMs: 0,
      gone: false,
    });
    this.logEndOffset++;
    return {};
  }

  inflightCount(nowMs: number): number {
    return this.present().filter((message) => message.receiveCount > 0 && message.visibleAtMs > nowMs).length;
  }

  private deadLetterCandidate(message: ModelMessage): boolean {
    return this.config.redrive !== undefined && message.receiveCount >= this.config.redrive.maxReceiveCount;
  }

  /**
   * What a receive may deliver now. Standard: every visible message (minus excluded and
   * dead-letter candidates). FIFO: per group, unless a message of the group is in flight,
   * the consecutive visible messages from its head (in order); `deadLetterHeads` are the
   * groups' heads waiting to be dead-lettered.
   */
  deliverable(nowMs: number, exclude: ReadonlySet<number>): { byGroup: Map<string, ModelMessage[]>; total: number; deadLetter: Set<ModelMessage> } {
    const byGroup = new Map<string, ModelMessage[]>();
    const deadLetter = new Set<ModelMessage>();
    const live = this.present().filter((message) => !this.expired(message, nowMs));
    if (!this.config.fifo) {
      for (const message of live) {
        if (message.visibleAtMs > nowMs || exclude.has(this.currentOffset(message))) continue;
        if (this.deadLetterCandidate(message)) {
          deadLetter.add(message);
          continue;
        }
        const key = message.groupId ?? '';
        byGroup.set(key, [...(byGroup.get(key) ?? []), message]);
      }
    } else {
      const groups = new Map<string, ModelMessage[]>();
      for (const message of live) groups.set(message.groupId!, [...(groups.get(message.groupId!) ?? []), message]);
      for (const [groupId, messages] of groups) {
        if (messages.some((message) => message.receiveCount > 0 && message.visibleAtMs > nowMs)) continue;
        const collected: ModelMessage[] = [];
        for (const message of messages) {
          if (message.visibleAtMs > nowMs || exclude.has(this.currentOffset(message))) break;
          if (this.deadLetterCandidate(message)) {
            deadLetter.add(message);
            break;
          }
          collected.push(message);
        }
        if (collected.length > 0) byGroup.set(groupId, collected);
      }
    }
    let total = 0;
    for (const messages of byGroup.values()) total += messages.length;
    return { byGroup, total, deadLetter };
  }

  /** Applies a Receive record: expired ones go, delivered ones get the receipt. */
  receive(deliveredOffsets: number[], expiredOffsets: number[], visibilityTimeoutMs: number, nowMs: number): void {
    const receiveOffset = this.logEndOffset++;
    for (const offset of expiredOffsets) {
      const message = this.find(offset);
      if (message !== undefined) message.gone = true;
    }
    for (const offset of deliveredOffsets) {
      const message = this.find(offset)!;
      if (message.receiveCount === 0) message.firstReceiveTimestampMs = nowMs;
      message.receiveCount++;
      message.receiptOffset = receiveOffset;
      message.receivedAtMs = nowMs;
      message.visibleAtMs = nowMs + visibilityTimeoutMs;
    }
  }

  private plausible(receipt: ModelReceipt): boolean {
    return receipt.receiveOffset > receipt.messageOffset && receipt.receiveOffset < this.logEndOffset;
  }

  /** 'apply' (a Delete record is appended), 'noop' (success, nothing changes) or an error code. */
  planDelete(receipt: ModelReceipt): ModelOutcome {
    const message = this.find(receipt.messageOffset);
    if (message === undefined) return this.plausible(receipt) ? 'noop' : 'ReceiptHandleIsInvalid';
    if (message.receiptOffset === -1 || receipt.receiveOffset > message.receiptOffset) return 'ReceiptHandleIsInvalid';
    if (receipt.receiveOffset < message.receiptOffset) return 'noop';
    return 'apply';
  }

  delete(receipt: ModelReceipt): void {
    this.deleteBatch([receipt]);
  }

  /** Several deletes in one Delete record (one log offset). */
  deleteBatch(receipts: ModelReceipt[]): void {
    this.logEndOffset++;
    // Found first, then marked: two receipts of one message in a batch name it twice.
    const messages = receipts.map((receipt) => this.find(receipt.messageOffset)!);
    for (const message of messages) message.gone = true;
  }

  planChangeVisibility(receipt: ModelReceipt, visibilityTimeoutSeconds: number, nowMs: number): ModelOutcome {
    if (visibilityTimeoutSeconds < 0 || visibilityTimeoutSeconds > 43_200) return 'InvalidParameterValue';
    const message = this.find(receipt.messageOffset);
    if (message === undefined) return this.plausible(receipt) ? 'InvalidParameterValue' : 'ReceiptHandleIsInvalid';
    if (message.receiptOffset === -1 || receipt.receiveOffset > message.receiptOffset) return 'ReceiptHandleIsInvalid';
    if (receipt.receiveOffset < message.receiptOffset) return 'InvalidParameterValue';
    if (this.expired(message, nowMs)) return 'InvalidParameterValue';
    if (message.visibleAtMs <= nowMs) return 'MessageNotInflight';
    if (nowMs + visibilityTimeoutSeconds * 1000 > message.receivedAtMs + visibilityMaxMs) return 'InvalidParameterValue';
    return 'apply';
  }

  changeVisibility(receipt: ModelReceipt, visibilityTimeoutSeconds: number, nowMs: number): void {
    this.logEndOffset++;
    this.find(receipt.messageOffset)!.visibleAtMs = nowMs + visibilityTimeoutSeconds * 1000;
  }

  planPurge(nowMs: number): ModelOutcome {
    return this.lastPurgeTimestampMs !== undefined && nowMs < this.lastPurgeTimestampMs + purgeIntervalMs ? 'PurgeQueueInProgress' : 'apply';
  }

  purge(nowMs: number): void {
    const purgeOffset = this.logEndOffset++;
    for (const message of this.messages) if (message.sequenceOffset < purgeOffset) message.gone = true;
    this.lastPurgeTimestampMs = nowMs;
  }

  /** Applies a DeadLettered or Expire record. */
  remove(offsets: number[]): void {
    this.logEndOffset++;
    for (const offset of offsets) {
      const message = this.find(offset);
      if (message !== undefined) message.gone = true;
    }
  }

  setConfig(config: QueueConfig): void {
    this.logEndOffset++;
    this.config = config;
  }

  relocate(offset: number): void {
    const newOffset = this.logEndOffset++;
    const message = this.find(offset);
    if (message !== undefined) message.offsets.push(newOffset);
  }

  counts(nowMs: number): QueueCounts {
    let visible = 0;
    let inflight = 0;
    let delayed = 0;
    let oldestSentMs = Infinity;
    for (const message of this.present()) {
      if (this.expired(message, nowMs)) continue;
      oldestSentMs = Math.min(oldestSentMs, message.sentTimestampMs);
      if (message.visibleAtMs <= nowMs) visible++;
      else if (message.receiveCount > 0) inflight++;
      else delayed++;
    }
    return { visible, inflight, delayed, oldestMessageAgeSeconds: oldestSentMs === Infinity ? 0 : Math.max(0, Math.floor((nowMs - oldestSentMs) / 1000)) };
  }
}
