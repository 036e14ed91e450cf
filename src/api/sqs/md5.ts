// MD5 digests SQS returns with messages, so clients can check what the service stored.
//
// MD5OfMessageAttributes (and MD5OfMessageSystemAttributes, same scheme): for each
// attribute in ascending name order, append
//   u32be byteLength(name) + name (UTF-8)
//   u32be byteLength(dataType) + dataType (full string, custom suffix included)
//   u8 transport type: 1 for String and Number (string value), 2 for Binary
//   u32be byteLength(value) + value bytes
// and digest the concatenation. The field is omitted when there are no attributes.

import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';
import type { MessageAttributes } from '../../queue/types.js';

// crypto.hash (Node >= 20.12) is a one-shot digest without a Hash object: measurably
// cheaper on the send and receive paths, which digest every body.
const oneShotHash = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;

export function md5OfBody(body: string): string {
  if (oneShotHash !== undefined) return oneShotHash('md5', body, 'hex');
  return createHash('md5').update(body, 'utf8').digest('hex');
}

function lengthPrefix(byteLength: number): Buffer {
  const prefix = Buffer.allocUnsafe(4);
  prefix.writeUInt32BE(byteLength, 0);
  return prefix;
}

/** undefined when `attributes` is empty (SQS omits the field; some SDKs reject an empty digest). */
export function md5OfMessageAttributes(attributes: MessageAttributes): string | undefined {
  const names = Object.keys(attributes);
  if (names.length === 0) return undefined;
  // SQS sorts names by code unit; attribute names are ASCII ([A-Za-z0-9_.-]) so this equals byte order.
  names.sort();
  const hash = createHash('md5');
  for (const name of names) {
    const attribute = attributes[name]!;
    const nameBytes = Buffer.from(name, 'utf8');
    hash.update(lengthPrefix(nameBytes.length));
    hash.update(nameBytes);
    const typeBytes = Buffer.from(attribute.dataType, 'utf8');
    hash.update(lengthPrefix(typeBytes.length));
    hash.update(typeBytes);
    if (attribute.binaryValue !== undefined && attribute.dataType.startsWith('Binary')) {
      hash.update(Buffer.of(2));
      hash.update(lengthPrefix(attribute.binaryValue.byteLength));
      hash.update(attribute.binaryValue);
    } else {
      const valueBytes = Buffer.from(attribute.stringValue ?? '', 'utf8');
      hash.update(Buffer.of(1));
      hash.update(lengthPrefix(valueBytes.length));
      hash.update(valueBytes);
    }
  }
  return hash.digest('hex');
}
