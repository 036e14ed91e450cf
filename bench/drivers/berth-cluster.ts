// Berth as a 3-node cluster on loopback (W5): one etcd (Debian's /usr/bin/etcd, its own
// data directory and free ports) and three `berth serve --etcd ...` nodes n1..n3, each
// with its own data directory, HTTP, native and peer ports and zone (z1..z3), so placement
// puts one replica on each. Queues are created with ReplicaCount 3: a send is acknowledged
// only when the primary and both backups have fsynced it, and receives and deletes commit
// at the same count before they are answered.
//
// Clients spread over the nodes: producer/consumer connection k talks to node k mod 3, so
// two thirds of the calls reach a node that forwards them to the partition's primary (as
// they would behind a load balancer). Two rows share the cluster start: the light SQS JSON
// client of the `berth` row, and the Berth SDK over the native protocol.
//
// BERTH_BENCH_CLUSTER_PARTITIONS (default 1) sets --default-partition-count; with 1 the
// queue has one primary, like the RabbitMQ quorum queue it is compared with.

import { Agent } from 'node:http';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { berthEnvironment, berthNodeArguments, freePort, launch, logTail, stopLaunched, waitUntil, type Launched } from '../processes.js';
import { berthNativeDriver } from './berth-native.js';
import { berthSqsDriver, sqsCall } from './berth-sqs.js';
import { nodeEndpointFor, nodeEndpointsExtra } from './cluster.js';
import type { Driver, Endpoint, QueueSpec, RunningSystem, StartContext } from './types.js';

/** The project root: dist/bench/drivers/berth-cluster.js -> three levels up. */
const projectRoot = resolve(fileURLToPath(import.meta.url), '..', '..', '..', '..');
const etcdBinary = '/usr/bin/etcd';
const nodeCount = 3;
const replicaCount = 3;
const visibilityTimeoutSeconds = '300';
const startTimeoutMs = 120_000;

interface ClusterStatus {
  nodes: Array<{ id: string; health: string }>;
  partitions: Array<{ queue: string; partition: number; primary: string | null; replicas: string[] }>;
}

interface BerthClusterNode {
  id: string;
  httpPort: number;
  nativePort: number;
  launched: Launched;
}

function partitionCount(): number {
  const raw = process.env['BERTH_BENCH_CLUSTER_PARTITIONS'];
  const parsed = raw === undefined || raw === '' ? 1 : Number(raw);
  if (!Number.isInteger(parsed) || parsed < 1) throw new Error(`BERTH_BENCH_CLUSTER_PARTITIONS must be a positive integer, not "${raw}"`);
  return parsed;
}

async function getJson(url: string): Promise<unknown> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return await response.json();
}

async function launchEtcd(context: StartContext): Promise<{ url: string; launched: Launched }> {
  const clientPort = await freePort();
  const peerPort = await freePort();
  const url = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const launched = launch(
    etcdBinary,
    [
      '--data-dir', join(context.directory, 'etcd'),
      '--name', 'bench',
      '--listen-client-urls', url,
      '--advertise-client-urls', url,
      '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', `bench=${peerUrl}`,
      '--log-level', 'error',
    ],
    { directory: context.directory, name: 'etcd' },
  );
  await waitUntil('etcd to answer /health', async () => {
    if (launched.child.exitCode !== null) throw new Error(`etcd exited\n${logTail(launched.logPath)}`);
    await getJson(`${url}/health`);
    return true;
  }, 30_000);
  return { url, launched };
}

async function launchNode(context: StartContext, index: number, etcdUrl: string): Promise<BerthClusterNode> {
  const id = `n${index + 1}`;
  const httpPort = await freePort();
  const nativePort = await freePort();
  const peerPort = await freePort();
  const launched = launch(
    process.execPath,
    [
      ...berthNodeArguments(),
      join(projectRoot, 'bin', 'berth.js'), 'serve',
      '--host', '127.0.0.1',
      '--port', String(httpPort),
      '--native-port', String(nativePort),
      '--data-dir', join(context.directory, id),
      '--node-id', id,
      '--etcd', etcdUrl,
      '--peer-port', String(peerPort),
      '--zone', `z${index + 1}`,
      '--default-replica-count', String(replicaCount),
      '--default-partition-count', String(partitionCount()),
      '--log-level', 'warn',
    ],
    { directory: context.directory, name: `berth-${id}`, cwd: projectRoot, env: berthEnvironment() },
  );
  return { id, httpPort, nativePort, launched };
}

/** Starts etcd and three nodes; `protocol` picks which port the rows' clients use. */
async function startBerthCluster(context: StartContext, protocol: 'sqs' | 'native'): Promise<RunningSystem> {
  const nodes: BerthClusterNode[] = [];
  let etcd: { url: string; launched: Launched } | undefined;
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      agent.destroy();
      await Promise.all(nodes.map((node) => stopLaunched(node.launched, 'SIGTERM', 30_000)));
      if (etcd !== undefined) await stopLaunched(etcd.launched, 'SIGTERM', 15_000);
    })());
  const statusOf = async (node: BerthClusterNode): Promise<ClusterStatus> => (await getJson(`http://127.0.0.1:${node.httpPort}/cluster/status`)) as ClusterStatus;
  try {
    etcd = await launchEtcd(context);
    for (let index = 0; index < nodeCount; index++) nodes.push(await launchNode(context, index, etcd.url));
    for (const node of nodes) {
      await waitUntil(`berth node ${node.id} to be ready`, async () => {
        if (node.launched.child.exitCode !== null) throw new Error('exited');
        await getJson(`http://127.0.0.1:${node.httpPort}/health/ready`);
        return true;
      }, startTimeoutMs, 300);
    }
    await waitUntil(`${nodeCount} healthy nodes in /cluster/status`, async () => {
      for (const node of nodes) {
        const status = await statusOf(node);
        if (status.nodes.filter((entry) => entry.health === 'healthy').length !== nodeCount) return false;
      }
      return true;
    }, startTimeoutMs, 300);
  } catch (error) {
    const tails = nodes.map((node) => `${node.id}: ${logTail(node.launched.logPath, 6)}`).join('\n');
    await stop();
    throw new Error(`berth cluster did not start: ${String(error)}\n${tails}`);
  }
  const first = nodes[0]!;
  const adminEndpoint: Endpoint = { host: '127.0.0.1', port: first.httpPort };
  const endpoint: Endpoint = {
    host: '127.0.0.1',
    port: protocol === 'sqs' ? first.httpPort : first.nativePort,
    extra: nodeEndpointsExtra(nodes.map((node) => (protocol === 'sqs' ? node.httpPort : node.nativePort))),
  };
  return {
    endpoint,
    serverPids: () => [...nodes.map((node) => node.launched.child.pid), etcd?.launched.child.pid].filter((pid): pid is number => pid !== undefined),
    async createQueue(name, fifo) {
      const queueName = fifo ? `${name}.fifo` : name;
      const attributes: Record<string, string> = { VisibilityTimeout: visibilityTimeoutSeconds, ReplicaCount: String(replicaCount) };
      if (fifo) attributes['FifoQueue'] = 'true';
      let queueUrl: unknown;
      // The controller may still be placing the first partitions just after the start; CreateQueue is idempotent.
      await waitUntil(`CreateQueue ${queueName}`, async () => {
        queueUrl = (await sqsCall(agent, adminEndpoint, 'CreateQueue', { QueueName: queueName, Attributes: attributes }))['QueueUrl'];
        return typeof queueUrl === 'string';
      }, 60_000, 500);
      // Every node must know every partition's full replica set before the load starts.
      await waitUntil(`${queueName} placed on ${replicaCount} replicas as every node sees it`, async () => {
        for (const node of nodes) {
          const partitions = (await statusOf(node)).partitions.filter((entry) => entry.queue === queueName);
          if (partitions.length !== partitionCount() || partitions.some((entry) => entry.replicas.length < replicaCount || typeof entry.primary !== 'string' || entry.primary === '')) return false;
        }
        return true;
      }, 60_000, 300);
      return { name: queueName, fifo, extra: { queueUrl: String(queueUrl) } };
    },
    stop,
  };
}

const fifoNote = 'FIFO is not part of W5';

export const berthClusterDriver: Driver = {
  id: 'berth-cluster',
  label: 'Berth cluster, 3 nodes, r=3 (SQS JSON)',
  durabilityNote: 'r=3: the primary and both backups fsync (group commit) the log before a send is acknowledged; receives and deletes commit at r=3 too',
  fsyncPerAck: true,
  isBerth: true,
  cluster: { nodes: nodeCount, replicas: replicaCount, singleNodeId: 'berth' },
  fifo: { kind: 'none', note: fifoNote },
  binaries: [etcdBinary],
  start: (context) => startBerthCluster(context, 'sqs'),
  producer: (endpoint: Endpoint, queue: QueueSpec, index: number) => berthSqsDriver.producer(nodeEndpointFor(endpoint, index), queue, index),
  consumer: (endpoint: Endpoint, queue: QueueSpec, index: number) => berthSqsDriver.consumer(nodeEndpointFor(endpoint, index), queue, index),
};

export const berthClusterNativeDriver: Driver = {
  id: 'berth-cluster-native',
  label: 'Berth cluster, 3 nodes, r=3 (native protocol, SDK routes to primaries)',
  durabilityNote: berthClusterDriver.durabilityNote,
  fsyncPerAck: true,
  isBerth: true,
  cluster: { nodes: nodeCount, replicas: replicaCount, singleNodeId: 'berth-native' },
  fifo: { kind: 'none', note: fifoNote },
  binaries: [etcdBinary],
  start: (context) => startBerthCluster(context, 'native'),
  // The SDK learns the partition map from the node it was given and sends each call to the
  // primary itself (Berth.connect({ cluster: true })): no forwarding hop, unlike the SQS row.
  producer: (endpoint: Endpoint, queue: QueueSpec, index: number) => berthNativeDriver.producer({ ...nodeEndpointFor(endpoint, index), extra: { sdkRouting: true } }, queue, index),
  consumer: (endpoint: Endpoint, queue: QueueSpec, index: number) => berthNativeDriver.consumer({ ...nodeEndpointFor(endpoint, index), extra: { sdkRouting: true } }, queue, index),
};
