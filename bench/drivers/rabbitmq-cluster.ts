// RabbitMQ as a 3-node cluster on loopback (W5): one epmd on a free port shared by nodes
// bench1@localhost, bench2@localhost and bench3@localhost, each with its own AMQP and
// distribution ports, config, mnesia and log directories, and one HOME holding the shared
// Erlang cookie. bench2 and bench3 join bench1 with rabbitmqctl (stop_app, join_cluster,
// start_app). The queue is a quorum queue with 3 members (x-quorum-initial-group-size 3):
// a publisher confirm follows the fsync of the Raft entry by a majority (2 of 3 members).
// Clients are the single-node row's (publisher confirms, manual acks), connection k on
// node k mod 3, so two thirds of them talk to a follower that relays to the leader.

import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, launch, logTail, stopLaunched, type Launched } from '../processes.js';
import { nodeEndpointFor, nodeEndpointsExtra } from './cluster.js';
import { declareQuorumQueue, launchRabbitNode, rabbitmqDriver, rabbitmqctl, stopRabbitNode, waitRabbitNode, type RabbitNode } from './rabbitmq.js';
import type { Driver, Endpoint, QueueSpec } from './types.js';

const nodeCount = 3;
// Erlang reads the cookie from $HOME/.erlang.cookie and refuses it unless only the owner can read it.
const cookie = 'BERTHBENCHCLUSTERCOOKIE';

export const rabbitmqClusterDriver: Driver = {
  id: 'rabbitmq-cluster',
  label: 'RabbitMQ cluster, 3 nodes, quorum queue of 3',
  durabilityNote: 'quorum queue of 3 members, publisher confirms: confirm after a majority (2 of 3) fsynced the Raft entry; basic.ack unconfirmed',
  fsyncPerAck: true,
  isBerth: false,
  cluster: { nodes: nodeCount, replicas: nodeCount, singleNodeId: 'rabbitmq' },
  fifo: { kind: 'none', note: 'FIFO is not part of W5' },
  binaries: ['rabbitmq-server', 'epmd'],

  async start(context) {
    const epmdPort = await freePort();
    const home = join(context.directory, 'home');
    mkdirSync(home, { recursive: true });
    writeFileSync(join(home, '.erlang.cookie'), cookie, { mode: 0o400 });
    const epmd: Launched = launch('epmd', ['-port', String(epmdPort), '-address', '127.0.0.1'], { directory: context.directory, name: 'epmd' });
    const nodes: RabbitNode[] = [];
    let stopping: Promise<void> | undefined;
    const stop = (): Promise<void> =>
      (stopping ??= (async () => {
        // Followers first, so the first node does not wait for the others' quorum members on its way down.
        for (const node of [...nodes].reverse()) await stopRabbitNode(node);
        await stopLaunched(epmd, 'SIGTERM', 30_000);
      })());
    try {
      for (let index = 1; index <= nodeCount; index++) {
        nodes.push(await launchRabbitNode({ directory: join(context.directory, `bench${index}`), name: `bench${index}@localhost`, home, epmdPort }));
      }
      await Promise.all(nodes.map((node) => waitRabbitNode(node)));
      const [first, ...others] = nodes;
      for (const node of others) {
        await rabbitmqctl(node, ['stop_app']);
        await rabbitmqctl(node, ['join_cluster', first!.name]);
        await rabbitmqctl(node, ['start_app']);
      }
      await rabbitmqctl(first!, ['await_online_nodes', String(nodeCount)]);
      for (const node of others) await waitRabbitNode(node);
    } catch (error) {
      const tails = nodes.map((node) => `${node.name}: ${logTail(node.server.logPath, 6)}`).join('\n');
      await stop();
      throw new Error(`RabbitMQ cluster did not start: ${String(error)}\n${tails}`);
    }
    const firstEndpoint: Endpoint = { host: '127.0.0.1', port: nodes[0]!.port };
    return {
      endpoint: { ...firstEndpoint, extra: nodeEndpointsExtra(nodes.map((node) => node.port)) },
      serverPids: () => nodes.map((node) => node.pid).filter((pid): pid is number => pid !== undefined),
      async createQueue(name, fifo) {
        await declareQuorumQueue(firstEndpoint, name, { 'x-quorum-initial-group-size': nodeCount });
        return { name, fifo };
      },
      stop,
    };
  },

  producer: (endpoint: Endpoint, queue: QueueSpec, index: number) => rabbitmqDriver.producer(nodeEndpointFor(endpoint, index), queue, index),
  consumer: (endpoint: Endpoint, queue: QueueSpec, index: number) => rabbitmqDriver.consumer(nodeEndpointFor(endpoint, index), queue, index),
};
