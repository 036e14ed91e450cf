// Topics and subscriptions on a cluster: real etcd, three real nodes. A topic's partitions
// are replicated like any queue's; each subscription is an etcd entry routed to its topic's
// partitions, whose primaries write its Subscribe / Unsubscribe records (docs/topics.md).
// Through the AWS SDK, each call entering through a different node: fan-out with a filter,
// counts and purge per subscription, unsubscribe, kill -9 of a topic partition's primary
// (the new primary keeps every subscription, a subscription created after the failover
// starts at the log's end), deleting the topic; then the native SDK routing to primaries.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  DeleteQueueCommand,
  ListQueuesCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { Etcd3 } from 'etcd3';
import { Berth } from '../src/client/index.js';
import { clusterClients, startCluster, type TestCluster } from './harness/cluster.js';
import { takeDistinctBodies } from './harness/native.js';
import { distinctBodies, drain, expectSqsError, queueArn, queueAttributes } from './harness/sqs.js';

const urlOf = (cluster: TestCluster, id: string, queue: string): string => `${cluster.node(id).url}/000000000000/${queue}`;

/** Publishes in batches of 10; a batch that fails as a whole (a primary just died) is sent again: at least once. */
async function publish(client: SQSClient, topicUrl: string, bodies: string[], region: (index: number) => string = () => 'us'): Promise<void> {
  for (let start = 0; start < bodies.length; start += 10) {
    const entries = bodies.slice(start, start + 10).map((body, offset) => ({
      Id: String(offset),
      MessageBody: body,
      MessageAttributes: { region: { DataType: 'String', StringValue: region(start + offset) } },
    }));
    for (let attempt = 0; ; attempt++) {
      try {
        const response = await client.send(new SendMessageBatchCommand({ QueueUrl: topicUrl, Entries: entries }));
        assert.equal(response.Failed?.length ?? 0, 0, JSON.stringify(response.Failed));
        break;
      } catch (error) {
        if (error instanceof assert.AssertionError || attempt >= 20) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  }
}

/**
 * Receives and deletes until `count` distinct bodies were seen. A receive that fails while a
 * partition has no primary yet (ServiceUnavailable, as SQS answers when it loses a receive's
 * answer) is tried again: it is the failover window, not a lost message.
 */
async function drainDistinct(client: SQSClient, queueUrl: string, count: number, timeoutMs = 60_000): Promise<string[]> {
  const seen = new Set<string>();
  const errors: string[] = [];
  const deadline = Date.now() + timeoutMs;
  while (seen.size < count) {
    assert.ok(Date.now() < deadline, `timed out on ${queueUrl}: ${seen.size} of ${count} (${[...seen].join(', ')}); errors: ${errors.slice(-3).join('; ')}`);
    try {
      const response = await client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
      for (const message of response.Messages ?? []) {
        seen.add(message.Body!);
        await client.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle! }));
      }
    } catch (error) {
      errors.push(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  return [...seen].sort();
}

describe('topics on a cluster (3 nodes, real etcd)', { timeout: 300_000 }, () => {
  let cluster: TestCluster;
  const clients = clusterClients(() => cluster);
  let berth: Berth | undefined;

  before(async () => {
    cluster = await startCluster({ nodes: 3, native: true });
  });

  after(async () => {
    await berth?.close().catch(() => undefined);
    clients.destroyAll();
    await cluster?.stop();
  });

  test('fan-out with a filter, counts and purge per subscription, unsubscribe, kill -9 of a primary, delete the topic', async () => {
    const [n1, n2, n3] = ['n1', 'n2', 'n3'];
    const create = (via: string, name: string, attributes: Record<string, string>): Promise<unknown> =>
      clients.of(via).send(new CreateQueueCommand({ QueueName: name, Attributes: attributes as never }));
    await create(n1, 'events', { 'Berth.Kind': 'topic', PartitionCount: '2', ReplicaCount: '2' });
    await create(n2, 'events-a', { 'Berth.Topic': 'events', VisibilityTimeout: '60' });
    await create(n3, 'events-b', { 'Berth.Topic': 'events' });
    await create(n1, 'events-eu', { 'Berth.Topic': 'events', 'Berth.FilterPolicy': JSON.stringify({ region: ['eu'] }) });

    const bodies = Array.from({ length: 40 }, (_, index) => `e-${String(index).padStart(2, '0')}`);
    await publish(clients.of(n2), urlOf(cluster, n2, 'events'), bodies, (index) => (index % 4 === 0 ? 'eu' : 'us'));
    // Each subscription holds every message (the filter one the matching ones); the topic holds none itself.
    assert.equal((await queueAttributes(clients.of(n3), urlOf(cluster, n3, 'events-a'), ['ApproximateNumberOfMessages'])).ApproximateNumberOfMessages, '40');
    assert.equal((await queueAttributes(clients.of(n1), urlOf(cluster, n1, 'events-b'), ['ApproximateNumberOfMessages'])).ApproximateNumberOfMessages, '40');
    assert.equal((await queueAttributes(clients.of(n2), urlOf(cluster, n2, 'events-eu'), ['ApproximateNumberOfMessages'])).ApproximateNumberOfMessages, '10');
    assert.equal((await queueAttributes(clients.of(n2), urlOf(cluster, n2, 'events'), ['ApproximateNumberOfMessages'])).ApproximateNumberOfMessages, '0');
    assert.deepEqual(distinctBodies(await drain(clients.of(n3), urlOf(cluster, n3, 'events-a'), 40)), bodies);
    assert.deepEqual(distinctBodies(await drain(clients.of(n2), urlOf(cluster, n2, 'events-eu'), 10)), bodies.filter((_, index) => index % 4 === 0));
    await clients.of(n2).send(new PurgeQueueCommand({ QueueUrl: urlOf(cluster, n2, 'events-b') }));
    assert.equal((await queueAttributes(clients.of(n1), urlOf(cluster, n1, 'events-b'), ['ApproximateNumberOfMessages'])).ApproximateNumberOfMessages, '0');

    // Wrong-way calls answer as on a single node.
    const toSubscription = await expectSqsError(clients.of(n1).send(new SendMessageCommand({ QueueUrl: urlOf(cluster, n1, 'events-a'), MessageBody: 'x' })), 'InvalidParameterValue');
    assert.match(toSubscription.message, /subscription of topic events/);
    await expectSqsError(clients.of(n3).send(new ReceiveMessageCommand({ QueueUrl: urlOf(cluster, n3, 'events') })), 'UnsupportedOperation');
    await expectSqsError(clients.of(n3).send(new PurgeQueueCommand({ QueueUrl: urlOf(cluster, n3, 'events') })), 'UnsupportedOperation');
    await expectSqsError(create(n2, 'events-x', { 'Berth.Topic': 'nope' }), 'QueueDoesNotExist');
    await expectSqsError(create(n2, 'events-y', { 'Berth.Topic': 'events-a' }), 'InvalidParameterValue');
    await expectSqsError(create(n2, 'events-z.fifo', { 'Berth.Topic': 'events', FifoQueue: 'true' }), 'InvalidParameterValue');
    await expectSqsError(create(n2, 'events-p', { 'Berth.Topic': 'events', PartitionCount: '2' }), 'InvalidParameterValue');

    // Unsubscribe: events-b goes; the others keep receiving.
    await clients.of(n3).send(new DeleteQueueCommand({ QueueUrl: urlOf(cluster, n3, 'events-b') }));
    await expectSqsError(queueAttributes(clients.of(n1), urlOf(cluster, n1, 'events-b')), 'QueueDoesNotExist');
    await publish(clients.of(n1), urlOf(cluster, n1, 'events'), ['after-unsubscribe']);
    assert.deepEqual(distinctBodies(await drain(clients.of(n1), urlOf(cluster, n1, 'events-a'), 1)), ['after-unsubscribe']);

    // kill -9 of partition 0's primary: its successor serves the same subscriptions.
    const [primary] = await cluster.settledPrimaries('events', 2);
    const live = ['n1', 'n2', 'n3'].filter((id) => id !== primary);
    await cluster.kill9(primary!);
    const late = Array.from({ length: 20 }, (_, index) => `late-${String(index).padStart(2, '0')}`);
    await publish(clients.of(live[0]!), urlOf(cluster, live[0]!, 'events'), late, (index) => (index % 2 === 0 ? 'eu' : 'us'));
    assert.deepEqual(await drainDistinct(clients.of(live[1]!), urlOf(cluster, live[1]!, 'events-a'), 20), late);
    assert.deepEqual(await drainDistinct(clients.of(live[0]!), urlOf(cluster, live[0]!, 'events-eu'), 10), late.filter((_, index) => index % 2 === 0));
    // A subscription created after the failover starts at the log's end.
    await create(live[1]!, 'events-c', { 'Berth.Topic': 'events' });
    await publish(clients.of(live[0]!), urlOf(cluster, live[0]!, 'events'), ['after-failover']);
    assert.deepEqual(await drainDistinct(clients.of(live[0]!), urlOf(cluster, live[0]!, 'events-c'), 1), ['after-failover']);
    assert.deepEqual(await drainDistinct(clients.of(live[1]!), urlOf(cluster, live[1]!, 'events-a'), 1), ['after-failover']);
    await cluster.start(primary!);

    // Deleting the topic takes its subscriptions with it.
    await clients.of(primary!).send(new DeleteQueueCommand({ QueueUrl: urlOf(cluster, primary!, 'events') }));
    await expectSqsError(queueAttributes(clients.of(primary!), urlOf(cluster, primary!, 'events-a')), 'QueueDoesNotExist');
    // Another node learns of the delete with its next view of etcd.
    await cluster.waitFor(
      () => queueAttributes(clients.of(live[0]!), urlOf(cluster, live[0]!, 'events-a')).then(() => false, (error: Error) => error.name === 'QueueDoesNotExist'),
      `events-a to be gone on ${live[0]}`,
      10_000,
    );
    await cluster.waitFor(
      async () => ((await clients.of(live[1]!).send(new ListQueuesCommand({ QueueNamePrefix: 'events' }))).QueueUrls ?? []).length === 0,
      `no events* queue listed on ${live[1]}`,
      10_000,
    );
  });

  test('a subscription dead-letters to a queue of its own; the other subscription keeps the message', async () => {
    const client = clients.of('n2');
    await client.send(new CreateQueueCommand({ QueueName: 'jobs', Attributes: { 'Berth.Kind': 'topic' } as never }));
    await client.send(new CreateQueueCommand({ QueueName: 'jobs-dlq' }));
    const redrive = JSON.stringify({ deadLetterTargetArn: queueArn('jobs-dlq'), maxReceiveCount: 1 });
    await client.send(new CreateQueueCommand({ QueueName: 'jobs-strict', Attributes: { 'Berth.Topic': 'jobs', RedrivePolicy: redrive } as never }));
    await client.send(new CreateQueueCommand({ QueueName: 'jobs-lenient', Attributes: { 'Berth.Topic': 'jobs' } as never }));
    const sent = await client.send(new SendMessageCommand({ QueueUrl: urlOf(cluster, 'n2', 'jobs'), MessageBody: 'poison' }));
    await cluster.waitFor(
      async () => {
        await client.send(new ReceiveMessageCommand({ QueueUrl: urlOf(cluster, 'n2', 'jobs-strict'), VisibilityTimeout: 0, WaitTimeSeconds: 1 }));
        return (await queueAttributes(client, urlOf(cluster, 'n2', 'jobs-dlq'), ['ApproximateNumberOfMessages'])).ApproximateNumberOfMessages === '1';
      },
      'the message to reach jobs-dlq',
      30_000,
    );
    const [dead] = await drain(client, urlOf(cluster, 'n2', 'jobs-dlq'), 1, { extra: { MessageSystemAttributeNames: ['All'] } });
    assert.equal(dead?.MessageId, sent.MessageId);
    assert.equal(dead?.Attributes?.DeadLetterQueueSourceArn, queueArn('jobs-strict'));
    const [kept] = await drain(client, urlOf(cluster, 'n2', 'jobs-lenient'), 1);
    assert.equal(kept?.MessageId, sent.MessageId, 'jobs-lenient still has it');
  });

  test('a FIFO topic over two partitions: each subscription gets every group in order', async () => {
    const client = clients.of('n1');
    await client.send(new CreateQueueCommand({ QueueName: 'orders.fifo', Attributes: { 'Berth.Kind': 'topic', FifoQueue: 'true', PartitionCount: '2' } as never }));
    await expectSqsError(client.send(new CreateQueueCommand({ QueueName: 'orders-plain', Attributes: { 'Berth.Topic': 'orders.fifo' } as never })), 'InvalidParameterValue');
    for (const name of ['orders-a.fifo', 'orders-b.fifo']) {
      await clients.of('n2').send(new CreateQueueCommand({ QueueName: name, Attributes: { 'Berth.Topic': 'orders.fifo', FifoQueue: 'true' } as never }));
    }
    const groups = ['g0', 'g1', 'g2', 'g3'];
    for (let index = 0; index < 40; index += 10) {
      const entries = Array.from({ length: 10 }, (_, offset) => {
        const sequence = index + offset;
        const group = groups[sequence % groups.length]!;
        return { Id: String(offset), MessageBody: `${group}:${sequence}`, MessageGroupId: group, MessageDeduplicationId: `d-${sequence}` };
      });
      const response = await clients.of('n3').send(new SendMessageBatchCommand({ QueueUrl: urlOf(cluster, 'n3', 'orders.fifo'), Entries: entries }));
      assert.equal(response.Failed?.length ?? 0, 0, JSON.stringify(response.Failed));
    }
    for (const name of ['orders-a.fifo', 'orders-b.fifo']) {
      const received = await drain(clients.of('n3'), urlOf(cluster, 'n3', name), 40);
      const byGroup = new Map<string, number[]>();
      for (const message of received) {
        const [group, sequence] = message.Body!.split(':');
        byGroup.set(group!, [...(byGroup.get(group!) ?? []), Number(sequence)]);
      }
      for (const group of groups) {
        const expected = Array.from({ length: 10 }, (_, offset) => groups.indexOf(group) + offset * groups.length);
        assert.deepEqual(byGroup.get(group), expected, `${name}: group ${group} in publish order`);
      }
    }
  });

  test('a create that stopped between etcd and the logs heals: the primaries subscribe from their next view; the controller removes a subscription whose topic is gone', async () => {
    // What a node that died right after writing a subscription's entry leaves behind: the
    // entry in etcd and no Subscribe record in any partition. Written here by hand.
    const client = clients.of('n3');
    await client.send(new CreateQueueCommand({ QueueName: 'feed', Attributes: { 'Berth.Kind': 'topic', PartitionCount: '2' } as never }));
    const etcd = new Etcd3({ hosts: cluster.etcdUrl });
    try {
      const topic = JSON.parse((await etcd.get('/berth/queues/feed').string())!) as { incarnation: string; nextLogicalQueueId: number; partitionCount: number };
      const logicalQueueId = topic.nextLogicalQueueId;
      await etcd.put('/berth/queues/feed').value(JSON.stringify({ ...topic, nextLogicalQueueId: logicalQueueId + 1 }));
      const entry = (name: string, topicName: string, topicIncarnation: string): string =>
        JSON.stringify({
          name,
          incarnation: 'ab'.repeat(8),
          attributes: { 'Berth.Topic': topicName },
          tags: {},
          createdTimestampMs: Date.now(),
          lastModifiedTimestampMs: Date.now(),
          partitionCount: topic.partitionCount,
          subscription: { topic: topicName, logicalQueueId, topicIncarnation },
        });
      await etcd.put('/berth/queues/feed-half').value(entry('feed-half', 'feed', topic.incarnation));
      // Publish a probe at a time until one reaches the half-made subscription.
      let probes = 0;
      await cluster.waitFor(
        async () => {
          await client.send(new SendMessageCommand({ QueueUrl: urlOf(cluster, 'n3', 'feed'), MessageBody: `probe-${probes++}` }));
          const received = await client.send(new ReceiveMessageCommand({ QueueUrl: urlOf(cluster, 'n3', 'feed-half'), WaitTimeSeconds: 1 }));
          return (received.Messages?.length ?? 0) > 0;
        },
        'a probe to reach feed-half',
        30_000,
      );
      // A subscription of a topic that no longer exists (a topic delete that stopped halfway).
      await etcd.put('/berth/queues/ghost').value(entry('ghost', 'gone', 'cd'.repeat(8)));
      await cluster.waitFor(async () => (await etcd.get('/berth/queues/ghost').string()) === null, 'the controller to remove ghost', 10_000);
      assert.ok((await etcd.get('/berth/deleted/ghost').string()) !== null, 'ghost counts as deleted recently');
    } finally {
      etcd.close();
    }
  });

  test('the native SDK: createTopic, subscribe, publish and receive, each call sent to the partition primaries', async () => {
    const port = cluster.node('n2').nativePort!;
    berth = await Berth.connect({ url: `berth://127.0.0.1:${port}`, cluster: true });
    await berth.createTopic('news', { attributes: { PartitionCount: '3', ReplicaCount: '2' } });
    await berth.subscribe('news', 'news-all');
    await berth.subscribe('news', 'news-sport', { filterPolicy: { section: [{ prefix: 'sport' }] } });
    const bodies = Array.from({ length: 30 }, (_, index) => `n-${String(index).padStart(2, '0')}`);
    const results = await berth.publish(
      'news',
      bodies.map((body, index) => ({ body, attributes: { section: { dataType: 'String', stringValue: index % 3 === 0 ? 'sport/tennis' : 'politics' } } })),
    );
    assert.ok(results.every((result) => 'messageId' in result), JSON.stringify(results));
    const take = (queue: string, count: number): Promise<string[]> => takeDistinctBodies(berth!, queue, count, 500);
    assert.deepEqual(await take('news-all', 30), bodies);
    assert.deepEqual(await take('news-sport', 10), bodies.filter((_, index) => index % 3 === 0));
    assert.equal((await berth.queueCounts('news-all')).visible, 0);
    await berth.unsubscribe('news-sport');
    assert.deepEqual(await berth.listQueues('news'), ['news', 'news-all']);
  });
});
