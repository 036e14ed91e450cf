// The peer protocol between Berth nodes: binary, length-prefixed, pipelined frames over
// one TCP connection per pair of nodes (pure encode/decode; the sockets are in
// src/io/peer-transport.ts).
//
// Frame: u32 length (bytes after this field), u8 kind, body. Big endian.
//   Request   (1): u32 requestId, u16 method length, method (utf8), body (JSON, binary as {"$b64"})
//   Response  (2): u32 requestId, u8 ok (1) or error (0), body (JSON; an error is {code, message})
//   Cancel    (3): u32 requestId                        (the caller gave up: abort a long poll)
//   Replicate (4): u16 key length, key, u32 epoch, f64 committedEnd, u32 records,
//                  records: u8 type, u32 epoch, f64 offset, f64 timestampMs, u32 payload bytes, payload
//   Ack       (5): u16 key length, key, u32 epoch, u8 status, f64 durableEnd
//   SnapshotChunk (6): u16 key length, key, u32 epoch, f64 snapshotOffset, u32 totalBytes,
//                  u32 position, u32 data bytes, data   (one piece of a checkpoint shipped to
//                  a backup behind the primary's log start; installed by replica.installSnapshot)
// Replicate and Ack carry the partition epoch: a backup refuses a lower epoch than it
// knows, so a replaced primary can never make a record committed.
// Offsets and times are JS numbers below 2^53, exact as f64.

import { assert } from '../core/assert.js';
import type { LogRecord } from '../storage/types.js';

export const frameBytesMax = 64 * 1024 * 1024;

export enum FrameKind {
  Request = 1,
  Response = 2,
  Cancel = 3,
  Replicate = 4,
  Ack = 5,
  SnapshotChunk = 6,
}

export enum AckStatus {
  /** Appended; durableEnd is the backup's durable end. */
  Ok = 0,
  /** The message's epoch is lower than one the backup knows: the sender is not the primary any more. */
  StaleEpoch = 1,
  /** The backup has not been synced (handshake) for this epoch, or records do not follow its log: resync. */
  NeedsSync = 2,
}

export type Frame =
  | { kind: FrameKind.Request; requestId: number; method: string; body: unknown }
  | { kind: FrameKind.Response; requestId: number; ok: boolean; body: unknown }
  | { kind: FrameKind.Cancel; requestId: number }
  | { kind: FrameKind.Replicate; key: string; epoch: number; committedEnd: number; records: LogRecord[] }
  | { kind: FrameKind.Ack; key: string; epoch: number; status: AckStatus; durableEnd: number }
  | { kind: FrameKind.SnapshotChunk; key: string; epoch: number; snapshotOffset: number; totalBytes: number; position: number; data: Uint8Array };

const zeroLeafHash = new Uint8Array(32);

export function encodeFrame(frame: Frame): Buffer {
  switch (frame.kind) {
    case FrameKind.Request: {
      const method = Buffer.from(frame.method, 'utf8');
      const body = Buffer.from(JSON.stringify(toWireJson(frame.body)), 'utf8');
      const out = Buffer.allocUnsafe(4 + 1 + 4 + 2 + method.length + body.length);
      let at = out.writeUInt32BE(out.length - 4, 0);
      at = out.writeUInt8(frame.kind, at);
      at = out.writeUInt32BE(frame.requestId, at);
      at = out.writeUInt16BE(method.length, at);
      at += method.copy(out, at);
      body.copy(out, at);
      return out;
    }
    case FrameKind.Response: {
      const body = Buffer.from(JSON.stringify(toWireJson(frame.body) ?? null), 'utf8');
      const out = Buffer.allocUnsafe(4 + 1 + 4 + 1 + body.length);
      let at = out.writeUInt32BE(out.length - 4, 0);
      at = out.writeUInt8(frame.kind, at);
      at = out.writeUInt32BE(frame.requestId, at);
      at = out.writeUInt8(frame.ok ? 1 : 0, at);
      body.copy(out, at);
      return out;
    }
    case FrameKind.Cancel: {
      const out = Buffer.allocUnsafe(4 + 1 + 4);
      out.writeUInt32BE(5, 0);
      out.writeUInt8(frame.kind, 4);
      out.writeUInt32BE(frame.requestId, 5);
      return out;
    }
    case FrameKind.Replicate: {
      const key = Buffer.from(frame.key, 'utf8');
      let bytes = 4 + 1 + 2 + key.length + 4 + 8 + 4;
      for (const record of frame.records) bytes += 1 + 4 + 8 + 8 + 4 + record.payload.length;
      assert(bytes <= frameBytesMax, () => `replicate frame of ${bytes} bytes exceeds ${frameBytesMax}`);
      const out = Buffer.allocUnsafe(bytes);
      let at = out.writeUInt32BE(bytes - 4, 0);
      at = out.writeUInt8(frame.kind, at);
      at = out.writeUInt16BE(key.length, at);
      at += key.copy(out, at);
      at = out.writeUInt32BE(frame.epoch, at);
      at = out.writeDoubleBE(frame.committedEnd, at);
      at = out.writeUInt32BE(frame.records.length, at);
      for (const record of frame.records) {
        at = out.writeUInt8(record.type, at);
        at = out.writeUInt32BE(record.epoch, at);
        at = out.writeDoubleBE(record.offset, at);
        at = out.writeDoubleBE(record.timestampMs, at);
        at = out.writeUInt32BE(record.payload.length, at);
        out.set(record.payload, at);
        at += record.payload.length;
      }
      assert(at === bytes, 'replicate frame size mismatch');
      return out;
    }
    case FrameKind.Ack: {
      const key = Buffer.from(frame.key, 'utf8');
      const out = Buffer.allocUnsafe(4 + 1 + 2 + key.length + 4 + 1 + 8);
      let at = out.writeUInt32BE(out.length - 4, 0);
      at = out.writeUInt8(frame.kind, at);
      at = out.writeUInt16BE(key.length, at);
      at += key.copy(out, at);
      at = out.writeUInt32BE(frame.epoch, at);
      at = out.writeUInt8(frame.status, at);
      out.writeDoubleBE(frame.durableEnd, at);
      return out;
    }
    case FrameKind.SnapshotChunk: {
      const key = Buffer.from(frame.key, 'utf8');
      const bytes = 4 + 1 + 2 + key.length + 4 + 8 + 4 + 4 + 4 + frame.data.length;
      assert(bytes <= frameBytesMax, () => `snapshot chunk frame of ${bytes} bytes exceeds ${frameBytesMax}`);
      const out = Buffer.allocUnsafe(bytes);
      let at = out.writeUInt32BE(bytes - 4, 0);
      at = out.writeUInt8(frame.kind, at);
      at = out.writeUInt16BE(key.length, at);
      at += key.copy(out, at);
      at = out.writeUInt32BE(frame.epoch, at);
      at = out.writeDoubleBE(frame.snapshotOffset, at);
      at = out.writeUInt32BE(frame.totalBytes, at);
      at = out.writeUInt32BE(frame.position, at);
      at = out.writeUInt32BE(frame.data.length, at);
      out.set(frame.data, at);
      assert(at + frame.data.length === bytes, 'snapshot chunk frame size mismatch');
      return out;
    }
  }
}

/** Decodes one frame body (after the length field). Throws on malformed input. */
/** A u16-length-prefixed partition key, as every partition frame starts; returns the offset after it. */
function readPartitionKey(body: Buffer, at: number): { key: string; next: number } {
  const keyLength = body.readUInt16BE(at);
  return { key: body.toString('utf8', at + 2, at + 2 + keyLength), next: at + 2 + keyLength };
}

export function decodeFrame(body: Buffer): Frame {
  const kind = body.readUInt8(0) as FrameKind;
  let at = 1;
  switch (kind) {
    case FrameKind.Request: {
      const requestId = body.readUInt32BE(at);
      const methodLength = body.readUInt16BE(at + 4);
      at += 6;
      const method = body.toString('utf8', at, at + methodLength);
      at += methodLength;
      return { kind, requestId, method, body: fromWireJson(JSON.parse(body.toString('utf8', at))) };
    }
    case FrameKind.Response: {
      const requestId = body.readUInt32BE(at);
      const ok = body.readUInt8(at + 4) === 1;
      return { kind, requestId, ok, body: fromWireJson(JSON.parse(body.toString('utf8', at + 5))) };
    }
    case FrameKind.Cancel:
      return { kind, requestId: body.readUInt32BE(at) };
    case FrameKind.Replicate: {
      const { key, next } = readPartitionKey(body, at);
      at = next;
      const epoch = body.readUInt32BE(at);
      const committedEnd = body.readDoubleBE(at + 4);
      const count = body.readUInt32BE(at + 12);
      at += 16;
      const records: LogRecord[] = [];
      for (let index = 0; index < count; index++) {
        const type = body.readUInt8(at);
        const recordEpoch = body.readUInt32BE(at + 1);
        const offset = body.readDoubleBE(at + 5);
        const timestampMs = body.readDoubleBE(at + 13);
        const length = body.readUInt32BE(at + 21);
        at += 25;
        if (at + length > body.length) throw new RangeError('replicate frame truncated');
        const payload = new Uint8Array(body.subarray(at, at + length));
        at += length;
        records.push({ type, epoch: recordEpoch, offset, timestampMs, payload, leafHash: zeroLeafHash });
      }
      return { kind, key, epoch, committedEnd, records };
    }
    case FrameKind.Ack: {
      const { key, next } = readPartitionKey(body, at);
      at = next;
      return { kind, key, epoch: body.readUInt32BE(at), status: body.readUInt8(at + 4) as AckStatus, durableEnd: body.readDoubleBE(at + 5) };
    }
    case FrameKind.SnapshotChunk: {
      const { key, next } = readPartitionKey(body, at);
      at = next;
      const epoch = body.readUInt32BE(at);
      const snapshotOffset = body.readDoubleBE(at + 4);
      const totalBytes = body.readUInt32BE(at + 12);
      const position = body.readUInt32BE(at + 16);
      const length = body.readUInt32BE(at + 20);
      at += 24;
      if (at + length > body.length) throw new RangeError('snapshot chunk frame truncated');
      return { kind, key, epoch, snapshotOffset, totalBytes, position, data: new Uint8Array(body.subarray(at, at + length)) };
    }
    default:
      throw new RangeError(`unknown peer frame kind ${String(kind)}`);
  }
}

/**
 * Splits a byte stream into frame bodies. Feed it chunks; it returns every complete body.
 * Throws when a frame announces more than frameBytesMax (the connection must be dropped).
 */
export class FrameSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  push(chunk: Buffer): Buffer[] {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const bodies: Buffer[] = [];
    for (;;) {
      if (this.pendingBytes < 4) break;
      const head = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
      this.pending = [head];
      const length = head.readUInt32BE(0);
      if (length > frameBytesMax || length < 1) throw new RangeError(`peer frame of ${length} bytes is out of bounds`);
      if (head.length < 4 + length) break;
      bodies.push(head.subarray(4, 4 + length));
      const rest = head.subarray(4 + length);
      this.pending = rest.length > 0 ? [rest] : [];
      this.pendingBytes = rest.length;
    }
    return bodies;
  }
}

/** JSON with binary: Uint8Array (and Buffer) become {"$b64": "..."}. */
export function toWireJson(value: unknown): unknown {
  if (value instanceof Uint8Array) return { $b64: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  if (Array.isArray(value)) return value.map(toWireJson);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) if (inner !== undefined) out[key] = toWireJson(inner);
    return out;
  }
  return value;
}

export function fromWireJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(fromWireJson);
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    if (typeof record['$b64'] === 'string' && Object.keys(record).length === 1) return new Uint8Array(Buffer.from(record['$b64'], 'base64'));
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(record)) out[key] = fromWireJson(inner);
    return out;
  }
  return value;
}
