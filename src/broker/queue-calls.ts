// What the single-node broker and the cluster node do alike around a queue's partitions:
// ARNs, parsing a queue's attributes into its config, turning a delivery into the
// message a receiver sees (with its receipt handle), choosing a FIFO group's partition,
// splitting receipt handles by partition, and the copy of a message that a dead-letter
// move or a redrive enqueues. Pure functions over the queue's identity.

import { createHash } from 'node:crypto';
import { BerthError } from '../protocol/errors.js';
import { queueConfigFromAttributes } from '../queue/config.js';
import { sequenceNumberOf, type Receipt } from '../queue/machine.js';
import type { EnqueuePayload } from '../queue/records.js';
import type { QueueConfig, ReceivedMessage } from '../queue/types.js';
import type { Delivery } from './partition.js';
import { decodeReceiptHandle, encodeReceiptHandle } from './receipt.js';

/** Queue attributes that make topics (Berth extensions, set at create only; docs/topics.md). */
export const topicAttributes = {
  /** "topic" makes a topic: one log, published to with SendMessage, read only through subscriptions. */
  kind: 'Berth.Kind',
  /** On a new queue: the topic it subscribes to (the queue becomes the subscription). */
  topic: 'Berth.Topic',
  /** A subscription's filter policy on message attributes (src/queue/filter.ts). */
  filterPolicy: 'Berth.FilterPolicy',
} as const;

export interface QueueIdentity {
  incarnation: string;
  partitionCount: number;
  fifo: boolean;
}

export function queueArn(region: string, accountId: string, name: string): string {
  return `arn:aws:sqs:${region}:${accountId}:${name}`;
}

/** The queue name an ARN of this account names, or undefined. */
export function queueNameFromArn(arn: string, accountId: string): string | undefined {
  const parts = arn.split(':');
  if (parts.length !== 6 || parts[0] !== 'arn' || parts[2] !== 'sqs' || parts[4] !== accountId) return undefined;
  return parts[5];
}

/** Callers validate attributes first; this keeps a value that still does not parse from ever being stored. */
export function parseQueueConfig(attributes: Record<string, string>, defaultReplicaCount: number): QueueConfig {
  try {
    return queueConfigFromAttributes(attributes, { replicaCount: defaultReplicaCount });
  } catch (error) {
    throw new BerthError('InvalidAttributeValue', `Invalid queue attributes: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** The partition that owns a FIFO message group (by hash, so every node agrees). */
export function partitionOfGroup(groupId: string, partitionCount: number): number {
  return createHash('sha256').update(groupId).digest().readUInt32BE(0) % partitionCount;
}

export function receiptHandleOf(queue: QueueIdentity, partition: number, delivery: Delivery): string {
  return encodeReceiptHandle({ incarnation: queue.incarnation, partition, messageOffset: delivery.receipt.messageOffset, receiveOffset: delivery.receipt.receiveOffset });
}

/** `withReceipt` false: a peek, which delivered nothing and so has no receipt handle. */
export function receivedMessage(queue: QueueIdentity, partition: number, delivery: Delivery, withReceipt = true): ReceivedMessage {
  const payload = delivery.payload;
  const message: ReceivedMessage = {
    messageId: payload.messageId,
    receiptHandle: withReceipt ? receiptHandleOf(queue, partition, delivery) : '',
    body: payload.body,
    attributes: payload.attributes,
    systemAttributes: payload.systemAttributes,
    senderId: payload.senderId,
    sentTimestampMs: payload.sentTimestampMs,
    receiveCount: delivery.receiveCount,
    firstReceiveTimestampMs: delivery.firstReceiveTimestampMs,
  };
  if (payload.groupId !== undefined) message.groupId = payload.groupId;
  if (queue.fifo) {
    if (payload.deduplicationId !== undefined) message.deduplicationId = payload.deduplicationId;
    message.sequenceNumber = sequenceNumberOf(delivery.sequenceOffset);
  }
  if (payload.deadLetterQueueSourceArn !== undefined) message.deadLetterQueueSourceArn = payload.deadLetterQueueSourceArn;
  return message;
}

/**
 * Decodes receipt handles, groups them by partition, runs each partition's batch and puts
 * the per-entry outcomes back in request order. A handle of another queue (or of an
 * earlier queue of the same name) is ReceiptHandleIsInvalid on its own.
 */
export async function byReceipt<T>(
  queue: QueueIdentity,
  items: Array<{ handle: string; value: T }>,
  run: (partition: number, items: Array<{ receipt: Receipt; value: T }>) => Promise<Array<BerthError | null>>,
): Promise<Array<BerthError | null>> {
  const results: Array<BerthError | null> = new Array(items.length).fill(null);
  const byPartition = new Map<number, Array<{ index: number; receipt: Receipt; value: T }>>();
  items.forEach((item, index) => {
    try {
      const fields = decodeReceiptHandle(item.handle);
      if (fields.incarnation !== queue.incarnation || fields.partition >= queue.partitionCount) {
        throw new BerthError('ReceiptHandleIsInvalid', `The input receipt handle "${item.handle.slice(0, 100)}" is not a valid receipt handle for this queue.`);
      }
      let list = byPartition.get(fields.partition);
      if (list === undefined) byPartition.set(fields.partition, (list = []));
      list.push({ index, receipt: { messageOffset: fields.messageOffset, receiveOffset: fields.receiveOffset }, value: item.value });
    } catch (error) {
      results[index] = error instanceof BerthError ? error : new BerthError('ReceiptHandleIsInvalid', 'invalid receipt handle');
    }
  });
  await Promise.all(
    [...byPartition.entries()].map(async ([partition, list]) => {
      let outcomes: Array<BerthError | null>;
      try {
        outcomes = await run(partition, list);
      } catch (error) {
        const failure = error instanceof BerthError ? error : new BerthError('InternalError', 'failed', { cause: error });
        outcomes = list.map(() => failure);
      }
      list.forEach((entry, position) => {
        results[entry.index] = outcomes[position] ?? null;
      });
    }),
  );
  return results;
}

/**
 * The deduplication id of a message's moved copy (a dead-letter move, a redrive): its id
 * and its place in the queue it leaves. Stable, so a retried move is deduplicated by a FIFO
 * target; its own, so a moved message is never taken for a duplicate of an unrelated send.
 */
export function movedDeduplicationId(messageId: string, sequenceOffset: number): string {
  return `${messageId}-${sequenceNumberOf(sequenceOffset)}`;
}

/** A message taken for a move, carrying the deduplication id of this copy of it (movedDeduplicationId). */
export function takenForMove(payload: EnqueuePayload, sequenceOffset: number): EnqueuePayload {
  return { ...payload, deduplicationId: movedDeduplicationId(payload.messageId, sequenceOffset) };
}

/**
 * The copy of a message that a move enqueues: id, body, attributes, send time and
 * deduplication id kept (the taker gave it movedDeduplicationId), no delay, no more
 * replicas than the target keeps, and the dead-letter source ARN set (a dead-letter move)
 * or cleared (a redrive back out of a dead-letter queue).
 */
export function movedCopy(payload: EnqueuePayload, sourceArn: string | undefined, targetReplicaCount: number): EnqueuePayload {
  const moved: EnqueuePayload = { ...payload, delaySeconds: 0, replicaCount: Math.min(payload.replicaCount, targetReplicaCount) };
  if (sourceArn === undefined) delete moved.deadLetterQueueSourceArn;
  else moved.deadLetterQueueSourceArn = sourceArn;
  return moved;
}
