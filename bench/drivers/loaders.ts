// The driver of one system, imported on its own: a load worker drives one system, and
// importing the registry made each of the 8 workers load every peer's client (ioredis,
// bullmq, amqplib, nats, the AWS SDK), ~3 s of CPU per worker at each workload's start.
// This table is also the bench's list of systems, in table order (registry.ts imports them
// all); bench.test.ts checks that each key names its driver's id.

import type { Driver } from './types.js';

export const driverLoaders: Readonly<Record<string, () => Promise<Driver>>> = {
  berth: async () => (await import('./berth-sqs.js')).berthSqsDriver,
  'berth-native': async () => (await import('./berth-native.js')).berthNativeDriver,
  'berth-sdk': async () => (await import('./berth-sqs.js')).berthAwsSdkDriver,
  redis: async () => (await import('./redis-streams.js')).redisStreamsDriver,
  bullmq: async () => (await import('./bullmq.js')).bullmqDriver,
  rabbitmq: async () => (await import('./rabbitmq.js')).rabbitmqDriver,
  nats: async () => (await import('./nats.js')).natsDriver,
  // W5 (cluster) rows: they run only when W5 is selected, after the single-node rows.
  'berth-cluster': async () => (await import('./berth-cluster.js')).berthClusterDriver,
  'berth-cluster-native': async () => (await import('./berth-cluster.js')).berthClusterNativeDriver,
  'rabbitmq-cluster': async () => (await import('./rabbitmq-cluster.js')).rabbitmqClusterDriver,
  'nats-cluster': async () => (await import('./nats-cluster.js')).natsClusterDriver,
};

export async function loadDriver(id: string): Promise<Driver> {
  const load = driverLoaders[id];
  if (load === undefined) throw new Error(`unknown system "${id}"; known: ${Object.keys(driverLoaders).join(', ')}`);
  return await load();
}
