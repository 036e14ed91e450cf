// Topics with subscriptions against a real `berth serve`: a topic is one log; each
// subscription is a queue of its own over it (docs/topics.md). Through the AWS SDK:
// fan-out to three subscriptions, a filter subscription, the errors that say what to do,
// a slow subscription holding storage while the others advance (small segments), and a
// restart keeping subscriptions and their state.

import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  type Message,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { Berth, InvalidRequestError } from '../src/client/index.js';
import { freePort, makeTempDir, sqsClient, startBerth, waitUntil, type BerthProcess } from './harness/server.js';
import { takeDistinctBodies } from './harness/native.js';
import { distinctBodies, drain, expectSqsError, queueArn, queueAttributes, receiveUntil } from './harness/sqs.js';

async function createTopic(client: SQSClient, name: string): Promise<string> {
  const created = await client.send(new CreateQueueCommand({ QueueName: name, Attributes: { 'Berth.Kind': 'topic' } as never }));
  return created.QueueUrl!;
}

async function subscribe(client: SQSClient, topic: string, name: string, attributes: Record<string, string> = {}): Promise<string> {
  const created = await client.send(new CreateQueueCommand({ QueueName: name, Attributes: { 'Berth.Topic': topic, ...attributes } as never }));
  return created.QueueUrl!;
}

async function publish(client: SQSClient, topicUrl: string, bodies: string[], attributes: (index: number) => Record<string, { DataType: string; StringValue: string }> = () => ({})): Promise<void> {
  for (let start = 0; start < bodies.length; start += 10) {
    const entries = bodies.slice(start, start + 10).map((body, offset) => ({ Id: String(offset), MessageBody: body, MessageAttributes: attributes(start + offset) }));
    const response = await client.send(new SendMessageBatchCommand({ QueueUrl: topicUrl, Entries: entries }));
    assert.equal(response.Failed?.length ?? 0, 0, JSON.stringify(response.Failed));
  }
}

function bodiesOf(messages: Message[]): string[] {
  return messages.map((message) => message.Body!).sort();
}

describe('topics through the SQS API', () => {
  let server: BerthProcess;
  let client: SQSClient;

  before(async () => {
    server = await startBerth({ args: ['--log-level', 'warn'] });
    client = sqsClient(server.url);
  });

  after(async () => {
    client?.destroy();
    await server?.stop();
  });

  test('three subscriptions each get every message; a filter subscription only the matching ones', async () => {
    const topicUrl = await createTopic(client, 'orders');
    const urls = [await subscribe(client, 'orders', 'orders-billing'), await subscribe(client, 'orders', 'orders-shipping'), await subscribe(client, 'orders', 'orders-audit')];
    const bigUrl = await subscribe(client, 'orders', 'orders-big', { 'Berth.FilterPolicy': JSON.stringify({ size: [{ numeric: ['>=', 100] }], region: ['eu', 'us'] }) });
    const bodies = Array.from({ length: 25 }, (_, index) => `order-${String(index).padStart(2, '0')}`);
    await publish(client, topicUrl, bodies, (index) => ({
      size: { DataType: 'Number', StringValue: String(index * 10) },
      region: { DataType: 'String', StringValue: index % 2 === 0 ? 'eu' : 'asia' },
    }));
    for (const url of urls) assert.deepEqual(distinctBodies(await drain(client, url, bodies.length)), bodies, url);
    const expectedBig = bodies.filter((_, index) => index * 10 >= 100 && index % 2 === 0);
    const big = await drain(client, bigUrl, expectedBig.length);
    assert.deepEqual(distinctBodies(big), expectedBig);
    // Nothing else arrives for the filter subscription: its count is 0 once drained.
    assert.equal((await queueAttributes(client, bigUrl, ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'])).ApproximateNumberOfMessages, '0');
    const attributes = await queueAttributes(client, bigUrl);
    assert.equal(attributes['Berth.Topic'], 'orders');
    assert.equal(attributes['Berth.FilterPolicy'], JSON.stringify({ size: [{ numeric: ['>=', 100] }], region: ['eu', 'us'] }));
  });

  test('a subscription is an ordinary queue: counts, visibility, purge and delete act on it alone', async () => {
    const topicUrl = await createTopic(client, 'events');
    const first = await subscribe(client, 'events', 'events-a', { VisibilityTimeout: '60' });
    const second = await subscribe(client, 'events', 'events-b');
    await publish(client, topicUrl, ['e1', 'e2', 'e3']);
    await waitUntil(async () => (await queueAttributes(client, first, ['ApproximateNumberOfMessages'])).ApproximateNumberOfMessages === '3', 'three messages on events-a');
    assert.equal((await queueAttributes(client, second, ['ApproximateNumberOfMessages'])).ApproximateNumberOfMessages, '3');
    const received = await receiveUntil(client, { QueueUrl: first }, (messages) => messages.length >= 3);
    const counts = await queueAttributes(client, first, ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible']);
    assert.deepEqual([counts.ApproximateNumberOfMessages, counts.ApproximateNumberOfMessagesNotVisible], ['0', '3']);
    assert.equal((await queueAttributes(client, second, ['ApproximateNumberOfMessages'])).ApproximateNumberOfMessages, '3', 'events-b is untouched');
    // A receipt of events-a is not one of events-b.
    await expectSqsError(client.send(new ChangeMessageVisibilityCommand({ QueueUrl: second, ReceiptHandle: received[0]!.ReceiptHandle!, VisibilityTimeout: 0 })), 'ReceiptHandleIsInvalid');
    await client.send(new ChangeMessageVisibilityCommand({ QueueUrl: first, ReceiptHandle: received[0]!.ReceiptHandle!, VisibilityTimeout: 0 }));
    await waitUntil(async () => (await queueAttributes(client, first, ['ApproximateNumberOfMessages'])).ApproximateNumberOfMessages === '1', 'one visible again on events-a');
    await client.send(new PurgeQueueCommand({ QueueUrl: first }));
    const afterPurge = await queueAttributes(client, first, ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible']);
    assert.deepEqual([afterPurge.ApproximateNumberOfMessages, afterPurge.ApproximateNumberOfMessagesNotVisible], ['0', '0']);
    assert.equal((await queueAttributes(client, second, ['ApproximateNumberOfMessages'])).ApproximateNumberOfMessages, '3', 'the purge left events-b alone');
    // DeleteQueue unsubscribes: the topic keeps publishing to the others.
    await client.send(new DeleteQueueCommand({ QueueUrl: first }));
    await publish(client, topicUrl, ['e4']);
    assert.deepEqual(distinctBodies(await drain(client, second, 4)), ['e1', 'e2', 'e3', 'e4']);
  });

  test('a subscription has its own dead-letter settings: the other subscription keeps the message', async () => {
    const topicUrl = await createTopic(client, 'jobs');
    const dlqUrl = (await client.send(new CreateQueueCommand({ QueueName: 'jobs-dlq' }))).QueueUrl!;
    const strict = await subscribe(client, 'jobs', 'jobs-strict', { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: queueArn('jobs-dlq'), maxReceiveCount: 1 }) });
    const lenient = await subscribe(client, 'jobs', 'jobs-lenient');
    const sent = await client.send(new SendMessageCommand({ QueueUrl: topicUrl, MessageBody: 'poison' }));
    let receives = 0;
    await waitUntil(
      async () => {
        const response = await client.send(new ReceiveMessageCommand({ QueueUrl: strict, VisibilityTimeout: 0, WaitTimeSeconds: 1 }));
        receives += response.Messages?.length ?? 0;
        return (await queueAttributes(client, dlqUrl, ['ApproximateNumberOfMessages'])).ApproximateNumberOfMessages === '1';
      },
      'the message to reach jobs-dlq',
      30_000,
      0,
    );
    assert.equal(receives, 1, 'delivered once (maxReceiveCount 1), then moved');
    const [dead] = await receiveUntil(client, { QueueUrl: dlqUrl, MessageSystemAttributeNames: ['All'] }, (messages) => messages.length >= 1);
    assert.equal(dead?.MessageId, sent.MessageId);
    assert.equal(dead?.Attributes?.DeadLetterQueueSourceArn, queueArn('jobs-strict'));
    const [kept] = await drain(client, lenient, 1);
    assert.equal(kept?.MessageId, sent.MessageId, 'jobs-lenient still has it');
    assert.equal((await queueAttributes(client, strict, ['ApproximateNumberOfMessages'])).ApproximateNumberOfMessages, '0');
  });

  test('wrong-way calls get errors that say what to do', async () => {
    const topicUrl = await createTopic(client, 'alerts');
    const subscriptionUrl = await subscribe(client, 'alerts', 'alerts-pager');
    const sendToSubscription = await expectSqsError(client.send(new SendMessageCommand({ QueueUrl: subscriptionUrl, MessageBody: 'x' })), 'InvalidParameterValue');
    assert.match(sendToSubscription.message, /subscription of topic alerts.*SendMessage to the topic/);
    const receiveFromTopic = await expectSqsError(client.send(new ReceiveMessageCommand({ QueueUrl: topicUrl })), 'UnsupportedOperation');
    assert.match(receiveFromTopic.message, /topic alerts: receive from one of its subscriptions/);
    await expectSqsError(client.send(new CreateQueueCommand({ QueueName: 'alerts-x', Attributes: { 'Berth.Topic': 'nope' } as never })), 'QueueDoesNotExist');
    await expectSqsError(client.send(new CreateQueueCommand({ QueueName: 'alerts-y', Attributes: { 'Berth.Topic': 'alerts-pager' } as never })), 'InvalidParameterValue');
    const badFilter = await expectSqsError(
      client.send(new CreateQueueCommand({ QueueName: 'alerts-z', Attributes: { 'Berth.Topic': 'alerts', 'Berth.FilterPolicy': '{"level":{"anything":1}}' } as never })),
      'InvalidParameterValue',
    );
    assert.match(badFilter.message, /Berth.FilterPolicy is invalid/);
    await expectSqsError(client.send(new CreateQueueCommand({ QueueName: 'plain-filtered', Attributes: { 'Berth.FilterPolicy': '{"a":"b"}' } as never })), 'InvalidParameterValue');
    await expectSqsError(client.send(new CreateQueueCommand({ QueueName: 'alerts-kind', Attributes: { 'Berth.Kind': 'stream' } as never })), 'InvalidAttributeValue');
    const partitioned = await expectSqsError(client.send(new CreateQueueCommand({ QueueName: 'alerts-p', Attributes: { 'Berth.Topic': 'alerts', PartitionCount: '2' } as never })), 'InvalidParameterValue');
    assert.match(partitioned.message, /leave PartitionCount out/);
  });
});

describe('topics through the native SDK', () => {
  let server: BerthProcess;
  let berth: Berth;

  before(async () => {
    const nativePort = await freePort();
    server = await startBerth({ args: ['--log-level', 'warn', '--native-port', String(nativePort)] });
    berth = await Berth.connect({ url: `berth://127.0.0.1:${nativePort}` });
  });

  after(async () => {
    await berth?.close();
    await server?.stop();
  });

  const take = (queue: string, count: number): Promise<string[]> => takeDistinctBodies(berth, queue, count);

  test('createTopic, subscribe (with a filter), publish, receive per subscription, unsubscribe', async () => {
    await berth.createTopic('native-news');
    const subscriptions = ['native-news-1', 'native-news-2', 'native-news-3'];
    for (const name of subscriptions) assert.equal(await berth.subscribe('native-news', name, { attributes: { VisibilityTimeout: '45' } }), name);
    await berth.subscribe('native-news', 'native-news-sport', { filterPolicy: { section: [{ prefix: 'sport' }] } });
    const bodies = Array.from({ length: 30 }, (_, index) => `news-${String(index).padStart(2, '0')}`);
    const results = await berth.publish(
      'native-news',
      bodies.map((body, index) => ({ body, attributes: { section: { dataType: 'String', stringValue: index % 5 === 0 ? 'sport/football' : 'politics' } } })),
    );
    assert.ok(results.every((result) => 'messageId' in result), JSON.stringify(results));
    for (const name of subscriptions) assert.deepEqual(await take(name, bodies.length), bodies, name);
    assert.deepEqual(await take('native-news-sport', 6), bodies.filter((_, index) => index % 5 === 0));
    assert.equal((await berth.queueCounts('native-news-sport')).visible, 0);
    assert.equal((await berth.getQueueAttributes('native-news-1'))['VisibilityTimeout'], '45');
    await assert.rejects(berth.subscribe('native-news', 'native-news-bad', { filterPolicy: '{"a":{"nope":1}}' }), InvalidRequestError);
    await assert.rejects(berth.unsubscribe('native-news'), InvalidRequestError);
    await berth.unsubscribe('native-news-2');
    assert.ok(!(await berth.listQueues('native-news')).includes('native-news-2'));
    await berth.publish('native-news', [{ body: 'late' }]);
    assert.deepEqual(await take('native-news-1', 1), ['late']);
  });
});

describe('topic storage and restart', () => {
  test('a slow subscription holds segments while the others advance; they go once it deletes; subscriptions survive a restart', { timeout: 240_000 }, async () => {
    const dataDir = makeTempDir('berth-topics-');
    const args = ['--log-level', 'warn', '--segment-bytes-max', String(1024 * 1024)];
    let server = await startBerth({ dataDir: dataDir.path, args });
    let client = sqsClient(server.url);
    try {
      const topicUrl = await createTopic(client, 'feed');
      const fast = [await subscribe(client, 'feed', 'feed-fast-1'), await subscribe(client, 'feed', 'feed-fast-2')];
      const slow = await subscribe(client, 'feed', 'feed-slow', { VisibilityTimeout: '600' });
      const filler = 'x'.repeat(200 * 1024);
      const bodies = Array.from({ length: 24 }, (_, index) => `${String(index).padStart(2, '0')}:${filler}`);
      for (const body of bodies) await client.send(new SendMessageCommand({ QueueUrl: topicUrl, MessageBody: body }));
      const incarnation = readdirSync(path.join(dataDir.path, 'queues'))[0]!;
      const partitionDir = path.join(dataDir.path, 'queues', incarnation, 'p0');
      const segments = (): number => readdirSync(partitionDir).filter((file) => file.endsWith('.log')).length;
      const segmentsWritten = segments();
      assert.ok(segmentsWritten >= 4, `4.8 MB in 1 MB segments makes several segment files, got ${segmentsWritten}`);
      for (const url of fast) assert.equal(distinctBodies(await drain(client, url, bodies.length, { timeoutMs: 60_000 })).length, bodies.length);
      // The slow subscription takes the first message and never deletes it.
      const held = await client.send(new ReceiveMessageCommand({ QueueUrl: slow, MaxNumberOfMessages: 1 }));
      assert.equal(held.Messages?.length, 1);
      // Restart: the subscriptions, what the fast ones deleted and the slow one's message in flight all survive.
      await server.stop({ keepDataDir: true });
      server = await startBerth({ dataDir: dataDir.path, args });
      client.destroy();
      client = sqsClient(server.url);
      for (const url of fast) {
        const counts = await queueAttributes(client, url, ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible']);
        assert.deepEqual([counts.ApproximateNumberOfMessages, counts.ApproximateNumberOfMessagesNotVisible], ['0', '0'], url);
      }
      const slowCounts = await queueAttributes(client, slow, ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'VisibilityTimeout', 'Berth.Topic']);
      assert.deepEqual(slowCounts, { ApproximateNumberOfMessages: String(bodies.length - 1), ApproximateNumberOfMessagesNotVisible: '1', VisibilityTimeout: '600', 'Berth.Topic': 'feed' });
      // The slow subscription's first message pins the first segment (checked after checkpoints ran: one every 30 s).
      const slowRest = await receiveUntil(client, { QueueUrl: slow }, (messages) => messages.length >= bodies.length - 1, { timeoutMs: 60_000 });
      for (let start = 0; start < slowRest.length; start += 10) {
        await client.send(new DeleteMessageBatchCommand({ QueueUrl: slow, Entries: slowRest.slice(start, start + 10).map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle! })) }));
      }
      // Wait for a checkpoint written after all of that (one every 30 s while records come in): it is what deletes segments.
      const markMs = Date.now();
      await client.send(new SendMessageCommand({ QueueUrl: topicUrl, MessageBody: 'tick' }));
      await waitUntil(() => checkpointWrittenAfter(partitionDir, markMs), 'a checkpoint after the fast subscriptions acknowledged everything', 120_000, 500);
      assert.ok(readdirSync(partitionDir).includes('00000000000000000000.log'), 'the slow subscription\'s message in flight keeps the first segment');
      assert.ok(segments() >= segmentsWritten, 'and every segment after it');
      // Now the slow one deletes it (its receipt survived the restart): whole segments behind the ACK level go at the next checkpoint.
      await client.send(new DeleteMessageBatchCommand({ QueueUrl: slow, Entries: [{ Id: '0', ReceiptHandle: held.Messages![0]!.ReceiptHandle! }] }));
      await client.send(new SendMessageCommand({ QueueUrl: topicUrl, MessageBody: 'tock' }));
      await waitUntil(() => !readdirSync(partitionDir).includes('00000000000000000000.log'), 'the first segment to be deleted', 120_000, 500);
      assert.ok(segments() < segmentsWritten, `segments reclaimed: ${segments()} < ${segmentsWritten}`);
      for (const url of [...fast, slow]) assert.deepEqual(bodiesOf(await drain(client, url, 2)), ['tick', 'tock']);
    } finally {
      client.destroy();
      await server.stop();
      dataDir.remove();
    }
  });
});

function checkpointWrittenAfter(directory: string, markMs: number): boolean {
  const file = path.join(directory, 'checkpoint');
  return existsSync(file) && statSync(file).mtimeMs > markMs;
}
