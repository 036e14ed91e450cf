// Push consumption: a MessageStream holds one subscription (SUBSCRIBE with credit) and
// hands messages out as an async iterator; a Consumer runs a handler over a stream with a
// given concurrency.
//
// MessageStream states and transitions:
//   subscribing -- SUBSCRIBED --> active -- connection lost --> subscribing (backoff, new
//   connection; messages already held keep their receipts, which are not tied to a
//   connection) ; active/subscribing -- close() --> closing (UNSUBSCRIBE, wait for
//   UNSUBSCRIBED, release buffered messages with visibility 0) --> closed ;
//   any -- non-retryable error (queue deleted) --> failed (readers get the error).
//
// Credit (flow control): the client holds at most `target` messages: buffered (not yet
// handed out) + handed out and not settled + credit granted and not yet used by the
// server. `target` adapts between 1 and `prefetch`: every 250 ms the stream measures the
// settle rate and aims to hold about one second of work plus what is in progress; when a
// reader waited on an empty buffer with no credit outstanding (starved), it doubles.
//
// Lease extension: every message held (buffered or in progress) whose lease has less than
// two thirds of the visibility timeout left gets its visibility set to the full timeout again, in
// one CHANGE_VISIBILITY frame per tick, until it is settled.

import { FrameType, decodeSubscribed, encodeCredit, encodeSubscribe, encodeUnsubscribe, type WireMessage } from '../api/native/wire.js';
import type { Berth } from './berth.js';
import type { ClientConnection } from './connection.js';
import { isRetryable, type BerthClientError } from './errors.js';
import type { Message } from './message.js';

export interface ConsumeOptions {
  /** Most messages held by this client at once (buffered + in progress + credit); default 100. */
  prefetch?: number;
  /** Learn the consumption rate and hold about a second's worth (default true); false holds `prefetch`. */
  adaptivePrefetch?: boolean;
  /** Lease length per delivery; default the queue's VisibilityTimeout. */
  visibilityTimeoutSeconds?: number;
  /** Extend leases of held messages before they expire (default true). */
  extendLeases?: boolean;
}

export interface ConsumerOptions extends ConsumeOptions {
  /** Handlers running at once (default 1). */
  concurrency?: number;
  /** A handler that throws returns its message to the queue after this delay (default 0). */
  nackDelaySeconds?: number;
  /** Called with handler failures and failed acks; default: console.error. */
  onError?: (error: unknown, message?: Message) => void;
}

export type MessageHandler = (message: Message) => Promise<void> | void;

type StreamState = 'subscribing' | 'active' | 'closing' | 'closed' | 'failed';

/**
 * A next() or take() waiting for a message; a take also has a deadline and ends empty at
 * it, and is answered with up to `takeMax` messages in a row (see serveReaders).
 */
interface Reader {
  resolve: (result: IteratorResult<Message>) => void;
  reject: (error: unknown) => void;
  deadlineMs?: number;
  expire?: () => void;
  takeMax?: number;
  resolveTake?: (messages: Message[]) => void;
}

const sampleIntervalMs = 250;
const batchMaxPerDelivery = 256;

export class MessageStream implements AsyncIterable<Message> {
  private state: StreamState = 'subscribing';
  private readonly prefetch: number;
  private readonly adaptive: boolean;
  private readonly extendLeases: boolean;
  private target: number;
  private readonly buffer: Message[] = [];
  private readonly handedOut = new Set<Message>();
  private readonly readers: Reader[] = [];
  /**
   * One timer per stream ends take()s that waited their `waitMs` (not one setTimeout and
   * clearTimeout per call): armed for the earliest deadline, left running when a take is
   * answered earlier, re-armed when it fires for the next deadline still waiting.
   */
  private takeTimer: NodeJS.Timeout | undefined;
  private takeTimerAtMs = Number.POSITIVE_INFINITY;
  private outstandingCredit = 0;
  private visibilityTimeoutSeconds = 30;
  private connection: ClientConnection | undefined;
  private subscriptionId = 0;
  private failure: unknown;
  private settledSinceSample = 0;
  private rateEstimate = 0;
  private starved = false;
  private lastSampleMs = Date.now();
  private readonly timer: NodeJS.Timeout;
  private readonly extending = new Set<Message>();
  private closing: Promise<void> | undefined;
  /** One listener for every message of the stream (not a closure per message). */
  private readonly settledListener = (message: Message): void => this.onSettled(message);

  constructor(
    private readonly berth: Berth,
    readonly queue: string,
    private readonly options: ConsumeOptions,
    private readonly onClosed: () => void,
  ) {
    this.prefetch = Math.max(1, Math.min(100_000, options.prefetch ?? 100));
    this.adaptive = options.adaptivePrefetch ?? true;
    this.extendLeases = options.extendLeases ?? true;
    this.target = this.adaptive ? Math.min(this.prefetch, 10) : this.prefetch;
    this.timer = setInterval(() => this.tick(), sampleIntervalMs);
    this.timer.unref();
    void this.subscribe(0);
  }

  /** Messages held now (buffered + in progress). */
  get heldCount(): number {
    return this.buffer.length + this.handedOut.size;
  }

  /** The current credit target (for tests and metrics). */
  get prefetchTarget(): number {
    return this.target;
  }

  [Symbol.asyncIterator](): AsyncIterator<Message> {
    return {
      next: () => this.next(),
      return: async () => {
        await this.close();
        return { done: true, value: undefined };
      },
    };
  }

  next(): Promise<IteratorResult<Message>> {
    const message = this.buffer.shift();
    if (message !== undefined) {
      this.handedOut.add(message);
      this.grant();
      return Promise.resolve({ done: false, value: message });
    }
    if (this.state === 'failed') return Promise.reject(this.failure);
    if (this.state === 'closing' || this.state === 'closed') return Promise.resolve({ done: true, value: undefined });
    if (this.outstandingCredit === 0) this.starved = true;
    return new Promise((resolve, reject) => this.readers.push({ resolve, reject }));
  }

  /**
   * Up to `maxMessages` messages: what is buffered now, or (when nothing is) the first to
   * arrive within `waitMs` plus whatever came with it. [] when none came or the stream ended.
   */
  async take(maxMessages: number, waitMs: number): Promise<Message[]> {
    if (this.buffer.length === 0) {
      if (this.state === 'failed') throw this.failure;
      if (this.state === 'closing' || this.state === 'closed') return [];
      if (this.outstandingCredit === 0) this.starved = true;
      return await new Promise<Message[]>((resolve, reject) => {
        const deadlineMs = Date.now() + waitMs;
        this.readers.push({
          resolve: (result) => resolve(result.done === true ? [] : [result.value]),
          reject,
          deadlineMs,
          expire: () => resolve([]),
          takeMax: maxMessages,
          resolveTake: resolve,
        });
        this.armTakeTimer(deadlineMs);
      });
    }
    const taken: Message[] = [];
    while (taken.length < maxMessages && this.buffer.length > 0) taken.push(this.takeBuffered());
    this.grant();
    return taken;
  }

  private armTakeTimer(deadlineMs: number): void {
    if (this.takeTimer !== undefined) {
      if (this.takeTimerAtMs <= deadlineMs) return;
      clearTimeout(this.takeTimer);
    }
    this.takeTimerAtMs = deadlineMs;
    this.takeTimer = setTimeout(() => this.expireTakes(), Math.max(0, deadlineMs - Date.now()));
    this.takeTimer.unref();
  }

  /** Ends the takes whose wait is over with nothing; re-arms for the next one still waiting. */
  private expireTakes(): void {
    this.takeTimer = undefined;
    this.takeTimerAtMs = Number.POSITIVE_INFINITY;
    const nowMs = Date.now();
    let nextMs = Number.POSITIVE_INFINITY;
    for (let index = 0; index < this.readers.length; ) {
      const reader = this.readers[index]!;
      if (reader.deadlineMs === undefined) {
        index++;
      } else if (reader.deadlineMs <= nowMs) {
        this.readers.splice(index, 1);
        reader.expire?.();
      } else {
        nextMs = Math.min(nextMs, reader.deadlineMs);
        index++;
      }
    }
    if (nextMs !== Number.POSITIVE_INFINITY) this.armTakeTimer(nextMs);
  }

  private stopTakeTimer(): void {
    if (this.takeTimer !== undefined) clearTimeout(this.takeTimer);
    this.takeTimer = undefined;
    this.takeTimerAtMs = Number.POSITIVE_INFINITY;
  }

  private takeBuffered(): Message {
    const message = this.buffer.shift()!;
    this.handedOut.add(message);
    return message;
  }

  /** Acks messages of this stream together (one ACK frame, one promise): see Berth.ackAll. */
  ackAll(messages: readonly Message[]): Promise<void> {
    return this.berth.ackAll(messages);
  }

  /** Stops the subscription, returns buffered messages to the queue, ends the iteration. */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    if (this.state === 'closed') return;
    const wasFailed = this.state === 'failed';
    this.state = 'closing';
    for (const reader of this.readers.splice(0)) reader.resolve({ done: true, value: undefined });
    this.stopTakeTimer();
    const connection = this.connection;
    if (!wasFailed && connection !== undefined && connection.isOpen && this.subscriptionId !== 0) {
      const subscriptionId = this.subscriptionId;
      try {
        await connection.request((id) => encodeUnsubscribe(id, subscriptionId), FrameType.Unsubscribed, () => undefined);
      } catch {
        // The connection went away: the server ended the subscription with it.
      }
      connection.forgetSubscription(subscriptionId);
    }
    await this.release(this.buffer.splice(0));
    this.state = 'closed';
    if (this.handedOut.size === 0) clearInterval(this.timer);
    this.onClosed();
  }

  /** Visibility 0 for messages nobody will process here, so other consumers get them now. */
  private async release(messages: Message[]): Promise<void> {
    for (let start = 0; start < messages.length; start += 1000) {
      const slice = messages.slice(start, start + 1000);
      for (const message of slice) message.onSettled = undefined;
      try {
        await this.berth.changeVisibility(this.queue, slice.map((message) => ({ receiptHandle: message.receiptHandle, visibilityTimeoutSeconds: 0 })));
      } catch {
        // Their leases expire on their own.
      }
    }
  }

  private async subscribe(attempt: number): Promise<void> {
    if (this.state !== 'subscribing') return;
    let connection: ClientConnection;
    try {
      connection = await this.berth.router.connectionFor(this.queue);
    } catch (error) {
      this.fail(error);
      return;
    }
    if (this.state !== 'subscribing') return;
    const initialCredit = Math.max(0, this.target - this.heldCount);
    const { id, subscribed } = connection.subscribe(
      (requestId) =>
        encodeSubscribe(requestId, {
          queue: this.queue,
          credit: initialCredit,
          visibilityTimeoutSeconds: this.options.visibilityTimeoutSeconds ?? -1,
          batchMax: Math.min(batchMaxPerDelivery, this.prefetch),
        }),
      {
        onDelivery: (messages) => this.onDelivery(id, messages),
        onEnd: (error) => this.onSubscriptionEnd(id, error),
      },
      // Taken as the answer is read, not after the await below: the first DELIVERY can come
      // in the same read, and its leases must be timed with the queue's visibility timeout.
      (payload) => {
        const answer = decodeSubscribed(payload);
        this.visibilityTimeoutSeconds = answer.visibilityTimeoutSeconds;
        return answer;
      },
    );
    this.connection = connection;
    this.subscriptionId = id;
    this.outstandingCredit = initialCredit;
    try {
      await subscribed;
      if (this.state === 'subscribing') this.state = 'active';
      this.grant();
    } catch (error) {
      if (this.subscriptionId !== id) return;
      this.subscriptionId = 0;
      if (isRetryable(error) && (this.state as StreamState) === 'subscribing') {
        await new Promise((resolve) => setTimeout(resolve, Math.min(2_000, 50 * 2 ** attempt)));
        await this.subscribe(attempt + 1);
        return;
      }
      this.fail(error);
    }
  }

  private onDelivery(subscriptionId: number, wires: WireMessage[]): void {
    if (subscriptionId !== this.subscriptionId) return;
    this.outstandingCredit = Math.max(0, this.outstandingCredit - wires.length);
    const receivedAtMs = Date.now();
    for (const wire of wires) {
      const message = this.berth.message(this.queue, wire, this.visibilityTimeoutSeconds, receivedAtMs);
      message.onSettled = this.settledListener;
      this.buffer.push(message);
    }
    this.serveReaders();
    this.grant();
  }

  /**
   * Hands buffered messages to waiting readers in arrival order: a take gets up to its
   * maximum in a row, a next() one. Not one message per reader in turn: with several
   * readers waiting, a FIFO group's consecutive messages (one delivery may hold several)
   * would be spread over them and the first reader would see the group's third message
   * before the second reader saw its second.
   */
  private serveReaders(): void {
    if (this.state !== 'active' && this.state !== 'subscribing') return;
    while (this.readers.length > 0 && this.buffer.length > 0) {
      const reader = this.readers.shift()!;
      if (reader.takeMax !== undefined && reader.resolveTake !== undefined) {
        const taken: Message[] = [];
        while (taken.length < reader.takeMax && this.buffer.length > 0) taken.push(this.takeBuffered());
        reader.resolveTake(taken);
      } else {
        reader.resolve({ done: false, value: this.takeBuffered() });
      }
    }
  }

  private onSubscriptionEnd(subscriptionId: number, error: BerthClientError): void {
    if (subscriptionId !== this.subscriptionId) return;
    this.subscriptionId = 0;
    this.outstandingCredit = 0;
    if (this.state === 'closing' || this.state === 'closed' || this.state === 'failed') return;
    if (isRetryable(error)) {
      this.state = 'subscribing';
      void this.subscribe(0);
      return;
    }
    this.fail(error);
  }

  private fail(error: unknown): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.state = 'failed';
    this.failure = error;
    for (const reader of this.readers.splice(0)) reader.reject(error);
    this.stopTakeTimer();
  }

  private onSettled(message: Message): void {
    // Usually a handed-out message; one settled while still buffered (a receive()d copy
    // acked by hand, a nack from elsewhere) is looked for in the buffer.
    if (!this.handedOut.delete(message)) {
      const index = this.buffer.indexOf(message);
      if (index >= 0) this.buffer.splice(index, 1);
    }
    this.settledSinceSample++;
    if (this.state === 'closed' && this.handedOut.size === 0) clearInterval(this.timer);
    this.grant();
  }

  /** Grants credit up to the target, in chunks so a busy stream sends few CREDIT frames. */
  private grant(): void {
    if (this.state !== 'active' || this.connection === undefined || this.subscriptionId === 0) return;
    const deficit = this.target - this.heldCount - this.outstandingCredit;
    if (deficit <= 0 || deficit < Math.max(1, Math.floor(this.target / 4))) return;
    this.outstandingCredit += deficit;
    this.connection.send(encodeCredit(this.subscriptionId, deficit));
  }

  private tick(): void {
    const nowMs = Date.now();
    if (this.adaptive) {
      const elapsedSeconds = Math.max(0.001, (nowMs - this.lastSampleMs) / 1000);
      const rate = this.settledSinceSample / elapsedSeconds;
      this.rateEstimate = this.rateEstimate === 0 ? rate : 0.7 * this.rateEstimate + 0.3 * rate;
      const desired = Math.ceil(this.rateEstimate) + this.handedOut.size;
      const next = this.starved && this.readers.length > 0 ? Math.max(desired, this.target * 2) : Math.max(desired, Math.min(10, this.prefetch));
      this.target = Math.max(1, Math.min(this.prefetch, next));
      this.starved = this.readers.length > 0 && this.outstandingCredit === 0;
      this.settledSinceSample = 0;
      this.lastSampleMs = nowMs;
      this.grant();
    }
    if (this.extendLeases) this.extendExpiring(nowMs);
  }

  private extendExpiring(nowMs: number): void {
    const visibility = this.visibilityTimeoutSeconds;
    if (visibility < 2) return;
    const due: Message[] = [];
    const check = (message: Message): void => {
      if (message.settled || this.extending.has(message) || message.leaseExpiresAtMs === undefined) return;
      // Two thirds of the lease left is the mark: a slow fsync or a busy event loop still has a third to spare.
      if (message.leaseExpiresAtMs - nowMs < (visibility * 1000 * 2) / 3) due.push(message);
    };
    for (const message of this.buffer) check(message);
    for (const message of this.handedOut) check(message);
    if (due.length === 0) return;
    for (let start = 0; start < due.length; start += 1000) {
      const slice = due.slice(start, start + 1000);
      for (const message of slice) this.extending.add(message);
      const sentAtMs = Date.now();
      this.berth.changeVisibility(this.queue, slice.map((message) => ({ receiptHandle: message.receiptHandle, visibilityTimeoutSeconds: visibility }))).then(
        (results) => {
          slice.forEach((message, index) => {
            this.extending.delete(message);
            if (results[index] === null) message.leaseExpiresAtMs = sentAtMs + visibility * 1000;
          });
        },
        () => {
          for (const message of slice) this.extending.delete(message);
        },
      );
    }
  }
}

/**
 * Runs a handler over a queue. A handler that resolves acks its message (unless it settled
 * it itself); one that throws nacks it with `nackDelaySeconds`. close() stops taking new
 * messages, returns the buffered ones to the queue, waits for running handlers and their
 * acks: a graceful drain.
 */
export class Consumer {
  private readonly stream: MessageStream;
  private readonly workers: Promise<void>[] = [];
  private readonly settling = new Set<Promise<void>>();
  private closing: Promise<void> | undefined;
  private readonly onError: (error: unknown, message?: Message) => void;
  private processedCount = 0;

  constructor(
    private readonly berth: Berth,
    readonly queue: string,
    private readonly handler: MessageHandler,
    private readonly options: ConsumerOptions,
    private readonly onClosed: () => void,
  ) {
    const concurrency = Math.max(1, options.concurrency ?? 1);
    this.onError = options.onError ?? ((error) => console.error(`berth consumer ${queue}:`, error));
    this.stream = new MessageStream(berth, queue, { ...options, prefetch: options.prefetch ?? Math.max(100, concurrency * 2) }, () => undefined);
    for (let index = 0; index < concurrency; index++) this.workers.push(this.work());
  }

  /** Messages whose handler finished (acked or nacked). */
  get processed(): number {
    return this.processedCount;
  }

  /** Resolves when the consumer stopped (close() or a fatal error such as a deleted queue). */
  get done(): Promise<void> {
    return Promise.all(this.workers).then(() => undefined);
  }

  private async work(): Promise<void> {
    for (;;) {
      let next: IteratorResult<Message>;
      try {
        next = await this.stream.next();
      } catch (error) {
        if (this.closing === undefined) this.onError(error);
        return;
      }
      if (next.done === true) return;
      const message = next.value;
      try {
        await this.handler(message);
        if (!message.settled) this.track(message.ack(), message);
      } catch (error) {
        this.onError(error, message);
        if (!message.settled) this.track(message.nack(this.options.nackDelaySeconds ?? 0), message);
      }
      this.processedCount++;
    }
  }

  private track(settlement: Promise<void>, message: Message): void {
    const tracked = settlement.catch((error: unknown) => this.onError(error, message));
    this.settling.add(tracked);
    void tracked.finally(() => this.settling.delete(tracked));
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.stream.close();
      await Promise.all(this.workers);
      await Promise.allSettled([...this.settling]);
      await this.berth.acker(this.queue).flush();
      this.onClosed();
    })();
    return this.closing;
  }
}
