// Domain types of the queue core, shared by the broker and the API layers.

export interface MessageAttribute {
  /** Full data type including any custom suffix, e.g. "Number.float". */
  dataType: string;
  stringValue?: string;
  binaryValue?: Uint8Array;
}

export type MessageAttributes = Record<string, MessageAttribute>;

export type DeduplicationScope = 'queue' | 'messageGroup';
export type FifoThroughputLimit = 'perQueue' | 'perMessageGroupId';

/** The parsed, validated queue settings a queue machine runs with. */
export interface QueueConfig {
  fifo: boolean;
  visibilityTimeoutSeconds: number;
  delaySeconds: number;
  messageRetentionPeriodSeconds: number;
  maximumMessageSize: number;
  receiveMessageWaitTimeSeconds: number;
  contentBasedDeduplication: boolean;
  deduplicationScope: DeduplicationScope;
  fifoThroughputLimit: FifoThroughputLimit;
  /** Where messages go after maxReceiveCount receives; absent when no RedrivePolicy. */
  redrive?: { deadLetterQueueName: string; deadLetterTargetArn: string; maxReceiveCount: number };
  /** 120,000 for both standard (OverLimit error) and FIFO (returns fewer messages). */
  inflightMessagesMax: number;
  /** Replicas that must hold a record before it is acknowledged (1 on a single node). */
  replicaCount: number;
}

export const fifoDeduplicationWindowMs = 5 * 60 * 1000;
export const purgeIntervalMs = 60 * 1000;
export const inflightMessagesMaxDefault = 120_000;

/** What a producer sends, validated by the API layer. */
export interface SendInput {
  body: string;
  /** Per-message delay; undefined means the queue's DelaySeconds. Standard queues only. */
  delaySeconds?: number;
  attributes: MessageAttributes;
  /** Only AWSTraceHeader today. */
  systemAttributes: MessageAttributes;
  groupId?: string;
  /** FIFO: explicit id, or computed from the body when ContentBasedDeduplication is on. */
  deduplicationId?: string;
  /** Overrides the queue's replica count for this message. */
  replicaCount?: number;
  /** The sender's identity (access key id or account id). */
  senderId: string;
}

export interface SendOutcome {
  messageId: string;
  /** FIFO only: 20+ digit decimal string, increasing within a partition. */
  sequenceNumber?: string;
}

export interface ReceivedMessage {
  messageId: string;
  receiptHandle: string;
  body: string;
  attributes: MessageAttributes;
  systemAttributes: MessageAttributes;
  senderId: string;
  sentTimestampMs: number;
  receiveCount: number;
  firstReceiveTimestampMs: number;
  groupId?: string;
  deduplicationId?: string;
  sequenceNumber?: string;
  deadLetterQueueSourceArn?: string;
  /** Cluster mode: the nodes that replicate the message's partition, primary first (system attribute Berth.ReplicaHosts). */
  replicaHosts?: string[];
}

export interface QueueCounts {
  visible: number;
  inflight: number;
  delayed: number;
  /** Age in seconds of the oldest message not yet deleted, 0 when empty. */
  oldestMessageAgeSeconds: number;
}
