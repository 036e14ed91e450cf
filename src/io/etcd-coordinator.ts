// The Coordinator on etcd (npm etcd3). Membership is a key under this node's lease; the
// lease is kept alive by hand (keepaliveOnce on our own timer) so the time each keepalive
// was *sent* is known: a confirmed keepalive sent at t proves the lease lives until at
// least t + TTL, which is what the acknowledgement fence (acknowledgeUntilMs) needs.
//
// Lease states: granting -> alive (keepalives confirmed) -> lost (etcd says expired: the
// node was paused or cut off longer than the TTL) -> granting again. After a loss, the
// fence stays shut until a full view has been read *after* the new lease was granted, so a
// node coming back from a pause learns it was replaced before it acknowledges anything
// (the fence itself is src/cluster/lease-fence.ts, which the cluster simulator shares).
//
// The view is polled (a full range read of the prefix) every pollIntervalMs: simple, always
// consistent at one revision, and cheap at the cluster sizes Berth targets.
//
// Stepping aside: a node that is alive but cannot commit (its disk stopped answering an
// fsync, see `stalledReason`) revokes its lease instead of keeping it, so the other nodes
// take over its partitions as they would from a paused node, and registers again once the
// reason is gone. Its fence shuts at once, so it acknowledges nothing in between.

import { Etcd3, EtcdLeaseInvalidError, type Lease } from 'etcd3';
import type { QueueMetadata } from '../broker/metadata-store.js';
import { LeaseFence } from '../cluster/lease-fence.js';
import { viewFromEntries, emptyView, partitionKey, type ClusterView, type Coordinator, type NodeInfo, type PartitionAssignment } from '../cluster/coordinator.js';

export interface EtcdCoordinatorOptions {
  endpoints: string[];
  prefix?: string;
  leaseTtlSeconds: number;
  /** Acknowledgements stop this long before the lease could have expired. */
  fenceMarginMs: number;
  pollIntervalMs: number;
  /** Why this node should not lead anything now (e.g. an fsync stuck past the lease TTL), or undefined. Asked before each keepalive. */
  stalledReason?: () => string | undefined;
  logger: { info(object: object, message: string): void; warn(object: object, message: string): void };
}

/** How often a node that stepped aside looks whether its reason is gone. */
const stalledRecheckMs = 200;

export class EtcdCoordinator implements Coordinator {
  private readonly client: Etcd3;
  private readonly prefix: string;
  private lease: Lease | undefined;
  private leaseId = '';
  private self: NodeInfo | undefined;
  private current: ClusterView = emptyView();
  private readonly listeners: Array<(view: ClusterView) => void> = [];
  private readonly fence: LeaseFence;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private regranting: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: EtcdCoordinatorOptions) {
    this.client = new Etcd3({ hosts: options.endpoints, dialTimeout: 2000 });
    this.prefix = options.prefix ?? '/berth/';
    this.fence = new LeaseFence(options.leaseTtlSeconds * 1000, options.fenceMarginMs);
  }

  async start(self: NodeInfo): Promise<void> {
    this.self = self;
    await this.grant();
    await this.refresh();
    this.keepaliveTimer = setInterval(() => this.keepalive(), Math.max(100, (this.options.leaseTtlSeconds * 1000) / 6));
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
    return this.fence.acknowledgeUntilMs();
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
    this.fence.viewRead(startedMs);
    // Our own registration vanished (the lease expired while we were away): take a new one.
    if (this.self !== undefined && !view.nodes.has(this.self.id) && this.regranting === undefined && !this.closed) this.lost('node key missing');
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
    if (this.self === undefined || this.leaseId === '') return false;
    const key = `${this.prefix}controller`;
    const result = await this.client.if(key, 'Create', '==', 0).then(this.client.put(key).value(this.self.id).lease(this.leaseId)).commit();
    if (result.succeeded) return true;
    const holder = await this.client.get(key).string();
    return holder === this.self.id;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.keepaliveTimer);
    clearTimeout(this.pollTimer);
    this.fence.close();
    try {
      await this.lease?.revoke();
    } catch {
      // etcd unreachable: the lease expires on its own.
    }
    this.client.close();
  }

  // ---- lease ---------------------------------------------------------------------

  private async grant(): Promise<void> {
    const self = this.self;
    if (self === undefined) return;
    const lease = this.client.lease(this.options.leaseTtlSeconds, { autoKeepAlive: false });
    lease.on('lost', () => undefined);
    const sentMs = performance.now();
    this.leaseId = await lease.grant();
    this.lease = lease;
    await lease.put(`${this.prefix}nodes/${self.id}`).value(JSON.stringify(self));
    this.fence.granted(sentMs, performance.now());
    this.options.logger.info({ leaseId: this.leaseId, node: self.id }, 'registered in etcd');
  }

  private keepalive(): void {
    const lease = this.lease;
    if (lease === undefined || this.closed || this.regranting !== undefined) return;
    const stalled = this.options.stalledReason?.();
    if (stalled !== undefined) {
      this.stepAside(lease, stalled);
      return;
    }
    const sentMs = performance.now();
    lease.keepaliveOnce().then(
      (response) => {
        if (this.lease !== lease || Number(response.TTL) <= 0) return;
        this.fence.renewed(sentMs);
      },
      (error: unknown) => {
        if (error instanceof EtcdLeaseInvalidError && this.lease === lease) this.lost('lease expired');
      },
    );
  }

  private lost(reason: string): void {
    if (this.regranting !== undefined || this.closed) return;
    this.fence.lost();
    this.options.logger.warn({ reason }, 'etcd lease lost: acknowledgements stop until registered again and the view is re-read');
    this.registerAgain();
  }

  /** Gives the lease up (the others take over now, not a TTL later) and registers again once `stalledReason` clears. */
  private stepAside(lease: Lease, reason: string): void {
    if (this.regranting !== undefined || this.closed) return;
    this.fence.lost();
    this.lease = undefined;
    this.leaseId = '';
    this.options.logger.warn({ reason }, 'stepping aside: lease revoked so the other nodes take over; this node registers again once the reason is gone');
    this.registerAgain(async () => {
      // Unreachable etcd: the lease expires on its own, as it would for a paused node.
      await lease.revoke().catch(() => undefined);
      while (!this.closed && this.options.stalledReason?.() !== undefined) await new Promise((resolve) => setTimeout(resolve, stalledRecheckMs));
    });
  }

  private registerAgain(first?: () => Promise<void>): void {
    const attempt = async (): Promise<void> => {
      if (first !== undefined) await first();
      for (;;) {
        if (this.closed) return;
        try {
          await this.grant();
          return;
        } catch (error) {
          this.options.logger.warn({ err: error }, 'could not register in etcd; retrying');
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      }
    };
    this.regranting = attempt().finally(() => {
      this.regranting = undefined;
    });
  }
}
