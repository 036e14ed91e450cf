// The Coordinator on etcd (npm etcd3). Membership is a key under this node's lease; the
// lease is kept alive by hand (keepaliveOnce on our own timer) so the time each keepalive
// was *sent* is known: a confirmed keepalive sent at t proves the lease lives until at
// least t + TTL, which is what the acknowledgement fence (acknowledgeUntilMs) needs.
//
// The lease's states, its fence and stepping aside are src/cluster/lease-keeper.ts (which the
// cluster simulator's coordinator runs too): after a loss, the fence stays shut until a full
// view has been read *after* the new lease was granted, so a node coming back from a pause
// learns it was replaced before it acknowledges anything.
//
// The view is polled (a full range read of the prefix) every pollIntervalMs: simple, always
// consistent at one revision, and cheap at the cluster sizes Berth targets.

import { Etcd3, EtcdLeaseInvalidError, type Lease } from 'etcd3';
import type { QueueMetadata } from '../broker/metadata-store.js';
import { LeaseKeeper } from '../cluster/lease-keeper.js';
import { viewFromEntries, emptyView, partitionKey, type ClusterView, type Coordinator, type NodeInfo, type PartitionAssignment } from '../cluster/coordinator.js';

export interface EtcdCoordinatorOptions {
  endpoints: string[];
  prefix?: string;
  leaseTtlSeconds: number;
  /** Acknowledgements stop this long before the lease could have expired. */
  fenceMarginMs: number;
  pollIntervalMs: number;
  /** How long this node's oldest running fsync has waited (ms): past the lease TTL it steps aside (see LeaseKeeper). */
  pendingSyncAgeMs?: () => number;
  logger: { info(object: object, message: string): void; warn(object: object, message: string): void };
}

/** A lease this node holds: etcd3's handle and its id. */
interface HeldLease {
  lease: Lease;
  id: string;
}

export class EtcdCoordinator implements Coordinator {
  private readonly client: Etcd3;
  private readonly prefix: string;
  private readonly membership: LeaseKeeper<HeldLease>;
  private self: NodeInfo | undefined;
  private current: ClusterView = emptyView();
  private readonly listeners: Array<(view: ClusterView) => void> = [];
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: EtcdCoordinatorOptions) {
    this.client = new Etcd3({ hosts: options.endpoints, dialTimeout: 2000 });
    this.prefix = options.prefix ?? '/berth/';
    this.membership = new LeaseKeeper<HeldLease>(
      {
        grant: async () => {
          const self = this.self;
          if (self === undefined) throw new Error('the coordinator has not started');
          const lease = this.client.lease(options.leaseTtlSeconds, { autoKeepAlive: false });
          lease.on('lost', () => undefined);
          const id = await lease.grant();
          await lease.put(`${this.prefix}nodes/${self.id}`).value(JSON.stringify(self));
          return { lease, id };
        },
        keepalive: (held) =>
          held.lease.keepaliveOnce().then(
            (response) => (Number(response.TTL) > 0 ? 'renewed' : 'unanswered'),
            (error: unknown) => (error instanceof EtcdLeaseInvalidError ? 'expired' : 'unanswered'),
          ),
        revoke: async (held) => {
          await held.lease.revoke();
        },
        monotonicMs: () => performance.now(),
        sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
        running: () => true,
        describe: (held) => ({ leaseId: held.id, node: this.self?.id }),
      },
      { ttlMs: options.leaseTtlSeconds * 1000, fenceMarginMs: options.fenceMarginMs, ...(options.pendingSyncAgeMs === undefined ? {} : { pendingSyncAgeMs: options.pendingSyncAgeMs }), logger: options.logger },
    );
  }

  async start(self: NodeInfo): Promise<void> {
    this.self = self;
    await this.membership.grant();
    await this.refresh();
    this.keepaliveTimer = setInterval(() => this.membership.keepalive(), Math.max(100, (this.options.leaseTtlSeconds * 1000) / 6));
    this.keepaliveTimer.unref();
    const poll = (): void => {
      if (this.closed) return;
      this.refresh()
        .catch((error: unknown) => this.options.logger.warn({ err: error }, 'etcd view poll failed'))
        .finally(() => {
          if (!this.closed) this.pollTimer = setTimeout(poll, this.options.pollIntervalMs);
        });
    };
    this.pollTimer = setTimeout(poll, this.options.pollIntervalMs);
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
    const startedMs = performance.now();
    const response = await this.client.getAll().prefix(this.prefix).exec();
    const entries = response.kvs.map((kv) => ({
      key: kv.key.toString('utf8').slice(this.prefix.length),
      value: kv.value.toString('utf8'),
      modRevision: String(kv.mod_revision),
    }));
    const view = viewFromEntries(String(response.header.revision), entries);
    if (BigInt(view.revision) < BigInt(this.current.revision)) return this.current;
    this.current = view;
    this.membership.viewRead(startedMs, this.self === undefined || view.nodes.has(this.self.id));
    for (const listener of this.listeners) listener(view);
    return view;
  }

  async createQueue(metadata: QueueMetadata, assignments: PartitionAssignment[]): Promise<boolean> {
    const queueKey = `${this.prefix}queues/${metadata.name}`;
    const result = await this.client
      .if(queueKey, 'Create', '==', 0)
      .then(
        this.client.put(queueKey).value(JSON.stringify(metadata)),
        this.client.delete().key(`${this.prefix}deleted/${metadata.name}`),
        ...assignments.map((assignment) =>
          this.client.put(`${this.prefix}partitions/${partitionKey(assignment.incarnation, assignment.partition)}`).value(JSON.stringify(assignment)),
        ),
      )
      .commit();
    return result.succeeded;
  }

  async updateQueue(metadata: QueueMetadata, expectedModRevision: string): Promise<boolean> {
    const queueKey = `${this.prefix}queues/${metadata.name}`;
    const result = await this.client.if(queueKey, 'Mod', '==', expectedModRevision).then(this.client.put(queueKey).value(JSON.stringify(metadata))).commit();
    return result.succeeded;
  }

  async deleteQueue(metadata: QueueMetadata, expectedModRevision: string, deletedAtMs: number): Promise<boolean> {
    const queueKey = `${this.prefix}queues/${metadata.name}`;
    const partitionDeletes = [];
    for (let index = 0; index < metadata.partitionCount; index++) {
      partitionDeletes.push(this.client.delete().key(`${this.prefix}partitions/${partitionKey(metadata.incarnation, index)}`));
    }
    const result = await this.client
      .if(queueKey, 'Mod', '==', expectedModRevision)
      .then(this.client.delete().key(queueKey), this.client.put(`${this.prefix}deleted/${metadata.name}`).value(String(deletedAtMs)), ...partitionDeletes)
      .commit();
    return result.succeeded;
  }

  async casPartition(assignment: PartitionAssignment, expectedModRevision: string): Promise<boolean> {
    const key = `${this.prefix}partitions/${partitionKey(assignment.incarnation, assignment.partition)}`;
    const result = await this.client.if(key, 'Mod', '==', expectedModRevision).then(this.client.put(key).value(JSON.stringify(assignment))).commit();
    return result.succeeded;
  }

  async campaign(): Promise<boolean> {
    const held = this.membership.lease;
    if (this.self === undefined || held === undefined) return false;
    const key = `${this.prefix}controller`;
    const result = await this.client.if(key, 'Create', '==', 0).then(this.client.put(key).value(this.self.id).lease(held.id)).commit();
    if (result.succeeded) return true;
    const holder = await this.client.get(key).string();
    return holder === this.self.id;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.keepaliveTimer);
    clearTimeout(this.pollTimer);
    await this.membership.close();
    this.client.close();
  }
}
