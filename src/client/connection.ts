// One native-protocol connection on the client side.
//
// States: connecting (TCP/TLS) -> handshaking (CHALLENGE received, AUTH sent) -> open
// (requests pipelined: each gets a fresh request id and is answered by id, in any order;
// subscriptions receive DELIVERY frames by their id) -> closed (every pending request
// rejects with ConnectionClosedError, every subscription is told it ended). A connection
// is never reopened: the Router makes a new one.
//
// Liveness: a HEARTBEAT goes out when nothing was sent for one interval (the server's,
// from its CHALLENGE); the connection closes when nothing arrived for three.
//
// Per-frame cost (the SDK's CPU is mostly per frame, not per byte):
// - reads: a plain TCP connection reads into one reused buffer (net's `onread`), which
//   skips the readable-stream machinery and a fresh 64 KiB allocation per read. Frames
//   are views into that buffer, so every answer is decoded before the read callback
//   returns (request() takes the decoder); only bytes of an unfinished frame are copied.
// - writes: frames written during one turn of the event loop leave in one socket write
//   (concatenated at the end of the turn), one syscall for an ACK and a CREDIT together.

import { createHmac, randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import {
  AuthMode,
  FrameDecoder,
  FrameType,
  ProtocolViolation,
  decodeAuthOk,
  decodeChallenge,
  decodeError,
  decodeMessages,
  encodeAuth,
  encodeEmpty,
  frameTypeName,
  type Challenge,
  type Frame,
  type WireMessage,
} from '../api/native/wire.js';
import { WriteCoalescer } from '../io/write-coalescer.js';
import { BerthClientError, ProtocolError, connectionClosed, errorFromWire } from './errors.js';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface ConnectOptions {
  host: string;
  port: number;
  /** TLS options (berths:// URLs); `true` uses the system's CAs. */
  tls?: boolean | tls.ConnectionOptions;
  credentials?: Credentials;
  connectTimeoutMs?: number;
}

interface Pending {
  expectedType: number;
  /** Runs synchronously on the answer's payload (a view valid only during the call). */
  decode: (payload: Buffer) => unknown;
  resolve: (value: unknown) => void;
  reject: (error: BerthClientError) => void;
}

export interface SubscriptionHandlers {
  onDelivery(messages: WireMessage[]): void;
  /** The server ended the subscription (error) or the connection closed. */
  onEnd(error: BerthClientError): void;
}

const requestIdMax = 0xffff_fffe;
/** The reused read buffer of a plain TCP connection. */
const readBufferBytes = 64 * 1024;
/** Frames of one turn up to this size are copied into one buffer; beyond, written as a writev. */
const concatBytesMax = 16 * 1024;

export class ClientConnection {
  private readonly pending = new Map<number, Pending>();
  private readonly subscriptions = new Map<number, SubscriptionHandlers>();
  private nextRequestId = 1;
  private closedError: BerthClientError | undefined;
  private readonly closeListeners: Array<(error: BerthClientError) => void> = [];
  private lastReceivedMs = Date.now();
  private lastSentMs = Date.now();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  identity = '';
  /** Where received bytes go: the handshake, then onData. */
  private receiver: (chunk: Buffer) => void = () => undefined;
  /** Frames written this turn of the event loop, sent together at its end. */
  private readonly output: WriteCoalescer;

  private constructor(
    private readonly socket: net.Socket,
    private readonly decoder: FrameDecoder,
    /** Chunks are views into one reused buffer (plain TCP): what outlives a read is copied. */
    private readonly reusesReadBuffer: boolean,
  ) {
    this.output = new WriteCoalescer(socket, { concatBytesMax });
  }

  /** Connects, authenticates and resolves with an open connection. */
  static async open(options: ConnectOptions): Promise<ClientConnection> {
    const timeoutMs = options.connectTimeoutMs ?? 10_000;
    const plain = options.tls === undefined || options.tls === false;
    let connection: ClientConnection | undefined;
    const socket = plain
      ? net.connect({
          host: options.host,
          port: options.port,
          onread: {
            buffer: Buffer.allocUnsafe(readBufferBytes),
            callback: (bytes: number, buffer: Uint8Array): boolean => {
              connection?.received((buffer as Buffer).subarray(0, bytes));
              return true;
            },
          },
        })
      : tls.connect({ host: options.host, port: options.port, servername: net.isIP(options.host) === 0 ? options.host : undefined, ...(options.tls === true ? {} : options.tls) });
    socket.setNoDelay(true);
    const decoder = new FrameDecoder();
    connection = new ClientConnection(socket, decoder, plain);
    if (!plain) {
      const tlsConnection = connection;
      socket.on('data', (chunk: Buffer) => tlsConnection.received(chunk));
    }
    try {
      await connection.handshake(options, timeoutMs);
    } catch (error) {
      socket.destroy();
      throw error;
    }
    return connection;
  }

  private handshake(options: ConnectOptions, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let step: 'challenge' | 'auth' = 'challenge';
      const timer = setTimeout(() => finish(connectionClosed(`no handshake from ${options.host}:${options.port} within ${timeoutMs} ms`)), timeoutMs);
      const finish = (error?: BerthClientError): void => {
        clearTimeout(timer);
        this.receiver = () => undefined;
        this.socket.off('error', onError);
        this.socket.off('close', onClose);
        if (error !== undefined) {
          reject(error);
          return;
        }
        this.attach();
        resolve();
      };
      const onError = (error: Error): void => finish(connectionClosed(`cannot connect to ${options.host}:${options.port}: ${error.message}`, error));
      const onClose = (): void => finish(connectionClosed(`connection to ${options.host}:${options.port} closed during the handshake`));
      let challenge: Challenge | undefined;
      const onData = (chunk: Buffer): void => {
        let frames: Frame[];
        try {
          frames = this.decoder.push(chunk);
        } catch (error) {
          finish(new ProtocolError('ProtocolError', 0, `handshake: ${(error as Error).message}`));
          return;
        }
        for (const frame of frames) {
          try {
            if (frame.type === FrameType.Heartbeat) continue;
            if (frame.type === FrameType.Error) {
              const wire = decodeError(frame.payload);
              finish(errorFromWire(wire.nativeCode, wire.code, wire.message));
              return;
            }
            if (step === 'challenge' && frame.type === FrameType.Challenge) {
              challenge = decodeChallenge(frame.payload);
              const clientNonce = randomBytes(32);
              const credentials = options.credentials;
              const signature =
                credentials === undefined ? Buffer.alloc(0) : createHmac('sha256', credentials.secretAccessKey).update(challenge.serverNonce).update(clientNonce).digest();
              if (challenge.authMode === AuthMode.Keys && credentials === undefined) {
                finish(errorFromWire(1083, 'MissingAuthenticationToken', 'the server requires credentials: pass { credentials: { accessKeyId, secretAccessKey } } to Berth.connect'));
                return;
              }
              this.socket.write(encodeAuth(0xffff_ffff, { clientNonce, accessKeyId: credentials?.accessKeyId ?? '', signature }));
              step = 'auth';
              continue;
            }
            if (step === 'auth' && frame.type === FrameType.AuthOk) {
              this.identity = decodeAuthOk(frame.payload);
              this.heartbeatIntervalMs = challenge?.heartbeatIntervalMs ?? 5_000;
              finish();
              return;
            }
            finish(new ProtocolError('ProtocolError', 0, `handshake: unexpected ${frameTypeName(frame.type)}`));
            return;
          } catch (error) {
            finish(new ProtocolError('ProtocolError', 0, `handshake: ${(error as Error).message}`));
            return;
          }
        }
      };
      this.receiver = onData;
      this.socket.on('error', onError);
      this.socket.on('close', onClose);
    });
  }

  /**
   * Bytes from the socket. A chunk in the reused read buffer is passed on as it is when
   * the decoder will not keep it (it holds no unfinished frame and the chunk has at least
   * a length field: complete frames are handled now, an unfinished tail is copied by the
   * decoder); otherwise the decoder gets a copy.
   */
  private received(chunk: Buffer): void {
    const keepable = this.reusesReadBuffer && (this.decoder.bufferedBytes > 0 || chunk.length < 4) ? Buffer.from(chunk) : chunk;
    this.receiver(keepable);
  }

  private heartbeatIntervalMs = 5_000;

  private attach(): void {
    this.lastReceivedMs = Date.now();
    this.receiver = (chunk) => this.onData(chunk);
    this.socket.on('error', (error) => this.fail(connectionClosed(`connection error: ${error.message}`, error)));
    this.socket.on('close', () => this.fail(connectionClosed('connection closed')));
    this.heartbeatTimer = setInterval(() => this.heartbeat(), Math.max(50, Math.floor(this.heartbeatIntervalMs / 2)));
    this.heartbeatTimer.unref();
  }

  private heartbeat(): void {
    const nowMs = Date.now();
    if (nowMs - this.lastReceivedMs > this.heartbeatIntervalMs * 3) {
      this.fail(connectionClosed(`server silent for ${nowMs - this.lastReceivedMs} ms`));
      this.socket.destroy();
      return;
    }
    if (nowMs - this.lastSentMs >= this.heartbeatIntervalMs) this.write(encodeEmpty(FrameType.Heartbeat, 0));
  }

  get isOpen(): boolean {
    return this.closedError === undefined;
  }

  /** Called once when the connection closes (immediately if it already has). */
  onClose(listener: (error: BerthClientError) => void): void {
    if (this.closedError !== undefined) listener(this.closedError);
    else this.closeListeners.push(listener);
  }

  /** A request id not in use on this connection. */
  allocateRequestId(): number {
    for (;;) {
      const id = this.nextRequestId;
      this.nextRequestId = id >= requestIdMax ? 1 : id + 1;
      if (!this.pending.has(id) && !this.subscriptions.has(id)) return id;
    }
  }

  /**
   * Sends a frame built for a fresh request id; resolves with the answer decoded by
   * `decode`, which runs as soon as the answer arrives (its payload is not valid later).
   * A decode that throws fails the connection (a malformed answer).
   */
  request<T>(build: (requestId: number) => Buffer, expectedType: number, decode: (payload: Buffer) => T): Promise<T> {
    if (this.closedError !== undefined) return Promise.reject(this.closedError);
    const requestId = this.allocateRequestId();
    const frame = build(requestId);
    return new Promise<T>((resolve, reject) => {
      this.pending.set(requestId, { expectedType, decode, resolve: resolve as (value: unknown) => void, reject });
      this.write(frame);
    });
  }

  /** Opens a subscription: resolves with the decoded SUBSCRIBED payload; deliveries go to the handlers. */
  subscribe<T>(build: (requestId: number) => Buffer, handlers: SubscriptionHandlers, decode: (payload: Buffer) => T): { id: number; subscribed: Promise<T> } {
    if (this.closedError !== undefined) return { id: 0, subscribed: Promise.reject(this.closedError) };
    const requestId = this.allocateRequestId();
    this.subscriptions.set(requestId, handlers);
    const subscribed = new Promise<T>((resolve, reject) => {
      this.pending.set(requestId, { expectedType: FrameType.Subscribed, decode, resolve: resolve as (value: unknown) => void, reject });
    });
    this.write(build(requestId));
    return { id: requestId, subscribed };
  }

  /** Sends a frame that has no answer (CREDIT). */
  send(frame: Buffer): void {
    this.write(frame);
  }

  close(): void {
    this.output.flush();
    this.fail(connectionClosed('connection closed by the client'));
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private write(frame: Buffer): void {
    if (this.closedError !== undefined) return;
    this.lastSentMs = Date.now();
    this.output.write(frame);
  }

  private onData(chunk: Buffer): void {
    this.lastReceivedMs = Date.now();
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (error) {
      this.protocolFailure(error);
      return;
    }
    for (const frame of frames) {
      try {
        this.onFrame(frame);
      } catch (error) {
        this.protocolFailure(error);
        return;
      }
    }
  }

  private protocolFailure(error: unknown): void {
    const message = error instanceof ProtocolViolation ? error.message : String(error);
    this.fail(new ProtocolError('ProtocolError', 0, `malformed frame from the server: ${message}`));
    this.socket.destroy();
  }

  private onFrame(frame: Frame): void {
    if (frame.type === FrameType.Heartbeat) return;
    if (frame.type === FrameType.Delivery) {
      const messages = decodeMessages(frame.payload);
      this.subscriptions.get(frame.requestId)?.onDelivery(messages);
      return;
    }
    if (frame.requestId === 0 && frame.type === FrameType.Error) {
      const wire = decodeError(frame.payload);
      this.fail(errorFromWire(wire.nativeCode, wire.code, wire.message));
      return;
    }
    const pending = this.pending.get(frame.requestId);
    if (frame.type === FrameType.Error) {
      const wire = decodeError(frame.payload);
      const error = errorFromWire(wire.nativeCode, wire.code, wire.message);
      if (pending !== undefined) {
        this.pending.delete(frame.requestId);
        this.subscriptions.delete(frame.requestId);
        pending.reject(error);
        return;
      }
      const subscription = this.subscriptions.get(frame.requestId);
      if (subscription !== undefined) {
        this.subscriptions.delete(frame.requestId);
        subscription.onEnd(error);
      }
      return;
    }
    if (pending === undefined) throw new ProtocolViolation(`${frameTypeName(frame.type)} for request ${frame.requestId}, which is not pending`);
    if (frame.type !== pending.expectedType) throw new ProtocolViolation(`${frameTypeName(frame.type)} answers request ${frame.requestId}, expected ${frameTypeName(pending.expectedType)}`);
    this.pending.delete(frame.requestId);
    // The payload is a view into the read buffer: decoded now. A malformed one fails the
    // request and (thrown on to onData) the connection.
    let value: unknown;
    try {
      value = pending.decode(frame.payload);
    } catch (error) {
      pending.reject(new ProtocolError('ProtocolError', 0, `malformed ${frameTypeName(frame.type)} from the server: ${(error as Error).message}`));
      throw error;
    }
    pending.resolve(value);
  }

  /** Ends a subscription on this side (after UNSUBSCRIBED). */
  forgetSubscription(id: number): void {
    this.subscriptions.delete(id);
  }

  private fail(error: BerthClientError): void {
    if (this.closedError !== undefined) return;
    this.closedError = error;
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    const pending = [...this.pending.values()];
    this.pending.clear();
    const subscriptions = [...this.subscriptions.values()];
    this.subscriptions.clear();
    for (const request of pending) request.reject(error);
    for (const subscription of subscriptions) subscription.onEnd(error);
    for (const listener of this.closeListeners.splice(0)) listener(error);
  }
}
