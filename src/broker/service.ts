// The queue service as the API layers see it: SQS-level operations on named queues, in
// domain types. The single-node broker implements it now; the cluster router (a later
// issue) implements the same interface by forwarding to partition primaries.
//
// Expected failures are thrown as BerthError with a code from src/protocol/errors.ts.
// Batch operations report per-entry failures as values so one bad entry fails alone.

import type { BerthError } from '../protocol/errors.js';
import type { QueueCounts, ReceivedMessage, SendInput, SendOutcome } from '../queue/types.js';

export interface QueueDescription {
  name: string;
  /**
   * Every settable attribute in canonical SQS string form, defaults filled in at create
   * (e.g. VisibilityTimeout "30", FifoQueue "true"). Read-only attributes are not stored
   * here: the API layer derives QueueArn, timestamps and counts.
   */
  attributes: Record<string, string>;
  tags: Record<string, string>;
  createdTimestampMs: number;
  lastModifiedTimestampMs: number;
}

export interface ReceiveInput {
  maxMessages: number;
  /** Per-call override of the queue's VisibilityTimeout. */
  visibilityTimeoutSeconds?: number;
  /** Long poll up to this many seconds (already resolved against the queue default by the caller). */
  waitTimeSeconds: number;
  /** FIFO retry deduplication. */
  receiveRequestAttemptId?: string;
  /** Aborts a long poll early (client went away, server stopping): resolves with what it has. */
  signal?: AbortSignal;
}

export interface VisibilityChange {
  receiptHandle: string;
  visibilityTimeoutSeconds: number;
}

export type MoveTaskStatus = 'RUNNING' | 'COMPLETED' | 'CANCELLING' | 'CANCELLED' | 'FAILED';

export interface MoveTask {
  taskHandle: string;
  status: MoveTaskStatus;
  sourceArn: string;
  /** Absent: each message returns to the queue it was dead-lettered from. */
  destinationArn?: string;
  maxNumberOfMessagesPerSecond?: number;
  approximateNumberOfMessagesMoved: number;
  approximateNumberOfMessagesToMove: number;
  failureReason?: string;
  startedTimestampMs: number;
}

/** Where a queue's partitions are led, for clients that send each call to the primary itself. */
export interface QueueRouting {
  fifo: boolean;
  partitionCount: number;
  /** Partitions with a primary in the map (one may be missing while it is being placed). */
  partitions: Array<{ partition: number; epoch: number; primary: string }>;
  /** Live nodes; nativeUrl is absent for a node without the native protocol. */
  nodes: Array<{ id: string; zone: string; region: string; nativeUrl?: string }>;
}

export interface QueueService {
  /** Region and account used in ARNs. */
  readonly region: string;
  readonly accountId: string;

  /**
   * Creates the queue, or returns it unchanged when it exists with the same attributes
   * (tags are ignored for the comparison, like SQS). Throws QueueNameExists when the
   * attributes differ and QueueDeletedRecently within 60 s of a delete of that name.
   */
  createQueue(name: string, attributes: Record<string, string>, tags: Record<string, string>): Promise<QueueDescription>;
  deleteQueue(name: string): Promise<void>;
  /** Throws QueueDoesNotExist. */
  describeQueue(name: string): Promise<QueueDescription>;
  /** Names in ascending order. */
  listQueues(prefix?: string): Promise<string[]>;
  /** Merges the given canonical attributes into the stored ones. */
  setQueueAttributes(name: string, attributes: Record<string, string>): Promise<void>;
  setQueueTags(name: string, tags: Record<string, string>): Promise<void>;
  queueCounts(name: string): Promise<QueueCounts>;
  /** Throws PurgeQueueInProgress within 60 s of the last purge. */
  purgeQueue(name: string): Promise<void>;

  /** Each entry resolves when durable at its replica count, or fails on its own. */
  send(name: string, messages: SendInput[]): Promise<Array<SendOutcome | BerthError>>;
  receive(name: string, input: ReceiveInput): Promise<ReceivedMessage[]>;
  /** null for each entry that succeeded. */
  deleteMessages(name: string, receiptHandles: string[]): Promise<Array<BerthError | null>>;
  changeVisibility(name: string, changes: VisibilityChange[]): Promise<Array<BerthError | null>>;

  /** Queues whose RedrivePolicy names this queue as their dead-letter queue. */
  listDeadLetterSourceQueues(name: string): Promise<string[]>;
  startMessageMoveTask(sourceArn: string, destinationArn: string | undefined, maxNumberOfMessagesPerSecond: number | undefined): Promise<string>;
  listMessageMoveTasks(sourceArn: string, maxResults: number): Promise<MoveTask[]>;
  /** Returns the number moved so far. */
  cancelMessageMoveTask(taskHandle: string): Promise<number>;
  /** Messages of a queue without changing their visibility (console peek). */
  peekMessages(name: string, maxMessages: number): Promise<ReceivedMessage[]>;
  /** Cluster mode only: the queue's partition primaries and how to reach the nodes. */
  routing?(name: string): Promise<QueueRouting>;
}
