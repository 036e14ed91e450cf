// Seeded fuzzing of the SQS handler in-process: random and mutated requests in both
// protocols (random actions, garbage and deeply nested JSON, huge strings, invalid UTF-8,
// XML-hostile and control characters, wrong member types). Every request must get a
// well-formed response: JSON that parses, or XML that is well-formed with the right root;
// a 2xx/4xx status (the fake service only fails with catalogue errors, so a 500 here is a
// handler bug); the handler never throws. Set BERTH_FUZZ_SEED to replay a run.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../src/core/random.js';
import { createHarness, parseXml, toQueryParameters } from '../src/api/sqs/test-support.js';
import type { HttpRequest, HttpResponse } from '../src/api/sqs/handler.js';

const seed = Number(process.env['BERTH_FUZZ_SEED'] ?? 20240501);
const requestCount = 3000;
const account = '000000000000';

const actions = [
  'CreateQueue', 'DeleteQueue', 'GetQueueUrl', 'ListQueues', 'GetQueueAttributes', 'SetQueueAttributes', 'PurgeQueue', 'SendMessage',
  'SendMessageBatch', 'ReceiveMessage', 'DeleteMessage', 'DeleteMessageBatch', 'ChangeMessageVisibility', 'ChangeMessageVisibilityBatch',
  'TagQueue', 'UntagQueue', 'ListQueueTags', 'ListDeadLetterSourceQueues', 'AddPermission', 'RemovePermission', 'StartMessageMoveTask',
  'ListMessageMoveTasks', 'CancelMessageMoveTask',
];
const memberNames = [
  'QueueName', 'QueueUrl', 'Attributes', 'tags', 'Tags', 'AttributeNames', 'MessageBody', 'DelaySeconds', 'MessageAttributes',
  'MessageSystemAttributes', 'MessageGroupId', 'MessageDeduplicationId', 'Entries', 'MaxNumberOfMessages', 'WaitTimeSeconds',
  'VisibilityTimeout', 'ReceiptHandle', 'MessageAttributeNames', 'MessageSystemAttributeNames', 'TagKeys', 'Label', 'AWSAccountIds',
  'Actions', 'SourceArn', 'DestinationArn', 'MaxResults', 'NextToken', 'TaskHandle', 'QueueNamePrefix', 'Id', 'DataType', 'StringValue', 'BinaryValue',
];
const hostile = ['<', '>', '&', '"', "'", '\u0000', '\u0001', '\u001f', '\r', '\n', '\t', '\uFFFE', '\uFFFF', '\uD800', '\uDC00', '𝄞', ']]>', '&amp;', '%', '+', '=', '.', '..', '\u2028'];

function pick<T>(random: SeededRandom, items: readonly T[]): T {
  return items[random.int(items.length)]!;
}

function randomString(random: SeededRandom): string {
  const kind = random.int(6);
  if (kind === 0) return '';
  if (kind === 1) return 'x'.repeat(random.int(60) === 0 ? 260_000 + random.int(900_000) : random.int(300));
  let text = '';
  const length = random.int(kind === 5 ? 40 : 12);
  for (let i = 0; i < length; i++) {
    text += random.int(3) === 0 ? pick(random, hostile) : String.fromCharCode(0x20 + random.int(0x5f));
  }
  if (kind === 4) return `http://h/${account}/${text}`;
  return text;
}

function randomValue(random: SeededRandom, depth: number): unknown {
  switch (random.int(depth > 3 ? 5 : 8)) {
    case 0: return randomString(random);
    case 1: return random.int(2) === 0 ? random.int(100) : pick(random, [-1, 0, 1e300, -0, 3.5, 2 ** 53, Number.MAX_SAFE_INTEGER + 2]);
    case 2: return null;
    case 3: return random.int(2) === 0;
    case 4: return pick(random, ['q', `http://h/${account}/q`, 'q.fifo', 'All', 'true', '10', JSON.stringify({ deadLetterTargetArn: `arn:aws:sqs:us-east-1:${account}:q`, maxReceiveCount: 2 })]);
    case 5: return Array.from({ length: random.int(12) }, () => randomValue(random, depth + 1));
    default: {
      const object: Record<string, unknown> = {};
      const size = random.int(6);
      for (let i = 0; i < size; i++) object[random.int(3) === 0 ? randomString(random) : pick(random, memberNames)] = randomValue(random, depth + 1);
      return object;
    }
  }
}

/** Valid requests to mutate (JSON-shaped input). */
function validInputs(): [string, Record<string, unknown>][] {
  const url = `http://h/${account}/q`;
  const fifoUrl = `http://h/${account}/q.fifo`;
  return [
    ['CreateQueue', { QueueName: 'q', Attributes: { VisibilityTimeout: '40' }, tags: { a: 'b' } }],
    ['CreateQueue', { QueueName: 'q.fifo', Attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'true' } }],
    ['SendMessage', { QueueUrl: url, MessageBody: 'hi', MessageAttributes: { a: { DataType: 'String', StringValue: 'v' }, b: { DataType: 'Binary', BinaryValue: 'AAEC' } } }],
    ['SendMessage', { QueueUrl: fifoUrl, MessageBody: 'hi', MessageGroupId: 'g' }],
    ['SendMessageBatch', { QueueUrl: url, Entries: [{ Id: '1', MessageBody: 'a' }, { Id: '2', MessageBody: 'b', DelaySeconds: 3 }] }],
    ['ReceiveMessage', { QueueUrl: url, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'], MessageSystemAttributeNames: ['All'] }],
    ['GetQueueAttributes', { QueueUrl: url, AttributeNames: ['All'] }],
    ['SetQueueAttributes', { QueueUrl: url, Attributes: { DelaySeconds: '1', RedrivePolicy: '' } }],
    ['DeleteMessageBatch', { QueueUrl: url, Entries: [{ Id: 'a', ReceiptHandle: 'receipt-x' }] }],
    ['ChangeMessageVisibilityBatch', { QueueUrl: url, Entries: [{ Id: 'a', ReceiptHandle: 'receipt-x', VisibilityTimeout: 3 }] }],
    ['ListQueues', { QueueNamePrefix: 'q', MaxResults: 5 }],
    ['TagQueue', { QueueUrl: url, Tags: { k: 'v' } }],
    ['AddPermission', { QueueUrl: url, Label: 'l', AWSAccountIds: ['111122223333'], Actions: ['SendMessage'] }],
    ['StartMessageMoveTask', { SourceArn: `arn:aws:sqs:us-east-1:${account}:q` }],
  ];
}

function mutate(random: SeededRandom, input: Record<string, unknown>): Record<string, unknown> {
  const copy = structuredClone(input);
  const mutations = 1 + random.int(3);
  for (let i = 0; i < mutations; i++) {
    const keys = Object.keys(copy);
    const choice = random.int(4);
    if (choice === 0 && keys.length > 0) delete copy[pick(random, keys)];
    else if (choice === 1 && keys.length > 0) copy[pick(random, keys)] = randomValue(random, 1);
    else if (choice === 2) copy[pick(random, memberNames)] = randomValue(random, 1);
    else if (keys.length > 0) {
      const key = pick(random, keys);
      const value = copy[key];
      if (typeof value === 'string') copy[key] = value + pick(random, hostile);
      else if (Array.isArray(value) && value.length > 0) value.push(...Array.from({ length: random.int(12) }, () => structuredClone(value[0])));
    }
  }
  return copy;
}

function bodyBytes(random: SeededRandom, text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  switch (random.int(8)) {
    case 0: return bytes.subarray(0, random.int(bytes.length + 1)); // truncated
    case 1: {
      const copy = Buffer.from(bytes);
      for (let i = 0; i < 3 && copy.length > 0; i++) copy[random.int(copy.length)] = pick(random, [0xff, 0xfe, 0xc0, 0x80, 0xed, 0x00]);
      return copy; // invalid UTF-8
    }
    default: return bytes;
  }
}

function makeRequest(random: SeededRandom): HttpRequest {
  const json = random.int(2) === 0;
  const mode = random.int(10);
  let action = pick(random, actions);
  let input: Record<string, unknown>;
  if (mode < 5) {
    const [validAction, validInput] = pick(random, validInputs());
    action = validAction;
    input = mutate(random, validInput);
  } else {
    input = (randomValue(random, 0) as Record<string, unknown>) ?? {};
    if (typeof input !== 'object' || Array.isArray(input)) input = { QueueUrl: input };
  }
  if (random.int(20) === 0) action = randomString(random);
  if (json) {
    let text: string;
    const shape = random.int(12);
    if (shape === 0) text = '['.repeat(10_000 + random.int(100_000));
    else if (shape === 1) text = '{"a":'.repeat(5_000) + '1' + '}'.repeat(5_000);
    else if (shape === 2) text = randomString(random);
    else text = JSON.stringify(input);
    const target = random.int(30) === 0 ? randomString(random) : `AmazonSQS.${action}`;
    return { method: 'POST', url: pick(random, ['/', `/${account}/q`, '/x/y/z', '/?Action=ListQueues']), headers: { host: randomString(random).slice(0, 50) || 'h', 'x-amz-target': target, 'content-type': 'application/x-amz-json-1.0' }, body: bodyBytes(random, text) };
  }
  let form: string;
  try {
    const flat = toQueryParameters(action, input);
    form = new URLSearchParams({ Action: action, Version: '2012-11-05', ...flat }).toString();
  } catch {
    form = `Action=${encodeURIComponent(action.replace(/[\uD800-\uDFFF]/g, ''))}&QueueUrl=%ED%A0%80%FF`;
  }
  if (random.int(5) === 0) form += '&' + pick(random, ['%', '%zz', 'Attribute.1.Value=x', 'MessageAttribute.1.Value.DataType=String', 'Entries=1', '&&&', `SendMessageBatchRequestEntry.999999.Id=a`, 'AttributeName.01=All']);
  const useGet = random.int(4) === 0;
  return {
    method: useGet ? 'GET' : 'POST',
    url: useGet ? `/?${form}` : pick(random, ['/', `/${account}/q`, `/${account}/q.fifo`, '/123/q']),
    headers: { host: 'h', 'content-type': 'application/x-www-form-urlencoded' },
    body: useGet ? Buffer.alloc(0) : bodyBytes(random, form),
  };
}

function checkResponse(request: HttpRequest, response: HttpResponse, index: number): void {
  const where = `seed ${seed}, request ${index}`;
  assert.ok(Number.isInteger(response.status) && response.status >= 200 && response.status < 600, `${where}: status ${response.status}`);
  assert.notEqual(response.status, 500, `${where}: handler bug surfaced as InternalError: ${String(response.body).slice(0, 300)}`);
  const text = typeof response.body === 'string' ? response.body : response.body.toString('utf8');
  assert.ok(response.headers['x-amzn-requestid'], `${where}: no request id`);
  if (request.headers['x-amz-target'] !== undefined) {
    assert.equal(response.headers['content-type'], 'application/x-amz-json-1.0', where);
    const parsed = JSON.parse(text) as Record<string, unknown>;
    if (response.status >= 400) {
      assert.match(String(parsed['__type']), /^com\.amazonaws\.sqs#\w+$/, where);
      assert.match(response.headers['x-amzn-query-error'] ?? '', /^[\w.]+;(Sender|Receiver)$/, where);
    }
  } else {
    assert.equal(response.headers['content-type'], 'text/xml', where);
    let root;
    try {
      root = parseXml(text);
    } catch (error) {
      assert.fail(`${where}: malformed XML (${(error as Error).message}): ${text.slice(0, 500)}`);
    }
    if (response.status >= 400) assert.equal(root.name, 'ErrorResponse', where);
    else assert.match(root.name, /Response$/, where);
  }
}

test(`SQS handler survives ${requestCount} random and mutated requests (seed ${seed})`, async () => {
  const random = new SeededRandom(seed);
  const harness = createHarness();
  // Some state for requests to hit: a standard queue, a FIFO queue, messages.
  await harness.call('json', 'CreateQueue', { QueueName: 'q' });
  await harness.call('json', 'CreateQueue', { QueueName: 'q.fifo', Attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'true' } });
  const statusCounts = new Map<number, number>();
  for (let index = 0; index < requestCount; index++) {
    const request = makeRequest(random);
    let response: HttpResponse;
    try {
      response = await harness.handler(request);
    } catch (error) {
      assert.fail(`seed ${seed}, request ${index}: handler threw ${(error as Error).stack}`);
    }
    checkResponse(request, response, index);
    statusCounts.set(response.status, (statusCounts.get(response.status) ?? 0) + 1);
    // Keep the clock moving so purge and delete windows open and close.
    harness.clock.advance(random.int(5_000));
  }
  if (process.env["BERTH_FUZZ_VERBOSE"]) console.log(JSON.stringify([...statusCounts]));
  // The fuzzer must reach both successes and failures, or it is not exercising much.
  assert.ok((statusCounts.get(200) ?? 0) > requestCount / 20, `too few successes: ${JSON.stringify([...statusCounts])}`);
  assert.ok((statusCounts.get(400) ?? 0) > requestCount / 5, `too few client errors: ${JSON.stringify([...statusCounts])}`);
});
