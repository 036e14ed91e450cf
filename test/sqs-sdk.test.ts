// @aws-sdk/client-sqs (AWS JSON 1.0 protocol) against a real `berth serve`: every SQS
// action at least once, with the results asserted against SQS's documented behaviour.
// Time-dependent behaviour (visibility, delay, long polling) is asserted on what comes
// back and, where a bound matters, only as a lower bound ("not before"), which a slow
// machine cannot break.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  AddPermissionCommand,
  CancelMessageMoveTaskCommand,
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListDeadLetterSourceQueuesCommand,
  ListMessageMoveTasksCommand,
  ListQueuesCommand,
  ListQueueTagsCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  RemovePermissionCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SetQueueAttributesCommand,
  StartMessageMoveTaskCommand,
  TagQueueCommand,
  UntagQueueCommand,
  type MessageAttributeValue,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { makeTempDir, sqsClient, startBerth, waitUntil, type BerthProcess } from './harness/server.js';
import { accountId, drain, expectSqsError, md5Hex, md5OfMessageAttributes, queueArn, queueAttributes, receiveUntil } from './harness/sqs.js';

let berth: BerthProcess;
let sqs: SQSClient;
let queueCounter = 0;

function uniqueName(stem: string, fifo = false): string {
  queueCounter += 1;
  return `${stem}-${process.pid}-${queueCounter}${fifo ? '.fifo' : ''}`;
}

async function createQueue(name: string, attributes: Record<string, string> = {}, tags?: Record<string, string>): Promise<string> {
  const response = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes, tags }));
  assert.ok(response.QueueUrl, 'CreateQueue returns a QueueUrl');
  return response.QueueUrl;
}

before(async () => {
  berth = await startBerth();
  sqs = sqsClient(berth.url);
});

after(async () => {
  sqs?.destroy();
  await berth?.stop();
});

describe('queues', () => {
  test('create a standard queue: URL uses the Host the client used, account 000000000000', async () => {
    const name = uniqueName('std');
    const url = await createQueue(name);
    assert.equal(url, `${berth.url}/${accountId}/${name}`);
    const byName = await sqs.send(new GetQueueUrlCommand({ QueueName: name }));
    assert.equal(byName.QueueUrl, url);
  });

  test('create is idempotent with equal attributes; differing attributes -> QueueNameExists', async () => {
    const name = uniqueName('idem');
    const first = await createQueue(name, { VisibilityTimeout: '40' });
    const second = await createQueue(name, { VisibilityTimeout: '40' });
    assert.equal(second, first);
    const error = await expectSqsError(sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: '41' } })), 'QueueNameExists', 'QueueAlreadyExists');
    assert.equal(error.$metadata?.httpStatusCode, 400);
  });

  test('create a FIFO queue with attributes; GetQueueAttributes All returns them and the read-only ones', async () => {
    const name = uniqueName('fifo', true);
    const url = await createQueue(name, { FifoQueue: 'true', ContentBasedDeduplication: 'true', VisibilityTimeout: '45', DelaySeconds: '0', MessageRetentionPeriod: '3600' });
    const attributes = await queueAttributes(sqs, url);
    assert.equal(attributes.FifoQueue, 'true');
    assert.equal(attributes.ContentBasedDeduplication, 'true');
    assert.equal(attributes.VisibilityTimeout, '45');
    assert.equal(attributes.MessageRetentionPeriod, '3600');
    assert.equal(attributes.QueueArn, queueArn(name));
    assert.equal(attributes.ApproximateNumberOfMessages, '0');
    assert.equal(attributes.ApproximateNumberOfMessagesNotVisible, '0');
    assert.equal(attributes.ApproximateNumberOfMessagesDelayed, '0');
    assert.match(attributes.CreatedTimestamp ?? '', /^\d+$/);
    assert.match(attributes.LastModifiedTimestamp ?? '', /^\d+$/);
  });

  test('a standard queue gets SQS defaults', async () => {
    const url = await createQueue(uniqueName('defaults'));
    const attributes = await queueAttributes(sqs, url);
    assert.equal(attributes.VisibilityTimeout, '30');
    assert.equal(attributes.DelaySeconds, '0');
    assert.equal(attributes.MessageRetentionPeriod, '345600');
    assert.equal(attributes.ReceiveMessageWaitTimeSeconds, '0');
    const maximumMessageSize = Number(attributes.MaximumMessageSize);
    assert.ok(maximumMessageSize >= 1024 && maximumMessageSize <= 1_048_576, `MaximumMessageSize ${attributes.MaximumMessageSize}`);
    assert.equal(attributes.FifoQueue, undefined, 'FifoQueue is only reported for FIFO queues');
  });

  test('FIFO queue name needs FifoQueue=true and vice versa', async () => {
    await expectSqsError(sqs.send(new CreateQueueCommand({ QueueName: uniqueName('nofifo'), Attributes: { FifoQueue: 'true' } })), ['InvalidParameterValue', 'InvalidAttributeValue']);
  });

  test('Berth extension: queue attribute ReplicaCount', async () => {
    const url = await createQueue(uniqueName('replicas'), { ReplicaCount: '1' });
    const attributes = await queueAttributes(sqs, url, ['All']);
    assert.equal(attributes.ReplicaCount, '1');
    const sent = await sqs.send(
      new SendMessageCommand({ QueueUrl: url, MessageBody: 'r', MessageAttributes: { 'Berth.ReplicaCount': { DataType: 'Number', StringValue: '1' } } }),
    );
    assert.ok(sent.MessageId);
  });

  test('get and set attributes; unknown attribute -> InvalidAttributeName', async () => {
    const url = await createQueue(uniqueName('attrs'));
    await sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { VisibilityTimeout: '77', DelaySeconds: '3', ReceiveMessageWaitTimeSeconds: '2' } }));
    const some = await queueAttributes(sqs, url, ['VisibilityTimeout', 'DelaySeconds']);
    assert.deepEqual(some, { VisibilityTimeout: '77', DelaySeconds: '3' });
    const all = await queueAttributes(sqs, url);
    assert.equal(all.ReceiveMessageWaitTimeSeconds, '2');
    await expectSqsError(sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['NoSuchAttribute' as never] })), 'InvalidAttributeName');
    await expectSqsError(sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { NoSuchAttribute: '1' } as Record<string, string> })), 'InvalidAttributeName');
    await expectSqsError(sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { VisibilityTimeout: '43201' } })), 'InvalidAttributeValue');
    await expectSqsError(sqs.send(new CreateQueueCommand({ QueueName: uniqueName('badattr'), Attributes: { NoSuchAttribute: '1' } as Record<string, string> })), 'InvalidAttributeName');
  });

  test('list queues: prefix and pagination with MaxResults/NextToken', async () => {
    const prefix = `list-${process.pid}-`;
    const names = ['a', 'b', 'c', 'd', 'e'].map((suffix) => `${prefix}${suffix}`);
    for (const name of names) await createQueue(name);
    const all = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: prefix }));
    assert.deepEqual([...(all.QueueUrls ?? [])].sort(), names.map((name) => `${berth.url}/${accountId}/${name}`));
    const seen: string[] = [];
    let nextToken: string | undefined;
    let pages = 0;
    do {
      const page = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: prefix, MaxResults: 2, NextToken: nextToken }));
      assert.ok((page.QueueUrls ?? []).length <= 2, 'a page holds at most MaxResults');
      seen.push(...(page.QueueUrls ?? []));
      nextToken = page.NextToken;
      pages += 1;
      assert.ok(pages <= 5, 'pagination ends');
    } while (nextToken);
    assert.equal(pages, 3);
    assert.deepEqual(seen.sort(), names.map((name) => `${berth.url}/${accountId}/${name}`));
    const none = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: `nothing-${process.pid}` }));
    assert.deepEqual(none.QueueUrls ?? [], []);
  });

  test('tags: create with tags, list, tag, untag', async () => {
    const url = await createQueue(uniqueName('tags'), {}, { team: 'berth', stage: 'test' });
    assert.deepEqual((await sqs.send(new ListQueueTagsCommand({ QueueUrl: url }))).Tags, { team: 'berth', stage: 'test' });
    await sqs.send(new TagQueueCommand({ QueueUrl: url, Tags: { stage: 'prod', owner: 'me' } }));
    assert.deepEqual((await sqs.send(new ListQueueTagsCommand({ QueueUrl: url }))).Tags, { team: 'berth', stage: 'prod', owner: 'me' });
    await sqs.send(new UntagQueueCommand({ QueueUrl: url, TagKeys: ['team', 'owner'] }));
    assert.deepEqual((await sqs.send(new ListQueueTagsCommand({ QueueUrl: url }))).Tags, { stage: 'prod' });
  });

  test('add and remove permission', async () => {
    const url = await createQueue(uniqueName('perm'));
    await sqs.send(new AddPermissionCommand({ QueueUrl: url, Label: 'let-them-send', AWSAccountIds: ['111122223333'], Actions: ['SendMessage'] }));
    const withPolicy = await queueAttributes(sqs, url, ['Policy']);
    assert.ok(withPolicy.Policy, 'AddPermission sets a Policy');
    const policy = JSON.parse(withPolicy.Policy) as { Statement?: Array<{ Sid?: string }> };
    assert.ok(policy.Statement?.some((statement) => statement.Sid === 'let-them-send'), withPolicy.Policy);
    await sqs.send(new RemovePermissionCommand({ QueueUrl: url, Label: 'let-them-send' }));
    const afterRemove = await queueAttributes(sqs, url, ['Policy']);
    const remaining = afterRemove.Policy ? (JSON.parse(afterRemove.Policy) as { Statement?: Array<{ Sid?: string }> }).Statement ?? [] : [];
    assert.ok(!remaining.some((statement) => statement.Sid === 'let-them-send'));
  });

  test('delete queue, then QueueDoesNotExist with the query error code', async () => {
    const name = uniqueName('gone');
    const url = await createQueue(name);
    await sqs.send(new DeleteQueueCommand({ QueueUrl: url }));
    await expectSqsError(sqs.send(new GetQueueUrlCommand({ QueueName: name })), 'QueueDoesNotExist', 'AWS.SimpleQueueService.NonExistentQueue');
    const error = await expectSqsError(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x' })), 'QueueDoesNotExist', 'AWS.SimpleQueueService.NonExistentQueue');
    assert.equal(error.$metadata?.httpStatusCode, 400);
    assert.equal(error.Type, 'Sender');
    const listed = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: name }));
    assert.deepEqual(listed.QueueUrls ?? [], []);
  });

  test('purge removes the messages; a second purge within 60 s -> PurgeQueueInProgress', async () => {
    const url = await createQueue(uniqueName('purge'));
    for (let index = 0; index < 3; index += 1) await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: `p${index}` }));
    await sqs.send(new PurgeQueueCommand({ QueueUrl: url }));
    await waitUntil(async () => (await queueAttributes(sqs, url)).ApproximateNumberOfMessages === '0', 'the purge to empty the queue');
    const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
    assert.deepEqual(received.Messages ?? [], []);
    const error = await expectSqsError(sqs.send(new PurgeQueueCommand({ QueueUrl: url })), 'PurgeQueueInProgress', 'AWS.SimpleQueueService.PurgeQueueInProgress');
    assert.equal(error.$metadata?.httpStatusCode, 403);
  });
});

describe('messages', () => {
  test('a message attribute named __proto__ (a valid SQS name) is kept like any other: MD5s match on send and receive', async () => {
    const url = await createQueue(uniqueName('proto-attr'));
    const attributes: Record<string, MessageAttributeValue> = JSON.parse('{"__proto__": {"DataType": "String", "StringValue": "p"}, "plain": {"DataType": "String", "StringValue": "q"}}') as Record<string, MessageAttributeValue>;
    assert.deepEqual(Object.keys(attributes), ['__proto__', 'plain']);
    const sent = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'proto', MessageAttributes: attributes }));
    assert.equal(sent.MD5OfMessageAttributes, md5OfMessageAttributes(attributes));
    const response = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 5, MessageAttributeNames: ['All'] }));
    const message = response.Messages?.[0];
    assert.equal(message?.MD5OfMessageAttributes, sent.MD5OfMessageAttributes);
    assert.deepEqual(Object.keys(message?.MessageAttributes ?? {}).sort(), ['__proto__', 'plain']);
  });

  test('send with message attributes of every type; receive returns them with matching MD5s and system attributes', async () => {
    const url = await createQueue(uniqueName('attrs-msg'));
    const attributes: Record<string, MessageAttributeValue> = {
      text: { DataType: 'String', StringValue: 'héllo wörld ✓' },
      count: { DataType: 'Number', StringValue: '-12.5e3' },
      blob: { DataType: 'Binary', BinaryValue: new Uint8Array([0, 1, 2, 250, 255]) },
      custom: { DataType: 'String.custom-type', StringValue: 'c' },
      ratio: { DataType: 'Number.float', StringValue: '0.25' },
      image: { DataType: 'Binary.gif', BinaryValue: new Uint8Array([71, 73, 70]) },
    };
    const body = 'body with unicode ✓ and "quotes" <xml> & ampersand';
    const sentBefore = Date.now();
    const sent = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body, MessageAttributes: attributes }));
    assert.ok(sent.MessageId);
    assert.equal(sent.MD5OfMessageBody, md5Hex(body));
    assert.equal(sent.MD5OfMessageAttributes, md5OfMessageAttributes(attributes));

    const response = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 5, MessageAttributeNames: ['All'], MessageSystemAttributeNames: ['All'] }),
    );
    assert.equal(response.Messages?.length, 1);
    const message = response.Messages[0]!;
    assert.equal(message.MessageId, sent.MessageId);
    assert.equal(message.Body, body);
    assert.equal(message.MD5OfBody, md5Hex(body));
    assert.equal(message.MD5OfMessageAttributes, sent.MD5OfMessageAttributes);
    assert.equal(message.MessageAttributes?.text?.StringValue, 'héllo wörld ✓');
    assert.equal(message.MessageAttributes?.count?.DataType, 'Number');
    assert.equal(message.MessageAttributes?.count?.StringValue, '-12.5e3');
    assert.deepEqual(Buffer.from(message.MessageAttributes?.blob?.BinaryValue ?? []), Buffer.from([0, 1, 2, 250, 255]));
    assert.equal(message.MessageAttributes?.custom?.DataType, 'String.custom-type');
    assert.equal(message.MessageAttributes?.ratio?.DataType, 'Number.float');
    assert.equal(message.MessageAttributes?.image?.DataType, 'Binary.gif');
    assert.deepEqual(Buffer.from(message.MessageAttributes?.image?.BinaryValue ?? []), Buffer.from('GIF'));
    assert.equal(md5OfMessageAttributes(message.MessageAttributes), message.MD5OfMessageAttributes);
    assert.equal(message.Attributes?.ApproximateReceiveCount, '1');
    const sentTimestamp = Number(message.Attributes?.SentTimestamp);
    assert.ok(Number.isInteger(sentTimestamp) && Math.abs(sentTimestamp - sentBefore) < 10 * 60_000, `SentTimestamp ${message.Attributes?.SentTimestamp}`);
    assert.match(message.Attributes?.ApproximateFirstReceiveTimestamp ?? '', /^\d+$/);
    assert.ok(message.Attributes?.SenderId, 'SenderId is set');
    assert.ok(message.ReceiptHandle);

    // Asking for some attributes by name returns only those.
    await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: message.ReceiptHandle, VisibilityTimeout: 0 }));
    const again = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 5, MessageAttributeNames: ['text'], MessageSystemAttributeNames: ['ApproximateReceiveCount'] }));
    const second = again.Messages?.[0];
    assert.ok(second, 'visible again at once after ChangeMessageVisibility 0');
    assert.deepEqual(Object.keys(second.MessageAttributes ?? {}), ['text']);
    assert.deepEqual(second.Attributes, { ApproximateReceiveCount: '2' });
    await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: second.ReceiptHandle }));
    assert.equal((await queueAttributes(sqs, url)).ApproximateNumberOfMessagesNotVisible, '0');
  });

  test('send a message without attributes: no MD5OfMessageAttributes', async () => {
    const url = await createQueue(uniqueName('noattr'));
    const sent = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'plain' }));
    assert.equal(sent.MD5OfMessageAttributes, undefined);
    const [message] = await drain(sqs, url, 1, { extra: { MessageAttributeNames: ['All'] } });
    assert.equal(message?.MD5OfMessageAttributes, undefined);
    assert.equal(message?.Body, 'plain');
  });

  test('send batch with a partial failure; delete batch and change visibility batch', async () => {
    const url = await createQueue(uniqueName('batch'));
    const response = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: [
          { Id: 'one', MessageBody: 'first' },
          { Id: 'bad', MessageBody: 'has a forbidden character \u0000 in it' },
          { Id: 'two', MessageBody: 'second', MessageAttributes: { k: { DataType: 'String', StringValue: 'v' } } },
        ],
      }),
    );
    assert.deepEqual((response.Successful ?? []).map((entry) => entry.Id).sort(), ['one', 'two']);
    assert.equal(response.Failed?.length, 1);
    assert.equal(response.Failed[0]?.Id, 'bad');
    assert.equal(response.Failed[0]?.SenderFault, true);
    assert.ok(['InvalidMessageContents', 'InvalidParameterValue'].includes(response.Failed[0]?.Code ?? ''), `Code ${response.Failed[0]?.Code}`);
    const two = response.Successful?.find((entry) => entry.Id === 'two');
    assert.equal(two?.MD5OfMessageBody, md5Hex('second'));
    assert.equal(two?.MD5OfMessageAttributes, md5OfMessageAttributes({ k: { DataType: 'String', StringValue: 'v' } }));

    const received = await receiveUntil(sqs, { QueueUrl: url, VisibilityTimeout: 60 }, (messages) => messages.length >= 2);
    assert.deepEqual(received.map((message) => message.Body).sort(), ['first', 'second']);

    const change = await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: url,
        Entries: [
          { Id: 'a', ReceiptHandle: received[0]!.ReceiptHandle, VisibilityTimeout: 120 },
          { Id: 'b', ReceiptHandle: 'not-a-receipt-handle', VisibilityTimeout: 120 },
        ],
      }),
    );
    assert.deepEqual((change.Successful ?? []).map((entry) => entry.Id), ['a']);
    assert.equal(change.Failed?.[0]?.Id, 'b');
    assert.equal(change.Failed?.[0]?.Code, 'ReceiptHandleIsInvalid');

    const deleted = await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: url,
        Entries: [
          ...received.map((message, index) => ({ Id: `d${index}`, ReceiptHandle: message.ReceiptHandle })),
          { Id: 'junk', ReceiptHandle: 'junk-handle' },
        ],
      }),
    );
    assert.deepEqual((deleted.Successful ?? []).map((entry) => entry.Id).sort(), ['d0', 'd1']);
    assert.equal(deleted.Failed?.[0]?.Id, 'junk');
    assert.equal(deleted.Failed?.[0]?.Code, 'ReceiptHandleIsInvalid');
    const counts = await queueAttributes(sqs, url);
    assert.equal(counts.ApproximateNumberOfMessages, '0');
    assert.equal(counts.ApproximateNumberOfMessagesNotVisible, '0');
  });

  test('batch errors: empty batch, duplicate ids, too many entries', async () => {
    const url = await createQueue(uniqueName('batcherr'));
    await expectSqsError(sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: [] })), 'EmptyBatchRequest', 'AWS.SimpleQueueService.EmptyBatchRequest');
    await expectSqsError(
      sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: [{ Id: 'x', MessageBody: '1' }, { Id: 'x', MessageBody: '2' }] })),
      'BatchEntryIdsNotDistinct',
      'AWS.SimpleQueueService.BatchEntryIdsNotDistinct',
    );
    const eleven = Array.from({ length: 11 }, (_, index) => ({ Id: `e${index}`, MessageBody: `m${index}` }));
    await expectSqsError(sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: eleven })), 'TooManyEntriesInBatchRequest', 'AWS.SimpleQueueService.TooManyEntriesInBatchRequest');
    await expectSqsError(sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: [] })), 'EmptyBatchRequest');
    // None of the refused batches enqueued anything.
    assert.equal((await queueAttributes(sqs, url)).ApproximateNumberOfMessages, '0');
  });

  test('a message larger than MaximumMessageSize is refused; one at the limit is taken', async () => {
    const url = await createQueue(uniqueName('size'), { MaximumMessageSize: '1024' });
    const atLimit = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x'.repeat(1024) }));
    assert.ok(atLimit.MessageId);
    const error = await expectSqsError(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x'.repeat(1025) })), ['InvalidParameterValue', 'InvalidMessageContents']);
    assert.equal(error.$metadata?.httpStatusCode, 400);
    assert.equal((await queueAttributes(sqs, url)).ApproximateNumberOfMessages, '1');
  });

  test('visibility timeout: a received message is hidden, then comes back after it expires', async () => {
    const url = await createQueue(uniqueName('visibility'));
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'comes back' }));
    const receivedAt = Date.now();
    const first = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 5, VisibilityTimeout: 2 }));
    assert.equal(first.Messages?.length, 1);
    const hidden = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 0 }));
    // The message can only be visible again here if two seconds passed already.
    if (Date.now() - receivedAt < 2_000) assert.deepEqual(hidden.Messages ?? [], [], 'in flight: not delivered again');
    const [again] = await receiveUntil(sqs, { QueueUrl: url, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }, (messages) => messages.length >= 1, { timeoutMs: 20_000 });
    assert.ok(Date.now() - receivedAt >= 2_000 - 50, 'not visible again before the visibility timeout');
    assert.equal(again?.Body, 'comes back');
    assert.equal(again?.MessageId, first.Messages?.[0]?.MessageId);
    assert.equal(again?.Attributes?.ApproximateReceiveCount, '2');
    assert.notEqual(again?.ReceiptHandle, first.Messages?.[0]?.ReceiptHandle, 'a new receive gets a new receipt handle');
    await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: again?.ReceiptHandle }));
  });

  test('delay: per message and per queue; the message is not delivered before its delay', async () => {
    const url = await createQueue(uniqueName('delay'));
    const sentAt = Date.now();
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'late', DelaySeconds: 2 }));
    const [message] = await receiveUntil(sqs, { QueueUrl: url }, (messages) => messages.length >= 1, { timeoutMs: 20_000, deleteEach: true });
    assert.equal(message?.Body, 'late');
    assert.ok(Date.now() - sentAt >= 2_000 - 50, 'not delivered before DelaySeconds');

    const delayedQueue = await createQueue(uniqueName('qdelay'), { DelaySeconds: '2' });
    const queueSentAt = Date.now();
    await sqs.send(new SendMessageCommand({ QueueUrl: delayedQueue, MessageBody: 'queue-late' }));
    const delayedCount = (await queueAttributes(sqs, delayedQueue)).ApproximateNumberOfMessagesDelayed;
    if (Date.now() - queueSentAt < 2_000) assert.equal(delayedCount, '1');
    const [queued] = await receiveUntil(sqs, { QueueUrl: delayedQueue }, (messages) => messages.length >= 1, { timeoutMs: 20_000, deleteEach: true });
    assert.equal(queued?.Body, 'queue-late');
    assert.ok(Date.now() - queueSentAt >= 2_000 - 50, 'not delivered before the queue DelaySeconds');
  });

  test('long polling: a waiting receive returns a message sent while it waits', async () => {
    const url = await createQueue(uniqueName('longpoll'));
    const waiting = sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 10 }));
    // Send once the receive is on its way; if it arrives first the receive still must return it.
    await new Promise((resolve) => setImmediate(resolve));
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'wake up' }));
    const response = await waiting;
    assert.equal(response.Messages?.length, 1);
    assert.equal(response.Messages[0]?.Body, 'wake up');

    // A message that becomes visible later (a delay) also wakes a long poll, where a
    // plain receive would have returned nothing.
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'delayed wake', DelaySeconds: 1 }));
    const delayed = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 10 }));
    assert.equal(delayed.Messages?.[0]?.Body, 'delayed wake');

    // The queue default ReceiveMessageWaitTimeSeconds applies when the call gives none.
    const emptyQueue = await createQueue(uniqueName('emptypoll'), { ReceiveMessageWaitTimeSeconds: '1' });
    const empty = await sqs.send(new ReceiveMessageCommand({ QueueUrl: emptyQueue }));
    assert.deepEqual(empty.Messages ?? [], []);
  });

  test('receive parameters out of range are refused', async () => {
    const url = await createQueue(uniqueName('range'));
    await expectSqsError(sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 11 })), ['InvalidParameterValue', 'ReadCountOutOfRange']);
    await expectSqsError(sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 21 })), 'InvalidParameterValue');
    await expectSqsError(sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: 'nonsense', VisibilityTimeout: 10 })), 'ReceiptHandleIsInvalid');
  });
});

describe('FIFO', () => {
  test('order per group, and a group is blocked while one of its messages is in flight', async () => {
    const url = await createQueue(uniqueName('order', true), { FifoQueue: 'true' });
    for (const body of ['g1-1', 'g1-2', 'g1-3']) {
      const sent = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body, MessageGroupId: 'g1', MessageDeduplicationId: body }));
      assert.match(sent.SequenceNumber ?? '', /^\d+$/, 'FIFO send returns a SequenceNumber');
    }
    const first = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 1, VisibilityTimeout: 60, MessageSystemAttributeNames: ['All'] }));
    assert.equal(first.Messages?.[0]?.Body, 'g1-1');
    assert.equal(first.Messages[0]?.Attributes?.MessageGroupId, 'g1');
    assert.equal(first.Messages[0]?.Attributes?.MessageDeduplicationId, 'g1-1');
    assert.match(first.Messages[0]?.Attributes?.SequenceNumber ?? '', /^\d+$/, `FIFO receive returns the SequenceNumber system attribute: ${JSON.stringify(first.Messages[0]?.Attributes)}`);

    // g1 is blocked: nothing of it comes while g1-1 is in flight, but another group flows.
    const blocked = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
    assert.deepEqual(blocked.Messages ?? [], []);
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'g2-1', MessageGroupId: 'g2', MessageDeduplicationId: 'g2-1' }));
    const other = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 5 }));
    assert.deepEqual((other.Messages ?? []).map((message) => message.Body), ['g2-1']);

    await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: first.Messages[0]?.ReceiptHandle }));
    const rest = await receiveUntil(sqs, { QueueUrl: url }, (messages) => messages.length >= 2, { deleteEach: true });
    assert.deepEqual(rest.map((message) => message.Body), ['g1-2', 'g1-3']);
  });

  test('order holds after a visibility timeout expires', async () => {
    const url = await createQueue(uniqueName('reorder', true), { FifoQueue: 'true' });
    await sqs.send(new SendMessageBatchCommand({
      QueueUrl: url,
      Entries: ['a', 'b', 'c'].map((body) => ({ Id: body, MessageBody: body, MessageGroupId: 'g', MessageDeduplicationId: body })),
    }));
    const first = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 1, VisibilityTimeout: 1 }));
    assert.equal(first.Messages?.[0]?.Body, 'a');
    // Not deleted: after it expires, 'a' comes again before 'b'.
    const all = await receiveUntil(sqs, { QueueUrl: url }, (messages) => messages.length >= 3, { deleteEach: true });
    assert.deepEqual(all.map((message) => message.Body), ['a', 'b', 'c']);
  });

  test('dedup: the same MessageDeduplicationId returns the same MessageId and delivers once; content-based dedup', async () => {
    const url = await createQueue(uniqueName('dedup', true), { FifoQueue: 'true' });
    const one = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'once', MessageGroupId: 'g', MessageDeduplicationId: 'same' }));
    const two = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'once', MessageGroupId: 'g', MessageDeduplicationId: 'same' }));
    assert.equal(two.MessageId, one.MessageId);
    assert.equal(two.SequenceNumber, one.SequenceNumber);
    const received = await drain(sqs, url, 1);
    assert.equal(received[0]?.MessageId, one.MessageId);
    const more = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 1 }));
    assert.deepEqual(more.Messages ?? [], [], 'delivered once');
    // Dedup lasts past the delete (5-minute window).
    const three = await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'once', MessageGroupId: 'g', MessageDeduplicationId: 'same' }));
    assert.equal(three.MessageId, one.MessageId);
    assert.equal((await queueAttributes(sqs, url)).ApproximateNumberOfMessages, '0');

    // A FIFO send needs a dedup id unless ContentBasedDeduplication is on.
    await expectSqsError(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'no id', MessageGroupId: 'g' })), ['InvalidParameterValue', 'MissingParameter']);
    await expectSqsError(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'no group', MessageDeduplicationId: 'x' })), ['MissingParameter', 'InvalidParameterValue']);

    const contentUrl = await createQueue(uniqueName('content', true), { FifoQueue: 'true', ContentBasedDeduplication: 'true' });
    const a = await sqs.send(new SendMessageCommand({ QueueUrl: contentUrl, MessageBody: 'same body', MessageGroupId: 'g' }));
    const b = await sqs.send(new SendMessageCommand({ QueueUrl: contentUrl, MessageBody: 'same body', MessageGroupId: 'g' }));
    const c = await sqs.send(new SendMessageCommand({ QueueUrl: contentUrl, MessageBody: 'other body', MessageGroupId: 'g' }));
    assert.equal(b.MessageId, a.MessageId);
    assert.notEqual(c.MessageId, a.MessageId);
    const bodies = await drain(sqs, contentUrl, 2);
    assert.deepEqual(bodies.map((message) => message.Body), ['same body', 'other body']);
  });

  test('per-message DelaySeconds is refused on a FIFO queue', async () => {
    const url = await createQueue(uniqueName('fifodelay', true), { FifoQueue: 'true', ContentBasedDeduplication: 'true' });
    await expectSqsError(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x', MessageGroupId: 'g', DelaySeconds: 5 })), 'InvalidParameterValue');
  });
});

describe('dead-letter queues and message move tasks', () => {
  test('redrive after maxReceiveCount, DeadLetterQueueSourceArn, ListDeadLetterSourceQueues, StartMessageMoveTask back', async () => {
    const dlqName = uniqueName('dlq');
    const dlqUrl = await createQueue(dlqName);
    const sourceName = uniqueName('source');
    const sourceUrl = await createQueue(sourceName, { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: queueArn(dlqName), maxReceiveCount: 2 }) });
    const redrive = JSON.parse((await queueAttributes(sqs, sourceUrl, ['RedrivePolicy'])).RedrivePolicy ?? '{}') as Record<string, unknown>;
    assert.equal(redrive.deadLetterTargetArn, queueArn(dlqName));
    assert.equal(Number(redrive.maxReceiveCount), 2);

    const sent = await sqs.send(new SendMessageCommand({ QueueUrl: sourceUrl, MessageBody: 'poison' }));
    // Receive it twice without deleting (visibility 0: visible again at once); the next
    // receive moves it to the dead-letter queue instead of delivering it a third time.
    let receives = 0;
    await waitUntil(
      async () => {
        const response = await sqs.send(new ReceiveMessageCommand({ QueueUrl: sourceUrl, VisibilityTimeout: 0, WaitTimeSeconds: 1, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }));
        for (const message of response.Messages ?? []) {
          receives += 1;
          assert.ok(Number(message.Attributes?.ApproximateReceiveCount) <= 2, 'never delivered more than maxReceiveCount times');
        }
        return (await queueAttributes(sqs, dlqUrl)).ApproximateNumberOfMessages === '1';
      },
      'the message to reach the dead-letter queue',
      30_000,
      0,
    );
    assert.equal(receives, 2);
    const [dead] = await receiveUntil(sqs, { QueueUrl: dlqUrl, MessageSystemAttributeNames: ['All'] }, (messages) => messages.length >= 1);
    assert.equal(dead?.MessageId, sent.MessageId);
    assert.equal(dead?.Body, 'poison');
    assert.equal(dead?.Attributes?.DeadLetterQueueSourceArn, queueArn(sourceName));

    const sources = await sqs.send(new ListDeadLetterSourceQueuesCommand({ QueueUrl: dlqUrl }));
    assert.deepEqual(sources.queueUrls, [sourceUrl]);

    // Make it visible again in the DLQ, then move it back to its source queue.
    await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: dlqUrl, ReceiptHandle: dead?.ReceiptHandle, VisibilityTimeout: 0 }));
    const started = await sqs.send(new StartMessageMoveTaskCommand({ SourceArn: queueArn(dlqName) }));
    assert.ok(started.TaskHandle, 'StartMessageMoveTask returns a TaskHandle');
    await waitUntil(
      async () => {
        const tasks = await sqs.send(new ListMessageMoveTasksCommand({ SourceArn: queueArn(dlqName) }));
        return tasks.Results?.[0]?.Status === 'COMPLETED';
      },
      'the move task to complete',
      30_000,
    );
    const tasks = await sqs.send(new ListMessageMoveTasksCommand({ SourceArn: queueArn(dlqName), MaxResults: 10 }));
    assert.equal(tasks.Results?.[0]?.ApproximateNumberOfMessagesMoved, 1);
    assert.equal(tasks.Results?.[0]?.SourceArn, queueArn(dlqName));
    const [back] = await drain(sqs, sourceUrl, 1);
    assert.equal(back?.Body, 'poison');
    assert.equal((await queueAttributes(sqs, dlqUrl)).ApproximateNumberOfMessages, '0');
  });

  test('CancelMessageMoveTask stops a slow move task', async () => {
    const dlqName = uniqueName('dlq-cancel');
    const dlqUrl = await createQueue(dlqName);
    const sourceUrl = await createQueue(uniqueName('source-cancel'), { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: queueArn(dlqName), maxReceiveCount: 1 }) });
    const count = 20;
    for (let start = 0; start < count; start += 10) {
      await sqs.send(new SendMessageBatchCommand({ QueueUrl: sourceUrl, Entries: Array.from({ length: 10 }, (_, index) => ({ Id: `m${index}`, MessageBody: `m${start + index}` })) }));
    }
    await waitUntil(
      async () => {
        await sqs.send(new ReceiveMessageCommand({ QueueUrl: sourceUrl, VisibilityTimeout: 0, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
        return (await queueAttributes(sqs, dlqUrl)).ApproximateNumberOfMessages === String(count);
      },
      `${count} messages to reach the dead-letter queue`,
      60_000,
      0,
    );
    const started = await sqs.send(new StartMessageMoveTaskCommand({ SourceArn: queueArn(dlqName), MaxNumberOfMessagesPerSecond: 1 }));
    assert.ok(started.TaskHandle);
    const cancelled = await sqs.send(new CancelMessageMoveTaskCommand({ TaskHandle: started.TaskHandle }));
    assert.ok((cancelled.ApproximateNumberOfMessagesMoved ?? -1) >= 0 && (cancelled.ApproximateNumberOfMessagesMoved ?? count) < count);
    await waitUntil(
      async () => {
        const tasks = await sqs.send(new ListMessageMoveTasksCommand({ SourceArn: queueArn(dlqName) }));
        return tasks.Results?.[0]?.Status === 'CANCELLED';
      },
      'the move task to be cancelled',
      30_000,
    );
  });
});

describe('restart persistence', () => {
  test('queues, attributes and undeleted messages survive a stop and a start on the same data dir', async (t) => {
    // One after hook, undoing in reverse order: clients, servers, then the data dir.
    const cleanups: Array<() => unknown> = [];
    t.after(async () => {
      for (const cleanup of cleanups.reverse()) await cleanup();
    });
    const dataDir = makeTempDir('berth-restart-');
    cleanups.push(() => dataDir.remove());
    const first = await startBerth({ dataDir: dataDir.path, name: 'sqs-sdk-restart-1' });
    cleanups.push(() => first.stop());
    let client = sqsClient(first.url);
    const standardUrl = (await client.send(new CreateQueueCommand({ QueueName: 'kept', Attributes: { VisibilityTimeout: '45', DelaySeconds: '0' }, tags: { keep: 'yes' } }))).QueueUrl!;
    const fifoUrl = (await client.send(new CreateQueueCommand({ QueueName: 'kept.fifo', Attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'true' } }))).QueueUrl!;
    const bodies = Array.from({ length: 30 }, (_, index) => `persist-${index}`);
    for (let start = 0; start < bodies.length; start += 10) {
      await client.send(new SendMessageBatchCommand({ QueueUrl: standardUrl, Entries: bodies.slice(start, start + 10).map((body, index) => ({ Id: `e${index}`, MessageBody: body })) }));
    }
    for (const body of ['f1', 'f2', 'f3']) await client.send(new SendMessageCommand({ QueueUrl: fifoUrl, MessageBody: body, MessageGroupId: 'g' }));
    // Delete some (at least five; a receive may return up to ten, all deleted); leave
    // at least five more in flight (they must come back after the restart).
    const deleted = await drain(client, standardUrl, 5);
    assert.ok(deleted.length >= 5 && deleted.length < 25);
    const inFlight = await receiveUntil(client, { QueueUrl: standardUrl, VisibilityTimeout: 2 }, (messages) => messages.length >= 5);
    const deletedBodies = new Set(deleted.map((message) => message.Body));
    client.destroy();
    const exit = await first.stop();
    assert.equal(exit.code, 0, 'a SIGTERM stop exits 0');

    const second = await startBerth({ dataDir: dataDir.path, name: 'sqs-sdk-restart-2' });
    cleanups.push(() => second.stop());
    client = sqsClient(second.url);
    cleanups.push(() => client.destroy());
    const listed = await client.send(new ListQueuesCommand({}));
    assert.deepEqual([...(listed.QueueUrls ?? [])].sort(), [`${second.url}/${accountId}/kept`, `${second.url}/${accountId}/kept.fifo`]);
    const attributes = await queueAttributes(client, `${second.url}/${accountId}/kept`);
    assert.equal(attributes.VisibilityTimeout, '45');
    assert.deepEqual((await client.send(new ListQueueTagsCommand({ QueueUrl: `${second.url}/${accountId}/kept` }))).Tags, { keep: 'yes' });
    assert.equal((await queueAttributes(client, `${second.url}/${accountId}/kept.fifo`)).ContentBasedDeduplication, 'true');

    const expected = bodies.filter((body) => !deletedBodies.has(body)).sort();
    assert.equal(expected.length, bodies.length - deletedBodies.size);
    assert.equal(deletedBodies.size, deleted.length, 'no message delivered twice before the restart');
    assert.ok(inFlight.every((message) => !deletedBodies.has(message.Body)));
    const remaining = await drain(client, `${second.url}/${accountId}/kept`, expected.length, { timeoutMs: 60_000 });
    assert.deepEqual([...new Set(remaining.map((message) => message.Body))].sort(), expected);
    const fifo = await drain(client, `${second.url}/${accountId}/kept.fifo`, 3);
    assert.deepEqual(fifo.map((message) => message.Body), ['f1', 'f2', 'f3']);
    // Deleted messages do not come back.
    const extra = await client.send(new ReceiveMessageCommand({ QueueUrl: `${second.url}/${accountId}/kept`, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    assert.deepEqual(extra.Messages ?? [], []);
  });
});
