// Queue attributes: names, value ranges and the canonical string form stored by the
// service. Canonical forms make CreateQueue idempotency compare like with like:
// integers without sign or leading zeros, booleans lower case, JSON policies compact.

import { BerthError } from '../../protocol/errors.js';
import { parseFilterPolicy } from '../../queue/filter.js';

/** Berth's ceiling on a queue's or message's replica count (a cluster never has more hosts per partition). */
export const replicaCountMax = 100;
export const partitionCountMax = 256;

export const queueNamePattern = /^[A-Za-z0-9_-]{1,80}$/;
export const fifoQueueNamePattern = /^[A-Za-z0-9_-]{1,75}\.fifo$/;

interface IntegerRule { kind: 'integer'; minimum: number; maximum: number }
interface BooleanRule { kind: 'boolean' }
interface EnumRule { kind: 'enum'; values: readonly string[] }
interface TextRule { kind: 'text' }
interface JsonRule { kind: 'policy' | 'redrive' | 'redriveAllow' | 'filterPolicy' }
interface QueueNameRule { kind: 'queueName' }
type Rule = (IntegerRule | BooleanRule | EnumRule | TextRule | JsonRule | QueueNameRule) & { fifoOnly?: boolean; createOnly?: boolean };

const rules: Record<string, Rule> = {
  DelaySeconds: { kind: 'integer', minimum: 0, maximum: 900 },
  MaximumMessageSize: { kind: 'integer', minimum: 1024, maximum: 1_048_576 },
  MessageRetentionPeriod: { kind: 'integer', minimum: 60, maximum: 1_209_600 },
  ReceiveMessageWaitTimeSeconds: { kind: 'integer', minimum: 0, maximum: 20 },
  VisibilityTimeout: { kind: 'integer', minimum: 0, maximum: 43_200 },
  KmsDataKeyReusePeriodSeconds: { kind: 'integer', minimum: 60, maximum: 86_400 },
  KmsMasterKeyId: { kind: 'text' },
  SqsManagedSseEnabled: { kind: 'boolean' },
  Policy: { kind: 'policy' },
  RedrivePolicy: { kind: 'redrive' },
  RedriveAllowPolicy: { kind: 'redriveAllow' },
  FifoQueue: { kind: 'boolean', createOnly: true },
  ContentBasedDeduplication: { kind: 'boolean', fifoOnly: true },
  DeduplicationScope: { kind: 'enum', values: ['queue', 'messageGroup'], fifoOnly: true },
  FifoThroughputLimit: { kind: 'enum', values: ['perQueue', 'perMessageGroupId'], fifoOnly: true },
  /** Berth: replicas that must hold a message before a send is acknowledged. */
  ReplicaCount: { kind: 'integer', minimum: 1, maximum: replicaCountMax },
  /** Berth: partitions (logs) of the queue, fixed at creation (a FIFO group's partition is its hash modulo this). */
  PartitionCount: { kind: 'integer', minimum: 1, maximum: partitionCountMax, createOnly: true },
  /** Berth: "topic" makes the queue a topic (docs/topics.md). */
  'Berth.Kind': { kind: 'enum', values: ['queue', 'topic'], createOnly: true },
  /** Berth: the new queue is a subscription of this topic. */
  'Berth.Topic': { kind: 'queueName', createOnly: true },
  /** Berth: a subscription's filter policy on message attributes ("" removes it). */
  'Berth.FilterPolicy': { kind: 'filterPolicy' },
};

export const readOnlyAttributeNames: ReadonlySet<string> = new Set([
  'ApproximateNumberOfMessages',
  'ApproximateNumberOfMessagesNotVisible',
  'ApproximateNumberOfMessagesDelayed',
  'CreatedTimestamp',
  'LastModifiedTimestamp',
  'QueueArn',
]);

export const fifoOnlyAttributeNames: ReadonlySet<string> = new Set(['FifoQueue', 'ContentBasedDeduplication', 'DeduplicationScope', 'FifoThroughputLimit']);

/** Names GetQueueAttributes accepts (besides `All`). */
export function isKnownAttributeName(name: string): boolean {
  return name in rules || readOnlyAttributeNames.has(name);
}

export interface ValidatedAttributes {
  /** Canonical values of the attributes given (RedrivePolicy / Policy "" means remove). */
  attributes: Record<string, string>;
  /** Queue name of a RedrivePolicy's deadLetterTargetArn, to be checked for existence and type. */
  deadLetterQueueName?: string;
}

export interface ArnContext { region: string; accountId: string }

/** arn:aws:sqs:<region>:<account>:<name> -> name, when it is one of ours. */
export function queueNameFromArn(arn: string, context: ArnContext): string | undefined {
  const parts = arn.split(':');
  if (parts.length !== 6 || parts[0] !== 'arn' || parts[2] !== 'sqs') return undefined;
  if (parts[4] !== context.accountId) return undefined;
  const name = parts[5]!;
  return queueNamePattern.test(name) || fifoQueueNamePattern.test(name) ? name : undefined;
}

export function queueArn(name: string, context: ArnContext): string {
  return `arn:aws:sqs:${context.region}:${context.accountId}:${name}`;
}

function invalidValue(name: string): BerthError {
  return new BerthError('InvalidAttributeValue', `Invalid value for the parameter ${name}.`);
}

function redriveError(value: string, reason: string): BerthError {
  return new BerthError('InvalidParameterValue', `Value ${value} for parameter RedrivePolicy is invalid. Reason: ${reason}`);
}

function parseJsonObject(value: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(value);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Validates attributes given to CreateQueue (`creating`) or SetQueueAttributes for a queue
 * of the given type, returning their canonical forms. Throws InvalidAttributeName for
 * unknown, read-only, create-only (on set) and FIFO-only (on standard) names, and
 * InvalidAttributeValue for values out of range.
 */
export function validateQueueAttributes(given: Record<string, string>, fifo: boolean, creating: boolean, context: ArnContext): ValidatedAttributes {
  const attributes: Record<string, string> = {};
  let deadLetterQueueName: string | undefined;
  for (const name of Object.keys(given)) {
    const value = given[name]!;
    const rule = rules[name];
    if (rule === undefined) throw new BerthError('InvalidAttributeName', `Unknown Attribute ${name}.`);
    if (rule.fifoOnly === true && !fifo) throw new BerthError('InvalidAttributeName', `Unknown Attribute ${name}.`);
    if (rule.createOnly === true && !creating) throw new BerthError('InvalidAttributeName', `Attribute ${name} can only be set when the queue is created.`);
    switch (rule.kind) {
      case 'integer': {
        if (!/^\s*\+?\d{1,10}\s*$/.test(value)) throw invalidValue(name);
        const number = Number(value.trim());
        if (number < rule.minimum || number > rule.maximum) throw invalidValue(name);
        attributes[name] = String(number);
        break;
      }
      case 'boolean': {
        const lower = value.toLowerCase();
        if (lower !== 'true' && lower !== 'false') throw invalidValue(name);
        attributes[name] = lower;
        break;
      }
      case 'enum':
        if (!rule.values.includes(value)) throw invalidValue(name);
        attributes[name] = value;
        break;
      case 'text':
        if (value.length > 2048) throw invalidValue(name);
        attributes[name] = value;
        break;
      case 'policy': {
        if (value === '') {
          attributes[name] = '';
          break;
        }
        const policy = parseJsonObject(value);
        if (policy === undefined) throw invalidValue(name);
        attributes[name] = JSON.stringify(policy);
        break;
      }
      case 'redrive': {
        if (value === '') {
          attributes[name] = '';
          break;
        }
        const policy = parseJsonObject(value);
        if (policy === undefined) throw redriveError(value, 'Redrive policy is not a valid JSON map.');
        const target = policy['deadLetterTargetArn'];
        const countValue = policy['maxReceiveCount'];
        if (typeof target !== 'string') throw redriveError(value, 'Redrive policy does not contain mandatory attribute: deadLetterTargetArn.');
        if (countValue === undefined) throw redriveError(value, 'Redrive policy does not contain mandatory attribute: maxReceiveCount.');
        for (const key of Object.keys(policy)) {
          if (key !== 'deadLetterTargetArn' && key !== 'maxReceiveCount') throw redriveError(value, `Only following attributes are supported: [deadLetterTargetArn, maxReceiveCount].`);
        }
        const count = typeof countValue === 'number' ? countValue : typeof countValue === 'string' && /^\d{1,10}$/.test(countValue) ? Number(countValue) : NaN;
        if (!Number.isInteger(count) || count < 1 || count > 1000) {
          throw redriveError(value, `Invalid value for maxReceiveCount: ${String(countValue)}, valid values are from 1 to 1000 both inclusive.`);
        }
        deadLetterQueueName = queueNameFromArn(target, context);
        if (deadLetterQueueName === undefined) throw redriveError(value, 'Dead letter target does not exist.');
        attributes[name] = JSON.stringify({ deadLetterTargetArn: target, maxReceiveCount: count });
        break;
      }
      case 'queueName':
        if (!queueNamePattern.test(value) && !fifoQueueNamePattern.test(value)) {
          throw new BerthError('InvalidParameterValue', `Value ${value} for parameter ${name} is invalid. Reason: it must be a queue name (the topic's).`);
        }
        attributes[name] = value;
        break;
      case 'filterPolicy': {
        if (value === '') {
          attributes[name] = '';
          break;
        }
        const parsed = parseFilterPolicy(value);
        if ('error' in parsed) throw new BerthError('InvalidParameterValue', `Value ${value} for parameter ${name} is invalid. Reason: ${parsed.error}.`);
        attributes[name] = JSON.stringify(JSON.parse(value));
        break;
      }
      case 'redriveAllow': {
        if (value === '') {
          attributes[name] = '';
          break;
        }
        const policy = parseJsonObject(value);
        if (policy === undefined) throw invalidValue(name);
        const permission = policy['redrivePermission'];
        const sources = policy['sourceQueueArns'];
        if (permission !== 'allowAll' && permission !== 'denyAll' && permission !== 'byQueue') throw invalidValue(name);
        if (permission === 'byQueue') {
          if (!Array.isArray(sources) || sources.length === 0 || sources.length > 10 || !sources.every((arn) => typeof arn === 'string')) throw invalidValue(name);
          attributes[name] = JSON.stringify({ redrivePermission: permission, sourceQueueArns: sources });
        } else {
          if (sources !== undefined) throw invalidValue(name);
          attributes[name] = JSON.stringify({ redrivePermission: permission });
        }
        break;
      }
    }
  }
  if (attributes['SqsManagedSseEnabled'] === 'true' && attributes['KmsMasterKeyId'] !== undefined && attributes['KmsMasterKeyId'] !== '') {
    throw new BerthError('InvalidAttributeName', 'You can use one type of server-side encryption (SSE) at one time: either SqsManagedSseEnabled or KmsMasterKeyId.');
  }
  return deadLetterQueueName === undefined ? { attributes } : { attributes, deadLetterQueueName };
}

/** Every settable attribute of a new queue: the given canonical values over SQS defaults. */
export function withCreateDefaults(given: Record<string, string>, fifo: boolean): Record<string, string> {
  const kms = given['KmsMasterKeyId'] !== undefined && given['KmsMasterKeyId'] !== '';
  const result: Record<string, string> = {
    DelaySeconds: '0',
    MaximumMessageSize: '262144',
    MessageRetentionPeriod: '345600',
    ReceiveMessageWaitTimeSeconds: '0',
    VisibilityTimeout: '30',
    SqsManagedSseEnabled: kms ? 'false' : 'true',
  };
  if (kms) result['KmsDataKeyReusePeriodSeconds'] = '300';
  if (fifo) {
    result['FifoQueue'] = 'true';
    result['ContentBasedDeduplication'] = 'false';
    result['DeduplicationScope'] = 'queue';
    result['FifoThroughputLimit'] = 'perQueue';
  }
  for (const name of Object.keys(given)) {
    const value = given[name]!;
    if (value === '' && (name === 'Policy' || name === 'RedrivePolicy' || name === 'RedriveAllowPolicy' || name === 'Berth.FilterPolicy')) continue;
    if (name === 'FifoQueue' && !fifo) continue;
    result[name] = value;
  }
  return result;
}

/** SQS: high throughput FIFO (perMessageGroupId) needs DeduplicationScope messageGroup. */
export function checkFifoThroughput(attributes: Record<string, string>): void {
  if (attributes['FifoThroughputLimit'] === 'perMessageGroupId' && attributes['DeduplicationScope'] === 'queue') {
    throw new BerthError('InvalidAttributeValue', 'Invalid value for the parameter FifoThroughputLimit. Reason: perMessageGroupId requires DeduplicationScope messageGroup.');
  }
}
