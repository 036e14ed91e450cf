// The queue's log records: their types and payload codecs.
//
// Every state change of a queue partition is one record in its log; the queue machine
// (machine.ts) applies them in log order. A record's payload must carry everything apply
// needs, because apply runs on live records, at recovery (from a checkpoint) and on
// backups, with a window of loaded messages that may differ between those runs. That is
// why a Receive record repeats the metadata of each message it delivers: on replay the
// message may still be in the backlog, and the record alone must be enough to take it in.
//
// Payloads are compact binary (codec.ts). Each starts with a version byte.

import { assert } from '../core/assert.js';
import { setOwn } from '../core/own-property.js';
import type { LogRecord } from '../storage/types.js';
import { Reader, Writer } from './codec.js';
import type { MessageAttributes, QueueConfig } from './types.js';

export const enum RecordType {
  Enqueue = 1,
  Receive = 2,
  ChangeVisibility = 3,
  Delete = 4,
  Purge = 5,
  SetConfig = 6,
  DeadLettered = 7,
  Expire = 8,
  Relocate = 9,
  /** A logical queue (a topic's subscription) starts at this record, or changes its settings. */
  Subscribe = 10,
  /** A logical queue ends: nothing of it is kept, and it no longer holds storage. */
  Unsubscribe = 11,
}

const payloadVersion = 1;

export interface EnqueuePayload {
  messageId: string;
  body: string;
  attributes: MessageAttributes;
  systemAttributes: MessageAttributes;
  groupId?: string;
  deduplicationId?: string;
  senderId: string;
  sentTimestampMs: number;
  /** Resolved delay: the per-message DelaySeconds, or the queue's when the sender gave none (the broker resolves it). */
  delaySeconds: number;
  deadLetterQueueSourceArn?: string;
  replicaCount: number;
}

/** The fields of an enqueue the queue machine keeps in memory (no body, no attributes). */
export interface EnqueueMetadata {
  messageId: string;
  groupId: string | undefined;
  deduplicationId: string | undefined;
  sentTimestampMs: number;
  delaySeconds: number;
  sizeBytes: number;
}

// Enqueue layout: version, then the metadata the machine needs (so apply decodes a short
// prefix and never the body), then sender fields, body and attributes.
export function encodeEnqueue(p: EnqueuePayload): Uint8Array {
  const writer = new Writer(64 + p.body.length * 3);
  writer.u8(payloadVersion);
  writer.string(p.messageId);
  writer.optionalString(p.groupId);
  writer.optionalString(p.deduplicationId);
  writer.f64(p.sentTimestampMs);
  writer.varint(p.delaySeconds);
  writer.string(p.senderId);
  writer.varint(p.replicaCount);
  writer.optionalString(p.deadLetterQueueSourceArn);
  writer.string(p.body);
  writeAttributes(writer, p.attributes);
  writeAttributes(writer, p.systemAttributes);
  return writer.finish();
}

export function decodeEnqueue(bytes: Uint8Array): EnqueuePayload {
  const reader = new Reader(bytes);
  checkVersion(reader);
  const messageId = reader.string();
  const groupId = reader.optionalString();
  const deduplicationId = reader.optionalString();
  const sentTimestampMs = reader.f64();
  const delaySeconds = reader.varint();
  const senderId = reader.string();
  const replicaCount = reader.varint();
  const deadLetterQueueSourceArn = reader.optionalString();
  const body = reader.string();
  const attributes = readAttributes(reader);
  const systemAttributes = readAttributes(reader);
  const payload: EnqueuePayload = { messageId, body, attributes, systemAttributes, senderId, sentTimestampMs, delaySeconds, replicaCount };
  if (groupId !== undefined) payload.groupId = groupId;
  if (deduplicationId !== undefined) payload.deduplicationId = deduplicationId;
  if (deadLetterQueueSourceArn !== undefined) payload.deadLetterQueueSourceArn = deadLetterQueueSourceArn;
  return payload;
}

export function decodeEnqueueMetadata(bytes: Uint8Array): EnqueueMetadata {
  const reader = new Reader(bytes);
  checkVersion(reader);
  const messageId = reader.string();
  const groupId = reader.optionalString();
  const deduplicationId = reader.optionalString();
  const sentTimestampMs = reader.f64();
  const delaySeconds = reader.varint();
  return { messageId, groupId, deduplicationId, sentTimestampMs, delaySeconds, sizeBytes: bytes.length };
}

/** The message attributes of an enqueue payload (for subscription filters), without decoding the body. */
export function decodeEnqueueAttributes(bytes: Uint8Array): MessageAttributes {
  const reader = new Reader(bytes);
  checkVersion(reader);
  reader.skipBytes(); // messageId
  reader.optionalString();
  reader.optionalString();
  reader.f64();
  reader.varint();
  reader.skipBytes(); // senderId
  reader.varint();
  reader.optionalString();
  reader.skipBytes(); // body
  return readAttributes(reader);
}

function writeAttributes(writer: Writer, attributes: MessageAttributes): void {
  const names = Object.keys(attributes);
  writer.varint(names.length);
  for (const name of names) {
    const attribute = attributes[name]!;
    writer.string(name);
    writer.string(attribute.dataType);
    const flags = (attribute.stringValue !== undefined ? 1 : 0) | (attribute.binaryValue !== undefined ? 2 : 0);
    writer.u8(flags);
    if (attribute.stringValue !== undefined) writer.string(attribute.stringValue);
    if (attribute.binaryValue !== undefined) writer.bytes(attribute.binaryValue);
  }
}

function readAttributes(reader: Reader): MessageAttributes {
  const count = reader.varint();
  const attributes: MessageAttributes = {};
  for (let index = 0; index < count; index++) {
    const name = reader.string();
    const dataType = reader.string();
    const flags = reader.u8();
    const attribute: MessageAttributes[string] = { dataType };
    if (flags & 1) attribute.stringValue = reader.string();
    if (flags & 2) attribute.binaryValue = reader.bytes();
    setOwn(attributes, name, attribute);
  }
  return attributes;
}

function checkVersion(reader: Reader): void {
  const version = reader.u8();
  assert(version === payloadVersion, () => `unknown queue record payload version ${version}`);
}

// ---- Relocate: a copy of an old live message's enqueue payload at the log's tail ----

export function encodeRelocate(originalOffset: number, enqueuePayload: Uint8Array): Uint8Array {
  const writer = new Writer(16 + enqueuePayload.length);
  writer.u8(payloadVersion);
  writer.varint(originalOffset);
  writer.raw(enqueuePayload);
  return writer.finish();
}

export function decodeRelocate(bytes: Uint8Array): { originalOffset: number; enqueuePayload: Uint8Array } {
  const reader = new Reader(bytes);
  checkVersion(reader);
  const originalOffset = reader.varint();
  return { originalOffset, enqueuePayload: reader.rest() };
}

/** The enqueue payload stored in a record that holds a message (an Enqueue or a Relocate). */
export function enqueuePayloadOf(record: Pick<LogRecord, 'type' | 'payload'>): Uint8Array {
  if (record.type === RecordType.Enqueue) return record.payload;
  assert(record.type === RecordType.Relocate, () => `record type ${record.type} holds no message`);
  return decodeRelocate(record.payload).enqueuePayload;
}

/** Decodes the message held by an Enqueue or a Relocate record (what the broker reads to answer a receive). */
export function decodeStoredMessage(record: Pick<LogRecord, 'type' | 'payload'>): EnqueuePayload {
  return decodeEnqueue(enqueuePayloadOf(record));
}

// ---- Receive ----

export interface DeliveredMessageRecord extends Omit<EnqueueMetadata, 'delaySeconds'> {
  /** The message's current offset. */
  offset: number;
}

export interface ReceivePayload {
  logicalQueueId: number;
  visibilityTimeoutMs: number;
  attemptId?: string;
  delivered: DeliveredMessageRecord[];
  /** Offsets removed because their retention period had passed. */
  expired: number[];
}

export function encodeReceive(p: ReceivePayload): Uint8Array {
  const writer = new Writer(32 + p.delivered.length * 80 + p.expired.length * 5);
  writer.u8(payloadVersion);
  writer.varint(p.logicalQueueId);
  writer.varint(p.visibilityTimeoutMs);
  writer.optionalString(p.attemptId);
  writer.varint(p.delivered.length);
  for (const message of p.delivered) {
    writer.varint(message.offset);
    writer.string(message.messageId);
    writer.optionalString(message.groupId);
    writer.optionalString(message.deduplicationId);
    writer.f64(message.sentTimestampMs);
    writer.varint(message.sizeBytes);
  }
  writeOffsets(writer, p.expired);
  return writer.finish();
}

export function decodeReceive(bytes: Uint8Array): ReceivePayload {
  const reader = new Reader(bytes);
  checkVersion(reader);
  const logicalQueueId = reader.varint();
  const visibilityTimeoutMs = reader.varint();
  const attemptId = reader.optionalString();
  const count = reader.varint();
  const delivered: DeliveredMessageRecord[] = [];
  for (let index = 0; index < count; index++) {
    const offset = reader.varint();
    const messageId = reader.string();
    const groupId = reader.optionalString();
    const deduplicationId = reader.optionalString();
    const sentTimestampMs = reader.f64();
    const sizeBytes = reader.varint();
    delivered.push({ offset, messageId, groupId, deduplicationId, sentTimestampMs, sizeBytes });
  }
  const expired = readOffsets(reader);
  const payload: ReceivePayload = { logicalQueueId, visibilityTimeoutMs, delivered, expired };
  if (attemptId !== undefined) payload.attemptId = attemptId;
  return payload;
}

// ---- ChangeVisibility and Delete: act on one message through its receipt ----

export interface ReceiptActionPayload {
  logicalQueueId: number;
  /** The message's current offset (aliases already resolved by the plan). */
  messageOffset: number;
  /** The receipt: offset of the Receive record that delivered it. */
  receiveOffset: number;
}

export interface ChangeVisibilityPayload extends ReceiptActionPayload {
  visibilityTimeoutMs: number;
}

export function encodeChangeVisibility(p: ChangeVisibilityPayload): Uint8Array {
  return new Writer(24).u8(payloadVersion).varint(p.logicalQueueId).varint(p.messageOffset).varint(p.receiveOffset).varint(p.visibilityTimeoutMs).finish();
}

export function decodeChangeVisibility(bytes: Uint8Array): ChangeVisibilityPayload {
  const reader = new Reader(bytes);
  checkVersion(reader);
  return { logicalQueueId: reader.varint(), messageOffset: reader.varint(), receiveOffset: reader.varint(), visibilityTimeoutMs: reader.varint() };
}

/** A Delete record removes one or more messages of one logical queue (a whole DeleteMessageBatch or native ACK frame: one record, one header and checksum). */
export interface DeletePayload {
  logicalQueueId: number;
  targets: Array<{ messageOffset: number; receiveOffset: number }>;
}

/** Version 2 of the Delete payload carries a list; version 1 (one message) is still read. */
const deleteListVersion = 2;

export function encodeDelete(p: ReceiptActionPayload): Uint8Array {
  return encodeDeleteList({ logicalQueueId: p.logicalQueueId, targets: [{ messageOffset: p.messageOffset, receiveOffset: p.receiveOffset }] });
}

export function encodeDeleteList(p: DeletePayload): Uint8Array {
  const writer = new Writer(8 + p.targets.length * 8).u8(deleteListVersion).varint(p.logicalQueueId).varint(p.targets.length);
  for (const target of p.targets) writer.varint(target.messageOffset).varint(target.receiveOffset);
  return writer.finish();
}

export function decodeDelete(bytes: Uint8Array): DeletePayload {
  const reader = new Reader(bytes);
  const version = reader.u8();
  if (version === payloadVersion) {
    return { logicalQueueId: reader.varint(), targets: [{ messageOffset: reader.varint(), receiveOffset: reader.varint() }] };
  }
  assert(version === deleteListVersion, () => `unknown Delete payload version ${version}`);
  const logicalQueueId = reader.varint();
  const count = reader.varint();
  const targets: DeletePayload['targets'] = [];
  for (let index = 0; index < count; index++) targets.push({ messageOffset: reader.varint(), receiveOffset: reader.varint() });
  return { logicalQueueId, targets };
}

// ---- Purge, DeadLettered, Expire: act on one logical queue ----

export function encodePurge(logicalQueueId: number): Uint8Array {
  return new Writer(8).u8(payloadVersion).varint(logicalQueueId).finish();
}

export function decodePurge(bytes: Uint8Array): { logicalQueueId: number } {
  const reader = new Reader(bytes);
  checkVersion(reader);
  return { logicalQueueId: reader.varint() };
}

export interface OffsetListPayload {
  logicalQueueId: number;
  offsets: number[];
}

export function encodeOffsetList(p: OffsetListPayload): Uint8Array {
  const writer = new Writer(8 + p.offsets.length * 5).u8(payloadVersion).varint(p.logicalQueueId);
  writeOffsets(writer, p.offsets);
  return writer.finish();
}

export function decodeOffsetList(bytes: Uint8Array): OffsetListPayload {
  const reader = new Reader(bytes);
  checkVersion(reader);
  return { logicalQueueId: reader.varint(), offsets: readOffsets(reader) };
}

// ---- SetConfig: rare, so JSON is fine ----

export function encodeSetConfig(config: QueueConfig): Uint8Array {
  return new Writer(512).u8(payloadVersion).string(JSON.stringify(config)).finish();
}

export function decodeSetConfig(bytes: Uint8Array): QueueConfig {
  const reader = new Reader(bytes);
  checkVersion(reader);
  return JSON.parse(reader.string()) as QueueConfig;
}

// ---- Subscribe / Unsubscribe: rare, so the settings travel as JSON ----

export interface SubscribePayload {
  logicalQueueId: number;
  /** The subscription's own settings (visibility, retention, redrive, in-flight limit); FIFO-ness is the topic's. */
  config: QueueConfig;
  /** Filter policy JSON (filter.ts), absent: every message. */
  filterPolicy?: string;
}

export function encodeSubscribe(p: SubscribePayload): Uint8Array {
  return new Writer(512).u8(payloadVersion).varint(p.logicalQueueId).string(JSON.stringify(p.config)).optionalString(p.filterPolicy).finish();
}

export function decodeSubscribe(bytes: Uint8Array): SubscribePayload {
  const reader = new Reader(bytes);
  checkVersion(reader);
  const logicalQueueId = reader.varint();
  const config = JSON.parse(reader.string()) as QueueConfig;
  const filterPolicy = reader.optionalString();
  return filterPolicy === undefined ? { logicalQueueId, config } : { logicalQueueId, config, filterPolicy };
}

export function encodeUnsubscribe(logicalQueueId: number): Uint8Array {
  return encodePurge(logicalQueueId);
}

export function decodeUnsubscribe(bytes: Uint8Array): { logicalQueueId: number } {
  return decodePurge(bytes);
}

function writeOffsets(writer: Writer, offsets: readonly number[]): void {
  writer.varint(offsets.length);
  for (const offset of offsets) writer.varint(offset);
}

function readOffsets(reader: Reader): number[] {
  const count = reader.varint();
  const offsets: number[] = [];
  for (let index = 0; index < count; index++) offsets.push(reader.varint());
  return offsets;
}
