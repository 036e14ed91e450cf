// Process metrics: Prometheus counters, gauges and histograms in a registry of our own
// (never prom-client's global one, so two servers in one test process do not collide),
// plus short in-memory rolling series that the web console's live charts poll.
//
// Rolling series model: time is cut into whole seconds; a ring of `seriesSecondsMax` slots
// holds, per second, the counts (per queue: sent, received, deleted; per server: requests,
// errors, messages) and a log-bucketed latency histogram. A slot is tagged with the second
// it holds; a write to a slot whose tag is older resets it first, so a quiet period reads
// as zeros and nothing needs a timer. Reads never include the current, partial second in
// rates, so a rate does not dip at the start of each second.
//
// Metric names (also used by docs/grafana-dashboard.json):
//   berth_requests_total{action,queue}                      counter
//   berth_request_errors_total{action,queue,code}           counter
//   berth_request_duration_seconds{action}                  histogram
//   berth_messages_total{queue,kind=sent|received|deleted}  counter
//   berth_message_end_to_end_seconds{queue}                 histogram, send to delete
//   berth_storage_fsync_seconds{partition}                  histogram
//   berth_storage_fsync_batch_records{partition}            histogram
//   berth_queue_messages{queue,state=visible|inflight|delayed}  gauge
//   berth_queue_oldest_message_age_seconds{queue}           gauge
//   berth_replication_lag_records{partition}                gauge
//   berth_event_loop_delay_seconds{quantile=0.5|0.99|max}   gauge (monitorEventLoopDelay)
//   berth_record_cache_bytes{limit=used|max}                gauge, the node's record cache budget
//   process_*, nodejs_*                                     prom-client defaults (optional)

import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { assert } from '../core/assert.js';

export type MessageKind = 'sent' | 'received' | 'deleted';

export interface QueueCountsGauge {
  visible: number;
  inflight: number;
  delayed: number;
  oldestMessageAgeSeconds: number;
}

export interface MetricsSettings {
  /** Also collect prom-client's process_* and nodejs_* metrics; default true. */
  collectDefault?: boolean;
  /** Wall clock for the rolling series; default Date.now. */
  clock?: { nowMs(): number };
  /** Seconds of history the rolling series keep; default 300. */
  seriesSecondsMax?: number;
  /** Queues tracked in rolling series at once; later ones get Prometheus metrics only. Default 1000. */
  seriesQueuesMax?: number;
  /** Measure event-loop delay with perf_hooks; default true. */
  monitorEventLoop?: boolean;
}

/** Per-second rates averaged over a window of whole seconds. */
export interface QueueRates {
  sentPerSecond: number;
  receivedPerSecond: number;
  deletedPerSecond: number;
}

/** One value per whole second, oldest first, the current partial second left out; `startMs` is the first second's start. */
export interface QueueSeries {
  startMs: number;
  stepMs: number;
  sent: number[];
  received: number[];
  deleted: number[];
}

export interface ServerSeries extends QueueSeries {
  requests: number[];
  errors: number[];
  /** Request latency quantiles per second, null for a second without requests. */
  latencyP50Ms: Array<number | null>;
  latencyP99Ms: Array<number | null>;
}

const requestDurationBucketsSeconds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25];
const endToEndBucketsSeconds = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400];
const fsyncBucketsSeconds = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
const fsyncBatchBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];

/**
 * Latency buckets of the rolling series: bucket i holds values below
 * latencyBucketBaseMs * 2^(i / latencyBucketsPerDoubling); the last one holds the rest.
 * Quantiles read back as the bucket's upper bound, within 19% of the true value.
 */
const latencyBucketBaseMs = 0.05;
const latencyBucketsPerDoubling = 4;
const latencyBucketCount = 80; // 0.05 ms * 2^20 ≈ 52 s

function latencyBucketIndex(milliseconds: number): number {
  if (!(milliseconds > latencyBucketBaseMs)) return 0;
  const index = Math.ceil(Math.log2(milliseconds / latencyBucketBaseMs) * latencyBucketsPerDoubling);
  return Math.min(latencyBucketCount - 1, index);
}

function latencyBucketUpperMs(index: number): number {
  return latencyBucketBaseMs * 2 ** (index / latencyBucketsPerDoubling);
}

/** A ring of per-second counters for several named series that share the slot tags. */
class SecondRing {
  private readonly slotSeconds: Float64Array;
  private readonly values: Float64Array[];

  constructor(
    private readonly slotCount: number,
    seriesCount: number,
  ) {
    this.slotSeconds = new Float64Array(slotCount).fill(-1);
    this.values = Array.from({ length: seriesCount }, () => new Float64Array(slotCount));
  }

  add(second: number, series: number, amount: number): void {
    const slot = this.slotFor(second);
    const values = this.values[series];
    assert(values !== undefined, () => `series ${series} out of range`);
    values[slot] = (values[slot] ?? 0) + amount;
  }

  /** Makes the slot hold `second`, clearing what an older second left in it. */
  slotFor(second: number): number {
    const slot = second % this.slotCount;
    if (this.slotSeconds[slot] !== second) {
      this.slotSeconds[slot] = second;
      for (const values of this.values) values[slot] = 0;
    }
    return slot;
  }

  get(second: number, series: number): number {
    const slot = second % this.slotCount;
    if (this.slotSeconds[slot] !== second) return 0;
    return this.values[series]?.[slot] ?? 0;
  }
}

const kindIndex: Record<MessageKind, number> = { sent: 0, received: 1, deleted: 2 };
const serverRequests = 3;
const serverErrors = 4;

export class BerthMetrics {
  readonly registry: Registry;

  private readonly clock: { nowMs(): number };
  private readonly seriesSecondsMax: number;
  private readonly seriesQueuesMax: number;
  private readonly requests: Counter<'action' | 'queue'>;
  private readonly requestErrors: Counter<'action' | 'queue' | 'code'>;
  private readonly requestDuration: Histogram<'action'>;
  private readonly messages: Counter<'queue' | 'kind'>;
  private readonly endToEnd: Histogram<'queue'>;
  private readonly fsyncDuration: Histogram<'partition'>;
  private readonly fsyncBatch: Histogram<'partition'>;
  private readonly queueMessages: Gauge<'queue' | 'state'>;
  private readonly queueOldestAge: Gauge<'queue'>;
  private readonly replicationLag: Gauge<'partition'>;
  private readonly eventLoopDelay: IntervalHistogram | undefined;

  /** Per queue: sent, received, deleted per second. */
  private readonly queueRings = new Map<string, SecondRing>();
  /** sent, received, deleted, requests, errors per second. */
  private readonly serverRing: SecondRing;
  /** Per second slot: request latency histogram (latencyBucketCount counts). */
  private readonly latencySlots: Uint32Array[];
  /** The second each latency slot holds, like SecondRing's tags. */
  private readonly latencySlotSeconds: Float64Array;
  /** Queues that have gauges set, so retainQueues can drop the ones that went away. */
  private readonly gaugeQueues = new Set<string>();

  constructor(options: MetricsSettings = {}) {
    this.clock = options.clock ?? { nowMs: () => Date.now() };
    this.seriesSecondsMax = options.seriesSecondsMax ?? 300;
    this.seriesQueuesMax = options.seriesQueuesMax ?? 1000;
    assert(Number.isInteger(this.seriesSecondsMax) && this.seriesSecondsMax >= 10, 'seriesSecondsMax must be an integer >= 10');
    this.registry = new Registry();
    const registers = [this.registry];

    this.requests = new Counter({ name: 'berth_requests_total', help: 'API requests by action and queue.', labelNames: ['action', 'queue'], registers });
    this.requestErrors = new Counter({ name: 'berth_request_errors_total', help: 'API requests that failed, by action, queue and error code.', labelNames: ['action', 'queue', 'code'], registers });
    this.requestDuration = new Histogram({ name: 'berth_request_duration_seconds', help: 'API request latency by action (long polls included).', labelNames: ['action'], buckets: requestDurationBucketsSeconds, registers });
    this.messages = new Counter({ name: 'berth_messages_total', help: 'Messages sent, received and deleted, by queue.', labelNames: ['queue', 'kind'], registers });
    this.endToEnd = new Histogram({ name: 'berth_message_end_to_end_seconds', help: 'Time from send to delete of a message (observed for one received message in 8).', labelNames: ['queue'], buckets: endToEndBucketsSeconds, registers });
    this.fsyncDuration = new Histogram({ name: 'berth_storage_fsync_seconds', help: 'Duration of one log fsync (one group commit).', labelNames: ['partition'], buckets: fsyncBucketsSeconds, registers });
    this.fsyncBatch = new Histogram({ name: 'berth_storage_fsync_batch_records', help: 'Records made durable by one fsync.', labelNames: ['partition'], buckets: fsyncBatchBuckets, registers });
    this.queueMessages = new Gauge({ name: 'berth_queue_messages', help: 'Messages in a queue by state (approximate, like SQS).', labelNames: ['queue', 'state'], registers });
    this.queueOldestAge = new Gauge({ name: 'berth_queue_oldest_message_age_seconds', help: 'Age of the oldest message not yet deleted.', labelNames: ['queue'], registers });
    this.replicationLag = new Gauge({ name: 'berth_replication_lag_records', help: 'Records a partition\'s slowest backup is behind its primary.', labelNames: ['partition'], registers });

    if (options.monitorEventLoop ?? true) {
      const histogram = monitorEventLoopDelay({ resolution: 20 });
      histogram.enable();
      this.eventLoopDelay = histogram;
      new Gauge({
        name: 'berth_event_loop_delay_seconds',
        help: 'Event-loop delay since the previous scrape (p50, p99, max).',
        labelNames: ['quantile'],
        registers,
        collect() {
          // Nanoseconds in; a histogram with no samples reports NaN-free zeros.
          const count = histogram.count;
          this.set({ quantile: '0.5' }, count === 0 ? 0 : histogram.percentile(50) / 1e9);
          this.set({ quantile: '0.99' }, count === 0 ? 0 : histogram.percentile(99) / 1e9);
          this.set({ quantile: 'max' }, count === 0 ? 0 : histogram.max / 1e9);
          histogram.reset();
        },
      });
    }
    if (options.collectDefault ?? true) collectDefaultMetrics({ register: this.registry });

    this.serverRing = new SecondRing(this.seriesSecondsMax, 5);
    this.latencySlots = Array.from({ length: this.seriesSecondsMax }, () => new Uint32Array(latencyBucketCount));
    this.latencySlotSeconds = new Float64Array(this.seriesSecondsMax).fill(-1);
  }

  /** Exports the node's record cache budget: the bytes its partitions' caches hold, and the most they may. */
  watchRecordCache(budget: { readonly sizeBytes: number; readonly bytesMax: number }): void {
    new Gauge({
      name: 'berth_record_cache_bytes',
      help: 'Recently sent message bodies the node keeps in memory for receives (used), and its budget (max).',
      labelNames: ['limit'],
      registers: [this.registry],
      collect() {
        this.set({ limit: 'used' }, budget.sizeBytes);
        this.set({ limit: 'max' }, budget.bytesMax);
      },
    });
  }

  /** One API request: counted, its failure counted by code, its latency observed. */
  recordAction(action: string, queue: string | undefined, errorCode: string | undefined, durationMs: number): void {
    const queueLabel = queue ?? '';
    this.requests.inc({ action, queue: queueLabel });
    if (errorCode !== undefined) this.requestErrors.inc({ action, queue: queueLabel, code: errorCode });
    const durationClampedMs = Math.max(0, durationMs);
    this.requestDuration.observe({ action }, durationClampedMs / 1000);

    const second = this.currentSecond();
    this.serverRing.add(second, serverRequests, 1);
    if (errorCode !== undefined) this.serverRing.add(second, serverErrors, 1);
    const slot = second % this.seriesSecondsMax;
    const latency = this.latencySlots[slot];
    assert(latency !== undefined, 'latency slot missing');
    if (this.latencySlotSeconds[slot] !== second) {
      this.latencySlotSeconds[slot] = second;
      latency.fill(0);
    }
    const bucket = latencyBucketIndex(durationClampedMs);
    latency[bucket] = (latency[bucket] ?? 0) + 1;
  }

  recordMessages(queue: string, kind: MessageKind, count: number): void {
    if (count <= 0) return;
    this.messages.inc({ queue, kind }, count);
    const second = this.currentSecond();
    this.serverRing.add(second, kindIndex[kind], count);
    this.queueRing(queue)?.add(second, kindIndex[kind], count);
  }

  /** From send to delete of one message. */
  recordEndToEndLatency(queue: string, milliseconds: number): void {
    this.endToEnd.observe({ queue }, Math.max(0, milliseconds) / 1000);
  }

  recordFsync(partition: string, milliseconds: number, batchRecords: number): void {
    this.fsyncDuration.observe({ partition }, Math.max(0, milliseconds) / 1000);
    this.fsyncBatch.observe({ partition }, batchRecords);
  }

  setQueueGauges(queue: string, counts: QueueCountsGauge): void {
    this.queueMessages.set({ queue, state: 'visible' }, counts.visible);
    this.queueMessages.set({ queue, state: 'inflight' }, counts.inflight);
    this.queueMessages.set({ queue, state: 'delayed' }, counts.delayed);
    this.queueOldestAge.set({ queue }, counts.oldestMessageAgeSeconds);
    this.gaugeQueues.add(queue);
  }

  setReplicationLag(partition: string, records: number): void {
    this.replicationLag.set({ partition }, records);
  }

  /** Drops a deleted queue's gauges and rolling series (its counters stay, as counters do). */
  forgetQueue(queue: string): void {
    for (const state of ['visible', 'inflight', 'delayed']) this.queueMessages.remove({ queue, state });
    this.queueOldestAge.remove({ queue });
    this.gaugeQueues.delete(queue);
    this.queueRings.delete(queue);
  }

  /** Forgets every queue's gauges and series except the named ones. */
  retainQueues(queues: Iterable<string>): void {
    const keep = new Set(queues);
    const known = new Set<string>([...this.queueRings.keys(), ...this.gaugeQueues]);
    for (const queue of known) if (!keep.has(queue)) this.forgetQueue(queue);
  }

  /** Rates over the last `windowSeconds` whole seconds (the current second excluded). */
  queueRates(queue: string, windowSeconds = 10): QueueRates {
    const ring = this.queueRings.get(queue);
    if (ring === undefined) return { sentPerSecond: 0, receivedPerSecond: 0, deletedPerSecond: 0 };
    return ratesOf(ring, this.currentSecond(), Math.min(windowSeconds, this.seriesSecondsMax - 1));
  }

  serverRates(windowSeconds = 10): QueueRates & { requestsPerSecond: number; errorsPerSecond: number } {
    const window = Math.min(windowSeconds, this.seriesSecondsMax - 1);
    const now = this.currentSecond();
    let requests = 0;
    let errors = 0;
    for (let second = now - window; second < now; second += 1) {
      requests += this.serverRing.get(second, serverRequests);
      errors += this.serverRing.get(second, serverErrors);
    }
    return { ...ratesOf(this.serverRing, now, window), requestsPerSecond: requests / window, errorsPerSecond: errors / window };
  }

  /** The last `seconds` whole seconds, per queue. */
  queueSeries(queue: string, seconds: number): QueueSeries {
    const { first, count } = this.window(seconds);
    const ring = this.queueRings.get(queue);
    const read = (series: number): number[] => Array.from({ length: count }, (_, index) => ring?.get(first + index, series) ?? 0);
    return { startMs: first * 1000, stepMs: 1000, sent: read(0), received: read(1), deleted: read(2) };
  }

  serverSeries(seconds: number): ServerSeries {
    const { first, count } = this.window(seconds);
    const read = (series: number): number[] => Array.from({ length: count }, (_, index) => this.serverRing.get(first + index, series));
    const latencyP50Ms: Array<number | null> = [];
    const latencyP99Ms: Array<number | null> = [];
    for (let index = 0; index < count; index += 1) {
      const second = first + index;
      const slot = second % this.seriesSecondsMax;
      const histogram = this.latencySlotSeconds[slot] === second ? this.latencySlots[slot] : undefined;
      latencyP50Ms.push(histogram === undefined ? null : quantileMs(histogram, 0.5));
      latencyP99Ms.push(histogram === undefined ? null : quantileMs(histogram, 0.99));
    }
    return {
      startMs: first * 1000,
      stepMs: 1000,
      sent: read(0),
      received: read(1),
      deleted: read(2),
      requests: read(serverRequests),
      errors: read(serverErrors),
      latencyP50Ms,
      latencyP99Ms,
    };
  }

  /** Prometheus text exposition of everything in the registry. */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Stops the event-loop monitor; the registry stays readable. */
  close(): void {
    this.eventLoopDelay?.disable();
  }

  private currentSecond(): number {
    return Math.floor(this.clock.nowMs() / 1000);
  }

  /** The last `seconds` whole seconds; the current, partial second is left out so a chart does not dip at its end. */
  private window(seconds: number): { first: number; count: number } {
    const count = Math.max(1, Math.min(Math.floor(seconds), this.seriesSecondsMax - 1));
    return { first: this.currentSecond() - count, count };
  }

  private queueRing(queue: string): SecondRing | undefined {
    let ring = this.queueRings.get(queue);
    if (ring === undefined) {
      if (this.queueRings.size >= this.seriesQueuesMax) return undefined;
      ring = new SecondRing(this.seriesSecondsMax, 3);
      this.queueRings.set(queue, ring);
    }
    return ring;
  }
}

function ratesOf(ring: SecondRing, nowSecond: number, windowSeconds: number): QueueRates {
  let sent = 0;
  let received = 0;
  let deleted = 0;
  for (let second = nowSecond - windowSeconds; second < nowSecond; second += 1) {
    sent += ring.get(second, 0);
    received += ring.get(second, 1);
    deleted += ring.get(second, 2);
  }
  return { sentPerSecond: sent / windowSeconds, receivedPerSecond: received / windowSeconds, deletedPerSecond: deleted / windowSeconds };
}

function quantileMs(histogram: Uint32Array, quantile: number): number | null {
  let total = 0;
  for (const count of histogram) total += count;
  if (total === 0) return null;
  const rank = Math.ceil(quantile * total);
  let seen = 0;
  for (let index = 0; index < histogram.length; index += 1) {
    seen += histogram[index] ?? 0;
    if (seen >= rank) return latencyBucketUpperMs(index);
  }
  return latencyBucketUpperMs(histogram.length - 1);
}
