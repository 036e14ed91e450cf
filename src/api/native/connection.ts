// One native-protocol connection on the server side.
//
// States and transitions:
//   awaiting-auth  -- CHALLENGE sent on open; the only frame accepted is AUTH (or HEARTBEAT)
//        | AUTH verified: AUTH_OK                      | anything else, bad AUTH, timeout:
//        v                                             v ERROR frame, then closing
//   open           -- requests run concurrently and are answered out of order by request id;
//        |            subscriptions push DELIVERY frames within their credit
//        | peer closed, silent > idle timeout, protocol violation, server stopping
//        v
//   closing        -- no new frames read; subscriptions aborted; answers still in flight
//        |            are dropped when the socket is gone
//        v
//   closed
//
// Bounds (a slow or hostile peer must not make the server buffer without limit):
// - the frame decoder buffers at most one frame (<= frameBytesMax) plus one chunk;
// - at most `requestsInFlightMax` requests run at once: reading pauses beyond that;
// - when the socket's unsent bytes exceed `writeHighWaterBytes`, reading pauses (so no
//   new answers are produced) and subscriptions stop pushing until 'drain'.

import { WriteCoalescer } from '../../io/write-coalescer.js';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../../core/clock.js';
import { isBerthError } from '../../protocol/errors.js';
import { NativeOperations, toWireError, wireErrorOf } from './operations.js';
import {
  AuthMode,
  FrameDecoder,
  FrameType,
  ProtocolViolation,
  batchEntriesMax,
  decodeAck,
  decodeAuth,
  decodeChangeVisibility,
  decodeCredit,
  decodeJsonPayload,
  decodeReceive,
  decodeSend,
  decodeSubscribe,
  decodeUnsubscribe,
  encodeAuthOk,
  encodeBatchResult,
  encodeChallenge,
  encodeEmpty,
  encodeError,
  encodeJsonFrame,
  encodeMessages,
  encodeSendResult,
  encodeSubscribed,
  frameTypeName,
  type Frame,
  type WireError,
} from './wire.js';

export type NativeAuth = { mode: 'open' } | { mode: 'keys'; credentials: ReadonlyMap<string, string> };

export interface ConnectionSettings {
  auth: NativeAuth;
  accountId: string;
  clock: Clock;
  logger: Logger;
  frameBytesMax: number;
  heartbeatIntervalMs: number;
  /** Silence (no frame received) after which the connection is closed. */
  idleTimeoutMs: number;
  handshakeTimeoutMs: number;
  requestsInFlightMax: number;
  writeHighWaterBytes: number;
  /** Longest server-side long poll of a subscription before it loops. */
  subscriptionPollMs: number;
  serverVersion: string;
}

type State = 'awaiting-auth' | 'open' | 'closing' | 'closed';

interface Subscription {
  id: number;
  queue: string;
  credit: number;
  visibilityTimeoutSeconds: number;
  batchMax: number;
  abort: AbortController;
  stopped: boolean;
  /** Wakes the loop when credit arrives, the socket drains or the subscription stops. */
  wake: (() => void) | undefined;
  done: Promise<void>;
}

const clientNonceBytesMin = 16;
const clientNonceBytesMax = 64;

export class NativeConnection {
  private state: State = 'awaiting-auth';
  private readonly decoder: FrameDecoder;
  private readonly serverNonce = randomBytes(32);
  private senderId = '';
  /** Request ids of requests running and of active subscriptions: unique per connection. */
  private readonly busyIds = new Set<number>();
  private requestsInFlight = 0;
  private readonly subscriptions = new Map<number, Subscription>();
  private lastReceivedMs: number;
  /** A subscription with credit waits for the socket to drain (see onDrain). */
  private waitingForDrain = false;
  private lastSentMs: number;
  private heartbeatTimer: TimerHandle | undefined;
  private handshakeTimer: TimerHandle | undefined;
  private readPaused = false;
  private readonly closedPromise: Promise<void>;
  private readonly output: WriteCoalescer;
  private resolveClosed!: () => void;

  constructor(
    private readonly socket: Socket,
    private readonly operations: NativeOperations,
    private readonly settings: ConnectionSettings,
    private readonly onClosed: (connection: NativeConnection) => void,
  ) {
    this.decoder = new FrameDecoder(settings.frameBytesMax);
    this.output = new WriteCoalescer(socket, { onFlushed: () => this.onDrain() });
    this.lastReceivedMs = settings.clock.monotonicMs();
    this.lastSentMs = this.lastReceivedMs;
    this.closedPromise = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.onDrain());
    socket.on('error', (error) => this.settings.logger.debug({ err: error }, 'native connection error'));
    socket.on('close', () => this.onSocketClosed());
    socket.on('end', () => this.close());
    this.write(
      encodeChallenge({
        authMode: settings.auth.mode === 'open' ? AuthMode.Open : AuthMode.Keys,
        serverNonce: this.serverNonce,
        heartbeatIntervalMs: settings.heartbeatIntervalMs,
        frameBytesMax: settings.frameBytesMax,
        serverVersion: settings.serverVersion,
      }),
    );
    this.handshakeTimer = settings.clock.setTimer(settings.handshakeTimeoutMs, () => {
      if (this.state === 'awaiting-auth') this.fail(0, wireErrorOf('MissingAuthenticationToken', `no AUTH within ${settings.handshakeTimeoutMs} ms`));
    });
    this.scheduleHeartbeat();
  }

  get closed(): Promise<void> {
    return this.closedPromise;
  }

  /** Server stopping: stop subscriptions, let running requests answer, then close. */
  async shutdown(graceMs: number): Promise<void> {
    for (const subscription of this.subscriptions.values()) this.stopSubscription(subscription);
    const deadline = this.settings.clock.monotonicMs() + graceMs;
    while (this.requestsInFlight > 0 && this.state !== 'closed' && this.settings.clock.monotonicMs() < deadline) {
      await new Promise<void>((resolve) => this.settings.clock.setTimer(10, resolve));
    }
    this.close();
  }

  // ---- input -------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.lastReceivedMs = this.settings.clock.monotonicMs();
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (error) {
      if (error instanceof ProtocolViolation) {
        this.fail(0, wireErrorOf('SerializationException', `protocol error: ${error.message}`));
        return;
      }
      throw error;
    }
    for (const frame of frames) {
      if (this.state !== 'awaiting-auth' && this.state !== 'open') return;
      try {
        this.onFrame(frame);
      } catch (error) {
        if (error instanceof ProtocolViolation) {
          this.fail(frame.requestId, wireErrorOf('SerializationException', `protocol error in ${frameTypeName(frame.type)}: ${error.message}`));
          return;
        }
        throw error;
      }
    }
    this.updateReading();
  }

  private onFrame(frame: Frame): void {
    if (frame.type === FrameType.Heartbeat) return;
    if (this.state === 'awaiting-auth') {
      if (frame.type !== FrameType.Auth) {
        this.fail(frame.requestId, wireErrorOf('MissingAuthenticationToken', `${frameTypeName(frame.type)} before AUTH: authenticate first`));
        return;
      }
      this.authenticate(frame);
      return;
    }
    switch (frame.type) {
      case FrameType.Credit: {
        const credit = decodeCredit(frame.payload);
        const subscription = this.subscriptions.get(frame.requestId);
        // Credit for a subscription that just ended is not an error: the two crossed.
        if (subscription !== undefined && !subscription.stopped) {
          subscription.credit = Math.min(0xffff_ffff, subscription.credit + credit);
          subscription.wake?.();
        }
        return;
      }
      case FrameType.Auth:
        this.fail(frame.requestId, wireErrorOf('InvalidSecurity', 'AUTH on an authenticated connection'));
        return;
      default:
        break;
    }
    const requestId = frame.requestId;
    if (requestId === 0) throw new ProtocolViolation(`${frameTypeName(frame.type)} with request id 0 (reserved for connection-level frames)`);
    if (this.busyIds.has(requestId)) {
      this.write(encodeError(requestId, wireErrorOf('InvalidParameterValue', `request id ${requestId} is already in use on this connection`)));
      return;
    }
    // Decode synchronously: the payload is a view into the decoder's buffer.
    let run: () => Promise<Buffer>;
    switch (frame.type) {
      case FrameType.Send: {
        const { queue, entries } = decodeSend(frame.payload);
        run = async () => encodeSendResult(requestId, await this.operations.send(queue, entries, this.senderId));
        break;
      }
      case FrameType.Receive: {
        const receive = decodeReceive(frame.payload);
        const abort = new AbortController();
        run = async () => {
          const onClose = (): void => abort.abort();
          this.socket.once('close', onClose);
          try {
            return encodeMessages(FrameType.Messages, requestId, await this.operations.receive(receive.queue, receive.maxMessages, receive.visibilityTimeoutSeconds, receive.waitMs, abort.signal));
          } finally {
            this.socket.off('close', onClose);
          }
        };
        break;
      }
      case FrameType.Ack: {
        const { queue, receiptHandles } = decodeAck(frame.payload);
        run = async () => encodeBatchResult(requestId, await this.operations.ack(queue, receiptHandles));
        break;
      }
      case FrameType.ChangeVisibility: {
        const { queue, changes } = decodeChangeVisibility(frame.payload);
        run = async () => encodeBatchResult(requestId, await this.operations.changeVisibility(queue, changes));
        break;
      }
      case FrameType.Admin: {
        const request = decodeJsonPayload(frame.payload, 'ADMIN');
        run = async () => encodeJsonFrame(FrameType.AdminResult, requestId, await this.operations.admin(request));
        break;
      }
      case FrameType.Subscribe: {
        const subscribe = decodeSubscribe(frame.payload);
        this.subscribe(requestId, subscribe.queue, subscribe.credit, subscribe.visibilityTimeoutSeconds, subscribe.batchMax);
        return;
      }
      case FrameType.Unsubscribe: {
        const subscriptionId = decodeUnsubscribe(frame.payload);
        const subscription = this.subscriptions.get(subscriptionId);
        run = async () => {
          if (subscription !== undefined) {
            this.stopSubscription(subscription);
            await subscription.done;
          }
          return encodeEmpty(FrameType.Unsubscribed, requestId);
        };
        break;
      }
      default:
        throw new ProtocolViolation(`unknown frame type ${frameTypeName(frame.type)}`);
    }
    this.runRequest(requestId, run);
  }

  private runRequest(requestId: number, run: () => Promise<Buffer>): void {
    this.busyIds.add(requestId);
    this.requestsInFlight++;
    run().then(
      (answer) => this.finishRequest(requestId, answer),
      (error: unknown) => {
        if (!isBerthError(error)) this.settings.logger.error({ err: error, requestId }, 'native request failed unexpectedly');
        this.finishRequest(requestId, encodeError(requestId, toWireError(error)));
      },
    );
    this.updateReading();
  }

  private finishRequest(requestId: number, answer: Buffer): void {
    this.busyIds.delete(requestId);
    this.requestsInFlight--;
    this.write(answer);
    this.updateReading();
  }

  private authenticate(frame: Frame): void {
    const auth = decodeAuth(frame.payload);
    if (auth.clientNonce.length < clientNonceBytesMin || auth.clientNonce.length > clientNonceBytesMax) {
      this.fail(frame.requestId, wireErrorOf('InvalidSecurity', `client nonce must be ${clientNonceBytesMin} to ${clientNonceBytesMax} bytes`));
      return;
    }
    if (this.settings.auth.mode === 'keys') {
      const secret = this.settings.auth.credentials.get(auth.accessKeyId);
      if (secret === undefined) {
        this.fail(frame.requestId, wireErrorOf('InvalidClientTokenId', 'The security token included in the request is invalid.'));
        return;
      }
      const expected = createHmac('sha256', secret).update(this.serverNonce).update(auth.clientNonce).digest();
      if (auth.signature.length !== expected.length || !timingSafeEqual(auth.signature, expected)) {
        this.fail(frame.requestId, wireErrorOf('SignatureDoesNotMatch', 'The signature of the handshake does not match the access key.'));
        return;
      }
    }
    this.senderId = auth.accessKeyId !== '' ? auth.accessKeyId : this.settings.accountId;
    this.state = 'open';
    this.handshakeTimer?.cancel();
    this.handshakeTimer = undefined;
    this.write(encodeAuthOk(frame.requestId, this.senderId));
  }

  // ---- subscriptions -----------------------------------------------------------------

  private subscribe(requestId: number, queue: string, credit: number, visibilityTimeoutSeconds: number, batchMax: number): void {
    if (batchMax < 1 || batchMax > batchEntriesMax) {
      this.write(encodeError(requestId, wireErrorOf('InvalidParameterValue', `batchMax must be between 1 and ${batchEntriesMax}, got ${batchMax}.`)));
      return;
    }
    this.busyIds.add(requestId);
    const subscription: Subscription = { id: requestId, queue, credit, visibilityTimeoutSeconds: -1, batchMax, abort: new AbortController(), stopped: false, wake: undefined, done: Promise.resolve() };
    this.subscriptions.set(requestId, subscription);
    subscription.done = (async () => {
      try {
        subscription.visibilityTimeoutSeconds = await this.operations.effectiveVisibility(queue, visibilityTimeoutSeconds);
        this.write(encodeSubscribed(requestId, subscription.visibilityTimeoutSeconds));
        await this.pushLoop(subscription);
      } catch (error) {
        if (!isBerthError(error)) this.settings.logger.error({ err: error, queue }, 'native subscription failed unexpectedly');
        // An ERROR with the subscription's id ends the subscription on the client side.
        this.write(encodeError(requestId, toWireError(error)));
      } finally {
        this.subscriptions.delete(requestId);
        this.busyIds.delete(requestId);
      }
    })();
  }

  /**
   * Long-polls the queue for the client and pushes what it gets, never more than the
   * credit granted and never while the socket is above its high-water mark. A receive's
   * messages are always pushed (if the socket is still there), even after a stop, so no
   * message is leased to nobody until its visibility expires.
   */
  private async pushLoop(subscription: Subscription): Promise<void> {
    while (!subscription.stopped && this.state === 'open') {
      if (subscription.credit === 0 || this.output.writableLength > this.settings.writeHighWaterBytes) {
        if (subscription.credit > 0) this.waitingForDrain = true;
        await new Promise<void>((resolve) => {
          subscription.wake = resolve;
        });
        subscription.wake = undefined;
        continue;
      }
      const messages = await this.operations.receive(
        subscription.queue,
        Math.min(subscription.credit, subscription.batchMax),
        subscription.visibilityTimeoutSeconds,
        this.settings.subscriptionPollMs,
        subscription.abort.signal,
      );
      if (messages.length === 0) continue;
      subscription.credit -= messages.length;
      this.write(encodeMessages(FrameType.Delivery, subscription.id, messages));
    }
  }

  private stopSubscription(subscription: Subscription): void {
    if (subscription.stopped) return;
    subscription.stopped = true;
    subscription.abort.abort();
    subscription.wake?.();
  }

  // ---- output, flow control, liveness ------------------------------------------------

  private write(frame: Buffer): void {
    if (this.state === 'closed' || this.socket.destroyed) return;
    this.lastSentMs = this.settings.clock.monotonicMs();
    this.output.write(frame);
  }

  private updateReading(): void {
    if (this.state === 'closed') return;
    const shouldPause = this.requestsInFlight >= this.settings.requestsInFlightMax || this.output.writableLength > this.settings.writeHighWaterBytes;
    if (shouldPause && !this.readPaused) {
      this.readPaused = true;
      this.socket.pause();
    } else if (!shouldPause && this.readPaused) {
      this.readPaused = false;
      this.socket.resume();
    }
  }

  /**
   * After every flush that left the socket below its high-water mark, and on 'drain':
   * subscriptions wait here only when one held back for the socket (those out of credit
   * wait for a CREDIT frame), so most flushes wake nobody.
   */
  private onDrain(): void {
    this.updateReading();
    if (!this.waitingForDrain) return;
    this.waitingForDrain = false;
    for (const subscription of this.subscriptions.values()) subscription.wake?.();
  }

  private scheduleHeartbeat(): void {
    const interval = this.settings.heartbeatIntervalMs;
    this.heartbeatTimer = this.settings.clock.setTimer(Math.max(10, Math.floor(interval / 2)), () => {
      if (this.state === 'closing' || this.state === 'closed') return;
      const nowMs = this.settings.clock.monotonicMs();
      if (nowMs - this.lastReceivedMs > this.settings.idleTimeoutMs) {
        this.settings.logger.debug({ silentMs: nowMs - this.lastReceivedMs }, 'native connection silent: closing');
        this.fail(0, wireErrorOf('RequestExpired', `no frame for ${this.settings.idleTimeoutMs} ms: closing`));
        return;
      }
      // Heartbeats go out only on an otherwise quiet connection, and never into a full socket.
      if (nowMs - this.lastSentMs >= interval && this.output.writableLength <= this.settings.writeHighWaterBytes) this.write(encodeEmpty(FrameType.Heartbeat, 0));
      this.scheduleHeartbeat();
    });
  }

  /** Answers with an error (when the socket can take it) and closes. */
  private fail(requestId: number, error: WireError): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    if (this.output.writableLength <= this.settings.writeHighWaterBytes) this.write(encodeError(requestId, error));
    this.close();
  }

  close(): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.state = 'closing';
    this.heartbeatTimer?.cancel();
    this.handshakeTimer?.cancel();
    for (const subscription of this.subscriptions.values()) this.stopSubscription(subscription);
    this.output.flush();
    this.socket.end();
    // A peer that does not read must not keep the socket (and its buffers) alive.
    const forceTimer = this.settings.clock.setTimer(1000, () => this.socket.destroy());
    this.socket.once('close', () => forceTimer.cancel());
    if (this.socket.destroyed) this.onSocketClosed();
  }

  private onSocketClosed(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.heartbeatTimer?.cancel();
    this.handshakeTimer?.cancel();
    for (const subscription of this.subscriptions.values()) this.stopSubscription(subscription);
    this.onClosed(this);
    this.resolveClosed();
  }
}
