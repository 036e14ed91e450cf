// NATS JetStream as a 3-server cluster on loopback (W5): nats-server processes nats1..nats3
// with their own client and route ports and file stores, cluster "bench" with routes to
// each other; the stream has 3 replicas (its consumer inherits them). Clients are the
// single-node row's, connection k on server k mod 3.
//
// Durability, honestly: with R3 a PubAck follows the stream's Raft commit, i.e. a majority
// (2 of 3) of the servers wrote the message to their file store, with no fsync per ack
// (background flush; nats-server 2.9.10 from Debian has no sync_interval, see nats.ts).

import { join } from 'node:path';
import { freePort, launch, logTail, portAccepts, stopLaunched, waitUntil, type Launched } from '../processes.js';
import { nodeEndpointFor, nodeEndpointsExtra } from './cluster.js';
import { addWorkQueueStream, natsDriver } from './nats.js';
import type { Driver, Endpoint, QueueSpec } from './types.js';

const serverCount = 3;
const replicas = 3;

interface NatsServer {
  port: number;
  launched: Launched;
}

export const natsClusterDriver: Driver = {
  id: 'nats-cluster',
  label: 'NATS JetStream cluster, 3 servers, R3',
  durabilityNote: 'R3 file store: PubAck after a majority (2 of 3) wrote it to the page cache, no fsync per ack (background flush; no sync_interval in nats-server 2.9.10)',
  fsyncPerAck: false,
  isBerth: false,
  cluster: { nodes: serverCount, replicas, singleNodeId: 'nats' },
  fifo: { kind: 'none', note: 'FIFO is not part of W5' },
  binaries: ['nats-server'],

  async start(context) {
    const clientPorts: number[] = [];
    const routePorts: number[] = [];
    for (let index = 0; index < serverCount; index++) {
      clientPorts.push(await freePort());
      routePorts.push(await freePort());
    }
    const routes = routePorts.map((port) => `nats://127.0.0.1:${port}`);
    const servers: NatsServer[] = clientPorts.map((port, index) => ({
      port,
      launched: launch(
        'nats-server',
        [
          '-a', '127.0.0.1', '-p', String(port),
          '-n', `nats${index + 1}`,
          '-js', '-sd', join(context.directory, `nats${index + 1}`),
          '--cluster_name', 'bench',
          '--cluster', routes[index]!,
          '--routes', routes.filter((_, other) => other !== index).join(','),
        ],
        { directory: context.directory, name: `nats${index + 1}` },
      ),
    }));
    const stop = async (): Promise<void> => {
      await Promise.all(servers.map((server) => stopLaunched(server.launched, 'SIGTERM', 30_000)));
    };
    try {
      for (const server of servers) {
        await waitUntil(`nats-server on ${server.port} to listen`, async () => {
          if (server.launched.child.exitCode !== null) throw new Error('exited');
          return await portAccepts(server.port);
        }, 30_000);
      }
    } catch (error) {
      const tails = servers.map((server) => logTail(server.launched.logPath, 6)).join('\n');
      await stop();
      throw new Error(`NATS cluster did not start: ${String(error)}\n${tails}`);
    }
    const firstEndpoint: Endpoint = { host: '127.0.0.1', port: servers[0]!.port };
    return {
      endpoint: { ...firstEndpoint, extra: nodeEndpointsExtra(clientPorts) },
      serverPids: () => servers.map((server) => server.launched.child.pid).filter((pid): pid is number => pid !== undefined),
      async createQueue(name, fifo) {
        // JetStream answers "no meta leader" (or times out) until the servers have elected one.
        let lastError: unknown;
        await waitUntil(`JetStream to create R${replicas} stream ${name}`, async () => {
          try {
            await addWorkQueueStream(firstEndpoint, name, replicas);
            return true;
          } catch (error) {
            lastError = error;
            return false;
          }
        }, 60_000, 500).catch((error: unknown) => {
          throw new Error(`${String(error)}: ${String(lastError)}`);
        });
        return { name, fifo };
      },
      stop,
    };
  },

  producer: (endpoint: Endpoint, queue: QueueSpec, index: number) => natsDriver.producer(nodeEndpointFor(endpoint, index), queue, index),
  consumer: (endpoint: Endpoint, queue: QueueSpec, index: number) => natsDriver.consumer(nodeEndpointFor(endpoint, index), queue, index),
};
