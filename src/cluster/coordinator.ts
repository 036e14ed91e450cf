// What the cluster keeps in etcd, and the interface to it (the etcd adapter is
// src/io/etcd-coordinator.ts). etcd is the consensus: Berth never votes by itself.
//
// Keys (all under a prefix, default /berth/):
//   nodes/<id>                     NodeInfo, attached to the node's lease (gone when it expires)
//   controller                     the controller's node id, attached to its lease
//   queues/<name>                  QueueMetadata (attributes, tags, incarnation, partitionCount)
//   deleted/<name>                 delete time (QueueDeletedRecently)
//   partitions/<incarnation>/<k>   PartitionAssignment: epoch, primary, replicas
// A partition assignment changes only by compare-and-swap on its mod revision, and each
// change that moves or restarts its primary raises the epoch.

import type { QueueMetadata } from '../broker/metadata-store.js';

export interface NodeInfo {
  id: string;
  zone: string;
  region: string;
  /** Base URL of its HTTP API (SQS, console, status). */
  httpUrl: string;
  /** host:port of its peer protocol listener. */
  peerAddress: string;
  /** berth://host:port of its native protocol, when it has one on (SDK clients connect to primaries directly). */
  nativeUrl?: string;
}

export interface PartitionAssignment {
  queue: string;
  incarnation: string;
  partition: number;
  /** Raised by every change of primary (and by a primary restarting); records carry it. */
  epoch: number;
  /** Node id of the primary. */
  primary: string;
  /** The replica set: the primary and its backups, distinct nodes. */
  replicas: string[];
}

export interface VersionedAssignment {
  assignment: PartitionAssignment;
  modRevision: string;
}

export interface ClusterView {
  /** etcd revision the view was read at. */
  revision: string;
  /** Live nodes (their lease is alive). */
  nodes: Map<string, NodeInfo>;
  controller: string | undefined;
  queues: Map<string, { metadata: QueueMetadata; modRevision: string }>;
  deletedRecently: Map<string, number>;
  /** Key `${incarnation}/${partition}`. */
  partitions: Map<string, VersionedAssignment>;
}

export function partitionKey(incarnation: string, partition: number): string {
  return `${incarnation}/${partition}`;
}

export function emptyView(): ClusterView {
  return { revision: '0', nodes: new Map(), controller: undefined, queues: new Map(), deletedRecently: new Map(), partitions: new Map() };
}

/** Builds a view from the key-value pairs under the prefix (pure; tolerant of foreign keys). */
export function viewFromEntries(revision: string, entries: Array<{ key: string; value: string; modRevision: string }>): ClusterView {
  const view = emptyView();
  view.revision = revision;
  for (const entry of entries) {
    const [kind, ...rest] = entry.key.split('/');
    const name = rest.join('/');
    try {
      if (kind === 'nodes') view.nodes.set(name, JSON.parse(entry.value) as NodeInfo);
      else if (kind === 'controller') view.controller = entry.value;
      else if (kind === 'queues') view.queues.set(name, { metadata: JSON.parse(entry.value) as QueueMetadata, modRevision: entry.modRevision });
      else if (kind === 'deleted') view.deletedRecently.set(name, Number(entry.value));
      else if (kind === 'partitions') view.partitions.set(name, { assignment: JSON.parse(entry.value) as PartitionAssignment, modRevision: entry.modRevision });
    } catch {
      // A malformed value is skipped (another version's key); never crash the poll on it.
    }
  }
  return view;
}

export interface Coordinator {
  /** Registers this node under its lease and starts keepalives and view polling. */
  start(self: NodeInfo): Promise<void>;
  /** The last view read. */
  view(): ClusterView;
  /** Reads a fresh view now. */
  refresh(): Promise<ClusterView>;
  onView(listener: (view: ClusterView) => void): void;
  /**
   * Monotonic time (ms) until which this node may acknowledge writes: its last keepalive
   * that etcd confirmed, plus the lease TTL minus a safety margin; 0 while the lease is
   * lost or the view has not been re-read since it was granted again.
   */
  acknowledgeUntilMs(): number;
  /** True if created; false if the queue exists (or a concurrent create won). */
  createQueue(metadata: QueueMetadata, assignments: PartitionAssignment[]): Promise<boolean>;
  updateQueue(metadata: QueueMetadata, expectedModRevision: string): Promise<boolean>;
  deleteQueue(metadata: QueueMetadata, expectedModRevision: string, deletedAtMs: number): Promise<boolean>;
  /** Compare-and-swap of one partition assignment. */
  casPartition(assignment: PartitionAssignment, expectedModRevision: string): Promise<boolean>;
  /** Tries to take the controller key (attached to this node's lease); true when this node holds it. */
  campaign(): Promise<boolean>;
  close(): Promise<void>;
}
