// The Berth client: typed calls over the native protocol, and the factories for
// producers and consumers. Every call goes through a Router (one node today), so a lost
// connection is reopened with backoff on the next call.

import {
  FrameType,
  decodeBatchResult,
  decodeJsonPayload,
  decodeMessages,
  decodeSendResult,
  encodeAck,
  encodeChangeVisibility,
  encodeJsonFrame,
  encodeReceive,
  encodeSend,
  receiveWaitMsMax,
  type WireAttributes,
  type WireError,
  type WireMessage,
  type WireSendEntry,
} from '../api/native/wire.js';
import type { ClientConnection, ConnectOptions, Credentials } from './connection.js';
import { BerthClientError, InvalidRequestError, errorFromWire } from './errors.js';
import { Consumer, MessageStream, type ConsumeOptions, type ConsumerOptions, type MessageHandler } from './consumer.js';
import { Producer, type ProducerOptions } from './producer.js';
import { SingleNodeRouter, type ReconnectOptions, type Router } from './router.js';
import { ClusterRouter, type ClusterRoutingOptions } from './cluster-router.js';
import { Message } from './message.js';

export interface BerthOptions extends ReconnectOptions {
  /** berth://host:port (plain TCP) or berths://host:port (TLS). Default port 9325. */
  url: string;
  /** Access key pair of the server's auth file; omit against an open server. */
  credentials?: Credentials;
  /**
   * Cluster routing: learn each queue's partition primaries from the node at `url` and send
   * every call straight to the primary it concerns (no forwarding hop), following primary
   * changes; `{ zone, region }` prefers nodes there when several could serve a call.
   * Against a single node it changes nothing.
   */
  cluster?: boolean | ClusterRoutingOptions;
  /** Extra TLS options for berths:// (e.g. `ca` for a self-signed certificate). */
  tls?: import('node:tls').ConnectionOptions;
  connectTimeoutMs?: number;
}

export type MessageAttributeValue = WireAttributes[string];

export interface SendOptions {
  /** FIFO queues: the message group (order key). Standard queues: the fair-queue tenant key. */
  groupId?: string;
  /** FIFO queues: sends with the same id within 5 minutes are enqueued once. */
  deduplicationId?: string;
  /** Standard queues only. */
  delaySeconds?: number;
  /** Hosts that must hold the message durably before the send resolves (1 on a single node). */
  replicaCount?: number;
  attributes?: Record<string, MessageAttributeValue>;
}

export interface SendMessageInput extends SendOptions {
  body: string;
}

export interface SendResult {
  messageId: string;
  /** FIFO queues: increasing within a message group's partition. */
  sequenceNumber?: string;
}

export interface ReceiveOptions {
  /** 1 to 1000; default 10. */
  maxMessages?: number;
  /** Lease length; default the queue's VisibilityTimeout. */
  visibilityTimeoutSeconds?: number;
  /** Long poll up to this long for the first message (max 20,000); default 0. */
  waitMs?: number;
}

export interface VisibilityChangeInput {
  receiptHandle: string;
  visibilityTimeoutSeconds: number;
}

export interface QueueCounts {
  visible: number;
  inflight: number;
  delayed: number;
  oldestMessageAgeSeconds: number;
}

const defaultPort = 9325;

export function parseBerthUrl(url: string): { host: string; port: number; tls: boolean } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidRequestError('InvalidParameterValue', 0, `not a URL: ${url} (expected berth://host:port)`);
  }
  if (parsed.protocol !== 'berth:' && parsed.protocol !== 'berths:') throw new InvalidRequestError('InvalidParameterValue', 0, `URL scheme must be berth: or berths:, got ${parsed.protocol}`);
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  return { host: host === '' ? '127.0.0.1' : host, port: parsed.port === '' ? defaultPort : Number(parsed.port), tls: parsed.protocol === 'berths:' };
}

export class Berth {
  private closed = false;
  private readonly producers = new Set<Producer>();
  private readonly consumers = new Set<Consumer>();
  private readonly streams = new Set<MessageStream>();
  private readonly ackers = new Map<string, BatchAcker>();

  private constructor(readonly router: Router) {}

  /** Connects (and authenticates) once, so a wrong URL or key fails here rather than later. */
  static async connect(options: BerthOptions): Promise<Berth> {
    const { host, port, tls } = parseBerthUrl(options.url);
    const connectOptions: ConnectOptions = { host, port };
    if (tls) connectOptions.tls = options.tls ?? true;
    if (options.credentials !== undefined) connectOptions.credentials = options.credentials;
    if (options.connectTimeoutMs !== undefined) connectOptions.connectTimeoutMs = options.connectTimeoutMs;
    const router: Router = options.cluster === undefined || options.cluster === false
      ? new SingleNodeRouter(connectOptions, options)
      : new ClusterRouter(connectOptions, options, options.cluster === true ? {} : options.cluster);
    await router.connectionFor();
    return new Berth(router);
  }

  /** Builds a client over another Router (the cluster router, tests). */
  static withRouter(router: Router): Berth {
    return new Berth(router);
  }

  // ---- queues --------------------------------------------------------------------

  private async admin(queue: string | undefined, request: Record<string, unknown>): Promise<Record<string, unknown>> {
    const connection = await this.router.connectionFor(queue);
    return (await connection.request((id) => encodeJsonFrame(FrameType.Admin, id, request), FrameType.AdminResult, (payload) => decodeJsonPayload(payload, 'ADMIN_RESULT'))) as Record<string, unknown>;
  }

  /** Creates the queue (a name ending in .fifo gets FifoQueue=true) or returns it when it exists with the same attributes. */
  async createQueue(name: string, options: { attributes?: Record<string, string>; tags?: Record<string, string> } = {}): Promise<string> {
    const attributes = { ...(options.attributes ?? {}) };
    if (name.endsWith('.fifo') && attributes['FifoQueue'] === undefined) attributes['FifoQueue'] = 'true';
    const result = await this.admin(name, { op: 'createQueue', queue: name, attributes, tags: options.tags ?? {} });
    return String(result['queue']);
  }

  async deleteQueue(name: string): Promise<void> {
    await this.admin(name, { op: 'deleteQueue', queue: name });
  }

  async listQueues(prefix?: string): Promise<string[]> {
    const result = await this.admin(undefined, prefix === undefined ? { op: 'listQueues' } : { op: 'listQueues', prefix });
    return result['queues'] as string[];
  }

  async getQueueAttributes(name: string): Promise<Record<string, string>> {
    const result = await this.admin(name, { op: 'getQueueAttributes', queue: name });
    return result['attributes'] as Record<string, string>;
  }

  async setQueueAttributes(name: string, attributes: Record<string, string>): Promise<void> {
    await this.admin(name, { op: 'setQueueAttributes', queue: name, attributes });
  }

  async purgeQueue(name: string): Promise<void> {
    await this.admin(name, { op: 'purgeQueue', queue: name });
  }

  async queueCounts(name: string): Promise<QueueCounts> {
    const result = await this.admin(name, { op: 'queueCounts', queue: name });
    return result['counts'] as QueueCounts;
  }

  // ---- topics (docs/topics.md) -----------------------------------------------------

  /** Creates a topic (or returns it when it exists alike): publish to it, receive from its subscriptions. */
  async createTopic(name: string, options: { attributes?: Record<string, string>; tags?: Record<string, string> } = {}): Promise<string> {
    const attributes = { ...(options.attributes ?? {}) };
    if (name.endsWith('.fifo') && attributes['FifoQueue'] === undefined) attributes['FifoQueue'] = 'true';
    const result = await this.admin(name, { op: 'createTopic', queue: name, attributes, tags: options.tags ?? {} });
    return String(result['queue']);
  }

  /**
   * Creates the queue `subscription` as a subscription of `topic`: from now on it gets
   * every message published to the topic (those its filter policy matches, when given).
   * Receive, ack and so on with the subscription's name, like any queue.
   */
  async subscribe(topic: string, subscription: string, options: { filterPolicy?: string | Record<string, unknown>; attributes?: Record<string, string>; tags?: Record<string, string> } = {}): Promise<string> {
    const attributes = { ...(options.attributes ?? {}) };
    if (subscription.endsWith('.fifo') && attributes['FifoQueue'] === undefined) attributes['FifoQueue'] = 'true';
    const request: Record<string, unknown> = { op: 'subscribe', queue: subscription, topic, attributes, tags: options.tags ?? {} };
    if (options.filterPolicy !== undefined) request['filterPolicy'] = typeof options.filterPolicy === 'string' ? options.filterPolicy : JSON.stringify(options.filterPolicy);
    const result = await this.admin(subscription, request);
    return String(result['queue']);
  }

  /** Removes a subscription (its messages go; the topic and other subscriptions stay). */
  async unsubscribe(subscription: string): Promise<void> {
    await this.admin(subscription, { op: 'unsubscribe', queue: subscription });
  }

  /** Publishes to a topic: every subscription gets each message. The same as send to the topic. */
  publish(topic: string, messages: readonly SendMessageInput[]): Promise<Array<SendResult | BerthClientError>> {
    return this.send(topic, messages);
  }

  // ---- messages ------------------------------------------------------------------

  /**
   * Sends up to 1000 messages in one frame; resolves when each is durable (or failed on
   * its own): a SendResult or a BerthClientError per message, in order. Throws when the
   * whole request fails (queue missing, connection lost).
   */
  async send(queue: string, messages: readonly SendMessageInput[]): Promise<Array<SendResult | BerthClientError>> {
    return this.byPartition(queue, messages, (message) => ({ groupId: message.groupId }), async (connection, part) => {
      const entries: WireSendEntry[] = part.map(toWireEntry);
      const outcomes = await connection.request((id) => encodeSend(id, queue, entries), FrameType.SendResult, decodeSendResult);
      return outcomes.map((outcome) =>
        outcome.ok ? (outcome.sequenceNumber === undefined ? { messageId: outcome.messageId } : { messageId: outcome.messageId, sequenceNumber: outcome.sequenceNumber }) : errorFromWire(outcome.error.nativeCode, outcome.error.code, outcome.error.message),
      );
    });
  }

  /**
   * Runs `call` once per partition the items concern, each over the connection to that
   * partition's primary, and puts the results back in item order. With a router that does
   * not route by partition (one node), one call over one connection.
   */
  private async byPartition<T, R>(
    queue: string,
    items: readonly T[],
    keyOf: (item: T) => { groupId?: string | undefined; receiptHandle?: string | undefined },
    call: (connection: ClientConnection, part: T[]) => Promise<R[]>,
  ): Promise<R[]> {
    const partitionOf = this.router.partitionOf?.bind(this.router);
    if (partitionOf === undefined) return call(await this.router.connectionFor(queue), [...items]);
    const parts = new Map<number | undefined, number[]>();
    for (let index = 0; index < items.length; index++) {
      const key = keyOf(items[index]!);
      const partition = await partitionOf(queue, { ...(key.groupId !== undefined ? { groupId: key.groupId } : {}), ...(key.receiptHandle !== undefined ? { receiptHandle: key.receiptHandle } : {}) });
      const indexes = parts.get(partition) ?? [];
      indexes.push(index);
      parts.set(partition, indexes);
    }
    if (parts.size <= 1) {
      const [partition] = [...parts.keys()];
      return call(await this.router.connectionFor(queue, partition), [...items]);
    }
    const results = new Array<R>(items.length);
    await Promise.all(
      [...parts].map(async ([partition, indexes]) => {
        const answers = await call(await this.router.connectionFor(queue, partition), indexes.map((index) => items[index]!));
        indexes.forEach((index, position) => {
          results[index] = answers[position]!;
        });
      }),
    );
    return results;
  }

  /** One receive (pull). Each message has ack() / nack(); leases are not extended automatically here. */
  async receive(queue: string, options: ReceiveOptions = {}): Promise<Message[]> {
    const connection = await this.router.connectionFor(queue);
    const wires = await connection.request(
      (id) =>
        encodeReceive(id, {
          queue,
          maxMessages: options.maxMessages ?? 10,
          visibilityTimeoutSeconds: options.visibilityTimeoutSeconds ?? -1,
          waitMs: Math.min(receiveWaitMsMax, Math.max(0, Math.round(options.waitMs ?? 0))),
        }),
      FrameType.Messages,
      decodeMessages,
    );
    const receivedAtMs = Date.now();
    return wires.map((wire) => this.message(queue, wire, undefined, receivedAtMs));
  }

  /** Deletes messages by receipt handle; null per entry that succeeded. */
  async ack(queue: string, receiptHandles: readonly string[]): Promise<Array<BerthClientError | null>> {
    return this.byPartition(queue, receiptHandles, (receiptHandle) => ({ receiptHandle }), async (connection, part) => {
      const results = await connection.request((id) => encodeAck(id, queue, part), FrameType.BatchResult, decodeBatchResult);
      return results.map(clientErrorOrNull);
    });
  }

  /**
   * Acks received messages together: each is settled at once (a stream gets its credit
   * back now) and they travel in one ACK frame per queue (split at 1,000 and, with cluster
   * routing, by partition) instead of one promise and one entry of a per-tick batch each.
   * Resolves when every delete is durable; rejects with the first failure (the failed
   * message's own ack() then rejects with its error, the others' resolve). Messages
   * already settled are skipped.
   */
  ackAll(messages: readonly Message[]): Promise<void> {
    let queue: string | undefined;
    let oneQueue = true;
    for (const message of messages) {
      if (message.settled) continue;
      if (queue === undefined) queue = message.queue;
      else if (message.queue !== queue) oneQueue = false;
    }
    if (queue === undefined) return Promise.resolve();
    if (oneQueue) return this.acker(queue).ackAll(messages);
    const byQueue = new Map<string, Message[]>();
    for (const message of messages) {
      if (message.settled) continue;
      const group = byQueue.get(message.queue);
      if (group === undefined) byQueue.set(message.queue, [message]);
      else group.push(message);
    }
    return Promise.all([...byQueue].map(([name, group]) => this.acker(name).ackAll(group))).then(() => undefined);
  }

  async changeVisibility(queue: string, changes: readonly VisibilityChangeInput[]): Promise<Array<BerthClientError | null>> {
    return this.byPartition(queue, changes, (change) => ({ receiptHandle: change.receiptHandle }), async (connection, part) => {
      const results = await connection.request((id) => encodeChangeVisibility(id, queue, part), FrameType.BatchResult, decodeBatchResult);
      return results.map(clientErrorOrNull);
    });
  }

  // ---- producers and consumers ---------------------------------------------------

  /** A batching producer: send() resolves when the message is durable. */
  producer(queue: string, options: ProducerOptions = {}): Producer {
    this.checkOpen();
    const producer = new Producer(this, queue, options, () => this.producers.delete(producer));
    this.producers.add(producer);
    return producer;
  }

  /** Push consumption as an async iterator: `for await (const message of berth.consume(queue)) { ...; await message.ack(); }`. */
  consume(queue: string, options: ConsumeOptions = {}): MessageStream {
    this.checkOpen();
    const stream = new MessageStream(this, queue, options, () => this.streams.delete(stream));
    this.streams.add(stream);
    return stream;
  }

  /** Runs `handler` for each message with the given concurrency: acked when it resolves, nacked when it throws. */
  consumer(queue: string, handler: MessageHandler, options: ConsumerOptions = {}): Consumer {
    this.checkOpen();
    const consumer = new Consumer(this, queue, handler, options, () => this.consumers.delete(consumer));
    this.consumers.add(consumer);
    return consumer;
  }

  /** Flushes producers, drains consumers and streams, then closes the connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.producers].map((producer) => producer.close()));
    await Promise.allSettled([...this.consumers].map((consumer) => consumer.close()));
    await Promise.allSettled([...this.streams].map((stream) => stream.close()));
    await Promise.allSettled([...this.ackers.values()].map((acker) => acker.flush()));
    this.router.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new BerthClientError('ClientClosed', 0, 'Berth client is closed');
  }

  /** @internal Wraps a delivered message with its ack/nack. */
  message(queue: string, wire: WireMessage, visibilityTimeoutSeconds?: number, receivedAtMs?: number): Message {
    return new Message(this, queue, wire, visibilityTimeoutSeconds, receivedAtMs);
  }

  /** @internal Acks from many messages ride in one ACK frame per tick. */
  acker(queue: string): BatchAcker {
    let acker = this.ackers.get(queue);
    if (acker === undefined) this.ackers.set(queue, (acker = new BatchAcker(this, queue)));
    return acker;
  }
}

function toWireEntry(message: SendMessageInput): WireSendEntry {
  const entry: WireSendEntry = { body: message.body };
  if (message.groupId !== undefined) entry.groupId = message.groupId;
  if (message.deduplicationId !== undefined) entry.deduplicationId = message.deduplicationId;
  if (message.delaySeconds !== undefined) entry.delaySeconds = message.delaySeconds;
  if (message.replicaCount !== undefined) entry.replicaCount = message.replicaCount;
  if (message.attributes !== undefined) entry.attributes = message.attributes;
  return entry;
}

const ackBatchMax = 1000;

/** The acks of one tick's ackAll calls: one ACK frame, one outcome they all read their entries from. */
interface AckGroup {
  handles: string[];
  outcome: Promise<Array<BerthClientError | null>>;
  resolve: (results: Array<BerthClientError | null>) => void;
  reject: (error: unknown) => void;
}

/**
 * Collects the acks of one tick (ack() and ackAll() alike) into one ACK frame of up to
 * 1,000 entries; each ack resolves with its own entry's outcome.
 */
export class BatchAcker {
  private group: AckGroup | undefined;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly berth: Berth,
    private readonly queue: string,
  ) {}

  ack(receiptHandle: string): Promise<void> {
    const group = this.openGroup();
    const index = group.handles.length;
    group.handles.push(receiptHandle);
    return group.outcome.then((results) => throwFirstFailure(results.slice(index, index + 1), 1));
  }

  /**
   * Settles the unsettled `messages` (all of this queue) now and acks them with whatever
   * else this tick acks: one ACK frame of up to 1,000 for all of them (a
   * consumer's concurrent readers then cost the server one delete record, not one each).
   */
  ackAll(messages: readonly Message[]): Promise<void> {
    const parts: Array<Promise<void>> = [];
    let group: AckGroup | undefined;
    let first = 0;
    let count = 0;
    const endPart = (): void => {
      if (group === undefined || count === 0) return;
      const from = first;
      const length = count;
      parts.push(group.outcome.then((results) => throwFirstFailure(results.slice(from, from + length), length)));
    };
    for (const message of messages) {
      if (message.settled) continue;
      if (group === undefined || group.handles.length === ackBatchMax) {
        endPart();
        group = this.openGroup();
        first = group.handles.length;
        count = 0;
      }
      message.settleInBatch(group.outcome, group.handles.length);
      group.handles.push(message.receiptHandle);
      count++;
    }
    endPart();
    if (parts.length === 0) return Promise.resolve();
    return parts.length === 1 ? parts[0]! : Promise.all(parts).then(() => undefined);
  }

  async flush(): Promise<void> {
    if (this.group !== undefined) this.sendGroup();
    await Promise.allSettled([...this.inFlight]);
  }

  /** The group this tick's acks fill; a full one leaves now and a new one opens. */
  private openGroup(): AckGroup {
    if (this.group !== undefined && this.group.handles.length < ackBatchMax) return this.group;
    if (this.group !== undefined) this.sendGroup();
    let resolve!: (results: Array<BerthClientError | null>) => void;
    let reject!: (error: unknown) => void;
    const outcome = new Promise<Array<BerthClientError | null>>((resolveOutcome, rejectOutcome) => {
      resolve = resolveOutcome;
      reject = rejectOutcome;
    });
    // Settled messages read the outcome lazily; nobody may be listening when it fails.
    outcome.catch(() => undefined);
    const group: AckGroup = { handles: [], outcome, resolve, reject };
    this.group = group;
    setImmediate(() => {
      if (this.group === group) this.sendGroup();
    });
    return group;
  }

  private sendGroup(): void {
    const group = this.group!;
    this.group = undefined;
    const sending = this.berth.ack(this.queue, group.handles);
    sending.then(group.resolve, group.reject);
    this.track(sending);
  }

  /** close() waits for acks in flight. */
  private track(operation: Promise<unknown>): void {
    const tracked = operation.then(
      () => undefined,
      () => undefined,
    );
    this.inFlight.add(tracked);
    void tracked.then(() => this.inFlight.delete(tracked));
  }
}

function clientErrorOrNull(result: WireError | null): BerthClientError | null {
  return result === null ? null : errorFromWire(result.nativeCode, result.code, result.message);
}

function throwFirstFailure(results: ReadonlyArray<BerthClientError | null>, count: number): void {
  for (const result of results) if (result !== null) throw result;
  if (results.length < count) throw new BerthClientError('ProtocolError', 0, 'ACK answered fewer entries than sent');
}
