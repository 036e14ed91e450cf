// The native protocol's wire format, shared by the server (src/api/native/server.ts) and
// the SDK (src/client/). Pure: no I/O, no timers. docs/native-protocol.md is the
// normative description; this file must agree with it.
//
// A frame is `u32 length | u8 version | u8 type | u32 requestId | payload`, big-endian,
// where `length` counts every byte after the length field (so length >= 6). Payloads are
// built from a few primitives:
//   u8, u16, u32, i32, f64        fixed-size big-endian numbers
//   str8 / str16                  u8 / u16 byte length, then UTF-8
//   bytes8 / bytes32              u8 / u32 byte length, then raw bytes
// Message bodies are bytes32 holding UTF-8, so a body is copied once in each direction
// and never passes through JSON. Rare administrative operations carry one JSON object.
//
// FrameDecoder is the only place bytes from a socket are split into frames: it bounds
// what it buffers by the frame size limit, and every malformed input becomes a
// ProtocolViolation (an expected failure: the connection answers with an error and
// closes), never an exception of another kind.

import { setOwn } from '../../core/own-property.js';

export const protocolVersion = 1;
/** Bytes after the length field that every frame has: version, type, request id. */
export const frameHeaderBytes = 6;
/** The default cap on one frame (length field value). */
export const frameBytesMaxDefault = 16 * 1024 * 1024;
/** Messages in one SEND frame, receipts in one ACK / CHANGE_VISIBILITY frame, messages in one RECEIVE. */
export const batchEntriesMax = 1000;
/** A long poll waits at most this long (SQS's 20 s). */
export const receiveWaitMsMax = 20_000;

export const FrameType = {
  // client -> server
  Auth: 0x01,
  Heartbeat: 0x02, // both directions, request id 0
  Admin: 0x10,
  Send: 0x11,
  Receive: 0x12,
  Ack: 0x13,
  ChangeVisibility: 0x14,
  Subscribe: 0x15,
  Credit: 0x16,
  Unsubscribe: 0x17,
  // server -> client
  Challenge: 0x81,
  AuthOk: 0x82,
  AdminResult: 0x90,
  SendResult: 0x91,
  Messages: 0x92,
  BatchResult: 0x93,
  Subscribed: 0x95,
  Delivery: 0x96,
  Unsubscribed: 0x97,
  Error: 0xff,
} as const;
export type FrameTypeValue = (typeof FrameType)[keyof typeof FrameType];

const frameTypeNames = new Map<number, string>(Object.entries(FrameType).map(([name, value]) => [value, name]));
export function frameTypeName(type: number): string {
  return frameTypeNames.get(type) ?? `0x${type.toString(16).padStart(2, '0')}`;
}

export interface Frame {
  version: number;
  type: number;
  requestId: number;
  /** A view into the decoder's buffer: valid until the next push(). Copy what must live longer. */
  payload: Buffer;
}

/** Malformed input: a protocol error answer, then the connection closes. */
export class ProtocolViolation extends Error {
  override name = 'ProtocolViolation';
}

// ---- writing -------------------------------------------------------------------------

/** Appends primitives into one growing buffer; `finish` patches the length field. */
export class FrameWriter {
  private buffer: Buffer;
  private offset = 0;

  constructor(initialBytes = 256) {
    this.buffer = Buffer.allocUnsafe(Math.max(16, initialBytes));
  }

  /** Starts a frame: reserves the length field and writes the header. */
  static frame(type: number, requestId: number, initialBytes = 256): FrameWriter {
    const writer = new FrameWriter(initialBytes + 4 + frameHeaderBytes);
    writer.u32(0);
    writer.u8(protocolVersion);
    writer.u8(type);
    writer.u32(requestId);
    return writer;
  }

  private ensure(bytes: number): void {
    if (this.offset + bytes <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.offset + bytes) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.buffer.copy(grown, 0, 0, this.offset);
    this.buffer = grown;
  }

  u8(value: number): this {
    this.ensure(1);
    this.buffer[this.offset++] = value & 0xff;
    return this;
  }

  u16(value: number): this {
    this.ensure(2);
    this.buffer.writeUInt16BE(value, this.offset);
    this.offset += 2;
    return this;
  }

  u32(value: number): this {
    this.ensure(4);
    this.buffer.writeUInt32BE(value >>> 0, this.offset);
    this.offset += 4;
    return this;
  }

  i32(value: number): this {
    this.ensure(4);
    this.buffer.writeInt32BE(value | 0, this.offset);
    this.offset += 4;
    return this;
  }

  f64(value: number): this {
    this.ensure(8);
    this.buffer.writeDoubleBE(value, this.offset);
    this.offset += 8;
    return this;
  }

  str8(value: string): this {
    const length = Buffer.byteLength(value, 'utf8');
    if (length > 0xff) throw new RangeError(`string of ${length} bytes does not fit a str8`);
    this.ensure(1 + length);
    this.buffer[this.offset++] = length;
    this.offset += this.buffer.write(value, this.offset, length, 'utf8');
    return this;
  }

  str16(value: string): this {
    const length = Buffer.byteLength(value, 'utf8');
    if (length > 0xffff) throw new RangeError(`string of ${length} bytes does not fit a str16`);
    this.ensure(2 + length);
    this.buffer.writeUInt16BE(length, this.offset);
    this.offset += 2;
    this.offset += this.buffer.write(value, this.offset, length, 'utf8');
    return this;
  }

  /** A UTF-8 string as bytes32 (message bodies). */
  text32(value: string): this {
    // One pass over the string in the common case (Buffer.byteLength first would read every
    // body twice): room for one byte per UTF-16 unit (ASCII) plus one character, write,
    // patch the length in front. A write that may have stopped short (it came within a
    // character of the end of the room; write() never splits a character) is done again
    // with room for the worst case, 3 bytes per unit.
    this.ensure(8 + value.length);
    const room = this.buffer.length - this.offset - 4;
    let length = this.buffer.write(value, this.offset + 4, room, 'utf8');
    if (length > room - 4) {
      this.ensure(4 + value.length * 3);
      length = this.buffer.write(value, this.offset + 4, 'utf8');
    }
    this.buffer.writeUInt32BE(length, this.offset);
    this.offset += 4 + length;
    return this;
  }

  bytes8(value: Uint8Array): this {
    if (value.byteLength > 0xff) throw new RangeError('bytes8 longer than 255');
    this.ensure(1 + value.byteLength);
    this.buffer[this.offset++] = value.byteLength;
    this.buffer.set(value, this.offset);
    this.offset += value.byteLength;
    return this;
  }

  bytes32(value: Uint8Array): this {
    this.ensure(4 + value.byteLength);
    this.buffer.writeUInt32BE(value.byteLength, this.offset);
    this.offset += 4;
    this.buffer.set(value, this.offset);
    this.offset += value.byteLength;
    return this;
  }

  get length(): number {
    return this.offset;
  }

  /** The finished frame (length field patched). The writer must not be used afterwards. */
  finish(): Buffer {
    this.buffer.writeUInt32BE(this.offset - 4, 0);
    return this.buffer.subarray(0, this.offset);
  }
}

// ---- reading -------------------------------------------------------------------------

/** Reads primitives from a payload; any read past the end is a ProtocolViolation. */
export class PayloadReader {
  private offset = 0;

  constructor(private readonly buffer: Buffer) {}

  private need(bytes: number, what: string): void {
    if (this.offset + bytes > this.buffer.length) throw new ProtocolViolation(`truncated payload: ${what} needs ${bytes} bytes, ${this.buffer.length - this.offset} left`);
  }

  u8(what = 'u8'): number {
    this.need(1, what);
    return this.buffer[this.offset++]!;
  }

  u16(what = 'u16'): number {
    this.need(2, what);
    const value = this.buffer.readUInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  u32(what = 'u32'): number {
    this.need(4, what);
    const value = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  i32(what = 'i32'): number {
    this.need(4, what);
    const value = this.buffer.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  f64(what = 'f64'): number {
    this.need(8, what);
    const value = this.buffer.readDoubleBE(this.offset);
    this.offset += 8;
    return value;
  }

  private utf8(length: number, what: string): string {
    this.need(length, what);
    const value = this.buffer.toString('utf8', this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  str8(what = 'str8'): string {
    return this.utf8(this.u8(what), what);
  }

  str16(what = 'str16'): string {
    return this.utf8(this.u16(what), what);
  }

  text32(what = 'text32'): string {
    return this.utf8(this.u32(what), what);
  }

  bytes8(what = 'bytes8'): Buffer {
    const length = this.u8(what);
    this.need(length, what);
    const value = Buffer.from(this.buffer.subarray(this.offset, this.offset + length));
    this.offset += length;
    return value;
  }

  bytes32(what = 'bytes32'): Buffer {
    const length = this.u32(what);
    this.need(length, what);
    const value = Buffer.from(this.buffer.subarray(this.offset, this.offset + length));
    this.offset += length;
    return value;
  }

  /** Every payload is read to its end: trailing bytes are a violation (catches misframed input). */
  end(what: string): void {
    if (this.offset !== this.buffer.length) throw new ProtocolViolation(`${what}: ${this.buffer.length - this.offset} unexpected trailing bytes`);
  }
}

/**
 * Splits a byte stream into frames.
 *
 * States: collecting (fewer bytes than the next frame needs are buffered) -> a frame is
 * complete -> emitted, and the rest stays buffered. The buffer never holds more than one
 * frame's bytes plus one chunk: a length field above `frameBytesMax` or below the header
 * size is a ProtocolViolation before its payload is awaited.
 */
export class FrameDecoder {
  /** Received chunks not yet consumed; `pendingBytes` is their total length. */
  private chunks: Buffer[] = [];
  private pendingBytes = 0;
  /** Length field of the frame being collected, once its first 4 bytes are in. */
  private expectedBytes = -1;

  constructor(private readonly frameBytesMax = frameBytesMaxDefault) {}

  /** Bytes waiting for the rest of their frame. */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  /** Feeds a chunk; returns the complete frames in order. Throws ProtocolViolation. */
  push(chunk: Buffer): Frame[] {
    if (chunk.length === 0) return [];
    this.chunks.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.expectedBytes < 0) {
      if (this.pendingBytes < 4) return [];
    } else if (this.pendingBytes < 4 + this.expectedBytes) {
      return [];
    }
    // Enough for at least a length field or a whole frame: join and parse. A large frame
    // arriving in many chunks is joined once, when complete, not once per chunk.
    const buffer = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.pendingBytes);
    const frames: Frame[] = [];
    let offset = 0;
    this.expectedBytes = -1;
    while (buffer.length - offset >= 4) {
      const length = buffer.readUInt32BE(offset);
      if (length < frameHeaderBytes) throw new ProtocolViolation(`frame length ${length} is below the ${frameHeaderBytes}-byte header`);
      if (length > this.frameBytesMax) throw new ProtocolViolation(`frame length ${length} exceeds the limit of ${this.frameBytesMax} bytes`);
      // Check the version early so garbage is refused before its announced length arrives.
      if (buffer.length - offset >= 5) checkVersion(buffer[offset + 4]!);
      if (buffer.length - offset < 4 + length) {
        this.expectedBytes = length;
        break;
      }
      frames.push({
        version: buffer[offset + 4]!,
        type: buffer[offset + 5]!,
        requestId: buffer.readUInt32BE(offset + 6),
        payload: buffer.subarray(offset + 4 + frameHeaderBytes, offset + 4 + length),
      });
      offset += 4 + length;
    }
    if (offset === buffer.length) {
      this.chunks = [];
      this.pendingBytes = 0;
    } else {
      // Copy the unfinished tail so a large chunk is not retained through a small view.
      const tail = Buffer.from(buffer.subarray(offset));
      this.chunks = [tail];
      this.pendingBytes = tail.length;
    }
    return frames;
  }
}

function checkVersion(version: number): void {
  if (version !== protocolVersion) throw new ProtocolViolation(`unsupported protocol version ${version} (this side speaks ${protocolVersion})`);
}

// ---- payload shapes ------------------------------------------------------------------

export const AuthMode = { Open: 0, Keys: 1 } as const;

export interface Challenge {
  authMode: number;
  serverNonce: Buffer;
  heartbeatIntervalMs: number;
  frameBytesMax: number;
  serverVersion: string;
}

export function encodeChallenge(challenge: Challenge): Buffer {
  return FrameWriter.frame(FrameType.Challenge, 0)
    .u8(challenge.authMode)
    .bytes8(challenge.serverNonce)
    .u32(challenge.heartbeatIntervalMs)
    .u32(challenge.frameBytesMax)
    .str8(challenge.serverVersion)
    .finish();
}

export function decodeChallenge(payload: Buffer): Challenge {
  const reader = new PayloadReader(payload);
  const challenge = { authMode: reader.u8('authMode'), serverNonce: reader.bytes8('serverNonce'), heartbeatIntervalMs: reader.u32('heartbeatIntervalMs'), frameBytesMax: reader.u32('frameBytesMax'), serverVersion: reader.str8('serverVersion') };
  reader.end('CHALLENGE');
  return challenge;
}

export interface AuthRequest {
  clientNonce: Buffer;
  accessKeyId: string;
  /** HMAC-SHA256(secretAccessKey, serverNonce || clientNonce); empty in open mode is allowed. */
  signature: Buffer;
}

export function encodeAuth(requestId: number, auth: AuthRequest): Buffer {
  return FrameWriter.frame(FrameType.Auth, requestId).bytes8(auth.clientNonce).str8(auth.accessKeyId).bytes8(auth.signature).finish();
}

export function decodeAuth(payload: Buffer): AuthRequest {
  const reader = new PayloadReader(payload);
  const auth = { clientNonce: reader.bytes8('clientNonce'), accessKeyId: reader.str8('accessKeyId'), signature: reader.bytes8('signature') };
  reader.end('AUTH');
  return auth;
}

export interface WireError {
  nativeCode: number;
  code: string;
  message: string;
}

export function encodeError(requestId: number, error: WireError): Buffer {
  const message = error.message.length > 4000 ? `${error.message.slice(0, 4000)}...` : error.message;
  return FrameWriter.frame(FrameType.Error, requestId).u16(error.nativeCode).str8(error.code.slice(0, 255)).str16(message).finish();
}

export function decodeError(payload: Buffer): WireError {
  const reader = new PayloadReader(payload);
  const error = { nativeCode: reader.u16('nativeCode'), code: reader.str8('code'), message: reader.str16('message') };
  reader.end('ERROR');
  return error;
}

export function encodeJsonFrame(type: number, requestId: number, value: unknown): Buffer {
  const text = JSON.stringify(value ?? null);
  return FrameWriter.frame(type, requestId, text.length).text32(text).finish();
}

export function decodeJsonPayload(payload: Buffer, what: string): unknown {
  const reader = new PayloadReader(payload);
  const text = reader.text32(what);
  reader.end(what);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ProtocolViolation(`${what}: payload is not JSON`);
  }
}

// Message attributes ---------------------------------------------------------------------

export interface WireAttribute {
  dataType: string;
  stringValue?: string;
  binaryValue?: Uint8Array;
}
export type WireAttributes = Record<string, WireAttribute>;

function writeAttributes(writer: FrameWriter, attributes: WireAttributes | undefined): void {
  if (attributes === undefined) {
    writer.u8(0);
    return;
  }
  const names = Object.keys(attributes);
  if (names.length > 0xff) throw new RangeError('more than 255 message attributes');
  writer.u8(names.length);
  for (const name of names) {
    const attribute = attributes[name]!;
    writer.str16(name).str16(attribute.dataType);
    if (attribute.binaryValue !== undefined) writer.u8(1).bytes32(attribute.binaryValue);
    else writer.u8(0).text32(attribute.stringValue ?? '');
  }
}

function readAttributes(reader: PayloadReader): WireAttributes | undefined {
  const count = reader.u8('attribute count');
  if (count === 0) return undefined;
  const attributes: WireAttributes = {};
  for (let index = 0; index < count; index++) {
    const name = reader.str16('attribute name');
    const dataType = reader.str16('attribute dataType');
    const kind = reader.u8('attribute kind');
    if (kind === 0) setOwn<WireAttribute>(attributes, name, { dataType, stringValue: reader.text32('attribute value') });
    else if (kind === 1) setOwn<WireAttribute>(attributes, name, { dataType, binaryValue: reader.bytes32('attribute value') });
    else throw new ProtocolViolation(`attribute kind ${kind} is neither 0 (string) nor 1 (binary)`);
  }
  return attributes;
}

// SEND -----------------------------------------------------------------------------------

export interface WireSendEntry {
  body: string;
  groupId?: string;
  deduplicationId?: string;
  delaySeconds?: number;
  replicaCount?: number;
  attributes?: WireAttributes;
  systemAttributes?: WireAttributes;
}

const sendFlag = { groupId: 1, deduplicationId: 2, delaySeconds: 4, replicaCount: 8 } as const;

export function encodeSend(requestId: number, queue: string, entries: readonly WireSendEntry[]): Buffer {
  // Sized for ASCII bodies (the writer grows for others): a tight buffer is cheaper to allocate and collect.
  let estimate = 16 + queue.length * 3;
  for (const entry of entries) estimate += 48 + entry.body.length;
  const writer = FrameWriter.frame(FrameType.Send, requestId, Math.min(estimate, frameBytesMaxDefault));
  writer.str16(queue).u16(entries.length);
  for (const entry of entries) {
    const flags =
      (entry.groupId !== undefined ? sendFlag.groupId : 0) |
      (entry.deduplicationId !== undefined ? sendFlag.deduplicationId : 0) |
      (entry.delaySeconds !== undefined ? sendFlag.delaySeconds : 0) |
      (entry.replicaCount !== undefined ? sendFlag.replicaCount : 0);
    writer.u8(flags).text32(entry.body);
    if (entry.groupId !== undefined) writer.str8(entry.groupId);
    if (entry.deduplicationId !== undefined) writer.str8(entry.deduplicationId);
    if (entry.delaySeconds !== undefined) writer.u16(entry.delaySeconds);
    if (entry.replicaCount !== undefined) writer.u8(entry.replicaCount);
    writeAttributes(writer, entry.attributes);
    writeAttributes(writer, entry.systemAttributes);
  }
  return writer.finish();
}

export function decodeSend(payload: Buffer): { queue: string; entries: WireSendEntry[] } {
  const reader = new PayloadReader(payload);
  const queue = reader.str16('queue');
  const count = reader.u16('entry count');
  const entries: WireSendEntry[] = [];
  for (let index = 0; index < count; index++) {
    const flags = reader.u8('flags');
    if (flags & ~0x0f) throw new ProtocolViolation(`SEND entry ${index}: unknown flags 0x${flags.toString(16)}`);
    const entry: WireSendEntry = { body: reader.text32('body') };
    if (flags & sendFlag.groupId) entry.groupId = reader.str8('groupId');
    if (flags & sendFlag.deduplicationId) entry.deduplicationId = reader.str8('deduplicationId');
    if (flags & sendFlag.delaySeconds) entry.delaySeconds = reader.u16('delaySeconds');
    if (flags & sendFlag.replicaCount) entry.replicaCount = reader.u8('replicaCount');
    const attributes = readAttributes(reader);
    if (attributes !== undefined) entry.attributes = attributes;
    const systemAttributes = readAttributes(reader);
    if (systemAttributes !== undefined) entry.systemAttributes = systemAttributes;
    entries.push(entry);
  }
  reader.end('SEND');
  return { queue, entries };
}

export type WireSendOutcome = { ok: true; messageId: string; sequenceNumber?: string } | { ok: false; error: WireError };

export function encodeSendResult(requestId: number, outcomes: readonly WireSendOutcome[]): Buffer {
  const writer = FrameWriter.frame(FrameType.SendResult, requestId, 8 + outcomes.length * 48);
  writer.u16(outcomes.length);
  for (const outcome of outcomes) {
    if (outcome.ok) writer.u8(0).str8(outcome.messageId).str8(outcome.sequenceNumber ?? '');
    else writer.u8(1).u16(outcome.error.nativeCode).str8(outcome.error.code).str16(outcome.error.message);
  }
  return writer.finish();
}

export function decodeSendResult(payload: Buffer): WireSendOutcome[] {
  const reader = new PayloadReader(payload);
  const count = reader.u16('count');
  const outcomes: WireSendOutcome[] = [];
  for (let index = 0; index < count; index++) {
    const status = reader.u8('status');
    if (status === 0) {
      const messageId = reader.str8('messageId');
      const sequenceNumber = reader.str8('sequenceNumber');
      outcomes.push(sequenceNumber === '' ? { ok: true, messageId } : { ok: true, messageId, sequenceNumber });
    } else {
      outcomes.push({ ok: false, error: { nativeCode: reader.u16('nativeCode'), code: reader.str8('code'), message: reader.str16('message') } });
    }
  }
  reader.end('SEND_RESULT');
  return outcomes;
}

// RECEIVE / MESSAGES / DELIVERY --------------------------------------------------------

export interface WireReceive {
  queue: string;
  maxMessages: number;
  /** -1: the queue's VisibilityTimeout. */
  visibilityTimeoutSeconds: number;
  waitMs: number;
}

export function encodeReceive(requestId: number, receive: WireReceive): Buffer {
  return FrameWriter.frame(FrameType.Receive, requestId).str16(receive.queue).u16(receive.maxMessages).i32(receive.visibilityTimeoutSeconds).u32(receive.waitMs).finish();
}

export function decodeReceive(payload: Buffer): WireReceive {
  const reader = new PayloadReader(payload);
  const receive = { queue: reader.str16('queue'), maxMessages: reader.u16('maxMessages'), visibilityTimeoutSeconds: reader.i32('visibilityTimeoutSeconds'), waitMs: reader.u32('waitMs') };
  reader.end('RECEIVE');
  return receive;
}

export interface WireMessage {
  messageId: string;
  receiptHandle: string;
  body: string;
  sentTimestampMs: number;
  receiveCount: number;
  firstReceiveTimestampMs: number;
  senderId: string;
  groupId?: string;
  deduplicationId?: string;
  sequenceNumber?: string;
  deadLetterQueueSourceArn?: string;
  attributes?: WireAttributes;
  systemAttributes?: WireAttributes;
}

const messageFlag = { groupId: 1, deduplicationId: 2, sequenceNumber: 4, deadLetterQueueSourceArn: 8 } as const;

export function encodeMessages(type: typeof FrameType.Messages | typeof FrameType.Delivery, requestId: number, messages: readonly WireMessage[]): Buffer {
  let estimate = 8;
  for (const message of messages) estimate += 200 + message.body.length * 3;
  const writer = FrameWriter.frame(type, requestId, estimate);
  writer.u16(messages.length);
  for (const message of messages) {
    const flags =
      (message.groupId !== undefined ? messageFlag.groupId : 0) |
      (message.deduplicationId !== undefined ? messageFlag.deduplicationId : 0) |
      (message.sequenceNumber !== undefined ? messageFlag.sequenceNumber : 0) |
      (message.deadLetterQueueSourceArn !== undefined ? messageFlag.deadLetterQueueSourceArn : 0);
    writer.str8(message.messageId).str16(message.receiptHandle).text32(message.body).f64(message.sentTimestampMs).u32(message.receiveCount).f64(message.firstReceiveTimestampMs).str8(message.senderId).u8(flags);
    if (message.groupId !== undefined) writer.str8(message.groupId);
    if (message.deduplicationId !== undefined) writer.str8(message.deduplicationId);
    if (message.sequenceNumber !== undefined) writer.str8(message.sequenceNumber);
    if (message.deadLetterQueueSourceArn !== undefined) writer.str16(message.deadLetterQueueSourceArn);
    writeAttributes(writer, message.attributes);
    writeAttributes(writer, message.systemAttributes);
  }
  return writer.finish();
}

export function decodeMessages(payload: Buffer): WireMessage[] {
  const reader = new PayloadReader(payload);
  const count = reader.u16('count');
  const messages: WireMessage[] = [];
  for (let index = 0; index < count; index++) {
    const message: WireMessage = {
      messageId: reader.str8('messageId'),
      receiptHandle: reader.str16('receiptHandle'),
      body: reader.text32('body'),
      sentTimestampMs: reader.f64('sentTimestampMs'),
      receiveCount: reader.u32('receiveCount'),
      firstReceiveTimestampMs: reader.f64('firstReceiveTimestampMs'),
      senderId: reader.str8('senderId'),
    };
    const flags = reader.u8('flags');
    if (flags & messageFlag.groupId) message.groupId = reader.str8('groupId');
    if (flags & messageFlag.deduplicationId) message.deduplicationId = reader.str8('deduplicationId');
    if (flags & messageFlag.sequenceNumber) message.sequenceNumber = reader.str8('sequenceNumber');
    if (flags & messageFlag.deadLetterQueueSourceArn) message.deadLetterQueueSourceArn = reader.str16('deadLetterQueueSourceArn');
    const attributes = readAttributes(reader);
    if (attributes !== undefined) message.attributes = attributes;
    const systemAttributes = readAttributes(reader);
    if (systemAttributes !== undefined) message.systemAttributes = systemAttributes;
    messages.push(message);
  }
  reader.end('MESSAGES');
  return messages;
}

// ACK / CHANGE_VISIBILITY / BATCH_RESULT -------------------------------------------------

export function encodeAck(requestId: number, queue: string, receiptHandles: readonly string[]): Buffer {
  const writer = FrameWriter.frame(FrameType.Ack, requestId, 8 + receiptHandles.length * 120);
  writer.str16(queue).u16(receiptHandles.length);
  for (const handle of receiptHandles) writer.str16(handle);
  return writer.finish();
}

export function decodeAck(payload: Buffer): { queue: string; receiptHandles: string[] } {
  const reader = new PayloadReader(payload);
  const queue = reader.str16('queue');
  const count = reader.u16('count');
  const receiptHandles: string[] = [];
  for (let index = 0; index < count; index++) receiptHandles.push(reader.str16('receiptHandle'));
  reader.end('ACK');
  return { queue, receiptHandles };
}

export interface WireVisibilityChange {
  receiptHandle: string;
  visibilityTimeoutSeconds: number;
}

export function encodeChangeVisibility(requestId: number, queue: string, changes: readonly WireVisibilityChange[]): Buffer {
  const writer = FrameWriter.frame(FrameType.ChangeVisibility, requestId, 8 + changes.length * 124);
  writer.str16(queue).u16(changes.length);
  for (const change of changes) writer.str16(change.receiptHandle).u32(change.visibilityTimeoutSeconds);
  return writer.finish();
}

export function decodeChangeVisibility(payload: Buffer): { queue: string; changes: WireVisibilityChange[] } {
  const reader = new PayloadReader(payload);
  const queue = reader.str16('queue');
  const count = reader.u16('count');
  const changes: WireVisibilityChange[] = [];
  for (let index = 0; index < count; index++) changes.push({ receiptHandle: reader.str16('receiptHandle'), visibilityTimeoutSeconds: reader.u32('visibilityTimeoutSeconds') });
  reader.end('CHANGE_VISIBILITY');
  return { queue, changes };
}

/** null: the entry succeeded. */
export function encodeBatchResult(requestId: number, results: ReadonlyArray<WireError | null>): Buffer {
  const writer = FrameWriter.frame(FrameType.BatchResult, requestId, 8 + results.length);
  writer.u16(results.length);
  for (const result of results) {
    if (result === null) writer.u8(0);
    else writer.u8(1).u16(result.nativeCode).str8(result.code).str16(result.message);
  }
  return writer.finish();
}

export function decodeBatchResult(payload: Buffer): Array<WireError | null> {
  const reader = new PayloadReader(payload);
  const count = reader.u16('count');
  const results: Array<WireError | null> = [];
  for (let index = 0; index < count; index++) {
    const status = reader.u8('status');
    results.push(status === 0 ? null : { nativeCode: reader.u16('nativeCode'), code: reader.str8('code'), message: reader.str16('message') });
  }
  reader.end('BATCH_RESULT');
  return results;
}

// SUBSCRIBE / CREDIT / UNSUBSCRIBE -------------------------------------------------------

export interface WireSubscribe {
  queue: string;
  credit: number;
  /** -1: the queue's VisibilityTimeout. */
  visibilityTimeoutSeconds: number;
  /** Most messages in one DELIVERY frame. */
  batchMax: number;
}

export function encodeSubscribe(requestId: number, subscribe: WireSubscribe): Buffer {
  return FrameWriter.frame(FrameType.Subscribe, requestId).str16(subscribe.queue).u32(subscribe.credit).i32(subscribe.visibilityTimeoutSeconds).u16(subscribe.batchMax).finish();
}

export function decodeSubscribe(payload: Buffer): WireSubscribe {
  const reader = new PayloadReader(payload);
  const subscribe = { queue: reader.str16('queue'), credit: reader.u32('credit'), visibilityTimeoutSeconds: reader.i32('visibilityTimeoutSeconds'), batchMax: reader.u16('batchMax') };
  reader.end('SUBSCRIBE');
  return subscribe;
}

export function encodeSubscribed(requestId: number, visibilityTimeoutSeconds: number): Buffer {
  return FrameWriter.frame(FrameType.Subscribed, requestId).u32(visibilityTimeoutSeconds).finish();
}

export function decodeSubscribed(payload: Buffer): { visibilityTimeoutSeconds: number } {
  const reader = new PayloadReader(payload);
  const result = { visibilityTimeoutSeconds: reader.u32('visibilityTimeoutSeconds') };
  reader.end('SUBSCRIBED');
  return result;
}

/** CREDIT's request id is the subscription's (the SUBSCRIBE request id). No answer. */
export function encodeCredit(subscriptionId: number, credit: number): Buffer {
  return FrameWriter.frame(FrameType.Credit, subscriptionId).u32(credit).finish();
}

export function decodeCredit(payload: Buffer): number {
  const reader = new PayloadReader(payload);
  const credit = reader.u32('credit');
  reader.end('CREDIT');
  return credit;
}

export function encodeUnsubscribe(requestId: number, subscriptionId: number): Buffer {
  return FrameWriter.frame(FrameType.Unsubscribe, requestId).u32(subscriptionId).finish();
}

export function decodeUnsubscribe(payload: Buffer): number {
  const reader = new PayloadReader(payload);
  const subscriptionId = reader.u32('subscriptionId');
  reader.end('UNSUBSCRIBE');
  return subscriptionId;
}

export function encodeEmpty(type: number, requestId: number): Buffer {
  return FrameWriter.frame(type, requestId, 0).finish();
}

export function encodeAuthOk(requestId: number, identity: string): Buffer {
  return FrameWriter.frame(FrameType.AuthOk, requestId).str8(identity).finish();
}

export function decodeAuthOk(payload: Buffer): string {
  const reader = new PayloadReader(payload);
  const identity = reader.str8('identity');
  reader.end('AUTH_OK');
  return identity;
}
