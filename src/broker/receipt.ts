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
/** base64url of 27 bytes: 36 characters, no padding. */
const encodedCharacters = 36;
const twoTo32 = 0x1_0000_0000;

// One scratch buffer serves every encode and decode (both run synchronously): a fresh
// zero-filled Buffer and BigInt conversions per handle were a visible share of a receive.
const scratch = Buffer.alloc(encodedBytes + 3);
let lastIncarnation = '';
const lastIncarnationBytes = Buffer.alloc(8);

function writeUint64(buffer: Buffer, value: number, at: number): void {
  buffer.writeUInt32BE(Math.floor(value / twoTo32), at);
  buffer.writeUInt32BE(value % twoTo32, at + 4);
}

export function encodeReceiptHandle(fields: ReceiptHandleFields): string {
  if (fields.incarnation !== lastIncarnation) {
    lastIncarnationBytes.fill(0);
    lastIncarnationBytes.write(fields.incarnation, 0, 8, 'hex');
    lastIncarnation = fields.incarnation;
  }
  scratch.writeUInt8(version, 0);
  lastIncarnationBytes.copy(scratch, 1);
  scratch.writeUInt16BE(fields.partition, 9);
  writeUint64(scratch, fields.messageOffset, 11);
  writeUint64(scratch, fields.receiveOffset, 19);
  return scratch.toString('base64url', 0, encodedBytes);
}

export function decodeReceiptHandle(handle: string): ReceiptHandleFields {
  const invalid = (): BerthError =>
    new BerthError('ReceiptHandleIsInvalid', `The input receipt handle "${handle.slice(0, 100)}" is not a valid receipt handle.`);
  if (handle.length !== encodedCharacters || !/^[A-Za-z0-9_-]+$/.test(handle)) throw invalid();
  const written = scratch.write(handle, 0, 'base64url');
  if (written !== encodedBytes || scratch.readUInt8(0) !== version) throw invalid();
  const messageHigh = scratch.readUInt32BE(11);
  const receiveHigh = scratch.readUInt32BE(19);
  // Offsets are safe integers: the high word stays below 2^21.
  if (messageHigh >= 0x20_0000 || receiveHigh >= 0x20_0000) throw invalid();
  return {
    incarnation: scratch.toString('hex', 1, 9),
    partition: scratch.readUInt16BE(9),
    messageOffset: messageHigh * twoTo32 + scratch.readUInt32BE(15),
    receiveOffset: receiveHigh * twoTo32 + scratch.readUInt32BE(23),
  };
}
