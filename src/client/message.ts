// A received message and what a consumer can do with it. A message is settled once:
// ack() deletes it, nack(delaySeconds) makes it visible again after the delay (a
// redelivery, its receive count goes up). Both are idempotent after the first call.
//
// Settlement states: unsettled -> settled alone (ack/nack: `settlement` holds its own
// promise) or settled in a batch (Berth.ackAll: `batch` holds the batch's answer and the
// message's place in it; the message's own promise is made only when someone asks for it,
// so a batch of n costs one promise, not n).

import type { WireAttributes, WireMessage } from '../api/native/wire.js';
import type { Berth } from './berth.js';
import { BerthClientError } from './errors.js';

/** A batch ack's answer: null per entry that succeeded (see Berth.ack). */
export type BatchOutcome = Promise<ReadonlyArray<BerthClientError | null>>;

export class Message {
  readonly id: string;
  readonly body: string;
  readonly receiptHandle: string;
  /** 1 on the first delivery. */
  readonly receiveCount: number;
  readonly sentTimestampMs: number;
  readonly senderId: string;
  readonly groupId: string | undefined;
  readonly deduplicationId: string | undefined;
  readonly sequenceNumber: string | undefined;
  readonly attributes: WireAttributes;
  /** Monotonic-ish (Date.now) time at which the current lease ends, when known. */
  leaseExpiresAtMs: number | undefined;
  private settlement: Promise<void> | undefined;
  /** Set when the message was settled by a batch ack: the batch's answer and this message's index in it. */
  private batch: { outcome: BatchOutcome; index: number } | undefined;
  /** @internal Called once when the message is settled (the stream's bookkeeping). */
  onSettled: ((message: Message) => void) | undefined;

  /** `receivedAtMs`: when the delivery arrived (default now); the lease runs from there. */
  constructor(
    private readonly berth: Berth,
    readonly queue: string,
    wire: WireMessage,
    visibilityTimeoutSeconds: number | undefined,
    receivedAtMs?: number,
  ) {
    this.id = wire.messageId;
    this.body = wire.body;
    this.receiptHandle = wire.receiptHandle;
    this.receiveCount = wire.receiveCount;
    this.sentTimestampMs = wire.sentTimestampMs;
    this.senderId = wire.senderId;
    this.groupId = wire.groupId;
    this.deduplicationId = wire.deduplicationId;
    this.sequenceNumber = wire.sequenceNumber;
    this.attributes = wire.attributes ?? {};
    this.leaseExpiresAtMs = visibilityTimeoutSeconds === undefined ? undefined : (receivedAtMs ?? Date.now()) + visibilityTimeoutSeconds * 1000;
  }

  get settled(): boolean {
    return this.settlement !== undefined || this.batch !== undefined;
  }

  /** Deletes the message. Resolves when the server has recorded the delete durably. */
  ack(): Promise<void> {
    return this.ownSettlement() ?? (this.settlement = this.settle(this.berth.acker(this.queue).ack(this.receiptHandle)));
  }

  /** Returns the message to the queue, visible again after `delaySeconds` (default 0). */
  nack(delaySeconds = 0): Promise<void> {
    return (
      this.ownSettlement() ??
      (this.settlement = this.settle(
        this.berth.changeVisibility(this.queue, [{ receiptHandle: this.receiptHandle, visibilityTimeoutSeconds: delaySeconds }]).then(([result]) => {
          if (result !== null && result !== undefined) throw result;
        }),
      ))
    );
  }

  /** Extends the lease to `seconds` from now (streams do this automatically before expiry). */
  async extendLease(seconds: number): Promise<void> {
    if (this.settled) throw new BerthClientError('MessageNotInflight', 0, 'message already acked or nacked');
    const [result] = await this.berth.changeVisibility(this.queue, [{ receiptHandle: this.receiptHandle, visibilityTimeoutSeconds: seconds }]);
    if (result !== null && result !== undefined) throw result;
    this.leaseExpiresAtMs = Date.now() + seconds * 1000;
  }

  /**
   * @internal A batch ack settles the message: it is marked settled now (the stream learns
   * it at once) and its outcome is entry `index` of `outcome`. False when it was already settled.
   */
  settleInBatch(outcome: BatchOutcome, index: number): boolean {
    if (this.settled) return false;
    this.batch = { outcome, index };
    const callback = this.onSettled;
    this.onSettled = undefined;
    callback?.(this);
    return true;
  }

  /** The promise of an earlier settlement (made now for a batch-settled message); undefined when unsettled. */
  private ownSettlement(): Promise<void> | undefined {
    if (this.settlement !== undefined || this.batch === undefined) return this.settlement;
    const { outcome, index } = this.batch;
    this.settlement = outcome.then((results) => {
      const result = results[index];
      if (result !== null) throw result ?? new BerthClientError('ProtocolError', 0, 'ACK answered fewer entries than sent');
    });
    return this.settlement;
  }

  /** The stream learns at once that the message is done (credit, lease extension); the caller awaits the server. */
  private settle(operation: Promise<void>): Promise<void> {
    const callback = this.onSettled;
    this.onSettled = undefined;
    callback?.(this);
    return operation;
  }
}
