// BullMQ on the same strict Redis configuration as the Redis Streams row. A send is
// Queue.addBulk (one job per message, removed on completion); a consumer is a Worker whose
// processor hands the job to receive() and completes when ack() is called, so the job is
// "deleted" (moved to completed and removed) only after the bench has counted it.

import { Queue, Worker, type Job } from 'bullmq';
import { DeliveryBuffer } from './buffer.js';
import { redisDurabilityNote, startRedis } from './redis-server.js';
import type { Consumer, Delivery, Driver, Endpoint, Producer, QueueSpec } from './types.js';

function connectionOf(endpoint: Endpoint): { host: string; port: number; maxRetriesPerRequest: null } {
  return { host: endpoint.host, port: endpoint.port, maxRetriesPerRequest: null };
}

/** Jobs a worker holds at once (its prefetch). */
const workerConcurrency = 50;

export const bullmqDriver: Driver = {
  id: 'bullmq',
  label: 'BullMQ',
  durabilityNote: `${redisDurabilityNote}; ack = job completion (Lua script), not awaited`,
  fsyncPerAck: true,
  isBerth: false,
  fifo: { kind: 'none', note: 'n/a: per-group order (BullMQ Pro groups) is not in open-source BullMQ' },
  binaries: ['redis-server'],

  async start(context) {
    const redis = await startRedis(context);
    return {
      endpoint: { host: '127.0.0.1', port: redis.port },
      serverPids: () => (redis.launched.child.pid === undefined ? [] : [redis.launched.child.pid]),
      async createQueue(name, fifo) {
        return { name, fifo };
      },
      stop: () => redis.stop(),
    };
  },

  async producer(endpoint: Endpoint, queue: QueueSpec): Promise<Producer> {
    const bullQueue = new Queue(queue.name, { connection: connectionOf(endpoint) });
    bullQueue.on('error', () => undefined);
    await bullQueue.waitUntilReady();
    return {
      async send(batch) {
        await bullQueue.addBulk(batch.map((message) => ({ name: 'm', data: message.body, opts: { removeOnComplete: true, removeOnFail: true } })));
      },
      async close() {
        await bullQueue.close();
      },
    };
  },

  async consumer(endpoint: Endpoint, queue: QueueSpec): Promise<Consumer> {
    const buffer = new DeliveryBuffer<Delivery>();
    const pending = new Set<() => void>();
    const worker = new Worker(
      queue.name,
      async (job: Job) =>
        await new Promise<void>((resolve) => {
          pending.add(resolve);
          buffer.push({ body: job.data as string, handle: resolve });
        }),
      { connection: connectionOf(endpoint), concurrency: workerConcurrency, autorun: true, drainDelay: 1 },
    );
    worker.on('error', () => undefined);
    await worker.waitUntilReady();
    return {
      receive: (maxMessages, waitMs) => buffer.take(maxMessages, waitMs),
      async ack(deliveries) {
        for (const delivery of deliveries) {
          const resolve = delivery.handle as () => void;
          pending.delete(resolve);
          resolve();
        }
      },
      async close() {
        buffer.wake();
        await worker.close(true);
      },
    };
  },
};
