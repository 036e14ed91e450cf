// A node's membership lease and what happens to it, for both coordinators: etcd's
// (src/io/etcd-coordinator.ts) and the cluster simulator's (src/testing/cluster-sim), so
// the simulator runs the very flow production runs. Each gives a LeaseBackend (how to
// grant, keep alive and revoke a lease on its etcd, and its clock); this keeps the state.
//
// States: granting -> alive (keepalives confirmed, the fence opens once a view is read
// after the grant) -> lost (etcd says it expired, or this node's key vanished from the
// view: the node was paused or cut off longer than the TTL) -> granting again.
//
// Stepping aside: a node that is alive but cannot commit (an fsync of its has waited longer
// than the lease TTL, see stalledDiskReason) revokes its lease instead of keeping it alive, so the other
// nodes take over its partitions now rather than a TTL later, and registers again once the
// reason is gone. Its fence shuts at once, so it acknowledges nothing in between.

import { LeaseFence } from './lease-fence.js';

export type KeepaliveOutcome = 'renewed' | 'expired' | 'unanswered';

/** How a coordinator reaches its etcd and its clock. `Id` names one granted lease. */
export interface LeaseBackend<Id> {
  /** Grants a lease and puts this node's key under it. */
  grant(): Promise<Id>;
  /** One keepalive: renewed, expired (etcd says the lease is gone), or unanswered (try again at the next one). */
  keepalive(id: Id): Promise<KeepaliveOutcome>;
  revoke(id: Id): Promise<void>;
  monotonicMs(): number;
  sleep(ms: number): Promise<void>;
  /** False once this process is gone (a simulated crash); a real process is always running. */
  running(): boolean;
  /** What a log line says about a lease (its id, this node's id). */
  describe(id: Id): Record<string, unknown>;
}

export interface LeaseKeeperOptions {
  ttlMs: number;
  /** Acknowledgements stop this long before the lease could have expired. */
  fenceMarginMs: number;
  /**
   * How long the oldest fsync still running has waited, in ms (a cluster node's
   * NodeFileSystem.pendingSyncAgeMs). Asked before each keepalive; absent: never stalled.
   */
  pendingSyncAgeMs?: () => number;
  logger: { info(object: object, message: string): void; warn(object: object, message: string): void };
}

/**
 * Why a node whose oldest running fsync has waited `ageMs` should step aside, or undefined
 * when it need not: past the lease TTL it could not commit within a lease anyway.
 */
export function stalledDiskReason(ageMs: number, leaseTtlMs: number): string | undefined {
  return ageMs > leaseTtlMs ? `an fsync has waited ${Math.round(ageMs)} ms, longer than the lease TTL (${leaseTtlMs} ms): the disk is not answering` : undefined;
}

/** How often a node that stepped aside looks whether its reason is gone. */
const stalledRecheckMs = 200;
/** Between attempts to register again. */
const registerRetryMs = 500;

export class LeaseKeeper<Id> {
  private readonly fence: LeaseFence;
  private current: Id | undefined;
  private regranting: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly backend: LeaseBackend<Id>,
    private readonly options: LeaseKeeperOptions,
  ) {
    this.fence = new LeaseFence(options.ttlMs, options.fenceMarginMs);
  }

  /** The lease this node holds now; undefined while it registers again. */
  get lease(): Id | undefined {
    return this.current;
  }

  acknowledgeUntilMs(): number {
    return this.fence.acknowledgeUntilMs();
  }

  /** Grants a lease and registers this node under it (at start, and again after a loss). */
  async grant(): Promise<void> {
    const sentMs = this.backend.monotonicMs();
    const id = await this.backend.grant();
    this.current = id;
    this.fence.granted(sentMs, this.backend.monotonicMs());
    this.options.logger.info(this.backend.describe(id), 'registered in etcd');
  }

  /** A full view was read by a request started at `startedMs`; `listed`: this node's key was in it. */
  viewRead(startedMs: number, listed: boolean): void {
    this.fence.viewRead(startedMs);
    // Our own registration vanished (the lease expired while we were away): take a new one.
    if (!listed && this.regranting === undefined && !this.closed) this.lost('node key missing');
  }

  /** On the coordinator's keepalive timer: one keepalive, or stepping aside when stalledReason says so. */
  keepalive(): void {
    const id = this.current;
    if (id === undefined || this.closed || this.regranting !== undefined) return;
    const stalled = this.stalledReason();
    if (stalled !== undefined) {
      this.stepAside(id, stalled);
      return;
    }
    const sentMs = this.backend.monotonicMs();
    this.backend.keepalive(id).then(
      (outcome) => {
        if (this.current !== id) return;
        if (outcome === 'renewed') this.fence.renewed(sentMs);
        else if (outcome === 'expired') this.lost('lease expired');
      },
      () => undefined,
    );
  }

  /** Shuts the fence for good and gives the lease up (unreachable etcd: it expires on its own). */
  async close(): Promise<void> {
    this.closed = true;
    this.fence.close();
    const id = this.current;
    if (id !== undefined) await this.backend.revoke(id).catch(() => undefined);
  }

  private lost(reason: string): void {
    if (this.regranting !== undefined || this.closed) return;
    this.fence.lost();
    this.options.logger.warn({ reason }, 'etcd lease lost: acknowledgements stop until registered again and the view is re-read');
    this.registerAgain();
  }

  private stalledReason(): string | undefined {
    const ageMs = this.options.pendingSyncAgeMs?.();
    return ageMs === undefined ? undefined : stalledDiskReason(ageMs, this.options.ttlMs);
  }

  /** Gives the lease up (the others take over now, not a TTL later) and registers again once the stall is over. */
  private stepAside(id: Id, reason: string): void {
    if (this.regranting !== undefined || this.closed) return;
    this.fence.lost();
    this.current = undefined;
    this.options.logger.warn({ reason }, 'stepping aside: lease revoked so the other nodes take over; this node registers again once the reason is gone');
    this.registerAgain(async () => {
      // Unreachable etcd: the lease expires on its own, as it would for a paused node.
      await this.backend.revoke(id).catch(() => undefined);
      while (!this.closed && this.backend.running() && this.stalledReason() !== undefined) await this.backend.sleep(stalledRecheckMs);
    });
  }

  private registerAgain(first?: () => Promise<void>): void {
    const attempt = async (): Promise<void> => {
      if (first !== undefined) await first();
      for (;;) {
        if (this.closed || !this.backend.running()) return;
        try {
          await this.grant();
          return;
        } catch (error) {
          this.options.logger.warn({ err: error }, 'could not register in etcd; retrying');
          await this.backend.sleep(registerRetryMs);
        }
      }
    };
    this.regranting = attempt().finally(() => {
      this.regranting = undefined;
    });
  }
}
