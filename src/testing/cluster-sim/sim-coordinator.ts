// etcd on simulated time, and the Coordinator each simulated node uses to reach it.
//
// SimEtcd keeps what the cluster keeps in etcd (see src/cluster/coordinator.ts for the
// keys) with etcd's semantics where Berth relies on them: one revision counter raised by
// every change; per key a mod revision and a create revision; compare-and-swap
// transactions on them; leases with a TTL that expire on the true (timeline) clock unless
// kept alive, deleting the keys attached to them; a put re-attaches a key to the lease it
// names. It is one linearizable store (no etcd member failures are simulated: Berth never
// votes by itself, etcd is its consensus).
//
// SimCoordinator is src/io/etcd-coordinator.ts on a node's clock: the same LeaseKeeper
// (src/cluster/lease-keeper.ts: lease states, fence and stepping aside, on the node's own,
// possibly drifting, clock) and the same polled view (a full read every pollIntervalMs;
// etcd3's watch is not used by the real adapter either). Each call to etcd
// crosses the simulated network: a seeded delay each way, and no answer while the node is
// cut off from etcd (the call then fails after its timeout).

import type { QueueMetadata } from '../../broker/metadata-store.js';
import { repeatOn, sleepOn, type TimerHandle } from '../../core/clock.js';
import { emptyView, partitionKey, viewFromEntries, type ClusterView, type Coordinator, type NodeInfo, type PartitionAssignment } from '../../cluster/coordinator.js';
import { LeaseKeeper } from '../../cluster/lease-keeper.js';
import type { ProcessClock } from '../simulator/sim-process.js';
import type { NodeClock } from './node-clock.js';
import type { SimNetwork } from './sim-network.js';

interface Entry {
  value: string;
  modRevision: number;
  createRevision: number;
  lease: number | undefined;
}

interface LeaseState {
  ttlMs: number;
  expiry: TimerHandle;
}

export class SimEtcd {
  private revision = 1;
  private readonly entries = new Map<string, Entry>();
  private readonly leases = new Map<number, LeaseState>();
  private leaseCounter = 0;

  constructor(
    /** etcd's own timer owner (never dies): lease expiry runs on true time. */
    private readonly clock: ProcessClock,
    private readonly record: (line: string) => void,
  ) {}

  grant(ttlMs: number): number {
    const id = ++this.leaseCounter;
    this.leases.set(id, { ttlMs, expiry: this.clock.setTimer(ttlMs, () => this.expire(id)) });
    return id;
  }

  /** Remaining TTL in ms, or 0 when the lease is gone (etcd answers TTL -1 / not found). */
  keepalive(id: number): number {
    const lease = this.leases.get(id);
    if (lease === undefined) return 0;
    lease.expiry.cancel();
    lease.expiry = this.clock.setTimer(lease.ttlMs, () => this.expire(id));
    return lease.ttlMs;
  }

  revoke(id: number): void {
    this.expire(id, 'revoked');
  }

  private expire(id: number, how = 'expired'): void {
    const lease = this.leases.get(id);
    if (lease === undefined) return;
    lease.expiry.cancel();
    this.leases.delete(id);
    const gone = [...this.entries].filter(([, entry]) => entry.lease === id).map(([key]) => key);
    if (gone.length > 0) this.revision++;
    for (const key of gone) this.entries.delete(key);
    this.record(`etcd lease ${id} ${how}${gone.length > 0 ? `: ${gone.join(' ')}` : ''}`);
  }

  get(key: string): Entry | undefined {
    return this.entries.get(key);
  }

  /** One transaction: when every comparison holds, all writes apply at one new revision. */
  transaction(
    compares: Array<{ key: string; field: 'mod' | 'create'; equals: number }>,
    writes: Array<{ key: string; value?: string; lease?: number }>,
  ): boolean {
    for (const compare of compares) {
      const entry = this.entries.get(compare.key);
      const actual = entry === undefined ? 0 : compare.field === 'mod' ? entry.modRevision : entry.createRevision;
      if (actual !== compare.equals) return false;
    }
    for (const write of writes) if (write.lease !== undefined && !this.leases.has(write.lease)) return false;
    if (writes.length === 0) return true;
    this.revision++;
    for (const write of writes) {
      if (write.value === undefined) {
        this.entries.delete(write.key);
        continue;
      }
      const existing = this.entries.get(write.key);
      if (write.key.startsWith('partitions/')) {
        const assignment = JSON.parse(write.value) as PartitionAssignment;
        this.record(`etcd ${write.key} epoch ${assignment.epoch} primary ${assignment.primary} replicas ${assignment.replicas.join(',')}`);
      }
      this.entries.set(write.key, { value: write.value, modRevision: this.revision, createRevision: existing?.createRevision ?? this.revision, lease: write.lease });
    }
    return true;
  }

  range(): ClusterView {
    const entries = [...this.entries].sort(([a], [b]) => (a < b ? -1 : 1)).map(([key, entry]) => ({ key, value: entry.value, modRevision: String(entry.modRevision) }));
    return viewFromEntries(String(this.revision), entries);
  }
}

export interface SimCoordinatorOptions {
  nodeId: string;
  etcd: SimEtcd;
  network: SimNetwork;
  /** The network's timer owner: a request in flight outlives the process that sent it. */
  networkClock: ProcessClock;
  clock: NodeClock;
  leaseTtlMs: number;
  fenceMarginMs: number;
  pollIntervalMs: number;
  requestTimeoutMs: number;
  /** As EtcdCoordinatorOptions.pendingSyncAgeMs: how long this node's oldest running fsync has waited (ms). */
  pendingSyncAgeMs?: () => number;
  logger: { info(object: object, message: string): void; warn(object: object, message: string): void };
}

export class SimCoordinator implements Coordinator {
  private current: ClusterView = emptyView();
  private readonly listeners: Array<(view: ClusterView) => void> = [];
  private self: NodeInfo | undefined;
  /** Lease ids on SimEtcd. */
  private readonly membership: LeaseKeeper<number>;
  private keepaliveTimer: TimerHandle | undefined;
  private pollTimer: TimerHandle | undefined;
  private closed = false;

  constructor(private readonly options: SimCoordinatorOptions) {
    const { clock } = options;
    this.membership = new LeaseKeeper<number>(
      {
        grant: () => {
          const self = this.self;
          if (self === undefined) return Promise.reject(new Error('the coordinator has not started'));
          return this.call((etcd) => {
            const id = etcd.grant(options.leaseTtlMs);
            etcd.transaction([], [{ key: `nodes/${self.id}`, value: JSON.stringify(self), lease: id }]);
            return id;
          });
        },
        keepalive: (id) => this.call((etcd) => etcd.keepalive(id)).then((ttlMs) => (ttlMs > 0 ? 'renewed' : 'expired')),
        revoke: (id) => this.call((etcd) => etcd.revoke(id)),
        monotonicMs: () => clock.monotonicMs(),
        sleep: (ms) => sleepOn(clock, ms),
        running: () => clock.alive,
        describe: (id) => ({ leaseId: id, node: this.self?.id }),
      },
      { ttlMs: options.leaseTtlMs, fenceMarginMs: options.fenceMarginMs, ...(options.pendingSyncAgeMs === undefined ? {} : { pendingSyncAgeMs: options.pendingSyncAgeMs }), logger: options.logger },
    );
  }

  /** One call to etcd across the network; rejects after the timeout when no answer came. */
  private call<T>(operation: (etcd: SimEtcd) => T): Promise<T> {
    const { network, networkClock, clock, nodeId } = this.options;
    return new Promise<T>((resolve, reject) => {
      if (!clock.alive) return;
      let done = false;
      const timeout = clock.setTimer(this.options.requestTimeoutMs, () => {
        if (done) return;
        done = true;
        reject(new Error('etcd request timed out'));
      });
      if (!network.reachesEtcd(nodeId)) return;
      networkClock.setTimer(network.delayMs(), () => {
        if (!network.reachesEtcd(nodeId)) return;
        const result = operation(this.options.etcd);
        networkClock.setTimer(network.delayMs(), () => {
          if (!network.reachesEtcd(nodeId)) return;
          clock.runOrHold(() => {
            if (done) return;
            done = true;
            timeout.cancel();
            resolve(result);
          });
        });
      });
    });
  }

  async start(self: NodeInfo): Promise<void> {
    this.self = self;
    await this.membership.grant();
    await this.refresh();
    this.keepaliveTimer = repeatOn(this.options.clock, Math.max(100, this.options.leaseTtlMs / 6), () => this.membership.keepalive());
    const poll = (): void => {
      if (this.closed) return;
      this.refresh()
        .catch((error: unknown) => this.options.logger.warn({ err: error }, 'etcd view poll failed'))
        .finally(() => {
          if (!this.closed) this.pollTimer = this.options.clock.setTimer(this.options.pollIntervalMs, poll);
        });
    };
    this.pollTimer = this.options.clock.setTimer(this.options.pollIntervalMs, poll);
  }

  view(): ClusterView {
    return this.current;
  }

  onView(listener: (view: ClusterView) => void): void {
    this.listeners.push(listener);
  }

  acknowledgeUntilMs(): number {
    return this.membership.acknowledgeUntilMs();
  }

  async refresh(): Promise<ClusterView> {
    const startedMs = this.options.clock.monotonicMs();
    const view = await this.call((etcd) => etcd.range());
    if (BigInt(view.revision) < BigInt(this.current.revision)) return this.current;
    this.current = view;
    this.membership.viewRead(startedMs, this.self === undefined || view.nodes.has(this.self.id));
    for (const listener of this.listeners) listener(view);
    return view;
  }

  createQueue(metadata: QueueMetadata, assignments: PartitionAssignment[]): Promise<boolean> {
    return this.call((etcd) => etcd.transaction(
      [{ key: `queues/${metadata.name}`, field: 'create', equals: 0 }],
      [
        { key: `queues/${metadata.name}`, value: JSON.stringify(metadata) },
        { key: `deleted/${metadata.name}` },
        ...assignments.map((assignment) => ({ key: `partitions/${partitionKey(assignment.incarnation, assignment.partition)}`, value: JSON.stringify(assignment) })),
      ],
    ));
  }

  updateQueue(metadata: QueueMetadata, expectedModRevision: string): Promise<boolean> {
    return this.call((etcd) => etcd.transaction([{ key: `queues/${metadata.name}`, field: 'mod', equals: Number(expectedModRevision) }], [{ key: `queues/${metadata.name}`, value: JSON.stringify(metadata) }]));
  }

  deleteQueue(metadata: QueueMetadata, expectedModRevision: string, deletedAtMs: number): Promise<boolean> {
    const partitions = Array.from({ length: metadata.partitionCount }, (_, index) => ({ key: `partitions/${partitionKey(metadata.incarnation, index)}` }));
    return this.call((etcd) => etcd.transaction(
      [{ key: `queues/${metadata.name}`, field: 'mod', equals: Number(expectedModRevision) }],
      [{ key: `queues/${metadata.name}` }, { key: `deleted/${metadata.name}`, value: String(deletedAtMs) }, ...partitions],
    ));
  }

  casPartition(assignment: PartitionAssignment, expectedModRevision: string): Promise<boolean> {
    const key = `partitions/${partitionKey(assignment.incarnation, assignment.partition)}`;
    return this.call((etcd) => etcd.transaction([{ key, field: 'mod', equals: Number(expectedModRevision) }], [{ key, value: JSON.stringify(assignment) }]));
  }

  async campaign(): Promise<boolean> {
    const self = this.self;
    const leaseId = this.membership.lease;
    if (self === undefined || leaseId === undefined) return false;
    return this.call((etcd) => etcd.transaction([{ key: 'controller', field: 'create', equals: 0 }], [{ key: 'controller', value: self.id, lease: leaseId }]) || etcd.get('controller')?.value === self.id);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.keepaliveTimer?.cancel();
    this.pollTimer?.cancel();
    await this.membership.close();
  }
}
