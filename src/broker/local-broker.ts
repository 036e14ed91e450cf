// The single-node queue service: every queue's partitions live on this node, queue
// metadata in a file beside them. Implements QueueService for the API layers.
//
// Topics (docs/topics.md): a topic is a queue created with Berth.Kind=topic whose
// partitions hold no logical queue 0; each subscription is a queue of its own name,
// metadata and incarnation (so its receipt handles are its own) created with
// Berth.Topic=<topic>, sharing the topic's partitions and addressing its own logical
// queue in them. metadata.json is the source of truth for which subscriptions exist and
// their settings; at open (and after each change) a topic's partitions are reconciled to
// it with Subscribe / Unsubscribe records, so a crash between the two heals at start.
//
// Layout of the data directory:
//   metadata.json                      queues, attributes, tags (FileMetadataStore)
//   queues/<incarnation>/p<k>/         partition k's log segments and checkpoint

import type { Clock } from '../core/clock.js';
import type { FileSystem } from '../core/filesystem.js';
import { assert } from '../core/assert.js';
import { BerthError } from '../protocol/errors.js';
import { sequenceNumberOf } from '../queue/machine.js';
import type { EnqueuePayload } from '../queue/records.js';
import type { QueueConfig, QueueCounts, ReceivedMessage, SendInput, SendOutcome } from '../queue/types.js';
import { FileMetadataStore, newQueueMetadata, type MetadataSnapshot, type MetadataStore, type QueueMetadata } from './metadata-store.js';
import { PartitionRunner, type PartitionLogger, type PartitionOptions } from './partition.js';
import { byReceipt, movedCopy, parseQueueConfig, partitionOfGroup, queueArn, queueNameFromArn, receiptHandleOf, receivedMessage, takenForMove, topicAttributes, type QueueIdentity } from './queue-calls.js';
import { checkSubscriptionConfig, checkTopicAttributes, kindOf, reconcileSubscriptions, refusePartitionCountOnSubscription, refuseOnSubscription, refuseOnTopic, refuseReceiveOnTopic, requireTopic, wantedSubscriptions } from './topics.js';
import { MoveTaskRunner } from './move-tasks.js';
import type { MoveTask, QueueDescription, QueueService, ReceiveInput, VisibilityChange } from './service.js';

export interface LocalBrokerOptions {
  fs: FileSystem;
  dataDirectory: string;
  clock: Clock;
  logger: PartitionLogger;
  region: string;
  accountId: string;
  /** New message ids and queue incarnations (crypto-random in production, seeded in simulation). */
  newId: () => string;
  newIncarnation: () => string;
  partitionOptions?: Partial<PartitionOptions>;
  metadataStore?: MetadataStore;
  /** Replicas available to a partition: 1 on a single node. */
  replicaSetSize?: number;
  hooks?: { onDurable?(queue: string, records: number): void };
}

interface OpenQueue {
  metadata: QueueMetadata;
  config: QueueConfig;
  partitions: PartitionRunner[];
  nextSendPartition: number;
  nextReceivePartition: number;
  /** The logical queue this queue reads in its partitions: 0 for a plain queue, the subscription's id for a subscription. */
  logicalQueueId: number;
}

const queueDeletedRecentlyMs = 60_000;

export class LocalBroker implements QueueService {
  readonly region: string;
  readonly accountId: string;
  private readonly queues = new Map<string, OpenQueue>();
  private readonly metadataStore: MetadataStore;
  private deletedRecently: Record<string, number> = {};
  private pendingRemoval: string[] = [];
  private readonly moveTasks: MoveTaskRunner;
  private metadataChain: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(private readonly options: LocalBrokerOptions) {
    this.region = options.region;
    this.accountId = options.accountId;
    this.metadataStore = options.metadataStore ?? new FileMetadataStore(options.fs, options.dataDirectory);
    this.moveTasks = new MoveTaskRunner(this, options.clock, options.logger, options.newId);
  }

  static async open(options: LocalBrokerOptions): Promise<LocalBroker> {
    const broker = new LocalBroker(options);
    await options.fs.mkdirp(`${options.dataDirectory}/queues`);
    const snapshot = await broker.metadataStore.load();
    broker.deletedRecently = snapshot.deletedRecently;
    broker.pendingRemoval = snapshot.pendingRemoval;
    const startedMs = options.clock.monotonicMs();
    const metadatas = Object.values(snapshot.queues);
    // Dead-letter queues are looked up by name when a message moves, so every queue is
    // registered before any partition can run maintenance.
    await Promise.all(metadatas.filter((metadata) => kindOf(metadata) !== 'subscription').map((metadata) => broker.openQueue(metadata)));
    for (const metadata of metadatas) if (kindOf(metadata) === 'subscription') broker.openSubscription(metadata);
    for (const queue of broker.queues.values()) if (kindOf(queue.metadata) === 'topic') await broker.reconcileTopic(queue);
    for (const incarnation of broker.pendingRemoval) await broker.removeQueueData(incarnation);
    options.logger.info(
      {
        queues: metadatas.length,
        durationMs: options.clock.monotonicMs() - startedMs,
        partitions: broker.partitionRecovery(),
      },
      'recovered queues',
    );
    return broker;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.moveTasks.stopAll();
    await Promise.all([...this.queues.values()].flatMap((queue) => queue.partitions.map((partition) => partition.close())));
    await this.metadataChain;
  }

  // ---- queues --------------------------------------------------------------------

  arnOf(name: string): string {
    return queueArn(this.region, this.accountId, name);
  }

  /** The queue name an ARN of this account names, or undefined. */
  nameFromArn(arn: string): string | undefined {
    return queueNameFromArn(arn, this.accountId);
  }

  async createQueue(name: string, attributes: Record<string, string>, tags: Record<string, string>): Promise<QueueDescription> {
    this.assertOpen();
    const existing = this.queues.get(name);
    if (existing !== undefined) {
      for (const [key, value] of Object.entries(attributes)) {
        if (existing.metadata.attributes[key] !== value) {
          throw new BerthError('QueueNameExists', `A queue already exists with the same name and a different value for attribute ${key}`);
        }
      }
      return describe(existing.metadata);
    }
    const deletedAtMs = this.deletedRecently[name];
    if (deletedAtMs !== undefined && this.options.clock.nowMs() - deletedAtMs < queueDeletedRecentlyMs) {
      throw new BerthError('QueueDeletedRecently', `You must wait 60 seconds after deleting a queue before you can create another with the same name (${name}).`);
    }
    const topicName = attributes[topicAttributes.topic];
    checkTopicAttributes(attributes, topicName !== undefined);
    if (topicName !== undefined) refusePartitionCountOnSubscription(attributes);
    const topic = topicName === undefined ? undefined : this.requireTopic(topicName);
    const config = topic === undefined ? this.configFor(attributes) : this.subscriptionConfig(topic, attributes);
    const metadata = newQueueMetadata(name, this.options.newIncarnation(), attributes, tags, this.options.clock.nowMs(), Number(attributes['PartitionCount'] ?? 1));
    if (kindOf(metadata) === 'topic') metadata.nextLogicalQueueId = 1;
    if (topic !== undefined) {
      metadata.partitionCount = topic.partitions.length;
      metadata.subscription = { topic: topic.metadata.name, logicalQueueId: topic.metadata.nextLogicalQueueId ?? 1 };
      topic.metadata.nextLogicalQueueId = metadata.subscription.logicalQueueId + 1;
    }
    assert(/^[0-9a-f]{16}$/.test(metadata.incarnation), 'queue incarnation must be 16 hex characters');
    // Reserve the name at once so a concurrent create sees it.
    const placeholder: OpenQueue = { metadata, config, partitions: [], nextSendPartition: 0, nextReceivePartition: 0, logicalQueueId: 0 };
    this.queues.set(name, placeholder);
    try {
      delete this.deletedRecently[name];
      await this.saveMetadata();
      if (topic === undefined) {
        await this.openQueue(metadata);
      } else {
        this.openSubscription(metadata);
        await this.reconcileTopic(topic);
      }
      const opened = this.queues.get(name);
      if (opened !== undefined && kindOf(metadata) === 'topic') await this.reconcileTopic(opened);
    } catch (error) {
      this.queues.delete(name);
      throw error;
    }
    return describe(metadata);
  }

  async deleteQueue(name: string): Promise<void> {
    this.assertOpen();
    const queue = this.requireQueue(name);
    this.queues.delete(name);
    this.deletedRecently[name] = this.options.clock.nowMs();
    const subscription = queue.metadata.subscription;
    if (subscription !== undefined) {
      // Unsubscribe: the topic's log stays; the logical queue and its hold on storage go.
      await this.saveMetadata();
      const topic = this.queues.get(subscription.topic);
      if (topic !== undefined) await this.reconcileTopic(topic);
      return;
    }
    // A topic takes its subscriptions with it.
    for (const [other, each] of [...this.queues.entries()]) {
      if (each.metadata.subscription?.topic === name) {
        this.queues.delete(other);
        this.deletedRecently[other] = this.options.clock.nowMs();
      }
    }
    this.pendingRemoval.push(queue.metadata.incarnation);
    await this.saveMetadata();
    await Promise.all(queue.partitions.map((partition) => partition.close()));
    await this.removeQueueData(queue.metadata.incarnation);
  }

  async describeQueue(name: string): Promise<QueueDescription> {
    return describe(this.requireQueue(name).metadata);
  }

  async listQueues(prefix?: string): Promise<string[]> {
    const names = [...this.queues.keys()].filter((name) => prefix === undefined || name.startsWith(prefix));
    return names.sort();
  }

  async setQueueAttributes(name: string, attributes: Record<string, string>): Promise<void> {
    this.assertOpen();
    const queue = this.requireQueue(name);
    const merged = { ...queue.metadata.attributes, ...attributes };
    checkTopicAttributes(merged, queue.metadata.subscription !== undefined);
    const topic = queue.metadata.subscription === undefined ? undefined : this.requireTopic(queue.metadata.subscription.topic);
    const config = topic === undefined ? this.configFor(merged) : this.subscriptionConfig(topic, merged);
    queue.metadata.attributes = merged;
    queue.metadata.lastModifiedTimestampMs = this.options.clock.nowMs();
    queue.config = config;
    await this.saveMetadata();
    if (topic !== undefined) await this.reconcileTopic(topic);
    else await Promise.all(queue.partitions.map((partition) => partition.setConfig(config)));
  }

  async setQueueTags(name: string, tags: Record<string, string>): Promise<void> {
    this.assertOpen();
    const queue = this.requireQueue(name);
    queue.metadata.tags = { ...tags };
    await this.saveMetadata();
  }

  async queueCounts(name: string): Promise<QueueCounts> {
    const queue = this.requireQueue(name);
    const total: QueueCounts = { visible: 0, inflight: 0, delayed: 0, oldestMessageAgeSeconds: 0 };
    for (const partition of queue.partitions) {
      const counts = partition.counts(queue.logicalQueueId);
      total.visible += counts.visible;
      total.inflight += counts.inflight;
      total.delayed += counts.delayed;
      total.oldestMessageAgeSeconds = Math.max(total.oldestMessageAgeSeconds, counts.oldestMessageAgeSeconds);
    }
    return total;
  }

  async purgeQueue(name: string): Promise<void> {
    const queue = this.requireQueue(name);
    refuseOnTopic(queue.metadata, 'PurgeQueue', 'purge each subscription instead');
    for (const partition of queue.partitions) await partition.purge(queue.logicalQueueId);
  }

  // ---- messages ------------------------------------------------------------------

  async send(name: string, messages: SendInput[]): Promise<Array<SendOutcome | BerthError>> {
    this.assertOpen();
    const queue = this.requireQueue(name);
    refuseOnSubscription(queue.metadata);
    const nowMs = this.options.clock.nowMs();
    const results: Array<SendOutcome | BerthError | undefined> = new Array(messages.length);
    const byPartition = new Map<number, Array<{ index: number; payload: EnqueuePayload }>>();
    messages.forEach((message, index) => {
      const replicaCount = message.replicaCount ?? queue.config.replicaCount;
      const replicaSetSize = this.options.replicaSetSize ?? 1;
      if (replicaCount > replicaSetSize) {
        results[index] = new BerthError(
          'ReplicaCountUnavailable',
          `Replica count ${replicaCount} is larger than the ${replicaSetSize} replica(s) this queue's partitions have; lower it or run a cluster with more nodes.`,
        );
        return;
      }
      const payload: EnqueuePayload = {
        messageId: this.options.newId(),
        body: message.body,
        attributes: message.attributes,
        systemAttributes: message.systemAttributes,
        groupId: message.groupId,
        deduplicationId: message.deduplicationId,
        senderId: message.senderId,
        sentTimestampMs: nowMs,
        delaySeconds: message.delaySeconds ?? queue.config.delaySeconds,
        replicaCount,
      };
      const partition = this.partitionForSend(queue, message.groupId);
      let list = byPartition.get(partition);
      if (list === undefined) byPartition.set(partition, (list = []));
      list.push({ index, payload });
    });
    await Promise.all(
      [...byPartition.entries()].map(async ([partitionIndex, entries]) => {
        const partition = queue.partitions[partitionIndex]!;
        let outcomes: Array<{ messageId: string; offset: number } | BerthError>;
        try {
          outcomes = await partition.send(entries.map((entry) => entry.payload));
        } catch (error) {
          const failure = error instanceof BerthError ? error : new BerthError('InternalError', 'send failed', { cause: error });
          outcomes = entries.map(() => failure);
        }
        entries.forEach((entry, position) => {
          const outcome = outcomes[position]!;
          results[entry.index] =
            outcome instanceof BerthError
              ? outcome
              : { messageId: outcome.messageId, ...(queue.config.fifo ? { sequenceNumber: sequenceNumberOf(outcome.offset) } : {}) };
        });
      }),
    );
    return results.map((result) => result ?? new BerthError('InternalError', 'message was not processed'));
  }

  async receive(name: string, input: ReceiveInput): Promise<ReceivedMessage[]> {
    this.assertOpen();
    const queue = this.requireQueue(name);
    refuseReceiveOnTopic(queue.metadata);
    const partitions = queue.partitions;
    const request = {
      maxMessages: input.maxMessages,
      visibilityTimeoutSeconds: input.visibilityTimeoutSeconds,
      attemptId: input.receiveRequestAttemptId,
      signal: input.signal,
      logicalQueueId: queue.logicalQueueId,
    };
    if (partitions.length === 1) {
      const deliveries = await partitions[0]!.receive({ ...request, waitTimeSeconds: input.waitTimeSeconds });
      return deliveries.map((delivery) => receivedMessage(identity(queue), 0, delivery));
    }
    // Several partitions: take what is ready anywhere, else long-poll the next in turn.
    const start = queue.nextReceivePartition++ % partitions.length;
    for (let step = 0; step < partitions.length; step++) {
      const index = (start + step) % partitions.length;
      const deliveries = await partitions[index]!.receive({ ...request, waitTimeSeconds: 0 });
      if (deliveries.length > 0) return deliveries.map((delivery) => receivedMessage(identity(queue), index, delivery));
    }
    const deliveries = await partitions[start]!.receive({ ...request, waitTimeSeconds: input.waitTimeSeconds });
    return deliveries.map((delivery) => receivedMessage(identity(queue), start, delivery));
  }

  async deleteMessages(name: string, receiptHandles: string[]): Promise<Array<BerthError | null>> {
    this.assertOpen();
    const queue = this.requireQueue(name);
    return byReceipt(identity(queue), receiptHandles.map((handle) => ({ handle, value: undefined })), (partition, items) =>
      queue.partitions[partition]!.deleteMessages(
        items.map((item) => item.receipt),
        queue.logicalQueueId,
      ),
    );
  }

  async changeVisibility(name: string, changes: VisibilityChange[]): Promise<Array<BerthError | null>> {
    this.assertOpen();
    const queue = this.requireQueue(name);
    return byReceipt(
      identity(queue),
      changes.map((change) => ({ handle: change.receiptHandle, value: change.visibilityTimeoutSeconds })),
      (partition, items) =>
        queue.partitions[partition]!.changeVisibility(
          items.map((item) => ({ receipt: item.receipt, visibilityTimeoutSeconds: item.value! })),
          queue.logicalQueueId,
        ),
    );
  }

  async peekMessages(name: string, maxMessages: number): Promise<ReceivedMessage[]> {
    const queue = this.requireQueue(name);
    const messages: ReceivedMessage[] = [];
    for (const [index, partition] of queue.partitions.entries()) {
      if (messages.length >= maxMessages) break;
      const deliveries = await partition.peek(maxMessages - messages.length, queue.logicalQueueId);
      for (const delivery of deliveries) messages.push(receivedMessage(identity(queue), index, delivery, false));
    }
    return messages;
  }

  // ---- dead-letter queues and move tasks -----------------------------------------

  async listDeadLetterSourceQueues(name: string): Promise<string[]> {
    this.requireQueue(name);
    const sources: string[] = [];
    for (const queue of this.queues.values()) {
      if (queue.config.redrive?.deadLetterQueueName === name) sources.push(queue.metadata.name);
    }
    return sources.sort();
  }

  startMessageMoveTask(sourceArn: string, destinationArn: string | undefined, maxNumberOfMessagesPerSecond: number | undefined): Promise<string> {
    return this.moveTasks.start(sourceArn, destinationArn, maxNumberOfMessagesPerSecond);
  }

  async listMessageMoveTasks(sourceArn: string, maxResults: number): Promise<MoveTask[]> {
    return this.moveTasks.list(sourceArn, maxResults);
  }

  async cancelMessageMoveTask(taskHandle: string): Promise<number> {
    return this.moveTasks.cancel(taskHandle);
  }

  /** Copies messages into a queue with their ids and send times kept (dead-letter moves and redrives). */
  async enqueueMoved(name: string, payloads: EnqueuePayload[], sourceArn: string | undefined): Promise<void> {
    const queue = this.requireQueue(name);
    refuseOnSubscription(queue.metadata);
    const byPartition = new Map<number, EnqueuePayload[]>();
    for (const payload of payloads) {
      const moved = movedCopy(payload, sourceArn, queue.config.replicaCount);
      const partition = this.partitionForSend(queue, payload.groupId);
      let list = byPartition.get(partition);
      if (list === undefined) byPartition.set(partition, (list = []));
      list.push(moved);
    }
    for (const [partition, list] of byPartition) {
      const outcomes = await queue.partitions[partition]!.send(list);
      const failure = outcomes.find((outcome): outcome is BerthError => outcome instanceof BerthError);
      if (failure !== undefined) throw failure;
    }
  }

  /** Internal receive + delete used by move tasks. */
  async takeMessages(name: string, maxMessages: number): Promise<Array<{ payload: EnqueuePayload; receiptHandle: string }>> {
    const queue = this.requireQueue(name);
    const taken: Array<{ payload: EnqueuePayload; receiptHandle: string }> = [];
    for (const [index, partition] of queue.partitions.entries()) {
      const deliveries = await partition.receive({ maxMessages: maxMessages - taken.length, waitTimeSeconds: 0, visibilityTimeoutSeconds: 60, logicalQueueId: queue.logicalQueueId });
      for (const delivery of deliveries) {
        taken.push({ payload: takenForMove(delivery.payload, delivery.sequenceOffset), receiptHandle: receiptHandleOf(identity(queue), index, delivery) });
      }
      if (taken.length >= maxMessages) break;
    }
    return taken;
  }

  hasQueue(name: string): boolean {
    return this.queues.has(name);
  }

  /** What recovery did for each partition when this broker opened. */
  partitionRecovery(): Array<{ partition: string } & PartitionRunner['recoveryFigures']> {
    return this.physicalQueues().flatMap((queue) => queue.partitions.map((partition) => ({ partition: partition.name, ...partition.recoveryFigures })));
  }

  /** Per-partition figures for metrics and the console. */
  partitionStats(): Array<{ queue: string; partition: string; endOffset: number; stats: PartitionRunner['logStats'] }> {
    return this.physicalQueues().flatMap((queue) =>
      queue.partitions.map((partition) => ({ queue: queue.metadata.name, partition: partition.name, endOffset: partition.endOffset, stats: partition.logStats })),
    );
  }

  // ---- internals -----------------------------------------------------------------

  /** Queues that own partitions (subscriptions share their topic's). */
  private physicalQueues(): OpenQueue[] {
    return [...this.queues.values()].filter((queue) => queue.metadata.subscription === undefined);
  }

  private requireTopic(name: string): OpenQueue {
    const topic = this.queues.get(name);
    requireTopic(name, topic === undefined || topic.partitions.length === 0 ? undefined : topic.metadata);
    return topic!;
  }

  /** A subscription's settings: its own attributes, the topic's FIFO-ness; the filter policy checked. */
  private subscriptionConfig(topic: OpenQueue, attributes: Record<string, string>): QueueConfig {
    const config = this.configFor(attributes);
    checkSubscriptionConfig(topic.metadata.name, topic.config.fifo, config, attributes);
    return config;
  }

  /** Registers a subscription over its topic's partitions (the topic must be open). */
  private openSubscription(metadata: QueueMetadata): void {
    const subscription = metadata.subscription;
    assert(subscription !== undefined, 'openSubscription of a queue that is no subscription');
    const topic = this.queues.get(subscription.topic);
    if (topic === undefined) {
      // Its topic is gone (deleted before a crash finished removing its subscriptions): drop it.
      this.options.logger.warn({ queue: metadata.name, topic: subscription.topic }, 'subscription without its topic; dropped');
      this.queues.delete(metadata.name);
      return;
    }
    const config = this.subscriptionConfig(topic, metadata.attributes);
    this.queues.set(metadata.name, { metadata, config, partitions: topic.partitions, nextSendPartition: 0, nextReceivePartition: 0, logicalQueueId: subscription.logicalQueueId });
  }

  /** Brings a topic's partitions in line with metadata.json (topics.ts, reconcileSubscriptions). */
  private async reconcileTopic(topic: OpenQueue): Promise<void> {
    const open = [...this.queues.values()].filter((queue) => queue.partitions.length > 0); // not a create's placeholder
    const wanted = wantedSubscriptions(topic.metadata, open.map((queue) => queue.metadata), (metadata) => this.queues.get(metadata.name)!.config);
    for (const partition of topic.partitions) await reconcileSubscriptions(partition, wanted);
  }

  private assertOpen(): void {
    if (this.closed) throw new BerthError('ServiceUnavailable', 'the server is shutting down');
  }

  private requireQueue(name: string): OpenQueue {
    const queue = this.queues.get(name);
    if (queue === undefined || queue.partitions.length === 0) {
      throw new BerthError('QueueDoesNotExist', 'The specified queue does not exist.');
    }
    return queue;
  }

  private configFor(attributes: Record<string, string>): QueueConfig {
    const config = parseQueueConfig(attributes, 1);
    const replicaSetSize = this.options.replicaSetSize ?? 1;
    if (config.replicaCount > replicaSetSize) {
      throw new BerthError(
        'InvalidAttributeValue',
        `Invalid value for the parameter ReplicaCount: ${config.replicaCount} is larger than the ${replicaSetSize} replica(s) available on this ${replicaSetSize === 1 ? 'single-node server' : 'cluster'}.`,
      );
    }
    return config;
  }

  private partitionForSend(queue: OpenQueue, groupId: string | undefined): number {
    const count = queue.partitions.length;
    if (count === 1) return 0;
    if (queue.config.fifo && groupId !== undefined) return partitionOfGroup(groupId, count);
    return queue.nextSendPartition++ % count;
  }

  private async openQueue(metadata: QueueMetadata): Promise<void> {
    const config = this.configFor(metadata.attributes);
    const partitions: PartitionRunner[] = [];
    for (let index = 0; index < metadata.partitionCount; index++) {
      const name = metadata.partitionCount === 1 ? metadata.name : `${metadata.name}#${index}`;
      partitions.push(
        await PartitionRunner.open({
          name,
          fs: this.options.fs,
          directory: `${this.options.dataDirectory}/queues/${metadata.incarnation}/p${index}`,
          config,
          clock: this.options.clock,
          logger: this.options.logger,
          options: this.options.partitionOptions,
          hooks: {
            deadLetter: (payloads, logicalQueueId) => this.deadLetter(this.logicalQueueName(metadata.name, logicalQueueId), payloads),
            onDurable: (records) => this.options.hooks?.onDurable?.(metadata.name, records),
          },
        }),
      );
    }
    const existing = this.queues.get(metadata.name);
    if (existing !== undefined && existing.metadata.incarnation === metadata.incarnation) {
      existing.partitions = partitions;
      existing.config = config;
    } else {
      this.queues.set(metadata.name, { metadata, config, partitions, nextSendPartition: 0, nextReceivePartition: 0, logicalQueueId: 0 });
    }
  }

  /** The queue name a logical queue of this queue's partitions answers to: the queue itself (0) or one of its subscriptions. */
  private logicalQueueName(physicalName: string, logicalQueueId: number): string {
    if (logicalQueueId === 0) return physicalName;
    for (const queue of this.queues.values()) {
      const subscription = queue.metadata.subscription;
      if (subscription?.topic === physicalName && subscription.logicalQueueId === logicalQueueId) return queue.metadata.name;
    }
    return `${physicalName}#subscription-${logicalQueueId}`; // removed meanwhile: the dead-letter move fails and is retried, then ignored
  }

  private async deadLetter(sourceName: string, payloads: EnqueuePayload[]): Promise<void> {
    const source = this.queues.get(sourceName);
    const target = source?.config.redrive?.deadLetterQueueName;
    if (target === undefined || !this.queues.has(target)) {
      throw new Error(`dead-letter queue ${target ?? '(none)'} of ${sourceName} does not exist`);
    }
    await this.enqueueMoved(target, payloads, this.arnOf(sourceName));
  }

  private saveMetadata(): Promise<void> {
    const snapshot: MetadataSnapshot = {
      queues: Object.fromEntries([...this.queues.entries()].map(([name, queue]) => [name, queue.metadata])),
      deletedRecently: this.pruneDeletedRecently(),
      pendingRemoval: [...this.pendingRemoval],
    };
    const save = this.metadataChain.then(() => this.metadataStore.save(snapshot));
    this.metadataChain = save.catch(() => undefined);
    return save;
  }

  private pruneDeletedRecently(): Record<string, number> {
    const nowMs = this.options.clock.nowMs();
    for (const [name, atMs] of Object.entries(this.deletedRecently)) {
      if (nowMs - atMs >= queueDeletedRecentlyMs) delete this.deletedRecently[name];
    }
    return { ...this.deletedRecently };
  }

  private async removeQueueData(incarnation: string): Promise<void> {
    try {
      await this.options.fs.remove(`${this.options.dataDirectory}/queues/${incarnation}`);
      this.pendingRemoval = this.pendingRemoval.filter((pending) => pending !== incarnation);
      await this.saveMetadata();
    } catch (error) {
      this.options.logger.warn({ err: error, incarnation }, 'could not remove a deleted queue\'s data yet; will retry at next start');
    }
  }
}

function identity(queue: OpenQueue): QueueIdentity {
  return { incarnation: queue.metadata.incarnation, partitionCount: queue.partitions.length, fifo: queue.config.fifo };
}

function describe(metadata: QueueMetadata): QueueDescription {
  return {
    name: metadata.name,
    attributes: { ...metadata.attributes },
    tags: { ...metadata.tags },
    createdTimestampMs: metadata.createdTimestampMs,
    lastModifiedTimestampMs: metadata.lastModifiedTimestampMs,
  };
}
