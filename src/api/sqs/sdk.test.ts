// The real @aws-sdk/client-sqs against the handler behind a tiny loopback node:http
// server, in SigV4 mode: proves the SDK's signatures verify, it parses our JSON responses
// and errors, and its MD5 checks accept our digests.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListDeadLetterSourceQueuesCommand,
  ListQueuesCommand,
  ListQueueTagsCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SetQueueAttributesCommand,
  SQSClient,
  TagQueueCommand,
  UntagQueueCommand,
  AddPermissionCommand,
  RemovePermissionCommand,
  QueueDoesNotExist,
  StartMessageMoveTaskCommand,
  ListMessageMoveTasksCommand,
} from '@aws-sdk/client-sqs';
import type { Clock } from '../../core/clock.js';
import { FakeQueueService } from '../../testing/fake-queue-service.js';
import { createSqsHandler } from './handler.js';

const realClock: Clock = {
  nowMs: () => Date.now(),
  monotonicMs: () => performance.now(),
  setTimer: () => {
    throw new Error('not used');
  },
};

describe('@aws-sdk/client-sqs against the handler (SigV4)', () => {
  let server: Server;
  let client: SQSClient;
  let badClient: SQSClient;
  let service: FakeQueueService;

  before(async () => {
    service = new FakeQueueService(realClock);
    const handler = createSqsHandler(service, {
      accountId: '000000000000',
      region: 'us-east-1',
      auth: { mode: 'sigv4', credentials: new Map([['AKIDTEST', 'secret-test']]) },
      clock: realClock,
    });
    server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        void handler({ method: request.method ?? 'GET', url: request.url ?? '/', headers: request.headers, body: Buffer.concat(chunks) }).then((result) => {
          response.writeHead(result.status, result.headers);
          response.end(result.body);
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    client = new SQSClient({ endpoint, region: 'eu-west-1', credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret-test' }, maxAttempts: 1 });
    badClient = new SQSClient({ endpoint, region: 'eu-west-1', credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'wrong' }, maxAttempts: 1 });
  });

  after(async () => {
    client.destroy();
    badClient.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('queue lifecycle, attributes, tags, permissions', async () => {
    const { QueueUrl: url } = await client.send(new CreateQueueCommand({ QueueName: 'sdk-q', Attributes: { VisibilityTimeout: '45' }, tags: { team: 'a' } }));
    assert.match(url!, /\/000000000000\/sdk-q$/);
    const { QueueUrl: dlqUrl } = await client.send(new CreateQueueCommand({ QueueName: 'sdk-dlq' }));
    assert.equal((await client.send(new GetQueueUrlCommand({ QueueName: 'sdk-q' }))).QueueUrl, url);
    const listed = await client.send(new ListQueuesCommand({ QueueNamePrefix: 'sdk-', MaxResults: 1 }));
    assert.equal(listed.QueueUrls?.length, 1);
    assert.ok(listed.NextToken);
    const attributes = await client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }));
    assert.equal(attributes.Attributes?.['VisibilityTimeout'], '45');
    const dlqArn = (await client.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }))).Attributes?.['QueueArn'];
    await client.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 3 }) } }));
    assert.deepEqual((await client.send(new ListDeadLetterSourceQueuesCommand({ QueueUrl: dlqUrl }))).queueUrls, [url]);
    await client.send(new TagQueueCommand({ QueueUrl: url, Tags: { env: 'test' } }));
    await client.send(new UntagQueueCommand({ QueueUrl: url, TagKeys: ['team'] }));
    assert.deepEqual((await client.send(new ListQueueTagsCommand({ QueueUrl: url }))).Tags, { env: 'test' });
    await client.send(new AddPermissionCommand({ QueueUrl: url, Label: 'p', AWSAccountIds: ['111122223333'], Actions: ['SendMessage'] }));
    await client.send(new RemovePermissionCommand({ QueueUrl: url, Label: 'p' }));
    const task = await client.send(new StartMessageMoveTaskCommand({ SourceArn: dlqArn }));
    assert.ok(task.TaskHandle);
    const tasks = await client.send(new ListMessageMoveTasksCommand({ SourceArn: dlqArn }));
    assert.equal(tasks.Results?.[0]?.Status, 'COMPLETED');
    await client.send(new PurgeQueueCommand({ QueueUrl: dlqUrl }));
    await client.send(new DeleteQueueCommand({ QueueUrl: dlqUrl }));
  });

  test('messages: the SDK accepts our MD5s on send, batch send and receive', async () => {
    const { QueueUrl: url } = await client.send(new CreateQueueCommand({ QueueName: 'sdk-m' }));
    const attributes = {
      City: { DataType: 'String', StringValue: 'Any City' },
      Bin: { DataType: 'Binary.custom', BinaryValue: new Uint8Array([0, 1, 2, 254, 255]) },
      Num: { DataType: 'Number.int', StringValue: '42' },
    };
    const sent = await client.send(
      new SendMessageCommand({
        QueueUrl: url,
        MessageBody: 'hello ✓ 𝄞 <xml> & "quotes"',
        MessageAttributes: attributes,
        MessageSystemAttributes: { AWSTraceHeader: { DataType: 'String', StringValue: 'Root=1-abc' } },
      }),
    );
    assert.ok(sent.MessageId);
    assert.ok(sent.MD5OfMessageAttributes);
    const batch = await client.send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: [
          { Id: 'a', MessageBody: 'one', MessageAttributes: attributes },
          { Id: 'b', MessageBody: 'two' },
          { Id: 'c', MessageBody: 'bad\u0000' },
        ],
      }),
    );
    assert.deepEqual(batch.Successful?.map((entry) => entry.Id).sort(), ['a', 'b']);
    assert.equal(batch.Failed?.[0]?.Id, 'c');
    assert.equal(batch.Failed?.[0]?.SenderFault, true);
    const received = await client.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'], MessageSystemAttributeNames: ['All'], WaitTimeSeconds: 0 }),
    );
    assert.equal(received.Messages?.length, 3);
    const first = received.Messages!.find((message) => message.MessageId === sent.MessageId)!;
    assert.equal(first.Body, 'hello ✓ 𝄞 <xml> & "quotes"');
    assert.deepEqual([...(first.MessageAttributes?.['Bin']?.BinaryValue ?? [])], [0, 1, 2, 254, 255]);
    assert.equal(first.Attributes?.['SenderId'], 'AKIDTEST');
    assert.equal(first.Attributes?.['AWSTraceHeader'], 'Root=1-abc');
    const [m0, m1, m2] = received.Messages!;
    await client.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: m0!.ReceiptHandle, VisibilityTimeout: 60 }));
    const changed = await client.send(
      new ChangeMessageVisibilityBatchCommand({ QueueUrl: url, Entries: [{ Id: 'x', ReceiptHandle: m1!.ReceiptHandle, VisibilityTimeout: 60 }, { Id: 'y', ReceiptHandle: 'nonsense', VisibilityTimeout: 1 }] }),
    );
    assert.equal(changed.Successful?.length, 1);
    assert.equal(changed.Failed?.[0]?.Code, 'ReceiptHandleIsInvalid');
    await client.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m0!.ReceiptHandle }));
    const deleted = await client.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: [{ Id: 'p', ReceiptHandle: m1!.ReceiptHandle }, { Id: 'q', ReceiptHandle: m2!.ReceiptHandle }] }));
    assert.equal(deleted.Successful?.length, 2);
  });

  test('errors arrive as the SDK error classes, and bad signatures are refused', async () => {
    await assert.rejects(client.send(new GetQueueUrlCommand({ QueueName: 'missing' })), (error: unknown) => {
      assert.ok(error instanceof QueueDoesNotExist);
      assert.equal((error as QueueDoesNotExist).$metadata.httpStatusCode, 400);
      return true;
    });
    await assert.rejects(client.send(new CreateQueueCommand({ QueueName: 'x', Attributes: { VisibilityTimeout: '99999' } })), (error: unknown) => {
      assert.equal((error as Error).name, 'InvalidAttributeValue');
      return true;
    });
    await assert.rejects(badClient.send(new ListQueuesCommand({})), (error: unknown) => {
      assert.equal((error as Error).name, 'SignatureDoesNotMatch');
      assert.equal((error as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode, 403);
      return true;
    });
  });
});
