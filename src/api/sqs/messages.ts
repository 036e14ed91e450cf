// Validation of what producers send: bodies, message attributes, system attributes, FIFO
// parameters, and the size rule (body + attribute names, types and values <= the queue's
// MaximumMessageSize). Produces the SendInput the QueueService takes, or throws the error
// SQS gives for the mistake.

import { createHash } from 'node:crypto';
import { BerthError } from '../../protocol/errors.js';
import { setOwn } from '../../core/own-property.js';
import type { MessageAttribute, MessageAttributes, SendInput } from '../../queue/types.js';
import type { MessageAttributeInput, Params } from './params.js';
import { replicaCountMax } from './queue-attributes.js';

export const messageAttributesMax = 10;
export const batchEntriesMax = 10;
export const batchPayloadBytesMax = 1_048_576;
export const delaySecondsMax = 900;
export const replicaCountAttributeName = 'Berth.ReplicaCount';

// Allowed: #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF (surrogate pairs).
// Checked as two fast scans (a plain character class, then the engine's own lone-surrogate
// test) instead of one regular expression with look-arounds, which cost 2% of the server's
// CPU on the send path.
const invalidMessageCharacter = /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]/;
const isWellFormed = (text: string): boolean => (text as unknown as { isWellFormed(): boolean }).isWellFormed();
const attributeNamePattern = /^[A-Za-z0-9_.-]{1,256}$/;
const dataTypePattern = /^(String|Number|Binary)(\.[^\s]{1,250})?$/;
const numberPattern = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
/** MessageGroupId / MessageDeduplicationId: alphanumerics and punctuation (!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~). */
const fifoIdPattern = /^[\x21-\x7E]{1,128}$/;
export const batchEntryIdPattern = /^[A-Za-z0-9_-]{1,80}$/;

export function hasInvalidCharacters(text: string): boolean {
  return invalidMessageCharacter.test(text) || !isWellFormed(text);
}

export interface QueueSendRules {
  fifo: boolean;
  contentBasedDeduplication: boolean;
  maximumMessageSize: number;
}

function invalidParameter(message: string): BerthError {
  return new BerthError('InvalidParameterValue', message);
}

function validateAttributes(given: Record<string, MessageAttributeInput> | undefined, kind: 'user' | 'system'): { attributes: MessageAttributes; bytes: number } {
  const attributes: MessageAttributes = {};
  if (given === undefined) return { attributes, bytes: 0 };
  const names = Object.keys(given);
  if (kind === 'user' && names.length > messageAttributesMax) {
    throw invalidParameter(`Number of message attributes [${names.length}] exceeds the allowed maximum [${messageAttributesMax}].`);
  }
  let bytes = 0;
  for (const name of names) {
    const input = given[name]!;
    if (kind === 'system') {
      if (name !== 'AWSTraceHeader') throw invalidParameter(`Message system attribute name '${name}' is invalid.`);
      if (input.dataType !== 'String') throw invalidParameter(`Message system attribute '${name}' must be of type String.`);
    } else {
      const lower = name.toLowerCase();
      if (!attributeNamePattern.test(name) || name.includes('..') || name.startsWith('.') || name.endsWith('.') || lower.startsWith('aws.') || lower.startsWith('amazon.')) {
        throw invalidParameter(`Message (user) attribute name '${name}' is invalid.`);
      }
    }
    const dataType = input.dataType;
    if (dataType === undefined || dataType === '') throw invalidParameter(`The message attribute '${name}' must contain non-empty message attribute type.`);
    const typeMatch = dataTypePattern.exec(dataType);
    if (typeMatch === null || dataType.length > 256) throw invalidParameter(`The type of message (user) attribute '${name}' is invalid. You must use only the following supported type prefixes: Binary, Number, String.`);
    if (input.hasListValues) throw invalidParameter(`Message (user) attribute '${name}': list values are not supported.`);
    const baseType = typeMatch[1]!;
    const attribute: MessageAttribute = { dataType };
    if (baseType === 'Binary') {
      if (input.binaryValue === undefined || input.binaryValue.byteLength === 0) throw invalidParameter(`Message (user) attribute '${name}' must contain a non-empty value of type 'Binary'.`);
      if (input.stringValue !== undefined) throw invalidParameter(`Message (user) attribute '${name}' must contain only a value of type 'Binary'.`);
      attribute.binaryValue = input.binaryValue;
      bytes += input.binaryValue.byteLength;
    } else {
      const value = input.stringValue;
      if (value === undefined || value === '') throw invalidParameter(`Message (user) attribute '${name}' must contain a non-empty value of type '${baseType}'.`);
      if (input.binaryValue !== undefined) throw invalidParameter(`Message (user) attribute '${name}' must contain only a value of type '${baseType}'.`);
      if (baseType === 'Number' && (!numberPattern.test(value) || value.length > 200)) {
        throw invalidParameter(`Can't cast the value of message (user) attribute '${name}' to a number.`);
      }
      if (hasInvalidCharacters(value)) throw new BerthError('InvalidMessageContents', `Invalid characters found in the value of message attribute '${name}'.`);
      attribute.stringValue = value;
      bytes += Buffer.byteLength(value, 'utf8');
    }
    bytes += Buffer.byteLength(name, 'utf8') + Buffer.byteLength(dataType, 'utf8');
    setOwn(attributes, name, attribute);
  }
  return { attributes, bytes };
}

export interface ValidatedSend {
  input: SendInput;
  /** Body + user attribute bytes, the quantity SQS limits per message and per batch. */
  payloadBytes: number;
}

/**
 * Validates one SendMessage (or one batch entry's) parameters against the queue's rules.
 * `params` holds MessageBody, DelaySeconds, MessageAttributes, MessageSystemAttributes,
 * MessageGroupId and MessageDeduplicationId.
 */
export function validateSend(params: Params, rules: QueueSendRules, senderId: string): ValidatedSend {
  const body = params.string('MessageBody');
  if (body === undefined) throw new BerthError('MissingParameter', 'The request must contain the parameter MessageBody.');
  if (body.length === 0) throw invalidParameter('One or more parameters are invalid. Reason: Message must be at least one character.');
  if (hasInvalidCharacters(body)) {
    throw new BerthError('InvalidMessageContents', 'Invalid binary character was found in the message body, the set of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF');
  }
  const user = validateAttributes(params.messageAttributes('MessageAttributes', 'MessageAttribute'), 'user');
  const system = validateAttributes(params.messageAttributes('MessageSystemAttributes', 'MessageSystemAttribute'), 'system');
  const payloadBytes = Buffer.byteLength(body, 'utf8') + user.bytes;
  if (payloadBytes > rules.maximumMessageSize) {
    throw invalidParameter(`One or more parameters are invalid. Reason: Message must be shorter than ${rules.maximumMessageSize} bytes.`);
  }
  const input: SendInput = { body, attributes: user.attributes, systemAttributes: system.attributes, senderId };

  const delaySeconds = params.integer('DelaySeconds');
  if (delaySeconds !== undefined) {
    if (delaySeconds < 0 || delaySeconds > delaySecondsMax) {
      throw invalidParameter(`Value ${delaySeconds} for parameter DelaySeconds is invalid. Reason: must be between 0 and ${delaySecondsMax}, if provided.`);
    }
    if (rules.fifo) throw invalidParameter(`Value ${delaySeconds} for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type.`);
    input.delaySeconds = delaySeconds;
  }

  const groupId = params.string('MessageGroupId');
  const deduplicationId = params.string('MessageDeduplicationId');
  if (groupId !== undefined && !fifoIdPattern.test(groupId)) {
    throw invalidParameter(`Value ${groupId} for parameter MessageGroupId is invalid. Reason: MessageGroupId can only include alphanumeric and punctuation characters. 1 to 128 in length.`);
  }
  if (deduplicationId !== undefined && !fifoIdPattern.test(deduplicationId)) {
    throw invalidParameter(`Value ${deduplicationId} for parameter MessageDeduplicationId is invalid. Reason: MessageDeduplicationId can only include alphanumeric and punctuation characters. 1 to 128 in length.`);
  }
  if (rules.fifo) {
    if (groupId === undefined) throw new BerthError('MissingParameter', 'The request must contain the parameter MessageGroupId.');
    input.groupId = groupId;
    if (deduplicationId !== undefined) input.deduplicationId = deduplicationId;
    else if (rules.contentBasedDeduplication) input.deduplicationId = createHash('sha256').update(body, 'utf8').digest('hex');
    else throw invalidParameter('The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly');
  } else {
    if (deduplicationId !== undefined) {
      throw invalidParameter(`Value ${deduplicationId} for parameter MessageDeduplicationId is invalid. Reason: The request includes a parameter that is not valid for this queue type.`);
    }
    // A standard queue takes MessageGroupId as the fair-queue tenant key.
    if (groupId !== undefined) input.groupId = groupId;
  }

  const replica = user.attributes[replicaCountAttributeName];
  if (replica !== undefined) {
    const count = Number(replica.stringValue);
    if (!replica.dataType.startsWith('Number') || !Number.isInteger(count) || count < 1 || count > replicaCountMax) {
      throw invalidParameter(`Message attribute ${replicaCountAttributeName} must be a Number between 1 and ${replicaCountMax}.`);
    }
    input.replicaCount = count;
  }
  return { input, payloadBytes };
}
