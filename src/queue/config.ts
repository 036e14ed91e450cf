// Canonical SQS attribute strings -> the QueueConfig a queue machine runs with. The API
// layer has validated the strings already; a value that still does not parse is a bug.

import { assert } from '../core/assert.js';
import { inflightMessagesMaxDefault, type DeduplicationScope, type FifoThroughputLimit, type QueueConfig } from './types.js';

export const queueAttributeDefaults = {
  VisibilityTimeout: 30,
  DelaySeconds: 0,
  MessageRetentionPeriod: 345_600,
  MaximumMessageSize: 262_144,
  ReceiveMessageWaitTimeSeconds: 0,
} as const;

export function queueConfigFromAttributes(attributes: Record<string, string>, defaults: { replicaCount: number }): QueueConfig {
  const fifo = attributes['FifoQueue'] === 'true';
  const config: QueueConfig = {
    fifo,
    visibilityTimeoutSeconds: integer(attributes, 'VisibilityTimeout', queueAttributeDefaults.VisibilityTimeout),
    delaySeconds: integer(attributes, 'DelaySeconds', queueAttributeDefaults.DelaySeconds),
    messageRetentionPeriodSeconds: integer(attributes, 'MessageRetentionPeriod', queueAttributeDefaults.MessageRetentionPeriod),
    maximumMessageSize: integer(attributes, 'MaximumMessageSize', queueAttributeDefaults.MaximumMessageSize),
    receiveMessageWaitTimeSeconds: integer(attributes, 'ReceiveMessageWaitTimeSeconds', queueAttributeDefaults.ReceiveMessageWaitTimeSeconds),
    contentBasedDeduplication: attributes['ContentBasedDeduplication'] === 'true',
    deduplicationScope: (attributes['DeduplicationScope'] ?? 'queue') as DeduplicationScope,
    fifoThroughputLimit: (attributes['FifoThroughputLimit'] ?? 'perQueue') as FifoThroughputLimit,
    inflightMessagesMax: inflightMessagesMaxDefault,
    replicaCount: integer(attributes, 'ReplicaCount', defaults.replicaCount),
  };
  const redrivePolicy = attributes['RedrivePolicy'];
  if (redrivePolicy !== undefined && redrivePolicy !== '') {
    const parsed = JSON.parse(redrivePolicy) as { deadLetterTargetArn?: unknown; maxReceiveCount?: unknown };
    const arn = parsed.deadLetterTargetArn;
    const maxReceiveCount = Number(parsed.maxReceiveCount);
    assert(typeof arn === 'string' && arn.length > 0, 'RedrivePolicy without deadLetterTargetArn');
    assert(Number.isInteger(maxReceiveCount) && maxReceiveCount >= 1, () => `RedrivePolicy maxReceiveCount invalid: ${String(parsed.maxReceiveCount)}`);
    config.redrive = { deadLetterQueueName: arn.slice(arn.lastIndexOf(':') + 1), deadLetterTargetArn: arn, maxReceiveCount };
  }
  return config;
}

function integer(attributes: Record<string, string>, name: string, fallback: number): number {
  const text = attributes[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  assert(Number.isInteger(value) && value >= 0, () => `queue attribute ${name} is not a non-negative integer: ${text}`);
  return value;
}
