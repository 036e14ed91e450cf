// NATS JetStream with file storage (-js -sd <tmp>): a work-queue stream (an acked message
// is removed) and one durable pull consumer with explicit acks shared by all consumers.
//
// Durability, honestly: nats-server acknowledges a publish (PubAck) once the message is
// written to the file store, before any fsync; the store is fsynced in the background
// every 2 minutes. nats-server 2.10+ makes that `sync_interval` (with `always` for an
// fsync per write); Debian 12 ships 2.9.10, which refuses the option, so a like-for-like
// "sync always" row is not possible with the Debian package and is not reported.

import { AckPolicy, RetentionPolicy, StorageType, connect, type JsMsg, type NatsConnection } from 'nats';
import { join } from 'node:path';
import { DeliveryBuffer } from './buffer.js';
import { freePort, launch, logTail, portAccepts, stopLaunched, waitUntil } from '../processes.js';
import type { Consumer, Delivery, Driver, Endpoint, Producer, QueueSpec } from './types.js';

const durableName = 'bench';

async function connectTo(endpoint: Endpoint): Promise<NatsConnection> {
  return await connect({ servers: `${endpoint.host}:${endpoint.port}`, maxReconnectAttempts: 0 });
}

/** A file-stored work-queue stream on subject `name` with `replicas` copies, and the shared durable pull consumer. */
export async function addWorkQueueStream(endpoint: Endpoint, name: string, replicas: number): Promise<void> {
  const connection = await connectTo(endpoint);
  try {
    const manager = await connection.jetstreamManager();
    await manager.streams.add({ name, subjects: [name], retention: RetentionPolicy.Workqueue, storage: StorageType.File, max_msgs: -1, max_bytes: -1, num_replicas: replicas });
    await manager.consumers.add(name, { durable_name: durableName, ack_policy: AckPolicy.Explicit, max_ack_pending: 20_000, ack_wait: 60_000_000_000 });
  } finally {
    await connection.close();
  }
}

export const natsDriver: Driver = {
  id: 'nats',
  label: 'NATS JetStream',
  durabilityNote: 'file store, PubAck after write() to page cache, no fsync per ack (background fsync every 2 min; sync_interval needs nats-server 2.10+, Debian has 2.9.10)',
  fsyncPerAck: false,
  isBerth: false,
  fifo: { kind: 'none', note: 'n/a: a shared pull consumer delivers to any client; no per-subject order with several consumers' },
  binaries: ['nats-server'],

  async start(context) {
    const port = await freePort();
    const launched = launch('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', join(context.directory, 'jetstream')], { directory: context.directory, name: 'nats' });
    try {
      await waitUntil('nats-server to listen', async () => {
        if (launched.child.exitCode !== null) throw new Error('exited');
        return await portAccepts(port);
      }, 30_000);
    } catch (error) {
      await stopLaunched(launched);
      throw new Error(`nats-server did not start: ${String(error)}\n${logTail(launched.logPath)}`);
    }
    return {
      endpoint: { host: '127.0.0.1', port },
      serverPids: () => (launched.child.pid === undefined ? [] : [launched.child.pid]),
      async createQueue(name, fifo) {
        await addWorkQueueStream({ host: '127.0.0.1', port }, name, 1);
        return { name, fifo };
      },
      stop: () => stopLaunched(launched, 'SIGTERM', 30_000),
    };
  },

  async producer(endpoint: Endpoint, queue: QueueSpec): Promise<Producer> {
    const connection = await connectTo(endpoint);
    const jetstream = connection.jetstream();
    const encoder = new TextEncoder();
    return {
      async send(batch) {
        await Promise.all(batch.map((message) => jetstream.publish(queue.name, encoder.encode(message.body))));
      },
      async close() {
        await connection.close();
      },
    };
  },

  async consumer(endpoint: Endpoint, queue: QueueSpec): Promise<Consumer> {
    const connection = await connectTo(endpoint);
    const jetstream = connection.jetstream();
    const consumer = await jetstream.consumers.get(queue.name, durableName);
    const messages = await consumer.consume({ max_messages: 200 });
    const buffer = new DeliveryBuffer<Delivery>();
    const pump = (async () => {
      for await (const message of messages) buffer.push({ body: message.string(), handle: message });
    })().catch(() => undefined);
    return {
      receive: (maxMessages, waitMs) => buffer.take(maxMessages, waitMs),
      async ack(deliveries) {
        for (const delivery of deliveries) (delivery.handle as JsMsg).ack();
      },
      async close() {
        buffer.wake();
        await messages.close();
        await pump;
        await connection.drain().catch(() => undefined);
      },
    };
  },
};
