// Debian's awscli (2.9.x, /usr/bin/aws; its bundled botocore speaks the SQS Query
// protocol) against a real `berth serve`: create, list, send with message attributes,
// receive, delete, attributes, batch, FIFO and errors. One call runs with --debug to prove
// the requests really are Query (form-encoded `Action=...`), not JSON.
//
// /usr/bin/aws explicitly: a pyenv `aws` shim on PATH would be a different awscli.
// When /usr/bin/aws is missing the test fails and says to run scripts/test.sh.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { makeTempDir, requireFile, runCommand, startBerth, type BerthProcess, type CommandResult } from './harness/server.js';
import { accountId, md5Hex, md5OfMessageAttributes, queueArn } from './harness/sqs.js';

const awsPath = '/usr/bin/aws';
let berth: BerthProcess;
let home: { path: string; remove(): void };

before(async () => {
  requireFile(awsPath, "Debian's awscli (apt package awscli)");
  home = makeTempDir('berth-awscli-home-');
  berth = await startBerth();
});

after(async () => {
  await berth?.stop();
  home?.remove();
});

async function aws(args: string[], options: { debug?: boolean } = {}): Promise<CommandResult> {
  // No user config or credentials files, no instance metadata lookups, no pager.
  const emptyConfig = path.join(home.path, 'config');
  writeFileSync(emptyConfig, '');
  return runCommand(awsPath, ['--endpoint-url', berth.url, '--no-cli-pager', '--output', 'json', ...(options.debug ? ['--debug'] : []), 'sqs', ...args], {
    timeoutMs: 60_000,
    env: {
      HOME: home.path,
      AWS_ACCESS_KEY_ID: 'AKIDBERTHTEST',
      AWS_SECRET_ACCESS_KEY: 'berth-test-secret',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_CONFIG_FILE: emptyConfig,
      AWS_SHARED_CREDENTIALS_FILE: emptyConfig,
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_PAGER: '',
      AWS_PROFILE: undefined,
    },
  });
}

/** Runs an aws command that must succeed and returns its JSON output ({} when empty). */
async function awsJson(args: string[]): Promise<Record<string, unknown>> {
  const result = await aws(args);
  assert.equal(result.code, 0, `aws sqs ${args.join(' ')} failed (exit ${result.code}${result.timedOut ? ', timed out' : ''}):\n${result.stderr}`);
  return result.stdout.trim() === '' ? {} : (JSON.parse(result.stdout) as Record<string, unknown>);
}

/** Runs an aws command that must fail with the given Query error code. */
async function awsError(args: string[], code: string): Promise<void> {
  const result = await aws(args);
  assert.notEqual(result.code, 0, `aws sqs ${args.join(' ')} should fail; stdout ${result.stdout}`);
  assert.ok(result.stderr.includes(`(${code})`), `expected error code ${code} in:\n${result.stderr}`);
}

test('awscli is the Query-protocol one and Berth answers it', async () => {
  const version = await runCommand(awsPath, ['--version'], { timeoutMs: 30_000, env: { HOME: home.path } });
  assert.equal(version.code, 0, version.stderr);
  assert.match(version.stdout + version.stderr, /aws-cli\/2\.9\./, 'Debian bookworm awscli 2.9.x');
  const debug = await aws(['create-queue', '--queue-name', 'cli-debug'], { debug: true });
  assert.equal(debug.code, 0, debug.stderr.slice(-4_000));
  // The debug log shows the request body as a form (or its dict before encoding) and the
  // form content type.
  assert.match(debug.stderr, /Action=CreateQueue|'Action': 'CreateQueue'/, 'the request body is a Query form, not JSON');
  assert.match(debug.stderr, /application\/x-www-form-urlencoded/);
  assert.doesNotMatch(debug.stderr, /X-Amz-Target['"]?: ['"]?AmazonSQS/i);
  assert.equal((JSON.parse(debug.stdout) as { QueueUrl: string }).QueueUrl, `${berth.url}/${accountId}/cli-debug`);
});

test('create, get url, list, attributes', async () => {
  const created = await awsJson(['create-queue', '--queue-name', 'cli-std', '--attributes', 'VisibilityTimeout=40,DelaySeconds=0', '--tags', 'team=berth']);
  const url = `${berth.url}/${accountId}/cli-std`;
  assert.equal(created.QueueUrl, url);
  assert.equal((await awsJson(['get-queue-url', '--queue-name', 'cli-std'])).QueueUrl, url);
  await awsJson(['create-queue', '--queue-name', 'cli-std2']);
  const listed = await awsJson(['list-queues', '--queue-name-prefix', 'cli-std']);
  assert.deepEqual([...(listed.QueueUrls as string[])].sort(), [url, `${url}2`]);

  const attributes = (await awsJson(['get-queue-attributes', '--queue-url', url, '--attribute-names', 'All'])).Attributes as Record<string, string>;
  assert.equal(attributes.VisibilityTimeout, '40');
  assert.equal(attributes.QueueArn, queueArn('cli-std'));
  await awsJson(['set-queue-attributes', '--queue-url', url, '--attributes', 'VisibilityTimeout=50,MessageRetentionPeriod=7200']);
  const changed = (await awsJson(['get-queue-attributes', '--queue-url', url, '--attribute-names', 'VisibilityTimeout', 'MessageRetentionPeriod'])).Attributes;
  assert.deepEqual(changed, { VisibilityTimeout: '50', MessageRetentionPeriod: '7200' });
  assert.deepEqual((await awsJson(['list-queue-tags', '--queue-url', url])).Tags, { team: 'berth' });
});

test('send with message attributes, receive, delete', async () => {
  const url = (await awsJson(['create-queue', '--queue-name', 'cli-messages'])).QueueUrl as string;
  const attributes = {
    color: { DataType: 'String', StringValue: 'blue ✓' },
    size: { DataType: 'Number', StringValue: '42' },
    raw: { DataType: 'Binary', BinaryValue: Buffer.from([1, 2, 3, 255]).toString('base64') },
    kind: { DataType: 'String.custom', StringValue: 'k' },
  };
  const body = 'hello from awscli & <xml> "quoted" ✓';
  const sent = await awsJson(['send-message', '--queue-url', url, '--message-body', body, '--message-attributes', JSON.stringify(attributes)]);
  assert.match(String(sent.MessageId), /\S/);
  assert.equal(sent.MD5OfMessageBody, md5Hex(body));
  const expectedAttributesMd5 = md5OfMessageAttributes({
    color: attributes.color,
    size: attributes.size,
    raw: { DataType: 'Binary', BinaryValue: Buffer.from([1, 2, 3, 255]) },
    kind: attributes.kind,
  });
  assert.equal(sent.MD5OfMessageAttributes, expectedAttributesMd5);

  const received = await awsJson(['receive-message', '--queue-url', url, '--wait-time-seconds', '5', '--message-attribute-names', 'All', '--attribute-names', 'All', '--max-number-of-messages', '10']);
  const messages = received.Messages as Array<Record<string, any>>;
  assert.equal(messages.length, 1);
  const message = messages[0]!;
  assert.equal(message.Body, body);
  assert.equal(message.MessageId, sent.MessageId);
  assert.equal(message.MD5OfBody, md5Hex(body));
  assert.equal(message.MD5OfMessageAttributes, expectedAttributesMd5);
  assert.equal(message.MessageAttributes.color.StringValue, 'blue ✓');
  assert.equal(message.MessageAttributes.size.DataType, 'Number');
  assert.equal(message.MessageAttributes.raw.BinaryValue, Buffer.from([1, 2, 3, 255]).toString('base64'));
  assert.equal(message.MessageAttributes.kind.DataType, 'String.custom');
  assert.equal(message.Attributes.ApproximateReceiveCount, '1');
  assert.match(message.Attributes.SentTimestamp, /^\d+$/);

  await awsJson(['delete-message', '--queue-url', url, '--receipt-handle', message.ReceiptHandle]);
  const counts = (await awsJson(['get-queue-attributes', '--queue-url', url, '--attribute-names', 'ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'])).Attributes;
  assert.deepEqual(counts, { ApproximateNumberOfMessages: '0', ApproximateNumberOfMessagesNotVisible: '0' });
});

test('batch send with a partial failure, batch delete', async () => {
  const url = (await awsJson(['create-queue', '--queue-name', 'cli-batch'])).QueueUrl as string;
  const sent = await awsJson([
    'send-message-batch',
    '--queue-url',
    url,
    '--entries',
    JSON.stringify([
      { Id: 'a', MessageBody: 'batch-a' },
      { Id: 'b', MessageBody: 'batch-b', DelaySeconds: 0 },
      { Id: 'bad', MessageBody: 'forbidden \u0001 character' },
    ]),
  ]);
  assert.deepEqual((sent.Successful as Array<{ Id: string }>).map((entry) => entry.Id).sort(), ['a', 'b']);
  const failed = sent.Failed as Array<{ Id: string; SenderFault: boolean; Code: string }>;
  assert.equal(failed.length, 1);
  assert.equal(failed[0]!.Id, 'bad');
  assert.equal(failed[0]!.SenderFault, true);

  const bodies: string[] = [];
  const handles: string[] = [];
  for (let attempt = 0; attempt < 10 && bodies.length < 2; attempt += 1) {
    const received = await awsJson(['receive-message', '--queue-url', url, '--wait-time-seconds', '2', '--max-number-of-messages', '10']);
    for (const message of (received.Messages ?? []) as Array<{ Body: string; ReceiptHandle: string }>) {
      bodies.push(message.Body);
      handles.push(message.ReceiptHandle);
    }
  }
  assert.deepEqual(bodies.sort(), ['batch-a', 'batch-b']);
  const deleted = await awsJson(['delete-message-batch', '--queue-url', url, '--entries', JSON.stringify(handles.map((handle, index) => ({ Id: `d${index}`, ReceiptHandle: handle })))]);
  assert.equal((deleted.Successful as unknown[]).length, 2);
  await awsError(['send-message-batch', '--queue-url', url, '--entries', JSON.stringify([{ Id: 'x', MessageBody: '1' }, { Id: 'x', MessageBody: '2' }])], 'AWS.SimpleQueueService.BatchEntryIdsNotDistinct');
});

test('FIFO: order per group and dedup', async () => {
  const url = (await awsJson(['create-queue', '--queue-name', 'cli-order.fifo', '--attributes', 'FifoQueue=true'])).QueueUrl as string;
  const first = await awsJson(['send-message', '--queue-url', url, '--message-body', 'one', '--message-group-id', 'g', '--message-deduplication-id', 'd1']);
  const repeat = await awsJson(['send-message', '--queue-url', url, '--message-body', 'one', '--message-group-id', 'g', '--message-deduplication-id', 'd1']);
  assert.equal(repeat.MessageId, first.MessageId, 'deduplicated: same MessageId');
  assert.match(String(first.SequenceNumber), /^\d+$/);
  await awsJson(['send-message', '--queue-url', url, '--message-body', 'two', '--message-group-id', 'g', '--message-deduplication-id', 'd2']);
  await awsJson(['send-message', '--queue-url', url, '--message-body', 'three', '--message-group-id', 'g', '--message-deduplication-id', 'd3']);
  const bodies: string[] = [];
  for (let attempt = 0; attempt < 10 && bodies.length < 3; attempt += 1) {
    const received = await awsJson(['receive-message', '--queue-url', url, '--wait-time-seconds', '2', '--max-number-of-messages', '10', '--attribute-names', 'All']);
    for (const message of (received.Messages ?? []) as Array<{ Body: string; ReceiptHandle: string; Attributes: Record<string, string> }>) {
      assert.equal(message.Attributes.MessageGroupId, 'g');
      bodies.push(message.Body);
      await awsJson(['delete-message', '--queue-url', url, '--receipt-handle', message.ReceiptHandle]);
    }
  }
  assert.deepEqual(bodies, ['one', 'two', 'three']);
});

test('errors carry the Query error codes', async () => {
  await awsError(['get-queue-url', '--queue-name', 'cli-no-such-queue'], 'AWS.SimpleQueueService.NonExistentQueue');
  await awsError(['send-message', '--queue-url', `${berth.url}/${accountId}/cli-no-such-queue`, '--message-body', 'x'], 'AWS.SimpleQueueService.NonExistentQueue');
  await awsJson(['create-queue', '--queue-name', 'cli-exists', '--attributes', 'VisibilityTimeout=10']);
  await awsError(['create-queue', '--queue-name', 'cli-exists', '--attributes', 'VisibilityTimeout=11'], 'QueueAlreadyExists');
  const url = `${berth.url}/${accountId}/cli-exists`;
  await awsError(['get-queue-attributes', '--queue-url', url, '--attribute-names', 'NoSuchAttribute'], 'InvalidAttributeName');
  await awsError(['delete-message', '--queue-url', url, '--receipt-handle', 'garbage'], 'ReceiptHandleIsInvalid');
  await awsJson(['purge-queue', '--queue-url', url]);
  await awsError(['purge-queue', '--queue-url', url], 'AWS.SimpleQueueService.PurgeQueueInProgress');
  await awsJson(['delete-queue', '--queue-url', url]);
  await awsError(['get-queue-url', '--queue-name', 'cli-exists'], 'AWS.SimpleQueueService.NonExistentQueue');
});
