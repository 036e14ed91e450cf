// A batching producer.
//
// send() queues the message and resolves when the server answered that it is durable (the
// server answers only after the fsync at the message's replica count). Messages queued
// within `lingerMs`, up to `batchSize`, travel in one SEND frame; up to
// `batchesInFlightMax` frames are outstanding at once.
//
// Retries: a batch whose connection was lost (or that the server answered with
// ServiceUnavailable) is sent again with backoff, up to `retries` times. On a FIFO queue
// each message carries a deduplication id (the caller's, or a random one made here), so a
// retried batch is enqueued once. On a standard queue delivery is at-least-once: a retried
// batch that had in fact been written before the connection broke is enqueued twice.
//
// Order: on a FIFO queue one batch is in flight at a time by default, so a retry can never
// overtake a later batch and per-group order is the order of send() calls.
//
// States: open -> closing (close() called: no new sends, queued ones are flushed) -> closed.

import { randomUuid } from '../core/uuid.js';
import type { Berth, SendOptions, SendResult, SendMessageInput } from './berth.js';
import { BerthClientError, clientClosed, isRetryable } from './errors.js';

export interface ProducerOptions {
  /** How long the first message of a batch waits for company (default 1 ms; 0 = next tick). */
  lingerMs?: number;
  /** Messages per SEND frame (1..1000, default 100). */
  batchSize?: number;
  /** SEND frames outstanding at once (default 8; 1 on FIFO queues). */
  batchesInFlightMax?: number;
  /** Retries of a batch after a lost connection or ServiceUnavailable (default 5). */
  retries?: number;
  /** Messages queued (not yet sent) beyond which send() waits (default 10,000). */
  queuedMessagesMax?: number;
}

interface Queued {
  message: SendMessageInput;
  resolve: (result: SendResult) => void;
  reject: (error: unknown) => void;
}

export class Producer {
  private readonly lingerMs: number;
  private readonly batchSize: number;
  private readonly batchesInFlightMax: number;
  private readonly retries: number;
  private readonly queuedMessagesMax: number;
  private readonly fifo: boolean;
  private queued: Queued[] = [];
  private lingerTimer: NodeJS.Timeout | undefined;
  private batchesInFlight = 0;
  private readonly idleWaiters: Array<() => void> = [];
  private readonly spaceWaiters: Array<() => void> = [];
  private state: 'open' | 'closing' | 'closed' = 'open';

  constructor(
    private readonly berth: Berth,
    readonly queue: string,
    options: ProducerOptions,
    private readonly onClosed: () => void,
  ) {
    this.fifo = queue.endsWith('.fifo');
    this.lingerMs = options.lingerMs ?? 1;
    this.batchSize = Math.min(1000, Math.max(1, options.batchSize ?? 100));
    this.batchesInFlightMax = Math.max(1, options.batchesInFlightMax ?? (this.fifo ? 1 : 8));
    this.retries = options.retries ?? 5;
    this.queuedMessagesMax = options.queuedMessagesMax ?? 10_000;
  }

  /** Queues one message; resolves with its id once it is durable. */
  async send(body: string, options: SendOptions = {}): Promise<SendResult> {
    if (this.state !== 'open') throw clientClosed(`producer for ${this.queue}`);
    while (this.queued.length >= this.queuedMessagesMax) {
      await new Promise<void>((resolve) => this.spaceWaiters.push(resolve));
      if (this.state !== 'open') throw clientClosed(`producer for ${this.queue}`);
    }
    const message: SendMessageInput = { body, ...options };
    if (this.fifo && message.deduplicationId === undefined) message.deduplicationId = randomUuid();
    return new Promise<SendResult>((resolve, reject) => {
      this.queued.push({ message, resolve, reject });
      this.schedule();
    });
  }

  /** Sends everything queued now and resolves when every send so far is answered. */
  async flush(): Promise<void> {
    this.clearLinger();
    this.pump(true);
    if (this.queued.length === 0 && this.batchesInFlight === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** Flushes, then refuses further sends. */
  async close(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'closing';
    for (const waiter of this.spaceWaiters.splice(0)) waiter();
    await this.flush();
    this.state = 'closed';
    this.onClosed();
  }

  private schedule(): void {
    if (this.queued.length >= this.batchSize) {
      this.clearLinger();
      this.pump(false);
      return;
    }
    if (this.lingerTimer !== undefined) return;
    this.lingerTimer = setTimeout(() => {
      this.lingerTimer = undefined;
      this.pump(true);
    }, this.lingerMs);
  }

  private clearLinger(): void {
    if (this.lingerTimer !== undefined) clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
  }

  /** Starts batches while there is room; partial batches only when `includePartial`. */
  private pump(includePartial: boolean): void {
    while (this.batchesInFlight < this.batchesInFlightMax && this.queued.length > 0) {
      if (!includePartial && this.queued.length < this.batchSize) break;
      const batch = this.queued.splice(0, this.batchSize);
      for (const waiter of this.spaceWaiters.splice(0)) waiter();
      this.batchesInFlight++;
      void this.sendBatch(batch).finally(() => {
        this.batchesInFlight--;
        // What queued up meanwhile goes out now: it has already waited its linger.
        this.pump(true);
        if (this.queued.length === 0 && this.batchesInFlight === 0) for (const waiter of this.idleWaiters.splice(0)) waiter();
      });
    }
  }

  private async sendBatch(batch: Queued[]): Promise<void> {
    let pending = batch;
    for (let attempt = 0; ; attempt++) {
      let results: Array<SendResult | BerthClientError>;
      try {
        results = await this.berth.send(this.queue, pending.map((entry) => entry.message));
      } catch (error) {
        if (isRetryable(error) && attempt < this.retries) {
          await backoff(attempt);
          continue;
        }
        for (const entry of pending) entry.reject(error);
        return;
      }
      const retry: Queued[] = [];
      pending.forEach((entry, index) => {
        const result = results[index];
        if (result === undefined) entry.reject(new BerthClientError('ProtocolError', 0, 'SEND answered fewer entries than sent'));
        else if (result instanceof BerthClientError) {
          if (isRetryable(result) && attempt < this.retries) retry.push(entry);
          else entry.reject(result);
        } else entry.resolve(result);
      });
      if (retry.length === 0) return;
      pending = retry;
      await backoff(attempt);
    }
  }
}

function backoff(attempt: number): Promise<void> {
  const waitMs = Math.min(2_000, 50 * 2 ** attempt) * (0.5 + Math.random() / 2);
  return new Promise((resolve) => setTimeout(resolve, waitMs));
}
