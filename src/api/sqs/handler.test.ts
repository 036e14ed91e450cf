import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createHarness, isError, parseXml, type CallResult, type Harness, type Protocol } from './test-support.js';
import type { ErrorCode } from '../../protocol/errors.js';

const protocols: Protocol[] = ['json', 'query'];
const account = '000000000000';

function expectError(result: CallResult, code: ErrorCode, messagePart?: string): void {
  assert.ok(isError(result, code), `expected ${code}, got ${result.status} ${JSON.stringify(result.error ?? result.output)}`);
  if (messagePart !== undefined) assert.ok(result.error!.message.includes(messagePart), `message "${result.error!.message}" lacks "${messagePart}"`);
}

function expectOk(result: CallResult): Record<string, any> {
  assert.equal(result.status, 200, `expected 200, got ${result.status} ${JSON.stringify(result.error)}`);
  return result.output;
}

async function makeQueue(harness: Harness, protocol: Protocol, name: string, attributes: Record<string, string> = {}): Promise<string> {
  const output = expectOk(await harness.call(protocol, 'CreateQueue', { QueueName: name, Attributes: attributes }));
  return output['QueueUrl'] as string;
}

for (const protocol of protocols) {
  describe(`SQS handler over ${protocol}`, () => {
    test('CreateQueue returns a URL from the Host header, stores canonical defaults, and is idempotent', async () => {
      const harness = createHarness();
      const url = await makeQueue(harness, protocol, 'orders');
      assert.equal(url, `http://${harness.host}/${account}/orders`);
      const stored = await harness.service.describeQueue('orders');
      assert.deepEqual(stored.attributes, {
        DelaySeconds: '0',
        MaximumMessageSize: '262144',
        MessageRetentionPeriod: '345600',
        ReceiveMessageWaitTimeSeconds: '0',
        VisibilityTimeout: '30',
        SqsManagedSseEnabled: 'true',
      });
      // Same name, no attributes, or the same canonical values written differently: same queue.
      assert.equal(await makeQueue(harness, protocol, 'orders'), url);
      assert.equal(await makeQueue(harness, protocol, 'orders', { VisibilityTimeout: '030' }), url);
      expectError(await harness.call(protocol, 'CreateQueue', { QueueName: 'orders', Attributes: { VisibilityTimeout: '31' } }), 'QueueNameExists');
    });

    test('CreateQueue validates names, FIFO pairing and attributes', async () => {
      const harness = createHarness();
      expectError(await harness.call(protocol, 'CreateQueue', {}), 'MissingParameter');
      expectError(await harness.call(protocol, 'CreateQueue', { QueueName: 'bad name' }), 'InvalidParameterValue');
      expectError(await harness.call(protocol, 'CreateQueue', { QueueName: 'x'.repeat(81) }), 'InvalidParameterValue');
      expectError(await harness.call(protocol, 'CreateQueue', { QueueName: 'jobs.fifo' }), 'InvalidParameterValue');
      expectError(await harness.call(protocol, 'CreateQueue', { QueueName: 'jobs', Attributes: { FifoQueue: 'true' } }), 'InvalidParameterValue');
      expectError(await harness.call(protocol, 'CreateQueue', { QueueName: 'jobs', Attributes: { Colour: 'blue' } }), 'InvalidAttributeName');
      expectError(await harness.call(protocol, 'CreateQueue', { QueueName: 'jobs', Attributes: { QueueArn: 'x' } }), 'InvalidAttributeName');
      expectError(await harness.call(protocol, 'CreateQueue', { QueueName: 'jobs', Attributes: { ContentBasedDeduplication: 'true' } }), 'InvalidAttributeName');
      const outOfRange: Record<string, string> = {
        DelaySeconds: '901',
        MaximumMessageSize: '1023',
        MessageRetentionPeriod: '59',
        ReceiveMessageWaitTimeSeconds: '21',
        VisibilityTimeout: '43201',
        KmsDataKeyReusePeriodSeconds: '59',
        SqsManagedSseEnabled: 'yes',
        ReplicaCount: '0',
        Policy: 'not json',
      };
      for (const [name, value] of Object.entries(outOfRange)) {
        expectError(await harness.call(protocol, 'CreateQueue', { QueueName: 'jobs', Attributes: { [name]: value } }), 'InvalidAttributeValue', name);
      }
      expectError(await harness.call(protocol, 'CreateQueue', { QueueName: 'jobs.fifo', Attributes: { FifoQueue: 'true', DeduplicationScope: 'group' } }), 'InvalidAttributeValue');
      expectError(
        await harness.call(protocol, 'CreateQueue', { QueueName: 'jobs.fifo', Attributes: { FifoQueue: 'true', FifoThroughputLimit: 'perMessageGroupId' } }),
        'InvalidAttributeValue',
      );
      assert.equal(harness.service.queues.size, 0);
    });

    test('FIFO queues get FIFO defaults; attributes that apply only are returned', async () => {
      const harness = createHarness();
      await makeQueue(harness, protocol, 'jobs.fifo', { FifoQueue: 'TRUE', ContentBasedDeduplication: 'true', ReplicaCount: '3' });
      const output = expectOk(await harness.call(protocol, 'GetQueueAttributes', { QueueUrl: `http://elsewhere/${account}/jobs.fifo`, AttributeNames: ['All'] }));
      const attributes = output['Attributes'] as Record<string, string>;
      assert.equal(attributes['FifoQueue'], 'true');
      assert.equal(attributes['ContentBasedDeduplication'], 'true');
      assert.equal(attributes['DeduplicationScope'], 'queue');
      assert.equal(attributes['FifoThroughputLimit'], 'perQueue');
      assert.equal(attributes['ReplicaCount'], '3');
      assert.equal(attributes['QueueArn'], `arn:aws:sqs:us-east-1:${account}:jobs.fifo`);
      assert.equal(attributes['CreatedTimestamp'], String(Math.floor(harness.clock.nowMs() / 1000)));
      assert.equal(attributes['ApproximateNumberOfMessages'], '0');

      await makeQueue(harness, protocol, 'plain');
      const plain = expectOk(await harness.call(protocol, 'GetQueueAttributes', { QueueUrl: `/${account}/plain`, AttributeNames: ['All'] }));
      assert.equal(plain['Attributes']['FifoQueue'], undefined);
      assert.equal(plain['Attributes']['VisibilityTimeout'], '30');
      const some = expectOk(await harness.call(protocol, 'GetQueueAttributes', { QueueUrl: `/${account}/plain`, AttributeNames: ['VisibilityTimeout', 'FifoQueue'] }));
      assert.deepEqual(Object.keys(some['Attributes']), ['VisibilityTimeout']);
      expectError(await harness.call(protocol, 'GetQueueAttributes', { QueueUrl: `/${account}/plain`, AttributeNames: ['Nope'] }), 'InvalidAttributeName');
    });

    test('queue URLs: any host; other account or unknown queue -> QueueDoesNotExist; path form works', async () => {
      const harness = createHarness();
      await makeQueue(harness, protocol, 'q1');
      expectOk(await harness.call(protocol, 'GetQueueAttributes', { QueueUrl: `https://sqs.eu-west-1.amazonaws.com/${account}/q1`, AttributeNames: ['QueueArn'] }));
      expectError(await harness.call(protocol, 'GetQueueAttributes', { QueueUrl: `http://h/123456789012/q1` }), 'QueueDoesNotExist');
      expectError(await harness.call(protocol, 'GetQueueAttributes', { QueueUrl: `http://h/${account}/missing` }), 'QueueDoesNotExist');
      expectError(await harness.call(protocol, 'PurgeQueue', {}), 'MissingParameter');
      const response = await harness.handler({
        method: 'POST',
        url: `/${account}/q1`,
        headers: { host: 'h', 'content-type': 'application/x-www-form-urlencoded' },
        body: Buffer.from('Action=SendMessage&MessageBody=by%20path'),
      });
      assert.equal(response.status, 200);
      assert.equal((await harness.service.peekMessages('q1', 10))[0]?.body, 'by path');
    });

    test('GetQueueUrl, ListQueues with prefix and pagination, DeleteQueue', async () => {
      const harness = createHarness();
      for (const name of ['a1', 'a2', 'a3', 'b1']) await makeQueue(harness, protocol, name);
      assert.equal(expectOk(await harness.call(protocol, 'GetQueueUrl', { QueueName: 'a2' }))['QueueUrl'], `http://${harness.host}/${account}/a2`);
      expectError(await harness.call(protocol, 'GetQueueUrl', { QueueName: 'zz' }), 'QueueDoesNotExist');
      expectError(await harness.call(protocol, 'GetQueueUrl', { QueueName: 'a2', QueueOwnerAWSAccountId: '999999999999' }), 'QueueDoesNotExist');
      const all = expectOk(await harness.call(protocol, 'ListQueues', {}));
      assert.equal(all['QueueUrls'].length, 4);
      assert.equal(all['NextToken'], undefined);
      const first = expectOk(await harness.call(protocol, 'ListQueues', { QueueNamePrefix: 'a', MaxResults: 2 }));
      assert.deepEqual(first['QueueUrls'], [`http://${harness.host}/${account}/a1`, `http://${harness.host}/${account}/a2`]);
      const second = expectOk(await harness.call(protocol, 'ListQueues', { QueueNamePrefix: 'a', MaxResults: 2, NextToken: first['NextToken'] }));
      assert.deepEqual(second['QueueUrls'], [`http://${harness.host}/${account}/a3`]);
      assert.equal(second['NextToken'], undefined);
      expectError(await harness.call(protocol, 'ListQueues', { MaxResults: 0 }), 'InvalidParameterValue');
      expectError(await harness.call(protocol, 'ListQueues', { MaxResults: 1001 }), 'InvalidParameterValue');
      expectError(await harness.call(protocol, 'ListQueues', { NextToken: '!!!' }), 'InvalidParameterValue');
      expectOk(await harness.call(protocol, 'DeleteQueue', { QueueUrl: `/${account}/b1` }));
      expectError(await harness.call(protocol, 'CreateQueue', { QueueName: 'b1' }), 'QueueDeletedRecently');
      harness.clock.advance(61_000);
      expectOk(await harness.call(protocol, 'CreateQueue', { QueueName: 'b1' }));
    });

    test('SetQueueAttributes: merge, removal, FIFO-only and create-only names, RedrivePolicy checks', async () => {
      const harness = createHarness();
      await makeQueue(harness, protocol, 'src');
      await makeQueue(harness, protocol, 'dlq');
      await makeQueue(harness, protocol, 'fdlq.fifo', { FifoQueue: 'true' });
      const url = `/${account}/src`;
      expectOk(await harness.call(protocol, 'SetQueueAttributes', { QueueUrl: url, Attributes: { VisibilityTimeout: '45', DelaySeconds: '5' } }));
      let stored = await harness.service.describeQueue('src');
      assert.equal(stored.attributes['VisibilityTimeout'], '45');
      assert.equal(stored.attributes['DelaySeconds'], '5');
      expectError(await harness.call(protocol, 'SetQueueAttributes', { QueueUrl: url }), 'MissingParameter');
      expectError(await harness.call(protocol, 'SetQueueAttributes', { QueueUrl: url, Attributes: { FifoQueue: 'false' } }), 'InvalidAttributeName');
      expectError(await harness.call(protocol, 'SetQueueAttributes', { QueueUrl: url, Attributes: { DeduplicationScope: 'queue' } }), 'InvalidAttributeName');
      expectError(await harness.call(protocol, 'SetQueueAttributes', { QueueUrl: url, Attributes: { ApproximateNumberOfMessages: '1' } }), 'InvalidAttributeName');
      const arn = (name: string): string => `arn:aws:sqs:us-east-1:${account}:${name}`;
      const redrive = (target: string, count: unknown): string => JSON.stringify({ deadLetterTargetArn: target, maxReceiveCount: count });
      expectError(await harness.call(protocol, 'SetQueueAttributes', { QueueUrl: url, Attributes: { RedrivePolicy: redrive(arn('nope'), 3) } }), 'InvalidParameterValue', 'does not exist');
      expectError(await harness.call(protocol, 'SetQueueAttributes', { QueueUrl: url, Attributes: { RedrivePolicy: redrive(arn('fdlq.fifo'), 3) } }), 'InvalidParameterValue', 'same type');
      expectError(await harness.call(protocol, 'SetQueueAttributes', { QueueUrl: url, Attributes: { RedrivePolicy: redrive(arn('dlq'), 0) } }), 'InvalidParameterValue', 'maxReceiveCount');
      expectError(await harness.call(protocol, 'SetQueueAttributes', { QueueUrl: url, Attributes: { RedrivePolicy: redrive(arn('dlq'), 1001) } }), 'InvalidParameterValue', 'maxReceiveCount');
      expectError(await harness.call(protocol, 'SetQueueAttributes', { QueueUrl: url, Attributes: { RedrivePolicy: '{' } }), 'InvalidParameterValue');
      expectOk(await harness.call(protocol, 'SetQueueAttributes', { QueueUrl: url, Attributes: { RedrivePolicy: redrive(arn('dlq'), '5') } }));
      stored = await harness.service.describeQueue('src');
      assert.equal(stored.attributes['RedrivePolicy'], `{"deadLetterTargetArn":"${arn('dlq')}","maxReceiveCount":5}`);
      const sources = expectOk(await harness.call(protocol, 'ListDeadLetterSourceQueues', { QueueUrl: `/${account}/dlq` }));
      assert.deepEqual(sources['queueUrls'], [`http://${harness.host}/${account}/src`]);
      expectOk(await harness.call(protocol, 'SetQueueAttributes', { QueueUrl: url, Attributes: { RedrivePolicy: '' } }));
      assert.equal((await harness.service.describeQueue('src')).attributes['RedrivePolicy'], undefined);
      expectError(await harness.call(protocol, 'SetQueueAttributes', { QueueUrl: url, Attributes: { RedriveAllowPolicy: '{"redrivePermission":"byQueue"}' } }), 'InvalidAttributeValue');
      expectOk(await harness.call(protocol, 'SetQueueAttributes', { QueueUrl: url, Attributes: { RedriveAllowPolicy: '{"redrivePermission":"denyAll"}' } }));
    });

    test('SendMessage returns MD5s computed independently (python hashlib vectors)', async () => {
      const harness = createHarness();
      const url = await makeQueue(harness, protocol, 'md5');
      const output = expectOk(
        await harness.call(protocol, 'SendMessage', {
          QueueUrl: url,
          MessageBody: 'This is a test message',
          MessageAttributes: {
            b: { DataType: 'Binary.gzip', BinaryValue: Buffer.from([0, 1, 2, 255]).toString('base64') },
            a: { DataType: 'Number.float', StringValue: '3.14' },
            Z: { DataType: 'String.custom', StringValue: 'x' },
          },
          MessageSystemAttributes: { AWSTraceHeader: { DataType: 'String', StringValue: 'Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1' } },
        }),
      );
      assert.equal(output['MD5OfMessageBody'], 'fafb00f5732ab283681e124bf8747ed1');
      assert.equal(output['MD5OfMessageAttributes'], 'bb7593422fb8a7dc69bb94665d03ca2d');
      assert.equal(output['MD5OfMessageSystemAttributes'], '5f48eef650c1d0207456969c85af2fdd');
      assert.match(output['MessageId'], /^[0-9a-f-]{36}$/);
      const plain = expectOk(await harness.call(protocol, 'SendMessage', { QueueUrl: url, MessageBody: 'héllo ✓ 𝄞' }));
      assert.equal(plain['MD5OfMessageBody'], '341ed740ae2bfa1f25a442122d7fee54');
      assert.equal(plain['MD5OfMessageAttributes'], undefined);
      assert.equal(plain['MD5OfMessageSystemAttributes'], undefined);
    });

    test('SendMessage validation', async () => {
      const harness = createHarness();
      const url = await makeQueue(harness, protocol, 'v', { MaximumMessageSize: '1024' });
      const send = (extra: Record<string, unknown>): Promise<CallResult> => harness.call(protocol, 'SendMessage', { QueueUrl: url, MessageBody: 'ok', ...extra });
      expectError(await harness.call(protocol, 'SendMessage', { QueueUrl: url }), 'MissingParameter');
      expectError(await send({ MessageBody: 'bad \u0001 char' }), 'InvalidMessageContents');
      expectError(await send({ MessageBody: 'bad \uFFFE char' }), 'InvalidMessageContents');
      expectError(await send({ MessageBody: 'x'.repeat(1025) }), 'InvalidParameterValue', 'shorter than 1024');
      expectOk(await send({ MessageBody: 'x'.repeat(1024) }));
      // Attribute names, types and values count toward the size.
      expectError(await send({ MessageBody: 'x'.repeat(1000), MessageAttributes: { name: { DataType: 'String', StringValue: 'y'.repeat(20) } } }), 'InvalidParameterValue');
      expectError(await send({ DelaySeconds: 901 }), 'InvalidParameterValue');
      expectError(await send({ DelaySeconds: -1 }), 'InvalidParameterValue');
      expectError(await send({ MessageDeduplicationId: 'd' }), 'InvalidParameterValue');
      const tooMany: Record<string, unknown> = {};
      for (let i = 0; i < 11; i++) tooMany[`a${i}`] = { DataType: 'String', StringValue: 'v' };
      expectError(await send({ MessageAttributes: tooMany }), 'InvalidParameterValue', '[11]');
      const badAttributes: Record<string, unknown>[] = [
        { 'AWS.x': { DataType: 'String', StringValue: 'v' } },
        { 'amazon.x': { DataType: 'String', StringValue: 'v' } },
        { 'a..b': { DataType: 'String', StringValue: 'v' } },
        { 'a b': { DataType: 'String', StringValue: 'v' } },
        { a: { DataType: 'Text', StringValue: 'v' } },
        { a: { StringValue: 'v' } },
        { a: { DataType: 'String' } },
        { a: { DataType: 'String', StringValue: '' } },
        { a: { DataType: 'Number', StringValue: 'twelve' } },
        { a: { DataType: 'Binary', StringValue: 'v' } },
      ];
      for (const attributes of badAttributes) expectError(await send({ MessageAttributes: attributes }), 'InvalidParameterValue', undefined);
      expectError(await send({ MessageSystemAttributes: { Other: { DataType: 'String', StringValue: 'v' } } }), 'InvalidParameterValue');
      expectOk(await send({ MessageAttributes: { n: { DataType: 'Number', StringValue: '-1.5e10' }, s: { DataType: 'String.utf8', StringValue: 'é' } }, DelaySeconds: 900 }));
      expectError(await send({ MessageAttributes: { 'Berth.ReplicaCount': { DataType: 'Number', StringValue: '0' } } }), 'InvalidParameterValue');
      expectOk(await send({ MessageAttributes: { 'Berth.ReplicaCount': { DataType: 'Number', StringValue: '2' } } }));
      const last = harness.service.sentInputs[harness.service.sentInputs.length - 1]!;
      assert.equal(last.replicaCount, 2);
      assert.equal(last.attributes['Berth.ReplicaCount']?.stringValue, '2');
    });

    test('FIFO send: MessageGroupId required, dedup explicit or content-based, no per-message delay', async () => {
      const harness = createHarness();
      const url = await makeQueue(harness, protocol, 'f.fifo', { FifoQueue: 'true' });
      expectError(await harness.call(protocol, 'SendMessage', { QueueUrl: url, MessageBody: 'm', MessageDeduplicationId: 'd' }), 'MissingParameter', 'MessageGroupId');
      expectError(await harness.call(protocol, 'SendMessage', { QueueUrl: url, MessageBody: 'm', MessageGroupId: 'g' }), 'InvalidParameterValue', 'ContentBasedDeduplication');
      expectError(await harness.call(protocol, 'SendMessage', { QueueUrl: url, MessageBody: 'm', MessageGroupId: 'g', MessageDeduplicationId: 'd', DelaySeconds: 1 }), 'InvalidParameterValue');
      expectError(await harness.call(protocol, 'SendMessage', { QueueUrl: url, MessageBody: 'm', MessageGroupId: 'g'.repeat(129), MessageDeduplicationId: 'd' }), 'InvalidParameterValue');
      expectError(await harness.call(protocol, 'SendMessage', { QueueUrl: url, MessageBody: 'm', MessageGroupId: 'g h', MessageDeduplicationId: 'd' }), 'InvalidParameterValue');
      const first = expectOk(await harness.call(protocol, 'SendMessage', { QueueUrl: url, MessageBody: 'm', MessageGroupId: 'g', MessageDeduplicationId: 'd!#' }));
      assert.ok(String(first['SequenceNumber']).length >= 20);
      const again = expectOk(await harness.call(protocol, 'SendMessage', { QueueUrl: url, MessageBody: 'm', MessageGroupId: 'g', MessageDeduplicationId: 'd!#' }));
      assert.equal(again['MessageId'], first['MessageId']);
      expectOk(await harness.call(protocol, 'SetQueueAttributes', { QueueUrl: url, Attributes: { ContentBasedDeduplication: 'true' } }));
      expectOk(await harness.call(protocol, 'SendMessage', { QueueUrl: url, MessageBody: 'content', MessageGroupId: 'g' }));
      const last = harness.service.sentInputs[harness.service.sentInputs.length - 1]!;
      assert.equal(last.deduplicationId, createHash('sha256').update('content').digest('hex'));
      assert.equal(last.groupId, 'g');
    });

    test('ReceiveMessage: attributes selection, MD5 over returned attributes, defaults and limits', async () => {
      const harness = createHarness();
      const url = await makeQueue(harness, protocol, 'r', { ReceiveMessageWaitTimeSeconds: '7' });
      expectOk(
        await harness.call(protocol, 'SendMessage', {
          QueueUrl: url,
          MessageBody: 'body <&>"\' \r\n end',
          MessageAttributes: { City: { DataType: 'String', StringValue: 'Any City' }, Population: { DataType: 'Number', StringValue: '1250800' }, 'other.x': { DataType: 'String', StringValue: 'o' } },
        }, { authorization: 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=00' }),
      );
      const output = expectOk(
        await harness.call(protocol, 'ReceiveMessage', {
          QueueUrl: url,
          MaxNumberOfMessages: 5,
          MessageAttributeNames: ['City', 'Pop.*', 'Population'],
          MessageSystemAttributeNames: ['SenderId', 'ApproximateReceiveCount'],
          AttributeNames: ['SentTimestamp'],
        }),
      );
      assert.equal(output['Messages'].length, 1);
      const message = output['Messages'][0];
      assert.equal(message['Body'], 'body <&>"\' \r\n end');
      assert.equal(message['MD5OfBody'], createHash('md5').update('body <&>"\' \r\n end').digest('hex'));
      assert.equal(message['MD5OfMessageAttributes'], 'bf1eb494fecc925abadc71de4be9785c');
      assert.deepEqual(Object.keys(message['MessageAttributes']).sort(), ['City', 'Population']);
      assert.equal(message['MessageAttributes']['Population']['DataType'], 'Number');
      assert.equal(message['Attributes']['SenderId'], 'AKIDEXAMPLE');
      assert.equal(message['Attributes']['ApproximateReceiveCount'], '1');
      assert.equal(message['Attributes']['SentTimestamp'], String(harness.clock.nowMs()));
      assert.equal(message['Attributes']['ApproximateFirstReceiveTimestamp'], undefined);
      assert.equal(harness.service.receiveCalls[0]?.waitTimeSeconds, 7);
      assert.equal(harness.service.receiveCalls[0]?.maxMessages, 5);

      // Nothing visible: an empty result; no attributes requested: no MD5OfMessageAttributes.
      const empty = expectOk(await harness.call(protocol, 'ReceiveMessage', { QueueUrl: url, WaitTimeSeconds: 0 }));
      assert.equal(empty['Messages'], undefined);
      harness.clock.advance(31_000);
      const plain = expectOk(await harness.call(protocol, 'ReceiveMessage', { QueueUrl: url, VisibilityTimeout: 0 }));
      assert.equal(plain['Messages'][0]['MD5OfMessageAttributes'], undefined);
      assert.equal(plain['Messages'][0]['MessageAttributes'], undefined);
      assert.equal(harness.service.receiveCalls[2]?.visibilityTimeoutSeconds, 0);
      const all = expectOk(await harness.call(protocol, 'ReceiveMessage', { QueueUrl: url, MessageAttributeNames: ['All'], AttributeNames: ['All'] }));
      assert.equal(Object.keys(all['Messages'][0]['MessageAttributes']).length, 3);
      assert.equal(all['Messages'][0]['Attributes']['ApproximateReceiveCount'], '3');

      expectError(await harness.call(protocol, 'ReceiveMessage', { QueueUrl: url, MaxNumberOfMessages: 11 }), 'InvalidParameterValue');
      expectError(await harness.call(protocol, 'ReceiveMessage', { QueueUrl: url, MaxNumberOfMessages: 0 }), 'InvalidParameterValue');
      expectError(await harness.call(protocol, 'ReceiveMessage', { QueueUrl: url, WaitTimeSeconds: 21 }), 'InvalidParameterValue');
      expectError(await harness.call(protocol, 'ReceiveMessage', { QueueUrl: url, VisibilityTimeout: 43201 }), 'InvalidParameterValue');
      expectError(await harness.call(protocol, 'ReceiveMessage', { QueueUrl: url, MessageSystemAttributeNames: ['Bogus'] }), 'InvalidAttributeName');
    });

    test('DeleteMessage, ChangeMessageVisibility and their batches with per-entry failures', async () => {
      const harness = createHarness();
      const url = await makeQueue(harness, protocol, 'd');
      for (let i = 0; i < 3; i++) expectOk(await harness.call(protocol, 'SendMessage', { QueueUrl: url, MessageBody: `m${i}` }));
      const received = expectOk(await harness.call(protocol, 'ReceiveMessage', { QueueUrl: url, MaxNumberOfMessages: 10 }))['Messages'] as Record<string, string>[];
      assert.equal(received.length, 3);
      const [h0, h1, h2] = received.map((message) => message['ReceiptHandle']!);
      expectOk(await harness.call(protocol, 'ChangeMessageVisibility', { QueueUrl: url, ReceiptHandle: h0, VisibilityTimeout: 100 }));
      expectError(await harness.call(protocol, 'ChangeMessageVisibility', { QueueUrl: url, ReceiptHandle: h0 }), 'MissingParameter');
      expectError(await harness.call(protocol, 'ChangeMessageVisibility', { QueueUrl: url, ReceiptHandle: h0, VisibilityTimeout: 43201 }), 'InvalidParameterValue');
      expectError(await harness.call(protocol, 'ChangeMessageVisibility', { QueueUrl: url, ReceiptHandle: 'garbage', VisibilityTimeout: 1 }), 'ReceiptHandleIsInvalid');
      const changed = expectOk(
        await harness.call(protocol, 'ChangeMessageVisibilityBatch', {
          QueueUrl: url,
          Entries: [
            { Id: 'a', ReceiptHandle: h1, VisibilityTimeout: 5 },
            { Id: 'b', ReceiptHandle: 'garbage', VisibilityTimeout: 5 },
            { Id: 'c', ReceiptHandle: h2 },
          ],
        }),
      );
      assert.deepEqual(changed['Successful'].map((entry: Record<string, string>) => entry['Id']), ['a']);
      assert.deepEqual(changed['Failed'].map((entry: Record<string, string>) => [entry['Id'], entry['Code'], String(entry['SenderFault'])]).sort(), [
        ['b', 'ReceiptHandleIsInvalid', 'true'],
        ['c', 'MissingParameter', 'true'],
      ]);
      expectOk(await harness.call(protocol, 'DeleteMessage', { QueueUrl: url, ReceiptHandle: h0 }));
      expectError(await harness.call(protocol, 'DeleteMessage', { QueueUrl: url }), 'MissingParameter');
      expectError(await harness.call(protocol, 'DeleteMessage', { QueueUrl: url, ReceiptHandle: 'garbage' }), 'ReceiptHandleIsInvalid');
      const deleted = expectOk(
        await harness.call(protocol, 'DeleteMessageBatch', { QueueUrl: url, Entries: [{ Id: 'x', ReceiptHandle: h1 }, { Id: 'y', ReceiptHandle: 'garbage' }] }),
      );
      assert.deepEqual(deleted['Successful'], [{ Id: 'x' }]);
      assert.equal(deleted['Failed'][0]['Code'], 'ReceiptHandleIsInvalid');
      expectError(await harness.call(protocol, 'DeleteMessageBatch', { QueueUrl: url, Entries: [] }), 'EmptyBatchRequest');
      expectError(await harness.call(protocol, 'DeleteMessageBatch', { QueueUrl: url }), 'EmptyBatchRequest');
      expectError(await harness.call(protocol, 'DeleteMessageBatch', { QueueUrl: url, Entries: [{ Id: 'x', ReceiptHandle: h1 }, { Id: 'x', ReceiptHandle: h2 }] }), 'BatchEntryIdsNotDistinct');
      expectError(await harness.call(protocol, 'DeleteMessageBatch', { QueueUrl: url, Entries: [{ Id: 'bad id', ReceiptHandle: h1 }] }), 'InvalidBatchEntryId');
      expectError(await harness.call(protocol, 'DeleteMessageBatch', { QueueUrl: url, Entries: [{ Id: 'i'.repeat(81), ReceiptHandle: h1 }] }), 'InvalidBatchEntryId');
      const eleven = Array.from({ length: 11 }, (_, i) => ({ Id: `e${i}`, ReceiptHandle: h2 }));
      expectError(await harness.call(protocol, 'ChangeMessageVisibilityBatch', { QueueUrl: url, Entries: eleven.map((entry) => ({ ...entry, VisibilityTimeout: 1 })) }), 'TooManyEntriesInBatchRequest');
    });

    test('SendMessageBatch: per-entry results, MD5s, total size limit', async () => {
      const harness = createHarness();
      const url = await makeQueue(harness, protocol, 'b', { MaximumMessageSize: '1048576' });
      const output = expectOk(
        await harness.call(protocol, 'SendMessageBatch', {
          QueueUrl: url,
          Entries: [
            { Id: 'one', MessageBody: 'This is a test message' },
            { Id: 'two', MessageBody: 'bad \u0000' },
            { Id: 'three', MessageBody: 'x', MessageAttributes: { City: { DataType: 'String', StringValue: 'Any City' }, Population: { DataType: 'Number', StringValue: '1250800' } } },
            { Id: 'four', MessageBody: 'x', DelaySeconds: 1000 },
          ],
        }),
      );
      const successful = Object.fromEntries(output['Successful'].map((entry: Record<string, string>) => [entry['Id'], entry]));
      assert.deepEqual(Object.keys(successful).sort(), ['one', 'three']);
      assert.equal(successful['one']['MD5OfMessageBody'], 'fafb00f5732ab283681e124bf8747ed1');
      assert.equal(successful['three']['MD5OfMessageAttributes'], 'bf1eb494fecc925abadc71de4be9785c');
      const failed = Object.fromEntries(output['Failed'].map((entry: Record<string, string>) => [entry['Id'], entry['Code']]));
      assert.deepEqual(failed, { two: 'InvalidMessageContents', four: 'InvalidParameterValue' });
      const big = 'y'.repeat(600_000);
      expectError(await harness.call(protocol, 'SendMessageBatch', { QueueUrl: url, Entries: [{ Id: 'a', MessageBody: big }, { Id: 'b', MessageBody: big }] }), 'BatchRequestTooLong');
      assert.equal((await harness.service.peekMessages('b', 100)).length, 2);
    });

    test('tags, permissions, purge', async () => {
      const harness = createHarness();
      const url = await makeQueue(harness, protocol, 't');
      expectOk(await harness.call(protocol, 'TagQueue', { QueueUrl: url, Tags: { team: 'core', env: 'dev' } }));
      expectOk(await harness.call(protocol, 'UntagQueue', { QueueUrl: url, TagKeys: ['env'] }));
      assert.deepEqual(expectOk(await harness.call(protocol, 'ListQueueTags', { QueueUrl: url }))['Tags'], { team: 'core' });
      expectError(await harness.call(protocol, 'TagQueue', { QueueUrl: url }), 'MissingParameter');
      expectError(await harness.call(protocol, 'UntagQueue', { QueueUrl: url }), 'MissingParameter');
      const many: Record<string, string> = {};
      for (let i = 0; i < 51; i++) many[`k${i}`] = 'v';
      expectError(await harness.call(protocol, 'TagQueue', { QueueUrl: url, Tags: many }), 'InvalidParameterValue');

      expectOk(await harness.call(protocol, 'AddPermission', { QueueUrl: url, Label: 'l1', AWSAccountIds: ['111122223333'], Actions: ['SendMessage', 'ReceiveMessage'] }));
      expectError(await harness.call(protocol, 'AddPermission', { QueueUrl: url, Label: 'l1', AWSAccountIds: ['111122223333'], Actions: ['SendMessage'] }), 'InvalidParameterValue', 'Already exists');
      expectError(await harness.call(protocol, 'AddPermission', { QueueUrl: url, Label: 'l2', AWSAccountIds: ['111122223333'], Actions: ['CreateQueue'] }), 'InvalidParameterValue');
      expectError(await harness.call(protocol, 'AddPermission', { QueueUrl: url, Label: 'l2', Actions: ['SendMessage'] }), 'MissingParameter');
      const policy = JSON.parse((await harness.service.describeQueue('t')).attributes['Policy']!);
      assert.equal(policy.Statement[0].Sid, 'l1');
      assert.deepEqual(policy.Statement[0].Action, ['SQS:SendMessage', 'SQS:ReceiveMessage']);
      assert.equal(policy.Statement[0].Principal.AWS, 'arn:aws:iam::111122223333:root');
      expectError(await harness.call(protocol, 'RemovePermission', { QueueUrl: url, Label: 'nope' }), 'InvalidParameterValue');
      expectOk(await harness.call(protocol, 'RemovePermission', { QueueUrl: url, Label: 'l1' }));
      assert.equal((await harness.service.describeQueue('t')).attributes['Policy'], undefined);

      expectOk(await harness.call(protocol, 'PurgeQueue', { QueueUrl: url }));
      expectError(await harness.call(protocol, 'PurgeQueue', { QueueUrl: url }), 'PurgeQueueInProgress');
    });

    test('message move tasks', async () => {
      const harness = createHarness();
      await makeQueue(harness, protocol, 'src');
      await makeQueue(harness, protocol, 'dlq');
      const dlqArn = `arn:aws:sqs:us-east-1:${account}:dlq`;
      harness.service.injectDeadLetter('dlq', 'dead', `arn:aws:sqs:us-east-1:${account}:src`);
      const started = expectOk(await harness.call(protocol, 'StartMessageMoveTask', { SourceArn: dlqArn, MaxNumberOfMessagesPerSecond: 10 }));
      assert.ok(String(started['TaskHandle']).length > 0);
      assert.equal((await harness.service.peekMessages('src', 10))[0]?.body, 'dead');
      const listed = expectOk(await harness.call(protocol, 'ListMessageMoveTasks', { SourceArn: dlqArn, MaxResults: 10 }));
      assert.equal(listed['Results'].length, 1);
      assert.equal(listed['Results'][0]['Status'], 'COMPLETED');
      assert.equal(String(listed['Results'][0]['ApproximateNumberOfMessagesMoved']), '1');
      expectError(await harness.call(protocol, 'StartMessageMoveTask', { SourceArn: dlqArn, MaxNumberOfMessagesPerSecond: 501 }), 'InvalidParameterValue');
      expectError(await harness.call(protocol, 'StartMessageMoveTask', { SourceArn: 'arn:aws:sqs:us-east-1:999999999999:dlq' }), 'ResourceNotFoundException');
      expectError(await harness.call(protocol, 'ListMessageMoveTasks', { SourceArn: dlqArn, MaxResults: 11 }), 'InvalidParameterValue');
      const handle = harness.service.addRunningMoveTask(dlqArn);
      assert.equal(String(expectOk(await harness.call(protocol, 'CancelMessageMoveTask', { TaskHandle: handle }))['ApproximateNumberOfMessagesMoved']), '3');
      expectError(await harness.call(protocol, 'CancelMessageMoveTask', { TaskHandle: 'nope' }), 'ResourceNotFoundException');
      expectError(await harness.call(protocol, 'CancelMessageMoveTask', {}), 'MissingParameter');
    });

    test('unknown action, and service failures become 500 InternalError without throwing', async () => {
      const warnings: object[] = [];
      const results: (string | undefined)[] = [];
      const harness = createHarness({
        logger: { warn: (obj) => warnings.push(obj), info: () => {} },
        onActionResult: (_action, _queue, errorCode) => results.push(errorCode),
      });
      expectError(await harness.call(protocol, 'LaunchRocket', {}), 'InvalidAction');
      harness.service.describeQueue = async () => {
        throw new TypeError('boom');
      };
      expectError(await harness.call(protocol, 'GetQueueUrl', { QueueName: 'x' }), 'InternalError');
      assert.equal(warnings.length, 1);
      assert.deepEqual(results, ['InvalidAction', 'InternalError']);
    });
  });
}

describe('protocol-specific behaviour', () => {
  test('JSON: malformed body and wrong member types are SerializationException with the query-error header', async () => {
    const harness = createHarness();
    const call = (body: string): Promise<{ status: number; headers: Record<string, string>; body: string | Buffer }> =>
      harness.handler({ method: 'POST', url: '/', headers: { 'x-amz-target': 'AmazonSQS.ListQueues' }, body: Buffer.from(body) });
    for (const body of ['{', '[]', '"x"', 'null']) {
      const response = await call(body);
      assert.equal(response.status, 400);
      assert.equal(JSON.parse(String(response.body)).__type, 'com.amazonaws.sqs#SerializationException');
      assert.equal(response.headers['x-amzn-query-error'], 'SerializationException;Sender');
    }
    const wrongType = await harness.handler({ method: 'POST', url: '/', headers: { 'x-amz-target': 'AmazonSQS.ListQueues' }, body: Buffer.from('{"MaxResults":"5"}') });
    assert.equal(wrongType.status, 400);
    const empty = await call('');
    assert.equal(empty.status, 200);
    assert.equal(String(empty.body), '{}');
  });

  test('JSON error shape for a modelled error', async () => {
    const harness = createHarness();
    const response = await harness.handler({
      method: 'POST',
      url: '/',
      headers: { 'x-amz-target': 'AmazonSQS.GetQueueUrl', 'content-type': 'application/x-amz-json-1.0' },
      body: Buffer.from('{"QueueName":"missing"}'),
    });
    assert.equal(response.status, 400);
    assert.deepEqual(JSON.parse(String(response.body)), { __type: 'com.amazonaws.sqs#QueueDoesNotExist', message: 'The specified queue does not exist.' });
    assert.equal(response.headers['x-amzn-query-error'], 'AWS.SimpleQueueService.NonExistentQueue;Sender');
    assert.ok(response.headers['x-amzn-requestid']);
  });

  test('Query: GET with query string, missing Action, XML error document', async () => {
    const harness = createHarness();
    const created = await harness.handler({ method: 'GET', url: '/?Action=CreateQueue&QueueName=get-q&Version=2012-11-05', headers: { host: 'h' }, body: Buffer.alloc(0) });
    assert.equal(created.status, 200);
    const root = parseXml(String(created.body));
    assert.equal(root.name, 'CreateQueueResponse');
    assert.equal(root.attributes['xmlns'], 'http://queue.amazonaws.com/doc/2012-11-05/');
    const missingAction = await harness.handler({ method: 'POST', url: '/', headers: {}, body: Buffer.from('QueueName=x') });
    assert.equal(missingAction.status, 400);
    const error = parseXml(String(missingAction.body));
    assert.equal(error.name, 'ErrorResponse');
    assert.match(String(missingAction.body), /<Code>MissingAction<\/Code>/);
    assert.match(String(missingAction.body), /<Type>Sender<\/Type>/);
  });

  test('Query: hostile characters in echoed input stay well-formed XML', async () => {
    const harness = createHarness();
    const response = await harness.handler({ method: 'POST', url: '/', headers: {}, body: Buffer.from('Action=%3Cx%3E%26%22%27%01%ED%A0%80%FF%0D%00') });
    assert.equal(response.status, 400);
    const error = parseXml(String(response.body));
    assert.equal(error.name, 'ErrorResponse');
  });

  test('publicBaseUrl overrides the Host header', async () => {
    const harness = createHarness({ publicBaseUrl: 'https://queues.example.com/' });
    const output = expectOk(await harness.call('json', 'CreateQueue', { QueueName: 'pub' }));
    assert.equal(output['QueueUrl'], `https://queues.example.com/${account}/pub`);
  });

  test('the abort signal reaches the service receive', async () => {
    const harness = createHarness();
    await makeQueue(harness, 'json', 'poll');
    const controller = new AbortController();
    await harness.handler(
      { method: 'POST', url: '/', headers: { 'x-amz-target': 'AmazonSQS.ReceiveMessage' }, body: Buffer.from(`{"QueueUrl":"/${account}/poll","WaitTimeSeconds":20}`) },
      controller.signal,
    );
    assert.equal(harness.service.receiveCalls[0]?.signal, controller.signal);
    assert.equal(harness.service.receiveCalls[0]?.waitTimeSeconds, 20);
  });
});
