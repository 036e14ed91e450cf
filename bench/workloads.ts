// Runs one workload against one running system from the main thread: creates the queue,
// starts the producer and consumer worker threads, feeds progress, samples the server's
// RSS and CPU and the load generator's CPU, detects stalls, and checks the outcome
// (every sent message received: missing and duplicates counted; W4: order per group).
//
// Phases of a run: [W2: an unmeasured warm-up pass on the same queue, see
// latencyWarmUpSeconds] -> connecting (workers open their clients) -> running (W3: filling,
// then draining) -> settling (stop flag raised, workers report) -> checked.

import { Worker } from 'node:worker_threads';
import hdr from 'hdr-histogram-js';
import type { Driver, RunningSystem, WorkloadId } from './drivers/types.js';
import { Counter, counterCount, type MainMessage, type PassInput, type ProducerPlan, type WorkerMessage, type WorkerResult, type WorkerSetup } from './load-protocol.js';
import { nowUs } from './message.js';
import { processCpuMs, residentBytes } from './processes.js';
import type { RepeatSummary } from './repeats.js';

export interface WorkloadSettings {
  id: WorkloadId;
  messages: number;
  producers: number;
  consumers: number;
  /** Concurrent receive loops per consumer thread (each its own connection). */
  consumerLanes: number;
  /** W2: total offered rate across producers. */
  ratePerSecond?: number;
  /** W3: fill the whole backlog before any consumer starts. */
  fillThenDrain: boolean;
  /** W4: a FIFO queue and this many message groups. */
  groups?: number;
  batchSize: number;
  inFlightPerProducer: number;
  /** A run with no progress for this long is stopped and reported as FAILED. */
  stallMs: number;
}

export interface LatencySummary {
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

export interface ResourceSummary {
  clientCpuPercent: number;
  serverCpuPercent: number;
  rssBaselineBytes: number;
  rssPeakBytes: number;
  rssFillPeakBytes?: number;
  rssEndBytes: number;
}

export type WorkloadStatus = 'ok' | 'FAILED' | 'skipped' | 'n/a' | 'error';

export interface WorkloadResult {
  workload: WorkloadId;
  status: WorkloadStatus;
  note?: string;
  messages: number;
  elapsedMs?: number;
  messagesPerSecond?: number;
  /** W2: the open-loop rate asked for. */
  offeredPerSecond?: number;
  fillMessagesPerSecond?: number;
  drainMessagesPerSecond?: number;
  latency?: LatencySummary;
  missing?: number;
  duplicates?: number;
  orderViolations?: number;
  sendErrors?: number;
  ackErrors?: number;
  resources?: ResourceSummary;
  firstError?: string;
  /** W1 and W2: every run's headline figure when the workload was repeated (this result is the median run). */
  repeats?: RepeatSummary;
}

export interface Progress {
  phase: string;
  done: number;
  total: number;
}

const workerUrl = new URL('./load-worker.js', import.meta.url);
const connectTimeoutMs = 120_000;
const settleTimeoutMs = 30_000;
const closeTimeoutMs = 10_000;
const sampleIntervalMs = 250;

let queueCounter = 0;

interface WorkerHandle {
  worker: Worker;
  setup: WorkerSetup;
  ready: Promise<void>;
  /** The result of the pass started last; never settles before a pass starts. */
  done: Promise<WorkerResult>;
  startPass(startUs: number, pass: PassInput): void;
  /** Asks the worker to close its clients and end; terminates it if it has not within closeTimeoutMs. */
  close(): Promise<void>;
}

function startWorker(setup: WorkerSetup): WorkerHandle {
  const worker = new Worker(workerUrl, { workerData: setup });
  let resolveReady!: () => void;
  let rejectReady!: (error: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  let failure: Error | undefined;
  let pass: { resolve(result: WorkerResult): void; reject(error: Error): void } | undefined;
  const fail = (error: Error): void => {
    failure ??= error;
    rejectReady(error);
    pass?.reject(error);
    pass = undefined;
  };
  worker.on('message', (message: WorkerMessage) => {
    if (message.kind === 'ready') resolveReady();
    else if (message.kind === 'done') {
      pass?.resolve(message.result);
      pass = undefined;
    } else fail(new Error(`${setup.role} ${setup.index}: ${message.error}`));
  });
  worker.on('error', fail);
  const exited = new Promise<void>((resolve) => {
    worker.on('exit', (code) => {
      fail(new Error(`${setup.role} ${setup.index} exited (${code}) before reporting`));
      resolve();
    });
  });
  // Rejections are observed where awaited; keep unobserved ones from crashing the bench.
  ready.catch(() => undefined);
  const handle: WorkerHandle = {
    worker,
    setup,
    ready,
    done: new Promise<WorkerResult>(() => undefined),
    startPass(startUs, input) {
      handle.done = new Promise<WorkerResult>((resolve, reject) => {
        if (failure !== undefined) reject(failure);
        else pass = { resolve, reject };
      });
      handle.done.catch(() => undefined);
      worker.postMessage({ kind: 'go', startUs, pass: input } satisfies MainMessage);
    },
    async close() {
      worker.postMessage({ kind: 'close' } satisfies MainMessage);
      const timer = setTimeout(() => void worker.terminate(), closeTimeoutMs);
      await exited;
      clearTimeout(timer);
    },
  };
  return handle;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function summariseLatency(results: WorkerResult[]): LatencySummary | undefined {
  const merged = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3, useWebAssembly: false });
  let any = false;
  for (const result of results) {
    if (result.histogram === undefined) continue;
    merged.add(hdr.decodeFromCompressedBase64(result.histogram, 32, false));
    any = true;
  }
  if (!any || merged.totalCount === 0) return undefined;
  return {
    p50Ms: merged.getValueAtPercentile(50) / 1000,
    p99Ms: merged.getValueAtPercentile(99) / 1000,
    p999Ms: merged.getValueAtPercentile(99.9) / 1000,
    maxMs: merged.maxValue / 1000,
  };
}

/**
 * A W2 run starts with this many seconds of the same open-loop load on the same queue,
 * unmeasured, for every system: the queue's leader is often a process (a cluster node) that
 * has served nothing yet, and its first second (code not yet optimised, connections and
 * buffers growing) built a backlog that the whole run's p99 then carried.
 */
export const latencyWarmUpSeconds = 3;

export async function runWorkload(driver: Driver, system: RunningSystem, settings: WorkloadSettings, onProgress: (progress: Progress) => void): Promise<WorkloadResult> {
  const fifo = settings.groups !== undefined;
  const queue = await system.createQueue(`bench-${settings.id.toLowerCase()}-${++queueCounter}`, fifo);
  const setup = { driverId: driver.id, endpoint: system.endpoint, queue, receiveWaitMs: 1000, consumerLanes: settings.consumerLanes };
  const producers = Array.from({ length: settings.producers }, (_, index) => startWorker({ ...setup, role: 'producer', index }));
  const consumers = Array.from({ length: settings.consumers }, (_, index) => startWorker({ ...setup, role: 'consumer', index }));
  const workers = { producers, consumers };
  try {
    onProgress({ phase: 'connecting', done: 0, total: settings.messages });
    await withTimeout(Promise.all([...producers, ...consumers].map((handle) => handle.ready)), connectTimeoutMs, 'load-generator workers to connect');
    if (settings.ratePerSecond !== undefined) {
      // The warm-up runs on the same workers, clients and connections as the measured pass.
      const warmUpMessages = Math.min(settings.messages, Math.ceil(settings.ratePerSecond * latencyWarmUpSeconds));
      const warmUp = await runPass(workers, system, { ...settings, messages: warmUpMessages }, (progress) => onProgress({ ...progress, phase: 'warming up' }));
      // Every warm-up message must be received and deleted before the measured run: one left
      // over would be delivered to the measured consumers as a duplicate of an id they expect.
      if (warmUp.status !== 'ok') {
        return { ...warmUp, status: warmUp.status === 'FAILED' ? 'FAILED' : 'error', note: `warm-up: ${warmUp.note ?? warmUp.status}` };
      }
    }
    return await runPass(workers, system, settings, onProgress);
  } catch (error) {
    return { workload: settings.id, status: 'error', messages: settings.messages, note: String(error).slice(0, 300) };
  } finally {
    await Promise.all([...producers, ...consumers].map((handle) => handle.close()));
  }
}

/** One pass of `settings` over the workers' queue: each worker gets its part, runs it and reports. */
async function runPass(workers: { producers: WorkerHandle[]; consumers: WorkerHandle[] }, system: RunningSystem, settings: WorkloadSettings, onProgress: (progress: Progress) => void): Promise<WorkloadResult> {
  const total = settings.messages;
  const fifo = settings.groups !== undefined;
  const countersBuffer = new SharedArrayBuffer(counterCount * Int32Array.BYTES_PER_ELEMENT);
  const counters = new Int32Array(countersBuffer);
  const receivedCounts = new SharedArrayBuffer(total);
  let groupLast: SharedArrayBuffer | undefined;
  if (settings.groups !== undefined) {
    groupLast = new SharedArrayBuffer(settings.groups * Int32Array.BYTES_PER_ELEMENT);
    new Int32Array(groupLast).fill(-1);
  }
  const shared: PassInput = { totalMessages: total, counters: countersBuffer, receivedCounts, ...(groupLast === undefined ? {} : { groupLast }) };
  const { producers, consumers } = workers;
  const perProducer = Math.floor(total / producers.length);
  const producerPass = (index: number): PassInput => {
    const firstId = index * perProducer;
    const count = index === producers.length - 1 ? total - firstId : perProducer;
    const plan: ProducerPlan = { firstId, count, batchSize: settings.batchSize, inFlightMax: settings.inFlightPerProducer };
    if (settings.ratePerSecond !== undefined) plan.ratePerSecond = settings.ratePerSecond / producers.length;
    if (settings.groups !== undefined) plan.groups = { total: settings.groups, producers: producers.length };
    return { ...shared, producer: plan };
  };
  const all = [...producers, ...consumers];

  const pids = system.serverPids();
  const serverCpuMs = (): number => pids.reduce((sum, pid) => sum + (processCpuMs(pid) ?? 0), 0);
  const serverRss = (): number => pids.reduce((sum, pid) => sum + (residentBytes(pid) ?? 0), 0);

  try {
    const rssBaselineBytes = serverRss();
    let rssPeakBytes = rssBaselineBytes;
    let rssFillPeakBytes: number | undefined;
    const clientCpuStart = process.cpuUsage();
    const serverCpuStartMs = serverCpuMs();
    const startUs = nowUs() + 20_000;
    producers.forEach((handle, index) => handle.startPass(startUs, producerPass(index)));
    if (!settings.fillThenDrain) for (const handle of consumers) handle.startPass(startUs, shared);

    let fillEndUs: number | undefined;
    let lastProgressValue = -1;
    let lastProgressUs = nowUs();
    let stalled = false;
    const producersDone = Promise.allSettled(producers.map((handle) => handle.done));
    let producersFinished = false;
    void producersDone.then(() => (producersFinished = true));

    for (;;) {
      await delay(sampleIntervalMs);
      const rss = serverRss();
      rssPeakBytes = Math.max(rssPeakBytes, rss);
      const sent = Atomics.load(counters, Counter.sent);
      const distinct = Atomics.load(counters, Counter.distinct);
      if (settings.fillThenDrain && fillEndUs === undefined) {
        onProgress({ phase: 'filling', done: sent, total });
        if (sent >= total || producersFinished) {
          fillEndUs = nowUs();
          rssFillPeakBytes = rssPeakBytes;
          for (const handle of consumers) handle.startPass(startUs, shared);
        }
      } else {
        onProgress({ phase: settings.fillThenDrain ? 'draining' : 'running', done: distinct, total });
      }
      if (distinct >= total || Atomics.load(counters, Counter.stop) !== 0) break;
      const progressValue = sent + Atomics.load(counters, Counter.received);
      if (progressValue !== lastProgressValue) {
        lastProgressValue = progressValue;
        lastProgressUs = nowUs();
      } else if (nowUs() - lastProgressUs > settings.stallMs * 1000) {
        stalled = true;
        break;
      }
    }
    Atomics.store(counters, Counter.stop, 1);
    const endUs = nowUs();
    const clientCpu = process.cpuUsage(clientCpuStart);
    const serverCpuEndMs = serverCpuMs();
    const rssEndBytes = serverRss();
    const wallMs = (endUs - startUs) / 1000;

    const settled = await withTimeout(Promise.allSettled(all.map((handle) => handle.done)), settleTimeoutMs, 'workers to finish').catch(() => undefined);
    const results: WorkerResult[] = [];
    let firstError: string | undefined;
    for (const outcome of settled ?? []) {
      if (outcome.status === 'fulfilled') {
        results.push(outcome.value);
        firstError ??= outcome.value.firstError;
      } else firstError ??= String(outcome.reason);
    }
    const consumerResults = results.filter((result) => result.role === 'consumer');
    const lastAckUs = Math.max(...consumerResults.map((result) => result.lastAckUs ?? 0));
    const distinct = Atomics.load(counters, Counter.distinct);
    const missing = total - distinct;
    const elapsedMs = lastAckUs > startUs ? (lastAckUs - startUs) / 1000 : wallMs;
    const orderViolations = fifo ? Atomics.load(counters, Counter.orderViolations) : undefined;

    const result: WorkloadResult = {
      workload: settings.id,
      status: missing > 0 || (orderViolations ?? 0) > 0 ? 'FAILED' : 'ok',
      messages: total,
      elapsedMs,
      messagesPerSecond: (total * 1000) / elapsedMs,
      missing,
      duplicates: Atomics.load(counters, Counter.duplicates),
      sendErrors: Atomics.load(counters, Counter.sendErrors),
      ackErrors: Atomics.load(counters, Counter.ackErrors),
      resources: {
        clientCpuPercent: ((clientCpu.user + clientCpu.system) / 1000 / wallMs) * 100,
        serverCpuPercent: ((serverCpuEndMs - serverCpuStartMs) / wallMs) * 100,
        rssBaselineBytes,
        rssPeakBytes,
        rssEndBytes,
        ...(rssFillPeakBytes === undefined ? {} : { rssFillPeakBytes }),
      },
    };
    if (orderViolations !== undefined) result.orderViolations = orderViolations;
    if (settings.fillThenDrain && fillEndUs !== undefined) {
      result.fillMessagesPerSecond = (total * 1e6) / (fillEndUs - startUs);
      result.drainMessagesPerSecond = (total * 1e6) / Math.max(1, (lastAckUs > fillEndUs ? lastAckUs : endUs) - fillEndUs);
    }
    const latency = summariseLatency(consumerResults);
    if (latency !== undefined && settings.ratePerSecond !== undefined) result.latency = latency;
    if (settings.ratePerSecond !== undefined) result.offeredPerSecond = settings.ratePerSecond;
    const notes: string[] = [];
    if (stalled) notes.push(`no progress for ${settings.stallMs / 1000} s`);
    if (missing > 0) notes.push(`${missing} missing`);
    if ((orderViolations ?? 0) > 0) notes.push(`${orderViolations} order violations`);
    if (notes.length > 0) result.note = notes.join('; ');
    if (firstError !== undefined) result.firstError = firstError.slice(0, 500);
    return result;
  } catch (error) {
    Atomics.store(counters, Counter.stop, 1);
    return { workload: settings.id, status: 'error', messages: total, note: String(error).slice(0, 300) };
  } finally {
    Atomics.store(counters, Counter.stop, 1);
  }
}
