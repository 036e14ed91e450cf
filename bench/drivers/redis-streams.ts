// Redis Streams as a queue: XADD to send, XREADGROUP (one consumer group shared by all
// consumers) to receive, XACK + XDEL in one pipeline to delete, so acknowledged messages
// leave memory as they do in a queue.

import { Redis } from 'ioredis';
import { redisDurabilityNote, startRedis } from './redis-server.js';
import type { Consumer, Delivery, Driver, Endpoint, Producer, QueueSpec } from './types.js';

const groupName = 'bench';

function connectTo(endpoint: Endpoint): Redis {
  const client = new Redis({ host: endpoint.host, port: endpoint.port, maxRetriesPerRequest: null, enableAutoPipelining: false });
  // Connection errors surface as rejected commands; the event only matters for reconnects after stop.
  client.on('error', () => undefined);
  return client;
}

type StreamReply = Array<[string, Array<[string, string[]]>]> | null;

export const redisStreamsDriver: Driver = {
  id: 'redis',
  label: 'Redis Streams',
  durabilityNote: redisDurabilityNote,
  fsyncPerAck: true,
  isBerth: false,
  fifo: { kind: 'none', note: 'n/a: a consumer group hands out entries to any consumer, no per-key order' },
  binaries: ['redis-server'],

  async start(context) {
    const redis = await startRedis(context);
    return {
      endpoint: { host: '127.0.0.1', port: redis.port },
      serverPids: () => (redis.launched.child.pid === undefined ? [] : [redis.launched.child.pid]),
      async createQueue(name, fifo) {
        const client = connectTo({ host: '127.0.0.1', port: redis.port });
        try {
          await client.call('XGROUP', 'CREATE', name, groupName, '$', 'MKSTREAM');
        } finally {
          client.disconnect();
        }
        return { name, fifo };
      },
      stop: () => redis.stop(),
    };
  },

  async producer(endpoint: Endpoint, queue: QueueSpec): Promise<Producer> {
    const client = connectTo(endpoint);
    return {
      async send(batch) {
        const pipeline = client.pipeline();
        for (const message of batch) pipeline.call('XADD', queue.name, '*', 'b', message.body);
        const results = await pipeline.exec();
        for (const [error] of results ?? []) if (error) throw error;
      },
      async close() {
        client.disconnect();
      },
    };
  },

  async consumer(endpoint: Endpoint, queue: QueueSpec, index: number): Promise<Consumer> {
    const client = connectTo(endpoint);
    // Acks on a connection of their own: on the reading one they would queue behind the
    // next blocking XREADGROUP (the load worker overlaps an ack with the next receive).
    const ackClient = connectTo(endpoint);
    const consumerName = `consumer-${index}`;
    return {
      async receive(maxMessages, waitMs) {
        const reply = (await client.call('XREADGROUP', 'GROUP', groupName, consumerName, 'COUNT', maxMessages, 'BLOCK', Math.max(1, waitMs), 'STREAMS', queue.name, '>')) as StreamReply;
        const deliveries: Delivery[] = [];
        for (const [, entries] of reply ?? []) {
          for (const [id, fields] of entries) deliveries.push({ body: fields[1] ?? '', handle: id });
        }
        return deliveries;
      },
      async ack(deliveries) {
        if (deliveries.length === 0) return;
        const ids = deliveries.map((delivery) => delivery.handle as string);
        const pipeline = ackClient.pipeline();
        pipeline.call('XACK', queue.name, groupName, ...ids);
        pipeline.call('XDEL', queue.name, ...ids);
        const results = await pipeline.exec();
        for (const [error] of results ?? []) if (error) throw error;
      },
      async close() {
        client.disconnect();
        ackClient.disconnect();
      },
    };
  },
};
