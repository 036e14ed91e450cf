// The native protocol's operations: one decoded request in, one encoded answer out, over
// the QueueService the SQS API also uses. No sockets here, so each operation is testable
// with a fake service. Validation reuses the SQS API's rules (src/api/sqs/messages.ts,
// queue-attributes.ts), so a message or queue attribute the SQS API refuses is refused
// here with the same catalogue code.

import type { QueueDescription, QueueService } from '../../broker/service.js';
import { BerthError, errorCatalogue, isBerthError, type ErrorCode } from '../../protocol/errors.js';
import type { SendInput } from '../../queue/types.js';
import { validateSend, type QueueSendRules } from '../sqs/messages.js';
import type { MessageAttributeInput, Params } from '../sqs/params.js';
import {
  checkFifoThroughput,
  fifoOnlyAttributeNames,
  fifoQueueNamePattern,
  queueArn,
  queueNamePattern,
  readOnlyAttributeNames,
  replicaCountMax,
  validateQueueAttributes,
  withCreateDefaults,
} from '../sqs/queue-attributes.js';
import {
  batchEntriesMax,
  receiveWaitMsMax,
  type WireError,
  type WireMessage,
  type WireSendEntry,
  type WireSendOutcome,
  type WireVisibilityChange,
} from './wire.js';

/** The largest VisibilityTimeout SQS allows (12 hours). */
export const visibilityTimeoutSecondsMax = 43_200;

export function toWireError(error: unknown): WireError {
  if (isBerthError(error)) return { nativeCode: error.spec.nativeCode, code: error.code, message: error.message };
  return { nativeCode: errorCatalogue.InternalError.nativeCode, code: 'InternalError', message: 'internal error' };
}

export function wireErrorOf(code: ErrorCode, message: string): WireError {
  return { nativeCode: errorCatalogue[code].nativeCode, code, message };
}

function invalid(message: string): BerthError {
  return new BerthError('InvalidParameterValue', message);
}

function checkBatchSize(count: number, what: string): void {
  if (count === 0) throw new BerthError('EmptyBatchRequest', `There should be at least one ${what} in the request.`);
  if (count > batchEntriesMax) throw new BerthError('TooManyEntriesInBatchRequest', `Maximum number of entries per request are ${batchEntriesMax}. You have sent ${count}.`);
}

function isFifo(description: QueueDescription): boolean {
  return description.attributes['FifoQueue'] === 'true';
}

function sendRules(description: QueueDescription): QueueSendRules {
  return {
    fifo: isFifo(description),
    contentBasedDeduplication: description.attributes['ContentBasedDeduplication'] === 'true',
    maximumMessageSize: Number(description.attributes['MaximumMessageSize'] ?? 262_144),
  };
}

/** Presents one native SEND entry through the Params view the SQS validation reads. */
class EntryParams implements Params {
  readonly protocol = 'json' as const;
  constructor(private readonly entry: WireSendEntry) {}

  string(name: string): string | undefined {
    if (name === 'MessageBody') return this.entry.body;
    if (name === 'MessageGroupId') return this.entry.groupId;
    if (name === 'MessageDeduplicationId') return this.entry.deduplicationId;
    return undefined;
  }

  integer(name: string): number | undefined {
    return name === 'DelaySeconds' ? this.entry.delaySeconds : undefined;
  }

  stringList(): string[] | undefined {
    return undefined;
  }

  stringMap(): Record<string, string> | undefined {
    return undefined;
  }

  messageAttributes(jsonName: string): Record<string, MessageAttributeInput> | undefined {
    const source = jsonName === 'MessageAttributes' ? this.entry.attributes : jsonName === 'MessageSystemAttributes' ? this.entry.systemAttributes : undefined;
    if (source === undefined) return undefined;
    const result: Record<string, MessageAttributeInput> = {};
    for (const name of Object.keys(source)) {
      const attribute = source[name]!;
      result[name] = { dataType: attribute.dataType, stringValue: attribute.stringValue, binaryValue: attribute.binaryValue, hasListValues: false };
    }
    return result;
  }

  entries(): Params[] | undefined {
    return undefined;
  }
}

export class NativeOperations {
  constructor(private readonly service: QueueService) {}

  async send(queue: string, entries: WireSendEntry[], senderId: string): Promise<WireSendOutcome[]> {
    checkBatchSize(entries.length, 'message');
    const description = await this.service.describeQueue(queue);
    const rules = sendRules(description);
    const outcomes: WireSendOutcome[] = new Array(entries.length);
    const accepted: SendInput[] = [];
    const acceptedIndex: number[] = [];
    entries.forEach((entry, index) => {
      try {
        const { input } = validateSend(new EntryParams(entry), rules, senderId);
        if (entry.replicaCount !== undefined) {
          if (entry.replicaCount < 1 || entry.replicaCount > replicaCountMax) throw invalid(`replica count must be between 1 and ${replicaCountMax}, got ${entry.replicaCount}.`);
          input.replicaCount = entry.replicaCount;
        }
        accepted.push(input);
        acceptedIndex.push(index);
      } catch (error) {
        if (!isBerthError(error)) throw error;
        outcomes[index] = { ok: false, error: toWireError(error) };
      }
    });
    if (accepted.length > 0) {
      const results = await this.service.send(queue, accepted);
      results.forEach((result, position) => {
        const index = acceptedIndex[position]!;
        outcomes[index] = isBerthError(result)
          ? { ok: false, error: toWireError(result) }
          : result.sequenceNumber === undefined
            ? { ok: true, messageId: result.messageId }
            : { ok: true, messageId: result.messageId, sequenceNumber: result.sequenceNumber };
      });
    }
    for (let index = 0; index < outcomes.length; index++) {
      if (outcomes[index] === undefined) outcomes[index] = { ok: false, error: wireErrorOf('InternalError', 'message was not processed') };
    }
    return outcomes;
  }

  async receive(queue: string, maxMessages: number, visibilityTimeoutSeconds: number, waitMs: number, signal: AbortSignal | undefined): Promise<WireMessage[]> {
    if (maxMessages < 1 || maxMessages > batchEntriesMax) throw invalid(`maxMessages must be between 1 and ${batchEntriesMax}, got ${maxMessages}.`);
    checkVisibility(visibilityTimeoutSeconds, true);
    if (waitMs > receiveWaitMsMax) throw invalid(`waitMs must be at most ${receiveWaitMsMax}, got ${waitMs}.`);
    const messages = await this.service.receive(queue, {
      maxMessages,
      waitTimeSeconds: waitMs / 1000,
      ...(visibilityTimeoutSeconds >= 0 ? { visibilityTimeoutSeconds } : {}),
      ...(signal === undefined ? {} : { signal }),
    });
    // A ReceivedMessage is a WireMessage already (encodeMessages reads only the wire's
    // fields, and writes empty attribute maps as none): no second object per message.
    return messages;
  }

  async ack(queue: string, receiptHandles: string[]): Promise<Array<WireError | null>> {
    checkBatchSize(receiptHandles.length, 'receipt handle');
    const results = await this.service.deleteMessages(queue, receiptHandles);
    return results.map((result) => (result === null ? null : toWireError(result)));
  }

  async changeVisibility(queue: string, changes: WireVisibilityChange[]): Promise<Array<WireError | null>> {
    checkBatchSize(changes.length, 'visibility change');
    for (const change of changes) checkVisibility(change.visibilityTimeoutSeconds, false);
    const results = await this.service.changeVisibility(queue, changes);
    return results.map((result) => (result === null ? null : toWireError(result)));
  }

  /** The visibility timeout a subscription's receives will use. */
  async effectiveVisibility(queue: string, requested: number): Promise<number> {
    checkVisibility(requested, true);
    const description = await this.service.describeQueue(queue);
    return requested >= 0 ? requested : Number(description.attributes['VisibilityTimeout'] ?? 30);
  }

  /** Rare operations with JSON arguments and results. */
  async admin(request: unknown): Promise<unknown> {
    if (typeof request !== 'object' || request === null || Array.isArray(request)) throw new BerthError('SerializationException', 'ADMIN payload must be a JSON object with an "op".');
    const fields = request as Record<string, unknown>;
    const op = fields['op'];
    const name = (): string => {
      const value = fields['queue'];
      if (typeof value !== 'string' || value === '') throw new BerthError('MissingParameter', 'The request must contain the parameter queue.');
      return value;
    };
    const stringMap = (key: string): Record<string, string> => {
      const value = fields[key];
      if (value === undefined || value === null) return {};
      if (typeof value !== 'object' || Array.isArray(value)) throw new BerthError('SerializationException', `${key} must be a map of strings.`);
      for (const item of Object.values(value)) if (typeof item !== 'string') throw new BerthError('SerializationException', `${key} must be a map of strings.`);
      return value as Record<string, string>;
    };
    switch (op) {
      case 'createQueue':
        return { queue: await this.createQueue(name(), stringMap('attributes'), stringMap('tags')) };
      case 'deleteQueue':
        await this.service.deleteQueue(name());
        return {};
      case 'listQueues': {
        const prefix = fields['prefix'];
        if (prefix !== undefined && typeof prefix !== 'string') throw new BerthError('SerializationException', 'prefix must be a string.');
        return { queues: await this.service.listQueues(prefix === '' ? undefined : prefix) };
      }
      case 'getQueueAttributes':
        return { attributes: await this.attributes(name()) };
      case 'setQueueAttributes':
        await this.setAttributes(name(), stringMap('attributes'));
        return {};
      case 'purgeQueue':
        await this.service.purgeQueue(name());
        return {};
      case 'queueCounts':
        return { counts: await this.service.queueCounts(name()) };
      case 'routing': {
        // A single node has nothing to route: the client keeps the connection it has.
        const queue = name();
        if (this.service.routing === undefined) {
          await this.service.queueCounts(queue); // QueueDoesNotExist like every other call
          return { routing: null };
        }
        return { routing: await this.service.routing(queue) };
      }
      // Topics (docs/topics.md): thin forms of createQueue / deleteQueue with the Berth.* attributes.
      case 'createTopic':
        return { queue: await this.createQueue(name(), { ...stringMap('attributes'), 'Berth.Kind': 'topic' }, stringMap('tags')) };
      case 'subscribe': {
        const topic = fields['topic'];
        if (typeof topic !== 'string' || topic === '') throw new BerthError('MissingParameter', 'The request must contain the parameter topic.');
        const filterPolicy = fields['filterPolicy'];
        if (filterPolicy !== undefined && typeof filterPolicy !== 'string') throw new BerthError('SerializationException', 'filterPolicy must be a JSON string.');
        const attributes: Record<string, string> = { ...stringMap('attributes'), 'Berth.Topic': topic };
        if (filterPolicy !== undefined) attributes['Berth.FilterPolicy'] = filterPolicy;
        return { queue: await this.createQueue(name(), attributes, stringMap('tags')) };
      }
      case 'unsubscribe': {
        const queue = name();
        const description = await this.service.describeQueue(queue);
        if (description.attributes['Berth.Topic'] === undefined) throw invalid(`Queue ${queue} is not a subscription of a topic; use deleteQueue.`);
        await this.service.deleteQueue(queue);
        return {};
      }
      default:
        throw new BerthError('InvalidAction', `Unknown ADMIN op ${JSON.stringify(op)}.`);
    }
  }

  private get arnContext(): { region: string; accountId: string } {
    return { region: this.service.region, accountId: this.service.accountId };
  }

  private async createQueue(name: string, given: Record<string, string>, tags: Record<string, string>): Promise<string> {
    const fifo = given['FifoQueue']?.toLowerCase() === 'true';
    if (fifo ? !fifoQueueNamePattern.test(name) : !queueNamePattern.test(name)) {
      throw invalid(
        fifo
          ? 'The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.'
          : 'Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length',
      );
    }
    const validated = validateQueueAttributes(given, fifo, true, this.arnContext);
    checkFifoThroughput(withCreateDefaults(validated.attributes, fifo));
    let existing: QueueDescription | undefined;
    try {
      existing = await this.service.describeQueue(name);
    } catch (error) {
      if (!isBerthError(error) || error.code !== 'QueueDoesNotExist') throw error;
    }
    if (existing !== undefined) {
      for (const attributeName of Object.keys(validated.attributes)) {
        const wanted = validated.attributes[attributeName]!;
        if (attributeName === 'FifoQueue' && wanted === 'false' && !isFifo(existing)) continue;
        if ((existing.attributes[attributeName] ?? '') !== wanted) {
          throw new BerthError('QueueNameExists', `A queue already exists with the same name and a different value for attribute ${attributeName}`);
        }
      }
      return name;
    }
    await this.checkDeadLetterTarget(validated.deadLetterQueueName, fifo);
    const created = await this.service.createQueue(name, withCreateDefaults(validated.attributes, fifo), tags);
    return created.name;
  }

  private async setAttributes(name: string, given: Record<string, string>): Promise<void> {
    if (Object.keys(given).length === 0) throw new BerthError('MissingParameter', 'The request must contain the parameter attributes.');
    for (const attributeName of Object.keys(given)) {
      if (readOnlyAttributeNames.has(attributeName)) throw new BerthError('InvalidAttributeName', `Unknown Attribute ${attributeName}.`);
    }
    const description = await this.service.describeQueue(name);
    const fifo = isFifo(description);
    const validated = validateQueueAttributes(given, fifo, false, this.arnContext);
    checkFifoThroughput({ ...description.attributes, ...validated.attributes });
    await this.checkDeadLetterTarget(validated.deadLetterQueueName, fifo);
    await this.service.setQueueAttributes(name, validated.attributes);
  }

  private async checkDeadLetterTarget(deadLetterQueueName: string | undefined, fifo: boolean): Promise<void> {
    if (deadLetterQueueName === undefined) return;
    let target: QueueDescription;
    try {
      target = await this.service.describeQueue(deadLetterQueueName);
    } catch (error) {
      if (isBerthError(error) && error.code === 'QueueDoesNotExist') throw invalid('RedrivePolicy is invalid. Reason: Dead letter target does not exist.');
      throw error;
    }
    if (isFifo(target) !== fifo) throw invalid('RedrivePolicy is invalid. Reason: Dead-letter queue must be same type of queue as the source.');
  }

  private async attributes(name: string): Promise<Record<string, string>> {
    const description = await this.service.describeQueue(name);
    const counts = await this.service.queueCounts(name);
    const fifo = isFifo(description);
    const result: Record<string, string> = {
      ApproximateNumberOfMessages: String(counts.visible),
      ApproximateNumberOfMessagesNotVisible: String(counts.inflight),
      ApproximateNumberOfMessagesDelayed: String(counts.delayed),
      CreatedTimestamp: String(Math.floor(description.createdTimestampMs / 1000)),
      LastModifiedTimestamp: String(Math.floor(description.lastModifiedTimestampMs / 1000)),
      QueueArn: queueArn(name, this.arnContext),
    };
    for (const attributeName of Object.keys(description.attributes)) {
      const value = description.attributes[attributeName]!;
      if (value === '' || (!fifo && fifoOnlyAttributeNames.has(attributeName))) continue;
      result[attributeName] = value;
    }
    return result;
  }
}

function checkVisibility(seconds: number, allowDefault: boolean): void {
  if (allowDefault && seconds === -1) return;
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > visibilityTimeoutSecondsMax) {
    throw invalid(`visibility timeout must be between 0 and ${visibilityTimeoutSecondsMax} seconds, got ${seconds}.`);
  }
}

