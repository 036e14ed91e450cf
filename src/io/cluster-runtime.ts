// Wiring of cluster mode (`berth serve --etcd ...`): the peer transport, the etcd
// coordinator and the ClusterNode, started in order and stopped in reverse.
//
// Start: peer listener -> ClusterNode (the QueueService the HTTP API uses) -> [caller starts
// HTTP] -> register in etcd (lease) and read the view -> follow the view (host partitions,
// claim/serve primaries, campaign for controller).

import type { Clock } from '../core/clock.js';
import type { FileSystem } from '../core/filesystem.js';
import { ClusterNode, type ClusterStatusReport } from '../cluster/cluster-node.js';
import type { NodeInfo } from '../cluster/coordinator.js';
import type { PartitionLogger, PartitionOptions } from '../broker/partition.js';
import { EtcdCoordinator } from './etcd-coordinator.js';
import { PeerTransport } from './peer-transport.js';

export interface ClusterRuntimeConfig {
  nodeId: string;
  etcdEndpoints: string[];
  host: string;
  peerPort: number;
  zone: string;
  region: string;
  accountId: string;
  dataDirectory: string;
  defaultReplicaCount: number;
  defaultPartitionCount: number;
  leaseTtlSeconds: number;
  /** A replica gone this long is replaced (default 5 minutes). */
  replicaReplaceAfterMs?: number;
}

export interface ClusterRuntime {
  readonly node: ClusterNode;
  readonly peerPort: number;
  /** Registers in etcd (with the HTTP URL others may show) and starts following the cluster. */
  join(httpUrl: string, nativeUrl?: string): Promise<void>;
  status(): ClusterStatusReport;
  close(): Promise<void>;
}

export async function startClusterRuntime(parameters: {
  config: ClusterRuntimeConfig;
  fs: FileSystem;
  clock: Clock;
  logger: PartitionLogger & { child?(bindings: object): PartitionLogger };
  newId: () => string;
  newIncarnation: () => string;
  partitionOptions?: Partial<PartitionOptions>;
  /**
   * How long the oldest fsync still running has waited (NodeFileSystem.pendingSyncAgeMs).
   * Past the lease TTL the node steps aside: it could not commit within a lease anyway.
   */
  pendingSyncAgeMs?: () => number;
}): Promise<ClusterRuntime> {
  const { config, logger } = parameters;
  let node: ClusterNode | undefined;
  const transport = new PeerTransport({
    host: config.host,
    port: config.peerPort,
    handlers: {
      onRequest: (method, body, signal) => {
        if (node === undefined) return Promise.reject(new Error('node is starting'));
        return node.handlePeerRequest(method, body, signal);
      },
      onReplicate: (frame, reply) => node?.handleReplicate(frame, reply),
      onAck: (address, frame) => node?.handleAck(address, frame),
      onDisconnect: (address) => node?.handleDisconnect(address),
      onSnapshotChunk: (frame) => node?.handleSnapshotChunk(frame),
    },
    onError: (error, context) => logger.warn({ err: error, context }, 'peer protocol error'),
  });
  await transport.listen();
  const coordinator = new EtcdCoordinator({
    endpoints: config.etcdEndpoints,
    leaseTtlSeconds: config.leaseTtlSeconds,
    fenceMarginMs: Math.min(1000, (config.leaseTtlSeconds * 1000) / 3),
    pollIntervalMs: 200,
    ...(parameters.pendingSyncAgeMs === undefined ? {} : { pendingSyncAgeMs: parameters.pendingSyncAgeMs }),
    logger,
  });
  const displayHost = config.host.includes(':') ? `[${config.host}]` : config.host;
  const peerAddress = `${displayHost}:${transport.port}`;
  const self: NodeInfo = { id: config.nodeId, zone: config.zone, region: config.region, httpUrl: '', peerAddress };
  node = new ClusterNode({
    self,
    coordinator,
    link: transport,
    fs: parameters.fs,
    dataDirectory: config.dataDirectory,
    clock: parameters.clock,
    logger,
    region: config.region,
    accountId: config.accountId,
    newId: parameters.newId,
    newIncarnation: parameters.newIncarnation,
    partitionOptions: parameters.partitionOptions,
    defaultReplicaCount: config.defaultReplicaCount,
    defaultPartitionCount: config.defaultPartitionCount,
    replicaSetSizeDefault: 3,
    commitTimeoutMs: 10_000,
    routeTimeoutMs: 15_000,
    replicaReplaceAfterMs: config.replicaReplaceAfterMs ?? 5 * 60_000,
  });
  const clusterNode = node;
  return {
    node: clusterNode,
    peerPort: transport.port,
    async join(httpUrl: string, nativeUrl?: string): Promise<void> {
      self.httpUrl = httpUrl;
      if (nativeUrl !== undefined) self.nativeUrl = nativeUrl;
      await coordinator.start(self);
      clusterNode.start();
      logger.info({ node: config.nodeId, peerAddress, etcd: config.etcdEndpoints }, 'joined the cluster');
    },
    status: () => clusterNode.status(),
    async close(): Promise<void> {
      await clusterNode.close();
      await coordinator.close();
      await transport.close();
    },
  };
}
