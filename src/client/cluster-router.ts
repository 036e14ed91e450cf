// A Router for a cluster: each call goes straight to the node that leads the partition it
// concerns, so no node forwards it (one hop less, and the primary's own group commit).
//
// Routes: per queue, the QueueRouting from the ADMIN op `routing` (partition primaries,
// their epochs, every live node's native URL, zone and region), asked of any node the
// router can reach. A route is used for routeRefreshMs, then fetched again in the
// background while the old one keeps serving; it is dropped at once when a connection to
// one of its nodes closes (a primary died or restarted: the new map names its successor),
// so the router follows epoch changes within one refresh or one lost connection.
//
// Choosing a node: a call about one partition (a FIFO group's partition, a receipt's
// partition) goes to that partition's primary; any other call about the queue (a standard
// send, a receive, a subscription) to the primary of some partition, preferring nodes in
// the client's zone, then its region, round robin among equals. When the route is unknown,
// the node has no native URL, or it cannot be reached, the call goes to the seed node,
// which forwards it as it would for any client: routing is an optimisation, never a
// condition for a call to succeed.

import { createHash } from 'node:crypto';
import type { QueueRouting } from '../broker/service.js';
import { FrameType, decodeJsonPayload, encodeJsonFrame } from '../api/native/wire.js';
import type { ClientConnection, ConnectOptions } from './connection.js';
import { SingleNodeRouter, type ReconnectOptions, type Router } from './router.js';

export interface ClusterRoutingOptions {
  /** The client's zone and region: among equal choices, nodes there are preferred. */
  zone?: string;
  region?: string;
  /** How long a queue's route is used before it is fetched again (default 5,000 ms). */
  routeRefreshMs?: number;
}

interface RouteEntry {
  routing: QueueRouting | null;
  fetchedAtMs: number;
  refreshing: Promise<void> | undefined;
}

const receiptHandleBytes = 27;

/** The partition a receipt handle names (see src/broker/receipt.ts), or undefined when it is not one of ours. */
export function partitionOfReceiptHandle(handle: string): number | undefined {
  if (!/^[A-Za-z0-9_-]{36}$/.test(handle)) return undefined;
  const bytes = Buffer.from(handle, 'base64url');
  return bytes.length === receiptHandleBytes ? bytes.readUInt16BE(9) : undefined;
}

/** The partition that owns a FIFO message group: the server's rule (src/broker/queue-calls.ts partitionOfGroup). */
export function partitionOfGroup(groupId: string, partitionCount: number): number {
  return createHash('sha256').update(groupId).digest().readUInt32BE(0) % partitionCount;
}

export class ClusterRouter implements Router {
  private readonly seed: SingleNodeRouter;
  private readonly nodes = new Map<string, SingleNodeRouter>();
  private readonly routes = new Map<string, RouteEntry>();
  private readonly reconnectListeners = new Set<() => void>();
  private closed = false;
  private turn = 0;

  constructor(
    private readonly connectOptions: ConnectOptions,
    private readonly reconnect: ReconnectOptions,
    private readonly options: ClusterRoutingOptions = {},
  ) {
    this.seed = new SingleNodeRouter(connectOptions, reconnect);
    this.seed.onReconnect(() => this.notifyReconnect());
  }

  async connectionFor(queue?: string, partition?: number): Promise<ClientConnection> {
    if (queue === undefined || this.closed) return this.seed.connectionFor();
    const url = await this.nodeUrlFor(queue, partition);
    if (url === undefined) return this.seed.connectionFor();
    try {
      return await this.routerOf(url).connectionFor();
    } catch {
      // Unreachable (dying node, a firewall): forget the route, let the seed forward.
      this.routes.delete(queue);
      return this.seed.connectionFor();
    }
  }

  /** The partition a call about one message concerns, when routing depends on it (undefined: any). */
  async partitionOf(queue: string, key: { groupId?: string; receiptHandle?: string }): Promise<number | undefined> {
    if (key.receiptHandle !== undefined) return partitionOfReceiptHandle(key.receiptHandle);
    const routing = await this.routingOf(queue);
    if (routing === null || !routing.fifo || key.groupId === undefined || routing.partitionCount <= 1) return undefined;
    return partitionOfGroup(key.groupId, routing.partitionCount);
  }

  /** The node id calls about `queue` (and `partition`) go to now; undefined for the seed (tests, tools). */
  async nodeFor(queue: string, partition?: number): Promise<string | undefined> {
    const routing = await this.routingOf(queue);
    if (routing === null) return undefined;
    const chosen = this.choose(routing, partition);
    return chosen?.id;
  }

  onReconnect(listener: () => void): () => void {
    this.reconnectListeners.add(listener);
    return () => this.reconnectListeners.delete(listener);
  }

  close(): void {
    this.closed = true;
    this.seed.close();
    for (const router of this.nodes.values()) router.close();
    this.nodes.clear();
  }

  // ---- internals -------------------------------------------------------------------

  private async nodeUrlFor(queue: string, partition: number | undefined): Promise<string | undefined> {
    const routing = await this.routingOf(queue);
    return routing === null ? undefined : this.choose(routing, partition)?.nativeUrl;
  }

  private choose(routing: QueueRouting, partition: number | undefined): { id: string; nativeUrl: string } | undefined {
    const primaries = partition === undefined ? routing.partitions : routing.partitions.filter((entry) => entry.partition === partition);
    const candidates: Array<{ id: string; nativeUrl: string; zone: string; region: string }> = [];
    for (const entry of primaries) {
      const node = routing.nodes.find((each) => each.id === entry.primary);
      if (node?.nativeUrl !== undefined) candidates.push({ id: node.id, nativeUrl: node.nativeUrl, zone: node.zone, region: node.region });
    }
    if (candidates.length === 0) return undefined;
    const { zone, region } = this.options;
    const inZone = zone === undefined ? [] : candidates.filter((node) => node.zone === zone && (region === undefined || node.region === region));
    const inRegion = region === undefined ? [] : candidates.filter((node) => node.region === region);
    const preferred = inZone.length > 0 ? inZone : inRegion.length > 0 ? inRegion : candidates;
    return preferred[this.turn++ % preferred.length];
  }

  private async routingOf(queue: string): Promise<QueueRouting | null> {
    const nowMs = Date.now();
    const entry = this.routes.get(queue);
    if (entry !== undefined) {
      if (nowMs - entry.fetchedAtMs > (this.options.routeRefreshMs ?? 5_000) && entry.refreshing === undefined) {
        entry.refreshing = this.fetchRouting(queue)
          .then((routing) => {
            this.routes.set(queue, { routing, fetchedAtMs: Date.now(), refreshing: undefined });
          })
          .catch(() => {
            entry.refreshing = undefined;
          });
      }
      return entry.routing;
    }
    let routing: QueueRouting | null;
    try {
      routing = await this.fetchRouting(queue);
    } catch {
      routing = null; // the seed forwards; the next call tries again
      return routing;
    }
    this.routes.set(queue, { routing, fetchedAtMs: Date.now(), refreshing: undefined });
    return routing;
  }

  /** Asks the seed, or any node connection that is open when the seed is not. */
  private async fetchRouting(queue: string): Promise<QueueRouting | null> {
    const connection = await this.anyConnection();
    const result = (await connection.request((id) => encodeJsonFrame(FrameType.Admin, id, { op: 'routing', queue }), FrameType.AdminResult, (payload) => decodeJsonPayload(payload, 'ADMIN_RESULT'))) as { routing?: QueueRouting | null };
    return result.routing ?? null;
  }

  private async anyConnection(): Promise<ClientConnection> {
    try {
      return await this.seed.connectionFor();
    } catch (error) {
      for (const router of this.nodes.values()) {
        try {
          return await router.connectionFor();
        } catch {
          // try the next node
        }
      }
      throw error;
    }
  }

  private routerOf(url: string): SingleNodeRouter {
    let router = this.nodes.get(url);
    if (router === undefined) {
      const parsed = new URL(url);
      const connectOptions: ConnectOptions = { ...this.connectOptions, host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(parsed.port) };
      // A dead primary must not hold a call for long: give up soon and let the seed forward.
      router = new SingleNodeRouter(connectOptions, { ...this.reconnect, reconnectTimeoutMs: Math.min(this.reconnect.reconnectTimeoutMs ?? 2_000, 2_000) });
      router.onReconnect(() => this.notifyReconnect());
      router.onConnectionClosed(() => this.forgetRoutesThrough(url));
      this.nodes.set(url, router);
    }
    return router;
  }

  /** A connection to `url` closed: drop every route that sends a partition there. */
  private forgetRoutesThrough(url: string): void {
    for (const [queue, entry] of this.routes) {
      const routing = entry.routing;
      if (routing === null) continue;
      const ids = new Set(routing.nodes.filter((node) => node.nativeUrl === url).map((node) => node.id));
      if (routing.partitions.some((partition) => ids.has(partition.primary))) this.routes.delete(queue);
    }
  }

  private notifyReconnect(): void {
    for (const listener of this.reconnectListeners) queueMicrotask(listener);
  }
}
