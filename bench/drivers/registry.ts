// Every system the bench knows, in table order. A new row (Berth's native protocol, a
// Berth cluster for W5) is one Driver module and one line here.

import { berthClusterDriver, berthClusterNativeDriver } from './berth-cluster.js';
import { berthAwsSdkDriver, berthSqsDriver } from './berth-sqs.js';
import { berthNativeDriver } from './berth-native.js';
import { bullmqDriver } from './bullmq.js';
import { natsClusterDriver } from './nats-cluster.js';
import { natsDriver } from './nats.js';
import { rabbitmqClusterDriver } from './rabbitmq-cluster.js';
import { rabbitmqDriver } from './rabbitmq.js';
import { redisStreamsDriver } from './redis-streams.js';
import type { Driver } from './types.js';

export const drivers: readonly Driver[] = [
  berthSqsDriver,
  berthNativeDriver,
  berthAwsSdkDriver,
  redisStreamsDriver,
  bullmqDriver,
  rabbitmqDriver,
  natsDriver,
  // W5 (cluster) rows: they run only when W5 is selected, after the single-node rows.
  berthClusterDriver,
  berthClusterNativeDriver,
  rabbitmqClusterDriver,
  natsClusterDriver,
];

export function driverById(id: string): Driver {
  const driver = drivers.find((candidate) => candidate.id === id);
  if (driver === undefined) throw new Error(`unknown system "${id}"; known: ${drivers.map((known) => known.id).join(', ')}`);
  return driver;
}
