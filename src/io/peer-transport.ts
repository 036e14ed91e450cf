// TCP transport between Berth nodes for the peer protocol (src/replication/wire.ts).
//
// Each node listens on its peer port. A node dials another lazily, one outbound connection
// per address, and uses it for its requests (answered on the same connection) and for
// replication frames it ships (acknowledged on the same connection). Frames are pipelined:
// many requests and replicate frames may be outstanding at once.
//
// Connection states: absent -> connecting -> open -> closed (pending requests fail with
// ServiceUnavailable, `onDisconnect` fires; the next use dials again).

import net from 'node:net';
import { BerthError, errorCatalogue, type ErrorCode } from '../protocol/errors.js';
import { AckStatus, FrameKind, FrameSplitter, decodeFrame, encodeFrame, type Frame } from '../replication/wire.js';

export type ReplicateFrame = Extract<Frame, { kind: FrameKind.Replicate }>;
export type AckFrame = Extract<Frame, { kind: FrameKind.Ack }>;
export type SnapshotChunkFrame = Extract<Frame, { kind: FrameKind.SnapshotChunk }>;

export interface PeerHandlers {
  onRequest(method: string, body: unknown, signal: AbortSignal): Promise<unknown>;
  /** A primary's records; `reply` sends the acknowledgement back on the same connection (one function per connection). */
  onReplicate(frame: ReplicateFrame, reply: (ack: AckFrame) => void): void;
  /** An acknowledgement from a backup we shipped to at `address`. */
  onAck(address: string, frame: AckFrame): void;
  onDisconnect?(address: string): void;
  /** A piece of a snapshot a primary ships before replica.installSnapshot (same connection, so in order). */
  onSnapshotChunk?(frame: SnapshotChunkFrame): void;
}

export interface PeerTransportOptions {
  host: string;
  port: number;
  handlers: PeerHandlers;
  requestTimeoutMs?: number;
  connectTimeoutMs?: number;
  onError?(error: unknown, context: string): void;
}

interface Outbound {
  socket: net.Socket;
  ready: Promise<void>;
  nextRequestId: number;
  pending: Map<number, { resolve(value: unknown): void; reject(error: unknown): void }>;
}

export class PeerTransport {
  private server: net.Server | undefined;
  private readonly outbound = new Map<string, Outbound>();
  private readonly inbound = new Set<net.Socket>();
  private closed = false;
  port = 0;

  constructor(private readonly options: PeerTransportOptions) {}

  async listen(): Promise<void> {
    const server = net.createServer((socket) => this.serveInbound(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    this.port = typeof address === 'object' && address !== null ? address.port : this.options.port;
  }

  /** Sends a request and waits for its response; the error body becomes a BerthError. */
  async request(address: string, method: string, body: unknown, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<unknown> {
    const connection = this.connection(address);
    await connection.ready;
    const requestId = connection.nextRequestId++ >>> 0;
    const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        connection.pending.delete(requestId);
      };
      const timer = setTimeout(() => {
        cleanup();
        this.write(connection.socket, { kind: FrameKind.Cancel, requestId });
        reject(new BerthError('ServiceUnavailable', `peer ${address} did not answer ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      const onAbort = (): void => {
        this.write(connection.socket, { kind: FrameKind.Cancel, requestId });
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      connection.pending.set(requestId, {
        resolve: (value) => {
          cleanup();
          resolve(value);
        },
        reject: (error) => {
          cleanup();
          reject(error);
        },
      });
      this.write(connection.socket, { kind: FrameKind.Request, requestId, method, body });
    });
  }

  /** Queues a replicate frame to `address` (dialling if needed). False when the connection is not open yet. */
  replicate(address: string, frame: ReplicateFrame): boolean {
    const connection = this.connection(address);
    if (connection.socket.connecting || connection.socket.destroyed) return false;
    this.write(connection.socket, frame);
    return true;
  }

  /** Queues a snapshot chunk to `address`. False when the connection is not open. */
  snapshotChunk(address: string, frame: SnapshotChunkFrame): boolean {
    const connection = this.connection(address);
    if (connection.socket.connecting || connection.socket.destroyed) return false;
    this.write(connection.socket, frame);
    return true;
  }

  /** Resolves once a connection to `address` is open. */
  async connect(address: string): Promise<void> {
    await this.connection(address).ready;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const connection of this.outbound.values()) connection.socket.destroy();
    this.outbound.clear();
    for (const socket of this.inbound) socket.destroy();
    this.inbound.clear();
    const server = this.server;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  // ---- internals -----------------------------------------------------------------

  private connection(address: string): Outbound {
    if (this.closed) throw new BerthError('ServiceUnavailable', 'peer transport is closed');
    const existing = this.outbound.get(address);
    if (existing !== undefined && !existing.socket.destroyed) return existing;
    const [host, portText] = splitAddress(address);
    const socket = net.connect({ host, port: Number(portText) });
    socket.setNoDelay(true);
    const connection: Outbound = {
      socket,
      nextRequestId: 1,
      pending: new Map(),
      ready: new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          socket.destroy(new Error('connect timeout'));
        }, this.options.connectTimeoutMs ?? 2000);
        socket.once('connect', () => {
          clearTimeout(timer);
          resolve();
        });
        socket.once('close', () => {
          clearTimeout(timer);
          reject(new BerthError('ServiceUnavailable', `cannot reach peer ${address}`));
        });
      }),
    };
    connection.ready.catch(() => undefined);
    this.outbound.set(address, connection);
    const splitter = new FrameSplitter();
    socket.on('data', (chunk: Buffer) => {
      let bodies: Buffer[];
      try {
        bodies = splitter.push(chunk);
      } catch (error) {
        this.options.onError?.(error, `peer ${address}`);
        socket.destroy();
        return;
      }
      for (const body of bodies) {
        let frame: Frame;
        try {
          frame = decodeFrame(body);
        } catch (error) {
          this.options.onError?.(error, `peer ${address}: malformed frame`);
          socket.destroy();
          return;
        }
        if (frame.kind === FrameKind.Response) {
          const waiter = connection.pending.get(frame.requestId);
          if (waiter === undefined) continue;
          if (frame.ok) waiter.resolve(frame.body);
          else waiter.reject(errorFromBody(frame.body));
        } else if (frame.kind === FrameKind.Ack) {
          this.options.handlers.onAck(address, frame);
        }
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (this.outbound.get(address) === connection) this.outbound.delete(address);
      for (const waiter of connection.pending.values()) waiter.reject(new BerthError('ServiceUnavailable', `connection to peer ${address} closed`));
      connection.pending.clear();
      if (!this.closed) this.options.handlers.onDisconnect?.(address);
    });
    return connection;
  }

  private serveInbound(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    this.inbound.add(socket);
    const splitter = new FrameSplitter();
    const running = new Map<number, AbortController>();
    // One reply function per connection: the handler may tell acknowledgements on one connection apart.
    const replyAck = (ack: AckFrame): void => this.write(socket, ack);
    socket.on('data', (chunk: Buffer) => {
      let bodies: Buffer[];
      try {
        bodies = splitter.push(chunk);
      } catch (error) {
        this.options.onError?.(error, 'inbound peer');
        socket.destroy();
        return;
      }
      for (const body of bodies) {
        let frame: Frame;
        try {
          frame = decodeFrame(body);
        } catch (error) {
          this.options.onError?.(error, 'inbound peer: malformed frame');
          socket.destroy();
          return;
        }
        switch (frame.kind) {
          case FrameKind.Request: {
            const controller = new AbortController();
            running.set(frame.requestId, controller);
            const requestId = frame.requestId;
            this.options.handlers.onRequest(frame.method, frame.body, controller.signal).then(
              (result) => {
                running.delete(requestId);
                this.write(socket, { kind: FrameKind.Response, requestId, ok: true, body: result ?? null });
              },
              (error: unknown) => {
                running.delete(requestId);
                this.write(socket, { kind: FrameKind.Response, requestId, ok: false, body: errorToBody(error) });
              },
            );
            break;
          }
          case FrameKind.Cancel:
            running.get(frame.requestId)?.abort();
            break;
          case FrameKind.Replicate:
            try {
              this.options.handlers.onReplicate(frame, replyAck);
            } catch (error) {
              this.options.onError?.(error, 'replicate handler');
              this.write(socket, { kind: FrameKind.Ack, key: frame.key, epoch: frame.epoch, status: AckStatus.NeedsSync, durableEnd: 0 });
            }
            break;
          case FrameKind.SnapshotChunk:
            try {
              this.options.handlers.onSnapshotChunk?.(frame);
            } catch (error) {
              this.options.onError?.(error, 'snapshot chunk handler');
            }
            break;
          default:
            break;
        }
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.inbound.delete(socket);
      for (const controller of running.values()) controller.abort();
    });
  }

  private write(socket: net.Socket, frame: Frame): void {
    if (socket.destroyed) return;
    socket.write(encodeFrame(frame));
  }
}

function splitAddress(address: string): [string, string] {
  const at = address.lastIndexOf(':');
  return [address.slice(0, at).replace(/^\[|\]$/g, ''), address.slice(at + 1)];
}

export function errorToBody(error: unknown): { code: ErrorCode; message: string } {
  if (error instanceof BerthError) return { code: error.code, message: error.message };
  return { code: 'InternalError', message: error instanceof Error ? error.message : String(error) };
}

export function errorFromBody(body: unknown): BerthError {
  const record = (body ?? {}) as { code?: string; message?: string };
  const code = record.code !== undefined && record.code in errorCatalogue ? (record.code as ErrorCode) : 'InternalError';
  return new BerthError(code, record.message ?? 'peer error');
}
