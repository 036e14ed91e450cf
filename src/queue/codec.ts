// A small binary writer/reader for the queue's log payloads and snapshots. Numbers that
// are offsets, counts and durations are unsigned varints (LEB128 over JS numbers, exact
// up to 2^53); timestamps are float64 (they may be any JS number, including -1 markers);
// strings are a varint byte length followed by UTF-8.

import { assert } from '../core/assert.js';

const textEncoder = new TextEncoder();

// float64 through one shared 8-byte scratch instead of a DataView per Writer/Reader: making
// the DataView cost more than the rest of decoding a short payload. The format is
// little-endian; on a big-endian host the bytes are reversed through the scratch.
const float64Scratch = new Float64Array(1);
const float64Bytes = new Uint8Array(float64Scratch.buffer);
const hostLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const textDecoder = new TextDecoder('utf-8', { fatal: false });

// Node's own UTF-8 slice works on any Uint8Array and is 2-4x faster than TextDecoder or
// String.fromCharCode for the short strings (ids) and 1 KiB bodies payloads hold. Same
// result: invalid sequences become U+FFFD.
const utf8Slice = (Buffer.prototype as unknown as { utf8Slice?: (this: Uint8Array, start: number, end: number) => string }).utf8Slice;

/** The UTF-8 text of bytes [start, end) of `bytes`. */
function decodeUtf8(bytes: Uint8Array, start: number, end: number): string {
  return utf8Slice !== undefined ? utf8Slice.call(bytes, start, end) : textDecoder.decode(bytes.subarray(start, end));
}

// Encoding runs synchronously, one payload at a time, so one scratch buffer serves almost
// every Writer: a fresh zero-filled allocation (and a grow-and-copy for a 1 KiB body) per
// record was the largest CPU cost of the send path. A Writer made while the scratch is
// taken (a nested encode, or one abandoned by an exception) allocates its own.
const scratchBytesKept = 1 << 20;
let scratch: Uint8Array | undefined = new Uint8Array(64 * 1024);
const finishedBuffer = new Uint8Array(0);

export class Writer {
  private buffer: Uint8Array;
  private position = 0;
  private ownsScratch: boolean;

  constructor(initialBytes = 256) {
    if (scratch !== undefined) {
      this.buffer = scratch;
      this.ownsScratch = true;
      scratch = undefined;
    } else {
      this.buffer = new Uint8Array(initialBytes);
      this.ownsScratch = false;
    }
  }

  private ensure(extraBytes: number): void {
    const needed = this.position + extraBytes;
    if (needed <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < needed) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buffer.subarray(0, this.position));
    this.buffer = next;
  }

  u8(value: number): this {
    this.ensure(1);
    this.buffer[this.position++] = value & 0xff;
    return this;
  }

  /** Unsigned integer up to 2^53 - 1. */
  varint(value: number): this {
    assert(Number.isSafeInteger(value) && value >= 0, () => `varint out of range: ${value}`);
    this.ensure(8);
    let rest = value;
    while (rest >= 0x80) {
      this.buffer[this.position++] = (rest % 0x80) | 0x80;
      rest = Math.floor(rest / 0x80);
    }
    this.buffer[this.position++] = rest;
    return this;
  }

  f64(value: number): this {
    this.ensure(8);
    float64Scratch[0] = value;
    const buffer = this.buffer;
    const at = this.position;
    if (hostLittleEndian) for (let index = 0; index < 8; index++) buffer[at + index] = float64Bytes[index]!;
    else for (let index = 0; index < 8; index++) buffer[at + index] = float64Bytes[7 - index]!;
    this.position += 8;
    return this;
  }

  bytes(value: Uint8Array): this {
    this.varint(value.length);
    this.raw(value);
    return this;
  }

  raw(value: Uint8Array): this {
    this.ensure(value.length);
    this.buffer.set(value, this.position);
    this.position += value.length;
    return this;
  }

  string(value: string): this {
    // Worst case 3 bytes per UTF-16 unit; encode in place, then write the length before it.
    const maxBytes = value.length * 3;
    const lengthBytes = maxBytes < 0x80 ? 1 : maxBytes < 0x4000 ? 2 : maxBytes < 0x200000 ? 3 : 4;
    this.ensure(lengthBytes + maxBytes);
    const start = this.position + lengthBytes;
    const { written } = textEncoder.encodeInto(value, this.buffer.subarray(start));
    // Write the length as a fixed-width varint of `lengthBytes` bytes (padded continuation bytes).
    let rest = written;
    for (let index = 0; index < lengthBytes; index++) {
      const last = index === lengthBytes - 1;
      this.buffer[this.position + index] = (rest % 0x80) | (last ? 0 : 0x80);
      rest = Math.floor(rest / 0x80);
    }
    assert(rest === 0, 'string length overflow');
    this.position = start + written;
    return this;
  }

  optionalString(value: string | undefined): this {
    if (value === undefined) return this.u8(0);
    this.u8(1);
    return this.string(value);
  }

  /**
   * The bytes written, as a copy of their own; the Writer must not be used after. The copy
   * comes from Node's shared buffer pool (payloads are small): a fresh ArrayBuffer per
   * payload (Uint8Array.slice) cost about 2 us each, more than encoding the payload.
   */
  finish(): Uint8Array {
    const result = Buffer.allocUnsafe(this.position);
    result.set(this.buffer.subarray(0, this.position));
    if (this.ownsScratch) {
      this.ownsScratch = false;
      if (this.buffer.length <= scratchBytesKept) scratch = this.buffer;
      else scratch = new Uint8Array(64 * 1024);
      this.buffer = finishedBuffer; // a stray write after finish() allocates; it never touches the scratch again
      this.position = 0;
    }
    return result;
  }
}

export class Reader {
  position = 0;

  constructor(private readonly buffer: Uint8Array) {}

  get done(): boolean {
    return this.position >= this.buffer.length;
  }

  private need(bytes: number): void {
    assert(this.position + bytes <= this.buffer.length, 'payload truncated');
  }

  u8(): number {
    this.need(1);
    return this.buffer[this.position++]!;
  }

  varint(): number {
    let result = 0;
    let scale = 1;
    for (;;) {
      this.need(1);
      const byte = this.buffer[this.position++]!;
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) return result;
      scale *= 0x80;
      assert(scale <= 2 ** 56, 'varint too long');
    }
  }

  f64(): number {
    this.need(8);
    const buffer = this.buffer;
    const at = this.position;
    if (hostLittleEndian) for (let index = 0; index < 8; index++) float64Bytes[index] = buffer[at + index]!;
    else for (let index = 0; index < 8; index++) float64Bytes[7 - index] = buffer[at + index]!;
    this.position += 8;
    return float64Scratch[0]!;
  }

  bytes(): Uint8Array {
    const length = this.varint();
    return this.raw(length);
  }

  raw(length: number): Uint8Array {
    this.need(length);
    // A plain Uint8Array copy: payloads may be pooled Buffers, whose slice() is a view.
    const value = new Uint8Array(length);
    value.set(this.buffer.subarray(this.position, this.position + length));
    this.position += length;
    return value;
  }

  skipBytes(): void {
    const length = this.varint();
    this.need(length);
    this.position += length;
  }

  rest(): Uint8Array {
    const value = this.buffer.subarray(this.position);
    this.position = this.buffer.length;
    return value;
  }

  string(): string {
    const length = this.varint();
    this.need(length);
    const start = this.position;
    this.position += length;
    return decodeUtf8(this.buffer, start, start + length);
  }

  optionalString(): string | undefined {
    return this.u8() === 0 ? undefined : this.string();
  }
}
