// The SQS API face: one HTTP request in, one HTTP response out, no socket. Another layer
// wires it to node:http and supplies the QueueService it calls.
//
// Flow of a request:
//   detect protocol (X-Amz-Target: AmazonSQS.<Action> -> AWS JSON 1.0, else Query)
//   -> authenticate (SigV4 in 'sigv4' mode) -> parse parameters once into a Params view
//   -> run the action (validate, call the service, build a JSON-shaped output)
//   -> serialise: JSON.stringify for JSON 1.0, XML for Query.
// Expected failures are BerthErrors mapped to the SQS error shape of the protocol; any
// other exception becomes a logged 500 InternalError and never escapes the handler.

import type { QueueDescription, QueueService } from '../../broker/service.js';
import type { Clock } from '../../core/clock.js';
import { BerthError, errorCatalogue, isBerthError, type ErrorCode } from '../../protocol/errors.js';
import { setOwn } from '../../core/own-property.js';
import { randomUuid } from '../../core/uuid.js';
import type { MessageAttributes, ReceivedMessage } from '../../queue/types.js';
import { accessKeyIdFromAuthorization, SigV4Verifier } from '../../auth/sigv4.js';
import { md5OfBody, md5OfMessageAttributes } from './md5.js';
import { batchEntriesMax, batchEntryIdPattern, batchPayloadBytesMax, validateSend, type QueueSendRules } from './messages.js';
import { JsonParams, parseForm, QueryParams, type Params } from './params.js';
import {
  checkFifoThroughput,
  fifoOnlyAttributeNames,
  fifoQueueNamePattern,
  isKnownAttributeName,
  queueArn,
  queueNameFromArn,
  queueNamePattern,
  readOnlyAttributeNames,
  validateQueueAttributes,
  withCreateDefaults,
} from './queue-attributes.js';
import { xmlErrorResponse, xmlResponse, type ListElementNames } from './xml.js';

import type { HttpRequest, HttpResponse } from '../../protocol/http.js';

export type { HttpRequest, HttpResponse } from '../../protocol/http.js';

export interface SqsApiOptions {
  /** Default '000000000000'. */
  accountId: string;
  /** Default 'us-east-1'. */
  region: string;
  /** When set, queue URLs use it; else http://<Host>/<account>/<name> from the request. */
  publicBaseUrl?: string;
  auth: { mode: 'open' } | { mode: 'sigv4'; credentials: Map<string, string> };
  /** For SigV4 time checks and action durations. */
  clock: Clock;
  logger?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  /** Metrics hook, called once per request. `errorCode` is the catalogue code. */
  onActionResult?(action: string, queueName: string | undefined, errorCode: string | undefined, durationMs: number): void;
}

export type SqsHandler = (request: HttpRequest, signal?: AbortSignal) => Promise<HttpResponse>;

type Output = Record<string, unknown> | undefined;

interface ActionContext {
  params: Params;
  request: HttpRequest;
  senderId: string;
  signal: AbortSignal | undefined;
  /** Queue name, once resolved; reported to the metrics hook. */
  queueName: string | undefined;
  /** Element names for the Query protocol's flattened lists. */
  listNames: ListElementNames | undefined;
}

const jsonContentType = 'application/x-amz-json-1.0';
const xmlContentType = 'text/xml';
const listQueuesResultsMax = 1000;
const receiveMessagesMax = 10;
const waitTimeSecondsMax = 20;
const visibilityTimeoutSecondsMax = 43_200;
const tagsPerQueueMax = 50;
const permissionActionsMax = 7;
const moveTaskRateMax = 500;
const moveTasksListedMax = 10;

const systemAttributeNames: ReadonlySet<string> = new Set([
  'All',
  'SenderId',
  'SentTimestamp',
  'ApproximateReceiveCount',
  'ApproximateFirstReceiveTimestamp',
  'SequenceNumber',
  'MessageDeduplicationId',
  'MessageGroupId',
  'AWSTraceHeader',
  'DeadLetterQueueSourceArn',
  /** Berth, cluster mode: the nodes holding the message's replicas, primary first. */
  'Berth.ReplicaHosts',
]);

const permissionActionNames: ReadonlySet<string> = new Set([
  '*',
  'SendMessage',
  'ReceiveMessage',
  'DeleteMessage',
  'ChangeMessageVisibility',
  'GetQueueAttributes',
  'GetQueueUrl',
  'ListDeadLetterSourceQueues',
  'PurgeQueue',
  'ListQueueTags',
]);

function headerValue(headers: HttpRequest['headers'], name: string): string | undefined {
  const value = headers[name];
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value[0] : value;
}

function missing(name: string): BerthError {
  return new BerthError('MissingParameter', `The request must contain the parameter ${name}.`);
}

function invalidParameter(message: string): BerthError {
  return new BerthError('InvalidParameterValue', message);
}

function requireString(params: Params, name: string): string {
  const value = params.string(name);
  if (value === undefined || value === '') throw missing(name);
  return value;
}

function integerInRange(params: Params, name: string, minimum: number, maximum: number): number | undefined {
  const value = params.integer(name);
  if (value !== undefined && (value < minimum || value > maximum)) {
    throw invalidParameter(`Value ${value} for parameter ${name} is invalid. Reason: Must be between ${minimum} and ${maximum}, if provided.`);
  }
  return value;
}

function isFifoDescription(description: QueueDescription): boolean {
  return description.attributes['FifoQueue'] === 'true';
}

function sendRules(description: QueueDescription): QueueSendRules {
  return {
    fifo: isFifoDescription(description),
    contentBasedDeduplication: description.attributes['ContentBasedDeduplication'] === 'true',
    maximumMessageSize: Number(description.attributes['MaximumMessageSize'] ?? 262_144),
  };
}

function encodePageToken(lastName: string): string {
  return Buffer.from(lastName, 'utf8').toString('base64url');
}

function decodePageToken(token: string): string {
  const name = Buffer.from(token, 'base64url').toString('utf8');
  if (!queueNamePattern.test(name) && !fifoQueueNamePattern.test(name)) throw invalidParameter('Invalid NextToken value.');
  return name;
}

/** One page of ascending names after the token; a NextToken only when MaxResults was given and more remain. */
function paginate(names: string[], params: Params): { page: string[]; nextToken?: string } {
  const maxResults = integerInRange(params, 'MaxResults', 1, listQueuesResultsMax);
  const token = params.string('NextToken');
  let start = 0;
  if (token !== undefined && token !== '') {
    const after = decodePageToken(token);
    start = names.findIndex((name) => name > after);
    if (start === -1) start = names.length;
  }
  const size = maxResults ?? listQueuesResultsMax;
  const page = names.slice(start, start + size);
  if (maxResults !== undefined && start + size < names.length && page.length > 0) return { page, nextToken: encodePageToken(page[page.length - 1]!) };
  return { page };
}

function attributeOutput(attribute: MessageAttributes[string]): Record<string, string> {
  const output: Record<string, string> = {};
  if (attribute.stringValue !== undefined) output['StringValue'] = attribute.stringValue;
  if (attribute.binaryValue !== undefined) output['BinaryValue'] = Buffer.from(attribute.binaryValue.buffer, attribute.binaryValue.byteOffset, attribute.binaryValue.byteLength).toString('base64');
  output['DataType'] = attribute.dataType;
  return output;
}

/** MessageAttributeNames: All, `.*`, `prefix.*` wildcards or exact names. */
function selectMessageAttributes(attributes: MessageAttributes, requested: string[] | undefined): MessageAttributes {
  if (requested === undefined || requested.length === 0) return {};
  if (requested.includes('All') || requested.includes('.*')) return attributes;
  const selected: MessageAttributes = {};
  for (const name of Object.keys(attributes)) {
    for (const pattern of requested) {
      if (pattern === name || (pattern.endsWith('.*') && name.startsWith(pattern.slice(0, -1)))) {
        selected[name] = attributes[name]!;
        break;
      }
    }
  }
  return selected;
}

function systemAttributesOutput(message: ReceivedMessage, requested: ReadonlySet<string>): Record<string, string> | undefined {
  if (requested.size === 0) return undefined;
  const all = requested.has('All');
  const output: Record<string, string> = {};
  const put = (name: string, value: string | undefined): void => {
    if (value !== undefined && (all || requested.has(name))) output[name] = value;
  };
  put('SenderId', message.senderId);
  put('SentTimestamp', String(message.sentTimestampMs));
  put('ApproximateReceiveCount', String(message.receiveCount));
  put('ApproximateFirstReceiveTimestamp', String(message.firstReceiveTimestampMs));
  put('MessageGroupId', message.groupId);
  put('MessageDeduplicationId', message.deduplicationId);
  put('SequenceNumber', message.sequenceNumber);
  put('DeadLetterQueueSourceArn', message.deadLetterQueueSourceArn);
  put('Berth.ReplicaHosts', message.replicaHosts?.join(','));
  put('AWSTraceHeader', message.systemAttributes['AWSTraceHeader']?.stringValue);
  return Object.keys(output).length === 0 ? undefined : output;
}

interface BatchFailure {
  Id: string;
  SenderFault: boolean;
  Code: string;
  Message: string;
}

function batchFailure(id: string, error: BerthError): BatchFailure {
  return { Id: id, SenderFault: error.spec.fault === 'Sender', Code: error.spec.queryCode, Message: error.message };
}

/** Request-level checks every batch action shares: 1-10 entries with distinct valid ids. */
function batchEntries(params: Params, jsonName: string, queryName: string): { id: string; entry: Params }[] {
  const entries = params.entries(jsonName, queryName);
  if (entries === undefined || entries.length === 0) {
    throw new BerthError('EmptyBatchRequest', 'There should be at least one SendMessageBatchRequestEntry in the request.'.replace('SendMessageBatchRequestEntry', queryName));
  }
  if (entries.length > batchEntriesMax) {
    throw new BerthError('TooManyEntriesInBatchRequest', `Maximum number of entries per request are ${batchEntriesMax}. You have sent ${entries.length}.`);
  }
  const seen = new Set<string>();
  return entries.map((entry) => {
    const id = entry.string('Id');
    if (id === undefined || !batchEntryIdPattern.test(id)) {
      throw new BerthError('InvalidBatchEntryId', 'A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.');
    }
    if (seen.has(id)) throw new BerthError('BatchEntryIdsNotDistinct', `Id ${id} repeated.`);
    seen.add(id);
    return { id, entry };
  });
}

export function createSqsHandler(service: QueueService, options: SqsApiOptions): SqsHandler {
  const accountId = options.accountId || '000000000000';
  const region = options.region || 'us-east-1';
  const arnContext = { accountId, region };
  const verifier = options.auth.mode === 'sigv4' ? new SigV4Verifier(options.auth.credentials) : undefined;
  const publicBaseUrl = options.publicBaseUrl?.replace(/\/+$/, '');

  function queueUrl(request: HttpRequest, name: string): string {
    if (publicBaseUrl !== undefined) return `${publicBaseUrl}/${accountId}/${name}`;
    const host = headerValue(request.headers, 'host') ?? 'localhost';
    const forwardedProtocol = headerValue(request.headers, 'x-forwarded-proto');
    const scheme = forwardedProtocol === 'https' ? 'https' : 'http';
    return `${scheme}://${host}/${accountId}/${name}`;
  }

  /** Queue name from a queue URL (any host; the name is the last path segment). */
  function queueNameFromUrl(url: string): string {
    let path = url;
    const scheme = url.indexOf('://');
    if (scheme !== -1) {
      const slash = url.indexOf('/', scheme + 3);
      path = slash === -1 ? '' : url.slice(slash);
    }
    const query = path.indexOf('?');
    if (query !== -1) path = path.slice(0, query);
    const segments = path.split('/').filter((segment) => segment.length > 0);
    const name = segments[segments.length - 1];
    if (name === undefined) throw new BerthError('InvalidAddress', `The address ${url} is not valid for this endpoint.`);
    const account = segments.length >= 2 ? segments[segments.length - 2] : undefined;
    if ((account !== undefined && account !== accountId) || (!queueNamePattern.test(name) && !fifoQueueNamePattern.test(name))) {
      throw new BerthError('QueueDoesNotExist', 'The specified queue does not exist.');
    }
    return name;
  }

  /** The queue named by QueueUrl, else by the request path (POST /<account>/<name>). */
  function resolveQueue(context: ActionContext): string {
    const url = context.params.string('QueueUrl');
    let name: string;
    if (url !== undefined && url !== '') {
      name = queueNameFromUrl(url);
    } else {
      const path = context.request.url.split('?')[0] ?? '';
      if (path.split('/').filter((segment) => segment.length > 0).length === 0) throw missing('QueueUrl');
      name = queueNameFromUrl(path);
    }
    context.queueName = name;
    return name;
  }

  async function checkDeadLetterTarget(deadLetterQueueName: string | undefined, fifo: boolean, redrivePolicy: string): Promise<void> {
    if (deadLetterQueueName === undefined) return;
    let target: QueueDescription;
    try {
      target = await service.describeQueue(deadLetterQueueName);
    } catch (error) {
      if (isBerthError(error) && error.code === 'QueueDoesNotExist') {
        throw invalidParameter(`Value ${redrivePolicy} for parameter RedrivePolicy is invalid. Reason: Dead letter target does not exist.`);
      }
      throw error;
    }
    if (isFifoDescription(target) !== fifo) {
      throw invalidParameter(`Value ${redrivePolicy} for parameter RedrivePolicy is invalid. Reason: Dead-letter queue must be same type of queue as the source.`);
    }
  }

  async function describeForAttributes(name: string, description: QueueDescription, requested: string[]): Promise<Record<string, string>> {
    const fifo = isFifoDescription(description);
    const all = requested.includes('All');
    const wanted = new Set(requested);
    const result: Record<string, string> = {};
    const include = (attributeName: string): boolean => all || wanted.has(attributeName);
    if (include('ApproximateNumberOfMessages') || include('ApproximateNumberOfMessagesNotVisible') || include('ApproximateNumberOfMessagesDelayed')) {
      const counts = await service.queueCounts(name);
      if (include('ApproximateNumberOfMessages')) result['ApproximateNumberOfMessages'] = String(counts.visible);
      if (include('ApproximateNumberOfMessagesNotVisible')) result['ApproximateNumberOfMessagesNotVisible'] = String(counts.inflight);
      if (include('ApproximateNumberOfMessagesDelayed')) result['ApproximateNumberOfMessagesDelayed'] = String(counts.delayed);
    }
    if (include('CreatedTimestamp')) result['CreatedTimestamp'] = String(Math.floor(description.createdTimestampMs / 1000));
    if (include('LastModifiedTimestamp')) result['LastModifiedTimestamp'] = String(Math.floor(description.lastModifiedTimestampMs / 1000));
    if (include('QueueArn')) result['QueueArn'] = queueArn(name, arnContext);
    for (const attributeName of Object.keys(description.attributes)) {
      const value = description.attributes[attributeName]!;
      if (value === '' || !include(attributeName)) continue;
      if (!fifo && fifoOnlyAttributeNames.has(attributeName)) continue;
      result[attributeName] = value;
    }
    return result;
  }

  const actions: Record<string, (context: ActionContext) => Promise<Output>> = {
    async CreateQueue(context) {
      const { params } = context;
      const name = requireString(params, 'QueueName');
      context.queueName = name;
      const given = params.stringMap('Attributes', 'Attribute', 'Name') ?? {};
      const tags = params.stringMap('tags', 'Tag', 'Key') ?? {};
      const fifoFlag = given['FifoQueue']?.toLowerCase();
      const fifo = fifoFlag === 'true';
      if (fifo) {
        if (!fifoQueueNamePattern.test(name)) {
          throw invalidParameter('The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.');
        }
      } else if (!queueNamePattern.test(name)) {
        throw invalidParameter('Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length');
      }
      validateTags(tags);
      const validated = validateQueueAttributes(given, fifo, true, arnContext);
      checkFifoThroughput(withCreateDefaults(validated.attributes, fifo));
      let existing: QueueDescription | undefined;
      try {
        existing = await service.describeQueue(name);
      } catch (error) {
        if (!isBerthError(error) || error.code !== 'QueueDoesNotExist') throw error;
      }
      if (existing !== undefined) {
        for (const attributeName of Object.keys(validated.attributes)) {
          const wanted = validated.attributes[attributeName]!;
          if (attributeName === 'FifoQueue' && wanted === 'false' && !isFifoDescription(existing)) continue;
          if ((existing.attributes[attributeName] ?? '') !== wanted) {
            throw new BerthError('QueueNameExists', `A queue already exists with the same name and a different value for attribute ${attributeName}`);
          }
        }
        return { QueueUrl: queueUrl(context.request, name) };
      }
      await checkDeadLetterTarget(validated.deadLetterQueueName, fifo, given['RedrivePolicy'] ?? '');
      const created = await service.createQueue(name, withCreateDefaults(validated.attributes, fifo), tags);
      return { QueueUrl: queueUrl(context.request, created.name) };
    },

    async DeleteQueue(context) {
      await service.deleteQueue(resolveQueue(context));
      return undefined;
    },

    async GetQueueUrl(context) {
      const { params } = context;
      const name = requireString(params, 'QueueName');
      context.queueName = name;
      const owner = params.string('QueueOwnerAWSAccountId');
      if ((owner !== undefined && owner !== '' && owner !== accountId) || (!queueNamePattern.test(name) && !fifoQueueNamePattern.test(name))) {
        throw new BerthError('QueueDoesNotExist', 'The specified queue does not exist.');
      }
      await service.describeQueue(name);
      return { QueueUrl: queueUrl(context.request, name) };
    },

    async ListQueues(context) {
      const prefix = context.params.string('QueueNamePrefix');
      const names = await service.listQueues(prefix === '' ? undefined : prefix);
      const { page, nextToken } = paginate(names, context.params);
      const output: Record<string, unknown> = {};
      if (page.length > 0) output['QueueUrls'] = page.map((name) => queueUrl(context.request, name));
      if (nextToken !== undefined) output['NextToken'] = nextToken;
      return output;
    },

    async GetQueueAttributes(context) {
      const name = resolveQueue(context);
      const requested = context.params.stringList('AttributeNames', 'AttributeName') ?? [];
      for (const attributeName of requested) {
        if (attributeName !== 'All' && !isKnownAttributeName(attributeName)) {
          throw new BerthError('InvalidAttributeName', `Unknown Attribute ${attributeName}.`);
        }
      }
      const description = await service.describeQueue(name);
      const attributes = requested.length === 0 ? {} : await describeForAttributes(name, description, requested);
      return Object.keys(attributes).length === 0 ? {} : { Attributes: attributes };
    },

    async SetQueueAttributes(context) {
      const name = resolveQueue(context);
      const given = context.params.stringMap('Attributes', 'Attribute', 'Name');
      if (given === undefined || Object.keys(given).length === 0) throw missing('Attributes');
      for (const attributeName of Object.keys(given)) {
        if (readOnlyAttributeNames.has(attributeName)) throw new BerthError('InvalidAttributeName', `Unknown Attribute ${attributeName}.`);
      }
      const description = await service.describeQueue(name);
      const fifo = isFifoDescription(description);
      const validated = validateQueueAttributes(given, fifo, false, arnContext);
      checkFifoThroughput({ ...description.attributes, ...validated.attributes });
      await checkDeadLetterTarget(validated.deadLetterQueueName, fifo, given['RedrivePolicy'] ?? '');
      await service.setQueueAttributes(name, validated.attributes);
      return undefined;
    },

    async PurgeQueue(context) {
      await service.purgeQueue(resolveQueue(context));
      return undefined;
    },

    async SendMessage(context) {
      const name = resolveQueue(context);
      const description = await service.describeQueue(name);
      const { input } = validateSend(context.params, sendRules(description), context.senderId);
      const [outcome] = await service.send(name, [input]);
      if (outcome === undefined) throw new Error('QueueService.send returned no outcome for one message');
      if (isBerthError(outcome)) throw outcome;
      const output: Record<string, unknown> = { MD5OfMessageBody: md5OfBody(input.body) };
      const attributesDigest = md5OfMessageAttributes(input.attributes);
      if (attributesDigest !== undefined) output['MD5OfMessageAttributes'] = attributesDigest;
      const systemDigest = md5OfMessageAttributes(input.systemAttributes);
      if (systemDigest !== undefined) output['MD5OfMessageSystemAttributes'] = systemDigest;
      output['MessageId'] = outcome.messageId;
      if (outcome.sequenceNumber !== undefined) output['SequenceNumber'] = outcome.sequenceNumber;
      return output;
    },

    async SendMessageBatch(context) {
      context.listNames = { Successful: 'SendMessageBatchResultEntry' };
      const name = resolveQueue(context);
      const entries = batchEntries(context.params, 'Entries', 'SendMessageBatchRequestEntry');
      const description = await service.describeQueue(name);
      const rules = sendRules(description);
      const failed: BatchFailure[] = [];
      const accepted: { id: string; input: ReturnType<typeof validateSend>['input'] }[] = [];
      let totalBytes = 0;
      for (const { id, entry } of entries) {
        try {
          const validated = validateSend(entry, rules, context.senderId);
          totalBytes += validated.payloadBytes;
          accepted.push({ id, input: validated.input });
        } catch (error) {
          if (!isBerthError(error)) throw error;
          failed.push(batchFailure(id, error));
        }
      }
      if (totalBytes > batchPayloadBytesMax) {
        throw new BerthError('BatchRequestTooLong', `Batch requests cannot be longer than ${batchPayloadBytesMax} bytes. You have sent ${totalBytes} bytes.`);
      }
      const successful: Record<string, unknown>[] = [];
      if (accepted.length > 0) {
        const outcomes = await service.send(name, accepted.map((item) => item.input));
        accepted.forEach(({ id, input }, index) => {
          const outcome = outcomes[index];
          if (outcome === undefined) throw new Error('QueueService.send returned fewer outcomes than messages');
          if (isBerthError(outcome)) {
            failed.push(batchFailure(id, outcome));
            return;
          }
          const result: Record<string, unknown> = { Id: id, MessageId: outcome.messageId, MD5OfMessageBody: md5OfBody(input.body) };
          const attributesDigest = md5OfMessageAttributes(input.attributes);
          if (attributesDigest !== undefined) result['MD5OfMessageAttributes'] = attributesDigest;
          const systemDigest = md5OfMessageAttributes(input.systemAttributes);
          if (systemDigest !== undefined) result['MD5OfMessageSystemAttributes'] = systemDigest;
          if (outcome.sequenceNumber !== undefined) result['SequenceNumber'] = outcome.sequenceNumber;
          successful.push(result);
        });
      }
      return { Successful: successful, Failed: failed };
    },

    async ReceiveMessage(context) {
      const { params } = context;
      const name = resolveQueue(context);
      const maxMessages = integerInRange(params, 'MaxNumberOfMessages', 1, receiveMessagesMax) ?? 1;
      const visibility = integerInRange(params, 'VisibilityTimeout', 0, visibilityTimeoutSecondsMax);
      const waitGiven = integerInRange(params, 'WaitTimeSeconds', 0, waitTimeSecondsMax);
      const attemptId = params.string('ReceiveRequestAttemptId');
      if (attemptId !== undefined && !/^[\x21-\x7E]{1,128}$/.test(attemptId)) {
        throw invalidParameter(`Value ${attemptId} for parameter ReceiveRequestAttemptId is invalid. Reason: alphanumeric and punctuation characters only, 1 to 128 in length.`);
      }
      const systemNames = [
        ...(params.stringList('MessageSystemAttributeNames', 'MessageSystemAttributeName') ?? []),
        ...(params.stringList('AttributeNames', 'AttributeName') ?? []),
      ];
      for (const systemName of systemNames) {
        if (!systemAttributeNames.has(systemName)) throw new BerthError('InvalidAttributeName', `Unknown Attribute ${systemName}.`);
      }
      const messageAttributeNames = params.stringList('MessageAttributeNames', 'MessageAttributeName');
      for (const attributeName of messageAttributeNames ?? []) {
        if (attributeName.length === 0 || attributeName.length > 256) throw invalidParameter(`Message attribute name '${attributeName}' is invalid.`);
      }
      const description = await service.describeQueue(name);
      const waitTimeSeconds = waitGiven ?? Number(description.attributes['ReceiveMessageWaitTimeSeconds'] ?? 0);
      const messages = await service.receive(name, {
        maxMessages,
        waitTimeSeconds,
        ...(visibility === undefined ? {} : { visibilityTimeoutSeconds: visibility }),
        ...(attemptId === undefined ? {} : { receiveRequestAttemptId: attemptId }),
        ...(context.signal === undefined ? {} : { signal: context.signal }),
      });
      const requestedSystem = new Set(systemNames);
      const output = messages.map((message) => {
        const item: Record<string, unknown> = {
          MessageId: message.messageId,
          ReceiptHandle: message.receiptHandle,
          MD5OfBody: md5OfBody(message.body),
          Body: message.body,
        };
        const system = systemAttributesOutput(message, requestedSystem);
        if (system !== undefined) item['Attributes'] = system;
        const selected = selectMessageAttributes(message.attributes, messageAttributeNames);
        const digest = md5OfMessageAttributes(selected);
        if (digest !== undefined) {
          item['MD5OfMessageAttributes'] = digest;
          const attributes: Record<string, unknown> = {};
          for (const attributeName of Object.keys(selected)) setOwn(attributes, attributeName, attributeOutput(selected[attributeName]!));
          item['MessageAttributes'] = attributes;
        }
        return item;
      });
      return output.length === 0 ? {} : { Messages: output };
    },

    async DeleteMessage(context) {
      const name = resolveQueue(context);
      const receiptHandle = requireString(context.params, 'ReceiptHandle');
      const [error] = await service.deleteMessages(name, [receiptHandle]);
      if (error) throw error;
      return undefined;
    },

    async DeleteMessageBatch(context) {
      context.listNames = { Successful: 'DeleteMessageBatchResultEntry' };
      const name = resolveQueue(context);
      const entries = batchEntries(context.params, 'Entries', 'DeleteMessageBatchRequestEntry');
      const failed: BatchFailure[] = [];
      const pending: { id: string; receiptHandle: string }[] = [];
      for (const { id, entry } of entries) {
        const receiptHandle = entry.string('ReceiptHandle');
        if (receiptHandle === undefined || receiptHandle === '') failed.push(batchFailure(id, missing('ReceiptHandle')));
        else pending.push({ id, receiptHandle });
      }
      const successful: Record<string, unknown>[] = [];
      if (pending.length > 0) {
        const results = await service.deleteMessages(name, pending.map((item) => item.receiptHandle));
        pending.forEach(({ id }, index) => {
          const error = results[index];
          if (error) failed.push(batchFailure(id, error));
          else successful.push({ Id: id });
        });
      }
      return { Successful: successful, Failed: failed };
    },

    async ChangeMessageVisibility(context) {
      const name = resolveQueue(context);
      const receiptHandle = requireString(context.params, 'ReceiptHandle');
      const visibility = integerInRange(context.params, 'VisibilityTimeout', 0, visibilityTimeoutSecondsMax);
      if (visibility === undefined) throw missing('VisibilityTimeout');
      const [error] = await service.changeVisibility(name, [{ receiptHandle, visibilityTimeoutSeconds: visibility }]);
      if (error) throw error;
      return undefined;
    },

    async ChangeMessageVisibilityBatch(context) {
      context.listNames = { Successful: 'ChangeMessageVisibilityBatchResultEntry' };
      const name = resolveQueue(context);
      const entries = batchEntries(context.params, 'Entries', 'ChangeMessageVisibilityBatchRequestEntry');
      const failed: BatchFailure[] = [];
      const pending: { id: string; receiptHandle: string; visibilityTimeoutSeconds: number }[] = [];
      for (const { id, entry } of entries) {
        try {
          const receiptHandle = requireString(entry, 'ReceiptHandle');
          const visibility = integerInRange(entry, 'VisibilityTimeout', 0, visibilityTimeoutSecondsMax);
          if (visibility === undefined) throw missing('VisibilityTimeout');
          pending.push({ id, receiptHandle, visibilityTimeoutSeconds: visibility });
        } catch (error) {
          if (!isBerthError(error)) throw error;
          failed.push(batchFailure(id, error));
        }
      }
      const successful: Record<string, unknown>[] = [];
      if (pending.length > 0) {
        const results = await service.changeVisibility(name, pending.map(({ receiptHandle, visibilityTimeoutSeconds }) => ({ receiptHandle, visibilityTimeoutSeconds })));
        pending.forEach(({ id }, index) => {
          const error = results[index];
          if (error) failed.push(batchFailure(id, error));
          else successful.push({ Id: id });
        });
      }
      return { Successful: successful, Failed: failed };
    },

    async TagQueue(context) {
      const name = resolveQueue(context);
      const tags = context.params.stringMap('Tags', 'Tag', 'Key');
      if (tags === undefined || Object.keys(tags).length === 0) throw missing('Tags');
      validateTags(tags);
      const description = await service.describeQueue(name);
      const merged = { ...description.tags, ...tags };
      if (Object.keys(merged).length > tagsPerQueueMax) throw invalidParameter(`Too many tags added for queue ${name}.`);
      await service.setQueueTags(name, merged);
      return undefined;
    },

    async UntagQueue(context) {
      const name = resolveQueue(context);
      const keys = context.params.stringList('TagKeys', 'TagKey');
      if (keys === undefined || keys.length === 0) throw missing('TagKeys');
      const description = await service.describeQueue(name);
      const remaining = { ...description.tags };
      for (const key of keys) delete remaining[key];
      await service.setQueueTags(name, remaining);
      return undefined;
    },

    async ListQueueTags(context) {
      const name = resolveQueue(context);
      const description = await service.describeQueue(name);
      return Object.keys(description.tags).length === 0 ? {} : { Tags: description.tags };
    },

    async ListDeadLetterSourceQueues(context) {
      const name = resolveQueue(context);
      const names = (await service.listDeadLetterSourceQueues(name)).slice().sort();
      const { page, nextToken } = paginate(names, context.params);
      const output: Record<string, unknown> = { queueUrls: page.map((source) => queueUrl(context.request, source)) };
      if (nextToken !== undefined) output['NextToken'] = nextToken;
      return output;
    },

    async AddPermission(context) {
      const { params } = context;
      const name = resolveQueue(context);
      const label = requireString(params, 'Label');
      if (!/^[A-Za-z0-9_-]{1,80}$/.test(label)) throw invalidParameter(`Value ${label} for parameter Label is invalid. Reason: Must be 1 to 80 alphanumeric characters, hyphens or underscores.`);
      const accounts = params.stringList('AWSAccountIds', 'AWSAccountId');
      if (accounts === undefined || accounts.length === 0) throw missing('AWSAccountIds');
      for (const account of accounts) {
        if (!/^\d{12}$/.test(account)) throw invalidParameter(`Value ${account} for parameter AWSAccountId is invalid. Reason: must be a 12-digit AWS account id.`);
      }
      const actionNames = params.stringList('Actions', 'ActionName');
      if (actionNames === undefined || actionNames.length === 0) throw missing('Actions');
      if (actionNames.length > permissionActionsMax) throw new BerthError('OverLimit', `${actionNames.length} Actions were found, maximum allowed is ${permissionActionsMax}.`);
      for (const action of actionNames) {
        if (!permissionActionNames.has(action)) throw invalidParameter(`Value SQS:${action} for parameter ActionName is invalid. Reason: Only the queue owner is allowed to invoke this action.`);
      }
      const description = await service.describeQueue(name);
      const policy = parsePolicy(description.attributes['Policy'], queueArn(name, arnContext));
      if (policy.Statement.some((statement) => statement['Sid'] === label)) {
        throw invalidParameter(`Value ${label} for parameter Label is invalid. Reason: Already exists.`);
      }
      const principals = accounts.map((account) => `arn:aws:iam::${account}:root`);
      const actionList = actionNames.map((action) => `SQS:${action}`);
      policy.Statement.push({
        Sid: label,
        Effect: 'Allow',
        Principal: { AWS: principals.length === 1 ? principals[0] : principals },
        Action: actionList.length === 1 ? actionList[0] : actionList,
        Resource: queueArn(name, arnContext),
      });
      await service.setQueueAttributes(name, { Policy: JSON.stringify(policy) });
      return undefined;
    },

    async RemovePermission(context) {
      const name = resolveQueue(context);
      const label = requireString(context.params, 'Label');
      const description = await service.describeQueue(name);
      const policy = parsePolicy(description.attributes['Policy'], queueArn(name, arnContext));
      const remaining = policy.Statement.filter((statement) => statement['Sid'] !== label);
      if (remaining.length === policy.Statement.length) throw invalidParameter(`Value ${label} for parameter Label is invalid. Reason: can't find label.`);
      await service.setQueueAttributes(name, { Policy: remaining.length === 0 ? '' : JSON.stringify({ ...policy, Statement: remaining }) });
      return undefined;
    },

    async StartMessageMoveTask(context) {
      const { params } = context;
      const sourceArn = requireString(params, 'SourceArn');
      const sourceName = queueNameFromArn(sourceArn, arnContext);
      if (sourceName === undefined) throw new BerthError('ResourceNotFoundException', 'The resource that you specified for the SourceArn parameter doesn\'t exist.');
      context.queueName = sourceName;
      const destinationArn = params.string('DestinationArn');
      if (destinationArn !== undefined && destinationArn !== '' && queueNameFromArn(destinationArn, arnContext) === undefined) {
        throw new BerthError('ResourceNotFoundException', 'The resource that you specified for the DestinationArn parameter doesn\'t exist.');
      }
      const rate = integerInRange(params, 'MaxNumberOfMessagesPerSecond', 1, moveTaskRateMax);
      const taskHandle = await service.startMessageMoveTask(sourceArn, destinationArn === '' ? undefined : destinationArn, rate);
      return { TaskHandle: taskHandle };
    },

    async ListMessageMoveTasks(context) {
      const sourceArn = requireString(context.params, 'SourceArn');
      const sourceName = queueNameFromArn(sourceArn, arnContext);
      if (sourceName === undefined) throw new BerthError('ResourceNotFoundException', 'The resource that you specified for the SourceArn parameter doesn\'t exist.');
      context.queueName = sourceName;
      const maxResults = integerInRange(context.params, 'MaxResults', 1, moveTasksListedMax) ?? 1;
      const tasks = await service.listMessageMoveTasks(sourceArn, maxResults);
      return {
        Results: tasks.map((task) => {
          const entry: Record<string, unknown> = {};
          if (task.status === 'RUNNING') entry['TaskHandle'] = task.taskHandle;
          entry['Status'] = task.status;
          entry['SourceArn'] = task.sourceArn;
          if (task.destinationArn !== undefined) entry['DestinationArn'] = task.destinationArn;
          if (task.maxNumberOfMessagesPerSecond !== undefined) entry['MaxNumberOfMessagesPerSecond'] = task.maxNumberOfMessagesPerSecond;
          entry['ApproximateNumberOfMessagesMoved'] = task.approximateNumberOfMessagesMoved;
          entry['ApproximateNumberOfMessagesToMove'] = task.approximateNumberOfMessagesToMove;
          if (task.failureReason !== undefined) entry['FailureReason'] = task.failureReason;
          entry['StartedTimestamp'] = task.startedTimestampMs;
          return entry;
        }),
      };
    },

    async CancelMessageMoveTask(context) {
      const taskHandle = requireString(context.params, 'TaskHandle');
      const moved = await service.cancelMessageMoveTask(taskHandle);
      return { ApproximateNumberOfMessagesMoved: moved };
    },
  };

  function errorResponse(protocol: 'json' | 'query', error: BerthError, requestId: string): HttpResponse {
    const spec = error.spec;
    if (protocol === 'json') {
      return {
        status: spec.httpStatus,
        headers: {
          'content-type': jsonContentType,
          'x-amzn-requestid': requestId,
          'x-amzn-query-error': `${spec.queryCode};${spec.fault}`,
        },
        body: JSON.stringify({ __type: `com.amazonaws.sqs#${spec.jsonType}`, message: error.message }),
      };
    }
    return {
      status: spec.httpStatus,
      headers: { 'content-type': xmlContentType, 'x-amzn-requestid': requestId },
      body: xmlErrorResponse(spec.fault, spec.queryCode, error.message, requestId),
    };
  }

  return async function handle(request: HttpRequest, signal?: AbortSignal): Promise<HttpResponse> {
    const startedMs = options.clock.monotonicMs();
    const requestId = randomUuid();
    const target = headerValue(request.headers, 'x-amz-target');
    const protocol: 'json' | 'query' = target !== undefined ? 'json' : 'query';
    let action = 'Unknown';
    const context: ActionContext = {
      params: undefined as unknown as Params,
      request,
      senderId: accountId,
      signal,
      queueName: undefined,
      listNames: undefined,
    };
    let response: HttpResponse;
    let errorCode: ErrorCode | undefined;
    try {
      if (verifier !== undefined) {
        const verdict = verifier.verify(request, options.clock.nowMs());
        if (!verdict.ok) throw new BerthError(verdict.code, verdict.message);
        context.senderId = verdict.accessKeyId;
      } else {
        context.senderId = accessKeyIdFromAuthorization(headerValue(request.headers, 'authorization')) ?? accountId;
      }
      if (protocol === 'json') {
        if (!target!.startsWith('AmazonSQS.')) throw new BerthError('InvalidAction', `The action ${target} is not valid for this endpoint.`);
        action = target!.slice('AmazonSQS.'.length);
        let members: unknown = {};
        if (request.body.length > 0) {
          try {
            members = JSON.parse(request.body.toString('utf8'));
          } catch {
            throw new BerthError('SerializationException', 'Start of structure or map found where not expected.');
          }
        }
        context.params = new JsonParams(members);
      } else {
        const values = new Map<string, string>();
        const questionMark = request.url.indexOf('?');
        if (questionMark !== -1) parseForm(request.url.slice(questionMark + 1), values);
        if (request.body.length > 0) parseForm(request.body.toString('utf8'), values);
        context.params = new QueryParams(values);
        const queryAction = values.get('Action');
        if (queryAction === undefined || queryAction === '') throw new BerthError('MissingAction', 'The request must contain the parameter Action.');
        action = queryAction;
      }
      const run = Object.hasOwn(actions, action) ? actions[action] : undefined;
      if (run === undefined) {
        const shown = action.length > 100 ? action.slice(0, 100) + '...' : action;
        action = 'Unknown';
        throw new BerthError('InvalidAction', `The action ${shown} is not valid for this endpoint.`);
      }
      const output = await run(context);
      if (protocol === 'json') {
        response = {
          status: 200,
          headers: { 'content-type': jsonContentType, 'x-amzn-requestid': requestId },
          body: output === undefined ? '{}' : JSON.stringify(output),
        };
      } else {
        response = {
          status: 200,
          headers: { 'content-type': xmlContentType, 'x-amzn-requestid': requestId },
          body: xmlResponse(action, output, requestId, context.listNames),
        };
      }
    } catch (caught) {
      let error: BerthError;
      if (isBerthError(caught) && caught.code in errorCatalogue) {
        error = caught;
      } else {
        options.logger?.warn({ err: caught, action, queueName: context.queueName, requestId }, 'SQS action failed unexpectedly');
        error = new BerthError('InternalError', 'We encountered an internal error. Please try again.');
      }
      errorCode = error.code;
      response = errorResponse(protocol, error, requestId);
    }
    options.onActionResult?.(action, context.queueName, errorCode, options.clock.monotonicMs() - startedMs);
    return response;
  };
}

function validateTags(tags: Record<string, string>): void {
  const keys = Object.keys(tags);
  if (keys.length > tagsPerQueueMax) throw invalidParameter(`Too many tags: ${keys.length}, at most ${tagsPerQueueMax}.`);
  for (const key of keys) {
    if (key.length === 0 || key.length > 128) throw invalidParameter(`Tag key '${key}' is invalid. Reason: must be 1 to 128 characters.`);
    if (tags[key]!.length > 256) throw invalidParameter(`Tag value for key '${key}' is invalid. Reason: must be at most 256 characters.`);
  }
}

interface PolicyDocument {
  Version: string;
  Id: string;
  Statement: Record<string, unknown>[];
}

function parsePolicy(text: string | undefined, arn: string): PolicyDocument {
  if (text !== undefined && text !== '') {
    try {
      const parsed = JSON.parse(text) as Partial<PolicyDocument> & Record<string, unknown>;
      const statements = Array.isArray(parsed.Statement) ? parsed.Statement : parsed.Statement === undefined ? [] : [parsed.Statement as Record<string, unknown>];
      return { ...parsed, Version: parsed.Version ?? '2012-10-17', Id: parsed.Id ?? `${arn}/SQSDefaultPolicy`, Statement: statements };
    } catch {
      // A stored policy that does not parse is replaced, like SQS does when editing permissions.
    }
  }
  return { Version: '2012-10-17', Id: `${arn}/SQSDefaultPolicy`, Statement: [] };
}
