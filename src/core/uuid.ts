// Version 4 UUIDs for message and request ids (one per message on the send path) and the
// SDK producer's FIFO deduplication ids.
// crypto.randomUUID builds each from ~20 string pieces that are flattened when the id is
// first written (~550 B of garbage, ~0.7 us); this writes the 36 characters into one
// reused buffer and makes one flat string of them (~0.35 us). The randomness is the same:
// crypto.randomFillSync, 256 ids' worth at a time.

import { randomFillSync } from 'node:crypto';

const idsPerFill = 256;
const pool = Buffer.allocUnsafe(16 * idsPerFill);
let nextId = idsPerFill;
const text = Buffer.allocUnsafe(36);
const hexDigits = Buffer.from('0123456789abcdef', 'latin1');

/** A random (version 4, RFC 9562) UUID in lower case, as crypto.randomUUID gives. */
export function randomUuid(): string {
  if (nextId === idsPerFill) {
    randomFillSync(pool);
    nextId = 0;
  }
  const base = 16 * nextId++;
  pool[base + 6] = (pool[base + 6]! & 0x0f) | 0x40; // version 4
  pool[base + 8] = (pool[base + 8]! & 0x3f) | 0x80; // variant 10
  let at = 0;
  for (let index = 0; index < 16; index++) {
    if (index === 4 || index === 6 || index === 8 || index === 10) text[at++] = 0x2d; // '-'
    const byte = pool[base + index]!;
    text[at++] = hexDigits[byte >> 4]!;
    text[at++] = hexDigits[byte & 15]!;
  }
  return text.toString('latin1', 0, 36);
}
