// Topics and subscriptions (docs/topics.md): the rules the single-node broker and the
// cluster node apply alike. A topic is a queue created with Berth.Kind=topic; each
// subscription is a queue of its own name and incarnation created with Berth.Topic=<topic>,
// reading its own logical queue in the topic's partitions. The queue metadata (metadata.json
// on a single node, etcd in a cluster) says which subscriptions exist; a topic partition's
// log is brought in line with it by Subscribe / Unsubscribe records (reconcileSubscriptions).

import { BerthError } from '../protocol/errors.js';
import { parseFilterPolicy } from '../queue/filter.js';
import type { QueueConfig } from '../queue/types.js';
import type { QueueMetadata } from './metadata-store.js';
import { topicAttributes } from './queue-calls.js';

export type QueueKind = 'queue' | 'topic' | 'subscription';

export function kindOf(metadata: QueueMetadata): QueueKind {
  if (metadata.subscription !== undefined) return 'subscription';
  return metadata.attributes[topicAttributes.kind] === 'topic' ? 'topic' : 'queue';
}

/** A queue's part in a topic, from its attributes as described (for displays): nothing for a plain queue. */
export function topicRoleOf(attributes: Record<string, string>): { kind?: 'topic' | 'subscription'; topic?: string } {
  const topic = attributes[topicAttributes.topic];
  if (topic !== undefined) return { kind: 'subscription', topic };
  return attributes[topicAttributes.kind] === 'topic' ? { kind: 'topic' } : {};
}

/** Topic attributes that do not go together (the SQS layer has checked each value alone). */
export function checkTopicAttributes(attributes: Record<string, string>, subscription: boolean): void {
  const filterPolicy = attributes[topicAttributes.filterPolicy];
  if (!subscription && filterPolicy !== undefined && filterPolicy !== '') {
    throw new BerthError('InvalidParameterValue', `${topicAttributes.filterPolicy} applies to subscriptions only: create the queue with ${topicAttributes.topic}=<topic name> too.`);
  }
  if (subscription && attributes[topicAttributes.kind] === 'topic') {
    throw new BerthError('InvalidParameterValue', `A queue is either a topic (${topicAttributes.kind}=topic) or a subscription (${topicAttributes.topic}), not both.`);
  }
}

/** At a subscription's create (PartitionCount is create-only, so a later change never carries it). */
export function refusePartitionCountOnSubscription(attributes: Record<string, string>): void {
  if (attributes['PartitionCount'] !== undefined) {
    throw new BerthError('InvalidParameterValue', `A subscription reads its topic's partitions: leave PartitionCount out (set it on the topic).`);
  }
}

/** The metadata of the topic a new subscription names: it must exist and be a topic. */
export function requireTopic(name: string, metadata: QueueMetadata | undefined): QueueMetadata {
  if (metadata === undefined) {
    throw new BerthError('QueueDoesNotExist', `The topic ${name} named by ${topicAttributes.topic} does not exist; create it first with CreateQueue and attribute ${topicAttributes.kind}=topic.`);
  }
  if (kindOf(metadata) !== 'topic') {
    throw new BerthError('InvalidParameterValue', `Queue ${name} named by ${topicAttributes.topic} is not a topic (it was not created with ${topicAttributes.kind}=topic).`);
  }
  return metadata;
}

/** A subscription's own settings must agree with its topic's FIFO-ness, and its filter policy must parse. */
export function checkSubscriptionConfig(topicName: string, topicFifo: boolean, config: QueueConfig, attributes: Record<string, string>): void {
  if (config.fifo !== topicFifo) {
    throw new BerthError(
      'InvalidParameterValue',
      topicFifo
        ? `Topic ${topicName} is FIFO: its subscriptions must be FIFO queues too (name ending .fifo, FifoQueue=true).`
        : `Topic ${topicName} is a standard topic: its subscriptions must be standard queues.`,
    );
  }
  const filterPolicy = attributes[topicAttributes.filterPolicy];
  if (filterPolicy !== undefined && filterPolicy !== '') {
    const parsed = parseFilterPolicy(filterPolicy);
    if ('error' in parsed) throw new BerthError('InvalidParameterValue', `Value for parameter ${topicAttributes.filterPolicy} is invalid. Reason: ${parsed.error}`);
  }
}

export function refuseOnTopic(metadata: QueueMetadata, operation: string, instead: string): void {
  if (kindOf(metadata) === 'topic') {
    throw new BerthError('UnsupportedOperation', `${operation} is not supported on topic ${metadata.name}: ${instead}.`);
  }
}

export function refuseReceiveOnTopic(metadata: QueueMetadata): void {
  refuseOnTopic(metadata, 'ReceiveMessage', `receive from one of its subscriptions (a queue created with attribute ${topicAttributes.topic}=${metadata.name})`);
}

export function refuseOnSubscription(metadata: QueueMetadata): void {
  const subscription = metadata.subscription;
  if (subscription !== undefined) {
    throw new BerthError(
      'InvalidParameterValue',
      `Queue ${metadata.name} is a subscription of topic ${subscription.topic}: it only receives. Publish with SendMessage to the topic's queue URL.`,
    );
  }
}

/** True when `metadata` is a subscription of this topic (and not of an earlier topic of the same name). */
export function subscribesTo(metadata: QueueMetadata, topic: QueueMetadata): boolean {
  const subscription = metadata.subscription;
  return subscription !== undefined && subscription.topic === topic.name && (subscription.topicIncarnation ?? topic.incarnation) === topic.incarnation;
}

export interface WantedSubscription {
  config: QueueConfig;
  filterPolicy: string | undefined;
}

/** The logical queues a topic's partitions should hold: one per subscription the metadata names. */
export function wantedSubscriptions(topic: QueueMetadata, queues: Iterable<QueueMetadata>, configOf: (subscription: QueueMetadata) => QueueConfig): Map<number, WantedSubscription> {
  const wanted = new Map<number, WantedSubscription>();
  for (const metadata of queues) {
    if (!subscribesTo(metadata, topic)) continue;
    const filterPolicy = metadata.attributes[topicAttributes.filterPolicy];
    wanted.set(metadata.subscription!.logicalQueueId, { config: configOf(metadata), filterPolicy: filterPolicy === '' ? undefined : filterPolicy });
  }
  return wanted;
}

/** What a topic partition offers reconcileSubscriptions (PartitionRunner, as primary). */
export interface SubscribablePartition {
  subscriptions(): Array<{ logicalQueueId: number; config?: QueueConfig; filterPolicy?: string }>;
  subscribe(logicalQueueId: number, config: QueueConfig, filterPolicy: string | undefined): Promise<void>;
  unsubscribe(logicalQueueId: number): Promise<void>;
}

/** The records that would bring the partition in line: logical queues to end, subscriptions to start or change. */
function subscriptionChanges(partition: SubscribablePartition, wanted: Map<number, WantedSubscription>): { ended: number[]; started: Array<[number, WantedSubscription]> } {
  const present = new Map(partition.subscriptions().map((each) => [each.logicalQueueId, each]));
  const ended = [...present.keys()].filter((id) => !wanted.has(id));
  const started = [...wanted].filter(([id, settings]) => {
    const current = present.get(id);
    return current === undefined || JSON.stringify(current.config) !== JSON.stringify(settings.config) || current.filterPolicy !== settings.filterPolicy;
  });
  return { ended, started };
}

export function subscriptionsDiffer(partition: SubscribablePartition, wanted: Map<number, WantedSubscription>): boolean {
  const changes = subscriptionChanges(partition, wanted);
  return changes.ended.length > 0 || changes.started.length > 0;
}

/**
 * Brings a topic partition's log in line with the metadata: an Unsubscribe record for each
 * logical queue no subscription names (logical queue 0 included: a topic has none), a
 * Subscribe record for each subscription it lacks or whose settings differ.
 */
export async function reconcileSubscriptions(partition: SubscribablePartition, wanted: Map<number, WantedSubscription>): Promise<void> {
  const { ended, started } = subscriptionChanges(partition, wanted);
  for (const id of ended) await partition.unsubscribe(id);
  for (const [id, settings] of started) await partition.subscribe(id, settings.config, settings.filterPolicy);
}
