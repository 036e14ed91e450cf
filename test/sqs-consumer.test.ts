// sqs-consumer (bbc/sqs-consumer v14, on @aws-sdk/client-sqs) against a real `berth serve`:
// a few hundred messages processed exactly as sent, none lost, none delivered twice
// (the visibility timeout is far longer than the run), with handleMessage (and a handler
// failure that must come back) and with handleMessageBatch on a FIFO queue (order per
// group).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CreateQueueCommand, SendMessageBatchCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import { Consumer } from 'sqs-consumer';
import { sqsClient, startBerth, waitUntil, type BerthProcess } from './harness/server.js';
import { queueAttributes } from './harness/sqs.js';

let berth: BerthProcess;
let sqs: SQSClient;

before(async () => {
  berth = await startBerth();
  sqs = sqsClient(berth.url, { maxAttempts: 3 });
});

after(async () => {
  sqs?.destroy();
  await berth?.stop();
});

async function sendAll(queueUrl: string, entries: Array<{ body: string; groupId?: string }>): Promise<void> {
  for (let start = 0; start < entries.length; start += 10) {
    const batch = entries.slice(start, start + 10);
    const response = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: batch.map((entry, index) => ({
          Id: `e${index}`,
          MessageBody: entry.body,
          MessageGroupId: entry.groupId,
          MessageDeduplicationId: entry.groupId === undefined ? undefined : entry.body,
        })),
      }),
    );
    assert.deepEqual(response.Failed ?? [], [], 'every batch entry is accepted');
    assert.equal(response.Successful?.length, batch.length);
  }
}

/** Runs the consumer until `done()` holds, then stops it and waits for `stopped`. */
async function runConsumer(consumer: Consumer, done: () => boolean, what: string): Promise<void> {
  const errors: Error[] = [];
  consumer.on('error', (error) => errors.push(error));
  const stopped = new Promise<void>((resolve) => consumer.once('stopped', () => resolve()));
  consumer.start();
  try {
    await waitUntil(() => done() || errors.length > 0, what, 120_000, 20);
  } finally {
    consumer.stop();
    await stopped;
  }
  assert.deepEqual(errors.map((error) => error.message), [], 'the consumer reported no errors');
}

test('handleMessage: 300 messages, each processed once; a failed one comes back and is processed', async () => {
  const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `consumer-${process.pid}`, Attributes: { VisibilityTimeout: '120' } }))).QueueUrl!;
  const bodies = Array.from({ length: 300 }, (_, index) => `message-${index}`);
  await sendAll(queueUrl, bodies.map((body) => ({ body })));

  const handled = new Map<string, number>();
  const processed = new Map<string, number>();
  let failedOnce = false;
  const consumer = Consumer.create({
    queueUrl,
    sqs,
    batchSize: 10,
    waitTimeSeconds: 1,
    pollingCompleteWaitTimeMs: 5_000,
    // On a handler error, make the message visible again at once (ChangeMessageVisibility 0).
    terminateVisibilityTimeout: true,
    handleMessage: async (message: Message) => {
      const body = message.Body ?? '';
      handled.set(body, (handled.get(body) ?? 0) + 1);
      if (body === 'message-7' && !failedOnce) {
        failedOnce = true;
        throw new Error('first attempt of message-7 fails on purpose');
      }
      return message;
    },
  });
  consumer.on('processing_error', () => {
    // expected once, for message-7
  });
  consumer.on('message_processed', (message: Message) => {
    const body = message.Body ?? '';
    processed.set(body, (processed.get(body) ?? 0) + 1);
  });
  await runConsumer(consumer, () => processed.size === bodies.length, 'all 300 messages to be processed');

  assert.deepEqual([...processed.keys()].sort(), [...bodies].sort(), 'every body sent was processed');
  for (const [body, count] of processed) assert.equal(count, 1, `${body} processed once`);
  assert.equal(handled.get('message-7'), 2, 'the failed message was delivered again');
  for (const [body, count] of handled) if (body !== 'message-7') assert.equal(count, 1, `${body} delivered once`);
  await waitUntil(async () => {
    const attributes = await queueAttributes(sqs, queueUrl);
    return attributes.ApproximateNumberOfMessages === '0' && attributes.ApproximateNumberOfMessagesNotVisible === '0';
  }, 'the queue to be empty (every message deleted)');
});

test('handleMessageBatch on a FIFO queue: 240 messages in 4 groups, order per group, none lost', async () => {
  const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `consumer-batch-${process.pid}.fifo`, Attributes: { FifoQueue: 'true', VisibilityTimeout: '120' } }))).QueueUrl!;
  const groups = ['red', 'green', 'blue', 'gold'];
  const entries = Array.from({ length: 240 }, (_, index) => {
    const groupId = groups[index % groups.length]!;
    return { body: `${groupId}:${Math.floor(index / groups.length)}`, groupId };
  });
  await sendAll(queueUrl, entries);

  const seenPerGroup = new Map<string, number[]>();
  const wrongGroup: string[] = [];
  let total = 0;
  const consumer = Consumer.create({
    queueUrl,
    sqs,
    batchSize: 10,
    waitTimeSeconds: 1,
    pollingCompleteWaitTimeMs: 5_000,
    messageSystemAttributeNames: ['MessageGroupId'],
    suppressFifoWarning: true,
    handleMessageBatch: async (messages: Message[]) => {
      for (const message of messages) {
        const [group, sequence] = (message.Body ?? '').split(':');
        if (message.Attributes?.MessageGroupId !== group) wrongGroup.push(message.Body ?? '');
        const list = seenPerGroup.get(group!) ?? [];
        list.push(Number(sequence));
        seenPerGroup.set(group!, list);
        total += 1;
      }
      return messages;
    },
  });
  await runConsumer(consumer, () => total >= entries.length, 'all 240 FIFO messages to be processed');

  assert.equal(total, entries.length, 'no message processed twice');
  assert.deepEqual(wrongGroup, [], 'MessageGroupId system attribute matches the group');
  for (const group of groups) {
    assert.deepEqual(seenPerGroup.get(group), Array.from({ length: 60 }, (_, index) => index), `group ${group} in order, complete`);
  }
  await waitUntil(async () => {
    const attributes = await queueAttributes(sqs, queueUrl);
    return attributes.ApproximateNumberOfMessages === '0' && attributes.ApproximateNumberOfMessagesNotVisible === '0';
  }, 'the FIFO queue to be empty');
});
