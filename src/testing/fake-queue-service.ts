// An in-memory QueueService for testing the API layers without the broker: enough SQS
// semantics to drive every action (visibility, receive counts, FIFO group blocking and
// deduplication, purge interval, delete-recently window, dead-letter sources, move
// tasks), none of the durability. Receives never wait: a long poll on an empty queue
// returns at once. Time comes from the Clock given, ids from counters (deterministic).
//
// Message states: delayed (visibleAtMs in the future, never received) -> visible ->
// in flight (received, visibleAtMs in the future) -> visible again or deleted.

import type { MoveTask, QueueDescription, QueueService, ReceiveInput, VisibilityChange } from '../broker/service.js';
import type { Clock } from '../core/clock.js';
import { BerthError } from '../protocol/errors.js';
import type { MessageAttributes, QueueCounts, ReceivedMessage, SendInput, SendOutcome } from '../queue/types.js';

interface FakeMessage {
  messageId: string;
  body: string;
  attributes: MessageAttributes;
  systemAttributes: MessageAttributes;
  senderId: string;
  sentTimestampMs: number;
  visibleAtMs: number;
  receiveCount: number;
  firstReceiveTimestampMs: number;
  receiptHandle: string | undefined;
  groupId: string | undefined;
  deduplicationId: string | undefined;
  sequenceNumber: string | undefined;
  deadLetterQueueSourceArn: string | undefined;
}

interface FakeQueue {
  description: QueueDescription;
  messages: FakeMessage[];
  lastPurgeMs: number | undefined;
  /** deduplicationId -> first outcome and when it was sent. */
  deduplication: Map<string, { outcome: SendOutcome; atMs: number }>;
}

const deletedRecentlyWindowMs = 60_000;
const purgeIntervalMs = 60_000;
const deduplicationWindowMs = 5 * 60_000;

export class FakeQueueService implements QueueService {
  readonly queues = new Map<string, FakeQueue>();
  private readonly deletedAtMs = new Map<string, number>();
  private readonly moveTasks: MoveTask[] = [];
  private idCounter = 0;
  private sequenceCounter = 10_000_000_000_000_000_000n;
  /** Every receive input seen, so tests can check what the handler passed down. */
  readonly receiveCalls: ReceiveInput[] = [];
  /** Every send input seen. */
  readonly sentInputs: SendInput[] = [];

  constructor(
    private readonly clock: Clock,
    readonly region = 'us-east-1',
    readonly accountId = '000000000000',
  ) {}

  private nextId(): string {
    this.idCounter++;
    const hex = this.idCounter.toString(16).padStart(12, '0');
    return `00000000-0000-4000-8000-${hex}`;
  }

  private queue(name: string): FakeQueue {
    const queue = this.queues.get(name);
    if (queue === undefined) throw new BerthError('QueueDoesNotExist', 'The specified queue does not exist.');
    return queue;
  }

  private arn(name: string): string {
    return `arn:aws:sqs:${this.region}:${this.accountId}:${name}`;
  }

  async createQueue(name: string, attributes: Record<string, string>, tags: Record<string, string>): Promise<QueueDescription> {
    const existing = this.queues.get(name);
    if (existing !== undefined) {
      const a = existing.description.attributes;
      const same = Object.keys(a).length === Object.keys(attributes).length && Object.keys(a).every((key) => a[key] === attributes[key]);
      if (!same) throw new BerthError('QueueNameExists', 'A queue already exists with the same name and a different value for an attribute');
      return structuredClone(existing.description);
    }
    const deletedAt = this.deletedAtMs.get(name);
    if (deletedAt !== undefined && this.clock.nowMs() - deletedAt < deletedRecentlyWindowMs) {
      throw new BerthError('QueueDeletedRecently', 'You must wait 60 seconds after deleting a queue before you can create another queue with the same name.');
    }
    const nowMs = this.clock.nowMs();
    const description: QueueDescription = { name, attributes: { ...attributes }, tags: { ...tags }, createdTimestampMs: nowMs, lastModifiedTimestampMs: nowMs };
    this.queues.set(name, { description, messages: [], lastPurgeMs: undefined, deduplication: new Map() });
    return structuredClone(description);
  }

  async deleteQueue(name: string): Promise<void> {
    this.queue(name);
    this.queues.delete(name);
    this.deletedAtMs.set(name, this.clock.nowMs());
  }

  async describeQueue(name: string): Promise<QueueDescription> {
    return structuredClone(this.queue(name).description);
  }

  async listQueues(prefix?: string): Promise<string[]> {
    return [...this.queues.keys()].filter((name) => prefix === undefined || name.startsWith(prefix)).sort();
  }

  async setQueueAttributes(name: string, attributes: Record<string, string>): Promise<void> {
    const description = this.queue(name).description;
    for (const key of Object.keys(attributes)) {
      const value = attributes[key]!;
      // "" removes an optional attribute (RedrivePolicy, Policy, RedriveAllowPolicy, KmsMasterKeyId).
      if (value === '') delete description.attributes[key];
      else description.attributes[key] = value;
    }
    description.lastModifiedTimestampMs = this.clock.nowMs();
  }

  async setQueueTags(name: string, tags: Record<string, string>): Promise<void> {
    this.queue(name).description.tags = { ...tags };
  }

  async queueCounts(name: string): Promise<QueueCounts> {
    const queue = this.queue(name);
    const nowMs = this.clock.nowMs();
    const counts: QueueCounts = { visible: 0, inflight: 0, delayed: 0, oldestMessageAgeSeconds: 0 };
    for (const message of queue.messages) {
      if (message.visibleAtMs <= nowMs) counts.visible++;
      else if (message.receiveCount > 0) counts.inflight++;
      else counts.delayed++;
      counts.oldestMessageAgeSeconds = Math.max(counts.oldestMessageAgeSeconds, Math.floor((nowMs - message.sentTimestampMs) / 1000));
    }
    return counts;
  }

  async purgeQueue(name: string): Promise<void> {
    const queue = this.queue(name);
    const nowMs = this.clock.nowMs();
    if (queue.lastPurgeMs !== undefined && nowMs - queue.lastPurgeMs < purgeIntervalMs) {
      throw new BerthError('PurgeQueueInProgress', `Only one PurgeQueue operation on ${name} is allowed every 60 seconds.`);
    }
    queue.lastPurgeMs = nowMs;
    queue.messages = [];
  }

  async send(name: string, messages: SendInput[]): Promise<Array<SendOutcome | BerthError>> {
    const queue = this.queue(name);
    const fifo = queue.description.attributes['FifoQueue'] === 'true';
    const nowMs = this.clock.nowMs();
    return messages.map((input) => {
      this.sentInputs.push(input);
      if (fifo && input.deduplicationId !== undefined) {
        const key = queue.description.attributes['DeduplicationScope'] === 'messageGroup' ? `${input.groupId}\n${input.deduplicationId}` : input.deduplicationId;
        const previous = queue.deduplication.get(key);
        if (previous !== undefined && nowMs - previous.atMs < deduplicationWindowMs) return previous.outcome;
        const outcome = this.enqueue(queue, input, nowMs, fifo);
        queue.deduplication.set(key, { outcome, atMs: nowMs });
        return outcome;
      }
      return this.enqueue(queue, input, nowMs, fifo);
    });
  }

  private enqueue(queue: FakeQueue, input: SendInput, nowMs: number, fifo: boolean, sourceArn?: string): SendOutcome {
    const delaySeconds = input.delaySeconds ?? Number(queue.description.attributes['DelaySeconds'] ?? 0);
    const messageId = this.nextId();
    const sequenceNumber = fifo ? String(this.sequenceCounter++) : undefined;
    queue.messages.push({
      messageId,
      body: input.body,
      attributes: input.attributes,
      systemAttributes: input.systemAttributes,
      senderId: input.senderId,
      sentTimestampMs: nowMs,
      visibleAtMs: nowMs + delaySeconds * 1000,
      receiveCount: 0,
      firstReceiveTimestampMs: 0,
      receiptHandle: undefined,
      groupId: input.groupId,
      deduplicationId: input.deduplicationId,
      sequenceNumber,
      deadLetterQueueSourceArn: sourceArn,
    });
    return sequenceNumber === undefined ? { messageId } : { messageId, sequenceNumber };
  }

  async receive(name: string, input: ReceiveInput): Promise<ReceivedMessage[]> {
    this.receiveCalls.push(input);
    const queue = this.queue(name);
    const fifo = queue.description.attributes['FifoQueue'] === 'true';
    const nowMs = this.clock.nowMs();
    const visibilitySeconds = input.visibilityTimeoutSeconds ?? Number(queue.description.attributes['VisibilityTimeout'] ?? 30);
    const blockedGroups = new Set<string>();
    if (fifo) for (const message of queue.messages) if (message.visibleAtMs > nowMs && message.receiveCount > 0 && message.groupId !== undefined) blockedGroups.add(message.groupId);
    const received: ReceivedMessage[] = [];
    for (const message of queue.messages) {
      if (received.length >= input.maxMessages) break;
      if (message.visibleAtMs > nowMs) {
        if (fifo && message.groupId !== undefined) blockedGroups.add(message.groupId);
        continue;
      }
      if (fifo && message.groupId !== undefined && blockedGroups.has(message.groupId)) continue;
      message.receiveCount++;
      if (message.receiveCount === 1) message.firstReceiveTimestampMs = nowMs;
      message.visibleAtMs = nowMs + visibilitySeconds * 1000;
      message.receiptHandle = `receipt-${this.nextId()}`;
      received.push(this.toReceived(message));
    }
    return received;
  }

  private toReceived(message: FakeMessage): ReceivedMessage {
    const received: ReceivedMessage = {
      messageId: message.messageId,
      receiptHandle: message.receiptHandle ?? '',
      body: message.body,
      attributes: message.attributes,
      systemAttributes: message.systemAttributes,
      senderId: message.senderId,
      sentTimestampMs: message.sentTimestampMs,
      receiveCount: message.receiveCount,
      firstReceiveTimestampMs: message.firstReceiveTimestampMs,
    };
    if (message.groupId !== undefined) received.groupId = message.groupId;
    if (message.deduplicationId !== undefined) received.deduplicationId = message.deduplicationId;
    if (message.sequenceNumber !== undefined) received.sequenceNumber = message.sequenceNumber;
    if (message.deadLetterQueueSourceArn !== undefined) received.deadLetterQueueSourceArn = message.deadLetterQueueSourceArn;
    return received;
  }

  async deleteMessages(name: string, receiptHandles: string[]): Promise<Array<BerthError | null>> {
    const queue = this.queue(name);
    return receiptHandles.map((handle) => {
      const index = queue.messages.findIndex((message) => message.receiptHandle === handle);
      if (index !== -1) {
        queue.messages.splice(index, 1);
        return null;
      }
      if (handle.startsWith('receipt-')) return null; // already deleted: SQS succeeds for a stale handle
      return new BerthError('ReceiptHandleIsInvalid', `The input receipt handle "${handle}" is not a valid receipt handle.`);
    });
  }

  async changeVisibility(name: string, changes: VisibilityChange[]): Promise<Array<BerthError | null>> {
    const queue = this.queue(name);
    const nowMs = this.clock.nowMs();
    return changes.map((change) => {
      const message = queue.messages.find((candidate) => candidate.receiptHandle === change.receiptHandle);
      if (message === undefined) {
        if (!change.receiptHandle.startsWith('receipt-')) return new BerthError('ReceiptHandleIsInvalid', `The input receipt handle "${change.receiptHandle}" is not a valid receipt handle.`);
        return new BerthError('MessageNotInflight', 'Message does not exist or is not available for visibility timeout change.');
      }
      if (message.visibleAtMs <= nowMs) return new BerthError('MessageNotInflight', 'Message does not exist or is not available for visibility timeout change.');
      message.visibleAtMs = nowMs + change.visibilityTimeoutSeconds * 1000;
      return null;
    });
  }

  async listDeadLetterSourceQueues(name: string): Promise<string[]> {
    this.queue(name);
    const arn = this.arn(name);
    const sources: string[] = [];
    for (const [sourceName, queue] of this.queues) {
      const policy = queue.description.attributes['RedrivePolicy'];
      if (policy === undefined) continue;
      try {
        if ((JSON.parse(policy) as { deadLetterTargetArn?: string }).deadLetterTargetArn === arn) sources.push(sourceName);
      } catch {
        // not a policy we wrote
      }
    }
    return sources.sort();
  }

  private queueNameOfArn(arn: string): string | undefined {
    const prefix = `arn:aws:sqs:${this.region}:${this.accountId}:`;
    return arn.startsWith(prefix) && this.queues.has(arn.slice(prefix.length)) ? arn.slice(prefix.length) : undefined;
  }

  /** Moves every message at once and records a COMPLETED task. */
  async startMessageMoveTask(sourceArn: string, destinationArn: string | undefined, maxNumberOfMessagesPerSecond: number | undefined): Promise<string> {
    const sourceName = this.queueNameOfArn(sourceArn);
    if (sourceName === undefined) throw new BerthError('ResourceNotFoundException', 'The resource that you specified for the SourceArn parameter doesn\'t exist.');
    const destinationName = destinationArn === undefined ? undefined : this.queueNameOfArn(destinationArn);
    if (destinationArn !== undefined && destinationName === undefined) {
      throw new BerthError('ResourceNotFoundException', 'The resource that you specified for the DestinationArn parameter doesn\'t exist.');
    }
    if (this.moveTasks.some((task) => task.sourceArn === sourceArn && task.status === 'RUNNING')) {
      throw new BerthError('UnsupportedOperation', 'There is already a task running for this source queue.');
    }
    const source = this.queue(sourceName);
    const nowMs = this.clock.nowMs();
    let moved = 0;
    for (const message of source.messages.splice(0)) {
      const targetName = destinationName ?? (message.deadLetterQueueSourceArn === undefined ? undefined : this.queueNameOfArn(message.deadLetterQueueSourceArn));
      const target = targetName === undefined ? undefined : this.queues.get(targetName);
      if (target === undefined) continue;
      this.enqueue(target, { body: message.body, attributes: message.attributes, systemAttributes: message.systemAttributes, senderId: message.senderId }, nowMs, false);
      moved++;
    }
    const task: MoveTask = {
      taskHandle: `task-${this.nextId()}`,
      status: 'COMPLETED',
      sourceArn,
      approximateNumberOfMessagesMoved: moved,
      approximateNumberOfMessagesToMove: moved,
      startedTimestampMs: nowMs,
    };
    if (destinationArn !== undefined) task.destinationArn = destinationArn;
    if (maxNumberOfMessagesPerSecond !== undefined) task.maxNumberOfMessagesPerSecond = maxNumberOfMessagesPerSecond;
    this.moveTasks.push(task);
    return task.taskHandle;
  }

  async listMessageMoveTasks(sourceArn: string, maxResults: number): Promise<MoveTask[]> {
    if (this.queueNameOfArn(sourceArn) === undefined) throw new BerthError('ResourceNotFoundException', 'The resource that you specified for the SourceArn parameter doesn\'t exist.');
    return this.moveTasks.filter((task) => task.sourceArn === sourceArn).reverse().slice(0, maxResults);
  }

  async cancelMessageMoveTask(taskHandle: string): Promise<number> {
    const task = this.moveTasks.find((candidate) => candidate.taskHandle === taskHandle);
    if (task === undefined) throw new BerthError('ResourceNotFoundException', 'The specified task handle doesn\'t exist.');
    if (task.status !== 'RUNNING') throw new BerthError('UnsupportedOperation', 'Only a RUNNING task can be cancelled.');
    task.status = 'CANCELLED';
    return task.approximateNumberOfMessagesMoved;
  }

  async peekMessages(name: string, maxMessages: number): Promise<ReceivedMessage[]> {
    return this.queue(name).messages.slice(0, maxMessages).map((message) => this.toReceived(message));
  }

  /** Test helper: puts a message in a queue as if dead-lettered from `sourceArn`. */
  injectDeadLetter(name: string, body: string, sourceArn: string): void {
    this.enqueue(this.queue(name), { body, attributes: {}, systemAttributes: {}, senderId: this.accountId }, this.clock.nowMs(), false, sourceArn);
  }

  /** Test helper: makes a running task so CancelMessageMoveTask has something to cancel. */
  addRunningMoveTask(sourceArn: string): string {
    const task: MoveTask = { taskHandle: `task-${this.nextId()}`, status: 'RUNNING', sourceArn, approximateNumberOfMessagesMoved: 3, approximateNumberOfMessagesToMove: 10, startedTimestampMs: this.clock.nowMs() };
    this.moveTasks.push(task);
    return task.taskHandle;
  }
}
