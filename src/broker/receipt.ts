// Receipt handles name the queue incarnation, the partition, the message's log offset and
// the receive record that delivered it, so a delete or visibility change finds the exact
// delivery without any lookup table. Opaque to clients (base64url).

import { BerthError } from '../protocol/errors.js';

export interface ReceiptHandleFields {
  incarnation: string; // 16 hex characters
  partition: number;
  messageOffset: number;
  receiveOffset: number;
}

const version = 1;
const encodedBytes = 1 + 8 + 2 + 8 + 8;

export function encodeReceiptHandle(fields: ReceiptHandleFields): string {
  const buffer = Buffer.alloc(encodedBytes);
  buffer.writeUInt8(version, 0);
  buffer.write(fields.incarnation, 1, 8, 'hex');
  buffer.writeUInt16BE(fields.partition, 9);
  buffer.writeBigUInt64BE(BigInt(fields.messageOffset), 11);
  buffer.writeBigUInt64BE(BigInt(fields.receiveOffset), 19);
  return buffer.toString('base64url');
}

export function decodeReceiptHandle(handle: string): ReceiptHandleFields {
  const invalid = (): BerthError =>
    new BerthError('ReceiptHandleIsInvalid', `The input receipt handle "${handle.slice(0, 100)}" is not a valid receipt handle.`);
  if (handle.length === 0 || handle.length > 1024 || !/^[A-Za-z0-9_-]+$/.test(handle)) throw invalid();
  const buffer = Buffer.from(handle, 'base64url');
  if (buffer.length !== encodedBytes || buffer.readUInt8(0) !== version) throw invalid();
  const messageOffset = buffer.readBigUInt64BE(11);
  const receiveOffset = buffer.readBigUInt64BE(19);
  if (messageOffset > BigInt(Number.MAX_SAFE_INTEGER) || receiveOffset > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid();
  return {
    incarnation: buffer.toString('hex', 1, 9),
    partition: buffer.readUInt16BE(9),
    messageOffset: Number(messageOffset),
    receiveOffset: Number(receiveOffset),
  };
}

