// A received message and what a consumer can do with it. A message is settled once:
// ack() deletes it, nack(delaySeconds) makes it visible again after the delay (a
// redelivery, its receive count goes up). Both are idempotent after the first call.

import type { WireAttributes, WireMessage } from '../api/native/wire.js';
import type { Berth } from './berth.js';
import { BerthClientError } from './errors.js';

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
  /** @internal Called once when the message is settled (the stream's bookkeeping). */
  onSettled: ((message: Message) => void) | undefined;

  constructor(
    private readonly berth: Berth,
    readonly queue: string,
    wire: WireMessage,
    visibilityTimeoutSeconds: number | undefined,
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
    this.leaseExpiresAtMs = visibilityTimeoutSeconds === undefined ? undefined : Date.now() + visibilityTimeoutSeconds * 1000;
  }

  get settled(): boolean {
    return this.settlement !== undefined;
  }

  /** Deletes the message. Resolves when the server has recorded the delete durably. */
  ack(): Promise<void> {
    this.settlement ??= this.settle(this.berth.acker(this.queue).ack(this.receiptHandle));
    return this.settlement;
  }

  /** Returns the message to the queue, visible again after `delaySeconds` (default 0). */
  nack(delaySeconds = 0): Promise<void> {
    this.settlement ??= this.settle(
      this.berth.changeVisibility(this.queue, [{ receiptHandle: this.receiptHandle, visibilityTimeoutSeconds: delaySeconds }]).then(([result]) => {
        if (result !== null && result !== undefined) throw result;
      }),
    );
    return this.settlement;
  }

  /** Extends the lease to `seconds` from now (streams do this automatically before expiry). */
  async extendLease(seconds: number): Promise<void> {
    if (this.settled) throw new BerthClientError('MessageNotInflight', 0, 'message already acked or nacked');
    const [result] = await this.berth.changeVisibility(this.queue, [{ receiptHandle: this.receiptHandle, visibilityTimeoutSeconds: seconds }]);
    if (result !== null && result !== undefined) throw result;
    this.leaseExpiresAtMs = Date.now() + seconds * 1000;
  }

  /** The stream learns at once that the message is done (credit, lease extension); the caller awaits the server. */
  private settle(operation: Promise<void>): Promise<void> {
    const callback = this.onSettled;
    this.onSettled = undefined;
    callback?.(this);
    return operation;
  }
}
