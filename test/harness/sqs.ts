// SQS helpers for the integration tests: a reference MD5 of message attributes (the SDK
// checks body MD5s itself but not attribute MD5s), bounded receive loops that wait for
// an event instead of sleeping, and an assertion on SDK errors.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  type Message,
  type MessageAttributeValue,
  type ReceiveMessageCommandInput,
  type SQSClient,
} from '@aws-sdk/client-sqs';

export const accountId = '000000000000';
export const region = 'us-east-1';

export function queueArn(name: string): string {
  return `arn:aws:sqs:${region}:${accountId}:${name}`;
}

/**
 * MD5OfMessageAttributes as SQS computes it: attributes sorted by name; for each, the
 * 4-byte big-endian length and bytes of the name, of the full DataType, one transport
 * byte (1 String/Number, 2 Binary), then the length and bytes of the value.
 * undefined when there are no attributes (SQS omits the field).
 */
export function md5OfMessageAttributes(attributes: Record<string, MessageAttributeValue> | undefined): string | undefined {
  if (attributes === undefined) return undefined;
  const names = Object.keys(attributes).sort();
  if (names.length === 0) return undefined;
  const parts: Buffer[] = [];
  const lengthPrefixed = (bytes: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    parts.push(length, bytes);
  };
  for (const name of names) {
    const value = attributes[name];
    assert.ok(value !== undefined && value.DataType !== undefined, `attribute ${name} has a DataType`);
    lengthPrefixed(Buffer.from(name, 'utf8'));
    lengthPrefixed(Buffer.from(value.DataType, 'utf8'));
    if (value.DataType.startsWith('Binary')) {
      parts.push(Buffer.from([2]));
      assert.ok(value.BinaryValue !== undefined, `binary attribute ${name} has a BinaryValue`);
      lengthPrefixed(Buffer.from(value.BinaryValue));
    } else {
      parts.push(Buffer.from([1]));
      assert.ok(value.StringValue !== undefined, `attribute ${name} has a StringValue`);
      lengthPrefixed(Buffer.from(value.StringValue, 'utf8'));
    }
  }
  return createHash('md5').update(Buffer.concat(parts)).digest('hex');
}

export function md5Hex(text: string): string {
  return createHash('md5').update(text, 'utf8').digest('hex');
}

/**
 * Receives until `enough(all so far)` holds, each call long-polling up to waitSeconds;
 * fails after timeoutMs. Returns everything received (not deleted unless deleteEach).
 */
export async function receiveUntil(
  client: SQSClient,
  input: ReceiveMessageCommandInput,
  enough: (messages: Message[]) => boolean,
  options: { timeoutMs?: number; deleteEach?: boolean; what?: string } = {},
): Promise<Message[]> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  const received: Message[] = [];
  while (!enough(received)) {
    if (Date.now() > deadline) {
      throw new Error(`receiveUntil: timed out after ${timeoutMs} ms waiting for ${options.what ?? 'messages'} (got ${received.length}: ${JSON.stringify(received.map((message) => message.Body?.slice(0, 40)))})`);
    }
    const response = await client.send(new ReceiveMessageCommand({ WaitTimeSeconds: 1, MaxNumberOfMessages: 10, ...input }));
    for (const message of response.Messages ?? []) {
      received.push(message);
      if (options.deleteEach) {
        await client.send(new DeleteMessageCommand({ QueueUrl: input.QueueUrl, ReceiptHandle: message.ReceiptHandle }));
      }
    }
  }
  return received;
}

/** The distinct bodies of what was received, sorted: at least once means duplicates are allowed, losses are not. */
export function distinctBodies(messages: Message[]): string[] {
  return [...new Set(messages.map((message) => message.Body!))].sort();
}

/** Receives and deletes until `count` messages were seen (or the bound passes). */
export function drain(client: SQSClient, queueUrl: string, count: number, options: { timeoutMs?: number; extra?: Partial<ReceiveMessageCommandInput> } = {}): Promise<Message[]> {
  return receiveUntil(client, { QueueUrl: queueUrl, ...options.extra }, (messages) => messages.length >= count, {
    timeoutMs: options.timeoutMs,
    deleteEach: true,
    what: `${count} messages from ${queueUrl}`,
  });
}

export async function queueAttributes(client: SQSClient, queueUrl: string, names: string[] = ['All']): Promise<Record<string, string>> {
  const response = await client.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: names as never }));
  return response.Attributes ?? {};
}

export interface SdkError extends Error {
  Code?: string;
  Type?: string;
  $metadata?: { httpStatusCode?: number };
}

/**
 * Asserts the promise rejects with an SDK error whose name (the JSON shape) is one of
 * `names`; when `queryCode` is given, also the code the SDK took from the
 * x-amzn-query-error header. Returns the error for further checks.
 */
export async function expectSqsError(promise: Promise<unknown>, names: string | string[], queryCode?: string): Promise<SdkError> {
  const expected = Array.isArray(names) ? names : [names];
  let caught: unknown;
  try {
    const value = await promise;
    assert.fail(`expected an SQS error ${expected.join(' or ')}, got success: ${JSON.stringify(value)?.slice(0, 500)}`);
  } catch (error) {
    if (error instanceof assert.AssertionError) throw error;
    caught = error;
  }
  const error = caught as SdkError;
  assert.ok(expected.includes(error.name), `expected error ${expected.join(' or ')}, got ${error.name}: ${error.message} (Code ${error.Code})`);
  if (queryCode !== undefined) {
    assert.equal(error.Code, queryCode, `x-amzn-query-error code for ${error.name}`);
  }
  return error;
}
