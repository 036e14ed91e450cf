// The record codec: the 64-byte header format documented at the top of ./types.ts.
//
// Encoding writes straight into a caller's buffer (the group commit's batch buffer), so
// the hot path allocates nothing per record but one subarray view for the checksum.
// Decoding checks structure and checksum before anything is returned: a record whose
// checksum fails is never handed out as data.

import { crc32c } from '@node-rs/crc32';
import { assert } from '../core/assert.js';
import { recordHeaderBytes, type LogRecord } from './types.js';

/** The largest record (header included) a log accepts; a length field above it is damage. */
export const recordBytesMax = 64 * 1024 * 1024;
export const leafHashBytes = 32;

const lengthField = 0;
const crcField = 4;
const typeField = 8;
const flagsField = 9;
const reservedField = 10;
const epochField = 12;
const offsetField = 16;
const timestampField = 24;
const leafHashField = 32;
const twoTo32 = 0x1_0000_0000;
const zeroLeafHash = new Uint8Array(leafHashBytes);

export function recordBytes(payloadBytes: number): number {
  return recordHeaderBytes + payloadBytes;
}

/**
 * Writes one record at `position` of `target` (whose DataView is `view`) and returns its
 * length. The caller guarantees room.
 */
export function encodeRecordInto(
  target: Uint8Array,
  view: DataView,
  position: number,
  offset: number,
  type: number,
  epoch: number,
  timestampMs: number,
  payload: Uint8Array,
  leafHash: Uint8Array = zeroLeafHash,
): number {
  const length = recordHeaderBytes + payload.length;
  assert(length <= recordBytesMax, () => `record of ${length} bytes exceeds recordBytesMax ${recordBytesMax}`);
  assert(position + length <= target.length, 'encodeRecordInto: no room in target');
  assert(Number.isInteger(type) && type >= 0 && type <= 0xff, () => `record type ${type} is not a u8`);
  assert(Number.isInteger(epoch) && epoch >= 0 && epoch < twoTo32, () => `epoch ${epoch} is not a u32`);
  assert(Number.isSafeInteger(offset) && offset >= 0, () => `offset ${offset} is not a safe non-negative integer`);
  assert(Number.isSafeInteger(timestampMs) && timestampMs >= 0, () => `timestampMs ${timestampMs} is not a safe non-negative integer`);
  assert(leafHash.length === leafHashBytes, 'leaf hash must be 32 bytes');
  view.setUint32(position + lengthField, length, true);
  view.setUint8(position + typeField, type);
  view.setUint8(position + flagsField, 0);
  view.setUint16(position + reservedField, 0, true);
  view.setUint32(position + epochField, epoch, true);
  setUint64(view, position + offsetField, offset);
  setUint64(view, position + timestampField, timestampMs);
  target.set(leafHash, position + leafHashField);
  target.set(payload, position + recordHeaderBytes);
  view.setUint32(position + crcField, crc32c(target.subarray(position + typeField, position + length)), true);
  return length;
}

/** Encodes one record into a new buffer (tests, tools; the log uses encodeRecordInto). */
export function encodeRecord(record: Omit<LogRecord, 'leafHash'> & { leafHash?: Uint8Array }): Uint8Array {
  const buffer = new Uint8Array(recordHeaderBytes + record.payload.length);
  encodeRecordInto(buffer, new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength), 0, record.offset,
    record.type, record.epoch, record.timestampMs, record.payload, record.leafHash);
  return buffer;
}

/**
 * What lies at a position:
 * - `record`: a whole record whose checksum holds.
 * - `incomplete`: the bytes end before the header or the record does (read more, or at the
 *   end of a file: a partial record).
 * - `invalid`: a length out of range or a checksum that fails.
 */
export type DecodeResult =
  | { kind: 'record'; length: number; offset: number }
  | { kind: 'incomplete'; lengthNeeded: number }
  | { kind: 'invalid'; reason: string };

/** Checks the record at `position` of `bytes` without copying it. */
export function checkRecordAt(bytes: Uint8Array, view: DataView, position: number): DecodeResult {
  const available = bytes.length - position;
  if (available < recordHeaderBytes) return { kind: 'incomplete', lengthNeeded: recordHeaderBytes };
  const length = view.getUint32(position + lengthField, true);
  if (length < recordHeaderBytes || length > recordBytesMax) {
    return { kind: 'invalid', reason: `record length ${length} out of range` };
  }
  if (available < length) return { kind: 'incomplete', lengthNeeded: length };
  const stored = view.getUint32(position + crcField, true);
  const actual = crc32c(bytes.subarray(position + typeField, position + length));
  if (stored !== actual) return { kind: 'invalid', reason: 'record checksum mismatch' };
  return { kind: 'record', length, offset: getUint64(view, position + offsetField) };
}

/** Offset field of a header, unchecked (the caller ran checkRecordAt). */
export function recordOffsetAt(view: DataView, position: number): number {
  return getUint64(view, position + offsetField);
}

/** Length field of a header, unchecked. */
export function recordLengthAt(view: DataView, position: number): number {
  return view.getUint32(position + lengthField, true);
}

/** Copies out a record that checkRecordAt accepted (payload and leaf hash are copies). */
export function decodeCheckedRecord(bytes: Uint8Array, view: DataView, position: number, length: number): LogRecord {
  return {
    offset: getUint64(view, position + offsetField),
    type: view.getUint8(position + typeField),
    epoch: view.getUint32(position + epochField, true),
    timestampMs: getUint64(view, position + timestampField),
    leafHash: copyOf(bytes, position + leafHashField, position + leafHashField + leafHashBytes),
    payload: copyOf(bytes, position + recordHeaderBytes, position + length),
  };
}

/** Decodes one record from a buffer holding exactly it; throws on any damage (tests, tools). */
export function decodeRecord(bytes: Uint8Array): LogRecord {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const result = checkRecordAt(bytes, view, 0);
  if (result.kind !== 'record') {
    throw new Error(`cannot decode record: ${result.kind === 'invalid' ? result.reason : 'incomplete'}`);
  }
  return decodeCheckedRecord(bytes, view, 0, result.length);
}

export function setUint64(view: DataView, position: number, value: number): void {
  view.setUint32(position, value % twoTo32, true);
  view.setUint32(position + 4, Math.floor(value / twoTo32), true);
}

export function getUint64(view: DataView, position: number): number {
  return view.getUint32(position, true) + view.getUint32(position + 4, true) * twoTo32;
}

export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * A plain Uint8Array copy of a range. Not `bytes.slice`: on a Buffer (what node:fs reads
 * return) slice is a view, and a view would keep the whole read-ahead buffer alive.
 */
export function copyOf(bytes: Uint8Array, start: number, end: number): Uint8Array {
  return new Uint8Array(bytes.subarray(start, end));
}
