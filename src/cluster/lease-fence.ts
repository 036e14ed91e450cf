// The acknowledgement fence of a node's etcd lease, as a pure state machine. Both
// coordinators keep one (etcd's in src/io/etcd-coordinator.ts, the cluster simulator's in
// src/testing/cluster-sim), so the simulator exercises the very rule production runs.
//
// A lease granted (or kept alive) by a request sent at t lives until at least t + TTL, so
// acknowledgements may go on until t + TTL - margin. After a loss the fence stays shut until
// a new lease is granted *and* a full view has been read by a request that started after the
// grant: a node coming back from a pause learns it was replaced before it acknowledges.
//
// States: unregistered (shut) -> granted (shut until a view read after the grant) -> open
// (until the proven expiry) -> lost (shut) -> granted again ...; closed (shut for good).
// Times are monotonic milliseconds of the coordinator's clock.

export class LeaseFence {
  private validUntilMs = 0;
  /** When the current lease was granted; a view read that started before it does not open the fence. */
  private grantedAtMs = Number.POSITIVE_INFINITY;
  private viewReadAfterGrant = false;
  private closed = false;

  constructor(
    private readonly ttlMs: number,
    private readonly marginMs: number,
  ) {}

  /** A lease was granted: the grant request was sent at `sentMs` and completed at `nowMs`. */
  granted(sentMs: number, nowMs: number): void {
    if (this.closed) return;
    this.grantedAtMs = nowMs;
    this.viewReadAfterGrant = false;
    this.validUntilMs = sentMs + this.ttlMs - this.marginMs;
  }

  /** etcd confirmed a keepalive of the current lease sent at `sentMs`. */
  renewed(sentMs: number): void {
    if (this.closed) return;
    this.validUntilMs = Math.max(this.validUntilMs, sentMs + this.ttlMs - this.marginMs);
  }

  /** A full view was read by a request that started at `startedMs`. */
  viewRead(startedMs: number): void {
    if (startedMs >= this.grantedAtMs) this.viewReadAfterGrant = true;
  }

  /** The lease expired, or this node's registration vanished from the view. */
  lost(): void {
    this.validUntilMs = 0;
    this.viewReadAfterGrant = false;
    this.grantedAtMs = Number.POSITIVE_INFINITY;
  }

  /** The coordinator closes: nothing is acknowledged from now on. */
  close(): void {
    this.closed = true;
    this.lost();
  }

  /** Acknowledgements are allowed while the monotonic clock is below this; 0 while the fence is shut. */
  acknowledgeUntilMs(): number {
    return this.viewReadAfterGrant ? this.validUntilMs : 0;
  }
}
