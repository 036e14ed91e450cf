// One load-generator thread: a producer or a consumer of one workload against one system.
//
// Life of a worker: connect (driver.producer/consumer) -> post 'ready' -> for each 'go'
// (a pass: its start time, plan and shared state) work, then post 'done' with its result
// -> 'close': close the clients and end. A pass stops early when its shared stop flag is
// raised (the main thread's timeout or stall detection).
//
// Shared state (SharedArrayBuffers, updated with Atomics so every thread sees one truth):
//   counters       see Counter below
//   receivedCounts one byte per message id: how many times it was delivered (saturates)
//   groupLast      per message group, the sequence number last delivered (W4 order check)

import { on } from 'node:events';
import { parentPort, workerData } from 'node:worker_threads';
import hdr from 'hdr-histogram-js';
import { loadDriver } from './drivers/loaders.js';
import type { Consumer, Delivery, OutgoingMessage, Producer } from './drivers/types.js';
import { Counter, groupOf, type MainMessage, type WorkerInput, type WorkerMessage, type WorkerResult, type WorkerSetup } from './load-protocol.js';
import { decodeMessage, encodeMessage, nowUs } from './message.js';

const sendAttemptsMax = 5;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function runProducer(input: WorkerInput, producer: Producer, startUs: number): Promise<WorkerResult> {
  const plan = input.producer;
  if (plan === undefined) throw new Error('producer without plan');
  const counters = new Int32Array(input.counters);
  let firstError: string | undefined;
  const stopped = (): boolean => Atomics.load(counters, Counter.stop) !== 0;

  const build = (fromLocal: number, toLocal: number, sendTimeUs: (local: number) => number): OutgoingMessage[] => {
    const batch: OutgoingMessage[] = [];
    for (let local = fromLocal; local < toLocal; local++) {
      const id = plan.firstId + local;
      const placement = plan.groups === undefined ? { group: 0, sequence: local } : groupOf(input.index, local, plan.groups);
      const message: OutgoingMessage = { id, body: encodeMessage({ id, group: placement.group, sequence: placement.sequence, sendTimeUs: sendTimeUs(local) }) };
      if (plan.groups !== undefined) message.group = String(placement.group);
      batch.push(message);
    }
    return batch;
  };

  const sendWithRetry = async (batch: OutgoingMessage[]): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        await producer.send(batch);
        Atomics.add(counters, Counter.sent, batch.length);
        return;
      } catch (error) {
        Atomics.add(counters, Counter.sendErrors, 1);
        firstError ??= String(error);
        if (attempt >= sendAttemptsMax || stopped()) return;
        await sleep(100 * attempt);
      }
    }
  };

  if (plan.ratePerSecond === undefined) {
    // Closed loop: inFlightMax lanes each send the next batch as soon as the last is acknowledged.
    // With message groups, local k and k + groupsPerProducer share a group: a batch may
    // go only when every batch still in flight starts after its end - groupsPerProducer,
    // so one group never has two sends in flight and its order is the send order.
    const windowLocals = plan.groups === undefined ? Number.POSITIVE_INFINITY : Math.floor(plan.groups.total / plan.groups.producers);
    const inFlightStarts = new Set<number>();
    const waiters: Array<() => void> = [];
    const windowBlocks = (to: number): boolean => {
      for (const start of inFlightStarts) if (start <= to - 1 - windowLocals) return true;
      return false;
    };
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < plan.count && !stopped()) {
        const from = next;
        next = Math.min(plan.count, next + plan.batchSize);
        const to = next;
        while (windowBlocks(to)) await new Promise<void>((resolve) => waiters.push(resolve));
        inFlightStarts.add(from);
        await sendWithRetry(build(from, to, () => nowUs()));
        inFlightStarts.delete(from);
        for (const waiter of waiters.splice(0)) waiter();
      }
    };
    await Promise.all(Array.from({ length: plan.inFlightMax }, lane));
  } else {
    // Open loop: message k is due at startUs + k / rate. Whatever is due goes out in
    // batches; the body carries the intended time, so a stalled system is charged for
    // the wait (no coordinated omission).
    const intervalUs = 1_000_000 / plan.ratePerSecond;
    const intendedUs = (local: number): number => startUs + local * intervalUs;
    let next = 0;
    let inFlight = 0;
    let wake: (() => void) | undefined;
    const pending = new Set<Promise<void>>();
    while (next < plan.count && !stopped()) {
      const dueEnd = Math.min(plan.count, Math.floor((nowUs() - startUs) / intervalUs) + 1);
      while (next < dueEnd && inFlight < plan.inFlightMax) {
        const from = next;
        next = Math.min(dueEnd, next + plan.batchSize);
        inFlight++;
        const sending = sendWithRetry(build(from, next, intendedUs)).finally(() => {
          inFlight--;
          pending.delete(sending);
          const waiting = wake;
          wake = undefined;
          waiting?.();
        });
        pending.add(sending);
      }
      if (next >= plan.count) break;
      if (inFlight >= plan.inFlightMax || next < dueEnd) {
        await new Promise<void>((resolve) => (wake = resolve));
      } else {
        await sleep(Math.max(0, (intendedUs(next) - nowUs()) / 1000));
      }
    }
    await Promise.all(pending);
  }
  return { role: 'producer', index: input.index, ...(firstError === undefined ? {} : { firstError }) };
}

async function runConsumer(input: WorkerInput, consumers: Consumer[]): Promise<WorkerResult> {
  const counters = new Int32Array(input.counters);
  const receivedCounts = new Uint8Array(input.receivedCounts);
  const groupLast = input.groupLast === undefined ? undefined : new Int32Array(input.groupLast);
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3, useWebAssembly: false });
  let lastAckUs: number | undefined;
  let firstError: string | undefined;

  const lane = async (consumer: Consumer): Promise<void> => {
    let previousAck: Promise<void> = Promise.resolve();
    while (Atomics.load(counters, Counter.stop) === 0) {
      let deliveries: Delivery[];
      try {
        deliveries = await consumer.receive(10, input.receiveWaitMs);
      } catch (error) {
        firstError ??= `receive: ${String(error)}`;
        Atomics.add(counters, Counter.ackErrors, 1);
        await sleep(100);
        continue;
      }
      if (deliveries.length === 0) continue;
      const receivedUs = nowUs();
      let sawFirstDelivery = false;
      // Counters move once per receive (other threads only read totals); the per-id
      // delivery count stays per message, since it is what catches duplicates across threads.
      let distinct = 0;
      let duplicates = 0;
      let decodeErrors = 0;
      for (const delivery of deliveries) {
        let fields;
        try {
          fields = decodeMessage(delivery.body);
        } catch {
          decodeErrors++;
          continue;
        }
        if (fields.id < 0 || fields.id >= receivedCounts.length) {
          decodeErrors++;
          continue;
        }
        // One read-modify-write; a count at 255 stays there (saturates) rather than wrapping to 0.
        const previousCount = Atomics.add(receivedCounts, fields.id, 1);
        if (previousCount === 255) Atomics.store(receivedCounts, fields.id, 255);
        if (previousCount > 0) {
          duplicates++;
          continue;
        }
        sawFirstDelivery = true;
        histogram.recordValue(Math.max(1, Math.round(receivedUs - fields.sendTimeUs)));
        if (groupLast !== undefined) {
          // A first delivery must be the next of its group: anything else is a gap or a reorder.
          const last = Atomics.exchange(groupLast, fields.group, fields.sequence);
          if (fields.sequence !== last + 1) Atomics.add(counters, Counter.orderViolations, 1);
        }
        distinct++;
      }
      Atomics.add(counters, Counter.received, deliveries.length);
      if (distinct > 0) Atomics.add(counters, Counter.distinct, distinct);
      if (duplicates > 0) Atomics.add(counters, Counter.duplicates, duplicates);
      if (decodeErrors > 0) Atomics.add(counters, Counter.decodeErrors, decodeErrors);
      // The ack overlaps the next receive, as a consumer that processes while its last
      // acknowledgement travels (one ack outstanding per lane): a lane that waited for each
      // ack before receiving again measured the ack's round trip (a durable delete for
      // Berth, an AOF fsync for Redis) instead of the system's throughput, and the
      // messages pushed to it meanwhile waited.
      const acking = consumer.ack(deliveries).then(
        () => {
          if (sawFirstDelivery) lastAckUs = Math.max(lastAckUs ?? 0, nowUs());
        },
        (error: unknown) => {
          firstError ??= `ack: ${String(error)}`;
          Atomics.add(counters, Counter.ackErrors, 1);
        },
      );
      await previousAck;
      previousAck = acking;
      if (Atomics.load(counters, Counter.distinct) >= input.totalMessages) Atomics.store(counters, Counter.stop, 1);
    }
    await previousAck;
  };
  await Promise.all(consumers.map(lane));
  const result: WorkerResult = { role: 'consumer', index: input.index, histogram: hdr.encodeIntoCompressedBase64(histogram) };
  if (lastAckUs !== undefined) result.lastAckUs = lastAckUs;
  if (firstError !== undefined) result.firstError = firstError;
  return result;
}

async function main(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('load-worker must run in a worker thread');
  const setup = workerData as WorkerSetup;
  // Listening from the start: node:events' on() queues what arrives until it is read.
  const messages = on(port, 'message') as AsyncIterableIterator<[MainMessage]>;
  const driver = await loadDriver(setup.driverId);
  try {
    let producer: Producer | undefined;
    const consumers: Consumer[] = [];
    if (setup.role === 'producer') producer = await driver.producer(setup.endpoint, setup.queue, setup.index);
    else for (let lane = 0; lane < setup.consumerLanes; lane++) consumers.push(await driver.consumer(setup.endpoint, setup.queue, setup.index * setup.consumerLanes + lane));
    port.postMessage({ kind: 'ready' } satisfies WorkerMessage);
    for await (const [message] of messages) {
      if (message.kind !== 'go') break;
      const input: WorkerInput = { ...setup, ...message.pass };
      const result = producer !== undefined ? await runProducer(input, producer, message.startUs) : await runConsumer(input, consumers);
      port.postMessage({ kind: 'done', result } satisfies WorkerMessage);
    }
    await producer?.close().catch(() => undefined);
    await Promise.all(consumers.map((consumer) => consumer.close().catch(() => undefined)));
  } catch (error) {
    port.postMessage({ kind: 'failed', error: error instanceof Error ? (error.stack ?? error.message) : String(error) } satisfies WorkerMessage);
  }
  port.close();
}

await main();
