// The simulated peer network: what src/io/peer-transport.ts does over TCP, on simulated
// time, with seeded faults. One SimPeerLink per node process implements the ReplicationLink
// the ClusterNode uses (requests and replicate frames) and feeds the node's handlers.
//
// What is modelled (TCP as the real transport uses it):
//   - A node dials another lazily, one outbound connection per address, and uses it for its
//     requests (answered on the same connection) and the replicate frames it ships
//     (acknowledged on the same connection). Connection states: connecting -> open ->
//     closed; a closed connection fails its pending requests (ServiceUnavailable) and tells
//     the dialer's node (handleDisconnect); the listener's running requests are aborted.
//   - Within one direction of one connection, frames arrive in the order sent, each after a
//     seeded delay (mostly 1-8 ms, sometimes up to 150 ms). Frames on different connections
//     interleave freely: that is the only reordering TCP allows.
//   - No frame is lost, duplicated or corrupted on an open connection (TCP retransmits and
//     checksums). A "drop" is a connection that breaks (RST, keepalive timeout): everything
//     in flight on it is gone and both ends learn it. Duplicates at the application level
//     still happen the way they do in production: a request whose caller timed out still
//     runs on the server, and the caller may retry it.
//   - Frames are encoded and decoded with the real codec (src/replication/wire.ts), so no
//     object is shared between nodes and only what the wire carries arrives.
//   - Partitions: a cut between two nodes (or a node cut off from everyone, etcd included)
//     holds frames in flight across it: they are delivered in order when the cut heals,
//     unless the connection breaks first (the simulator breaks some). A dial across a cut
//     fails after the connect timeout.
//   - A process crash resets its connections at once (the kernel sends RST); a machine crash
//     leaves them hanging (frames to it vanish) until the machine is back and answers the
//     old connections with RST. A paused node's deliveries wait for it (NodeClock.runOrHold).

import { BerthError } from '../../protocol/errors.js';
import type { Random } from '../../core/random.js';
import type { ReplicationLink } from '../../replication/driver.js';
import { AckStatus, FrameKind, decodeFrame, encodeFrame, type Frame } from '../../replication/wire.js';
import { errorFromBody, errorToBody, type AckFrame, type PeerHandlers, type ReplicateFrame, type SnapshotChunkFrame } from '../../io/peer-transport.js';
import type { ProcessClock } from '../simulator/sim-process.js';
import type { NodeClock } from './node-clock.js';

const connectTimeoutMs = 2000;
const defaultRequestTimeoutMs = 30_000;

interface Endpoint {
  nodeId: string;
  link: SimPeerLink;
  /** 'machine': the machine is down (connections hang); 'process': refused at once. */
  down: 'no' | 'process' | 'machine';
}

type Direction = 'toListener' | 'toDialer';

interface Connection {
  id: number;
  dialer: SimPeerLink;
  listener: SimPeerLink | undefined;
  address: string;
  state: 'connecting' | 'open' | 'closed';
  ready: Promise<void>;
  /** Settles `ready` (a close before the connect rejects it, as the real socket's 'close' does). */
  settleReady: { resolve(): void; reject(error: unknown): void };
  nextRequestId: number;
  pending: Map<number, { resolve(value: unknown): void; reject(error: unknown): void }>;
  running: Map<number, AbortController>;
  /** The acknowledgement reply for replicate frames: one per connection, as in the real transport. */
  replyAck?: (ack: AckFrame) => void;
  /** True arrival time of the last frame scheduled per direction (keeps each direction in order). */
  lastArrivalMs: Record<Direction, number>;
  /** Frames that reached a cut: delivered in order when it heals. */
  blocked: Record<Direction, Buffer[]>;
}

export class SimNetwork {
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly connections = new Set<Connection>();
  private readonly cuts = new Set<string>();
  private readonly isolated = new Set<string>();
  private connectionCounter = 0;
  /** Figures for the summary. */
  readonly figures = { frames: 0, connectionsBroken: 0 };

  constructor(
    /** The network's own timer owner (never dies). */
    private readonly clock: ProcessClock,
    private readonly random: Random,
    private readonly record: (line: string) => void,
  ) {}

  // ---- topology and faults ---------------------------------------------------------

  /** A node process starts listening at `address`; connections to an earlier process there are reset. */
  register(address: string, nodeId: string, link: SimPeerLink): void {
    for (const connection of [...this.connections]) if (connection.address === address || connection.dialer.address === address) this.breakConnection(connection, 'peer restarted');
    this.endpoints.set(address, { nodeId, link, down: 'no' });
  }

  /** The process at `address` died; a machine crash leaves its connections hanging. */
  down(address: string, kind: 'process' | 'machine'): void {
    const endpoint = this.endpoints.get(address);
    if (endpoint === undefined) return;
    endpoint.down = kind;
    if (kind === 'process') {
      for (const connection of [...this.connections]) if (connection.address === address || connection.dialer.address === address) this.breakConnection(connection, 'peer process died');
    }
  }

  reachable(fromNode: string, toNode: string): boolean {
    if (fromNode === toNode) return true;
    if (this.isolated.has(fromNode) || this.isolated.has(toNode)) return false;
    return !this.cuts.has(pairKey(fromNode, toNode));
  }

  /** Whether the node can talk to etcd (only a full isolation cuts it off). */
  reachesEtcd(nodeId: string): boolean {
    return !this.isolated.has(nodeId);
  }

  cut(a: string, b: string): void {
    this.cuts.add(pairKey(a, b));
  }

  isolate(nodeId: string): void {
    this.isolated.add(nodeId);
  }

  heal(): void {
    this.cuts.clear();
    this.isolated.clear();
    for (const connection of this.connections) this.flushBlocked(connection);
  }

  healNode(nodeId: string): void {
    this.isolated.delete(nodeId);
    for (const key of [...this.cuts]) if (key.split('|').includes(nodeId)) this.cuts.delete(key);
    for (const connection of this.connections) this.flushBlocked(connection);
  }

  /** Breaks one open connection chosen by the seed (a dropped packet TCP gave up on). */
  breakRandomConnection(): string | undefined {
    const open = [...this.connections].filter((connection) => connection.state === 'open');
    if (open.length === 0) return undefined;
    const connection = open[this.random.int(open.length)]!;
    this.breakConnection(connection, 'connection reset');
    return `${connection.dialer.address}->${connection.address}`;
  }

  /** Breaks, with probability 1/2 each, the connections that have frames held at a cut. */
  breakSomeBlocked(): number {
    let broken = 0;
    for (const connection of [...this.connections]) {
      if (connection.blocked.toDialer.length + connection.blocked.toListener.length === 0) continue;
      if (this.random.int(2) === 0) {
        this.breakConnection(connection, 'timed out across a partition');
        broken++;
      }
    }
    return broken;
  }

  /** Seeded one-way delay in true milliseconds. */
  delayMs(): number {
    const roll = this.random.int(20);
    if (roll === 0) return 20 + this.random.int(130);
    return 1 + this.random.int(8);
  }

  // ---- connections -----------------------------------------------------------------

  dial(dialer: SimPeerLink, address: string): Connection {
    const id = ++this.connectionCounter;
    let settle: { resolve(): void; reject(error: unknown): void } | undefined;
    const ready = new Promise<void>((resolve, reject) => { settle = { resolve, reject }; });
    ready.catch(() => undefined);
    const connection: Connection = {
      id, dialer, listener: undefined, address, state: 'connecting', ready, settleReady: settle!, nextRequestId: 1, pending: new Map(), running: new Map(),
      lastArrivalMs: { toListener: 0, toDialer: 0 }, blocked: { toListener: [], toDialer: [] },
    };
    this.connections.add(connection);
    const fail = (reason: string): void => {
      if (connection.state !== 'connecting') return;
      this.closeConnection(connection, reason);
    };
    // The connect timeout runs on the dialer's clock; the handshake on the network's.
    dialer.clock.setTimer(connectTimeoutMs, () => fail('connect timeout'));
    this.clock.setTimer(this.delayMs(), () => {
      const endpoint = this.endpoints.get(address);
      if (connection.state !== 'connecting' || !dialer.clock.alive) return;
      if (endpoint === undefined || endpoint.down === 'process') {
        this.clock.setTimer(this.delayMs(), () => fail('connection refused'));
        return;
      }
      if (endpoint.down === 'machine' || !this.reachable(dialer.nodeId, endpoint.nodeId)) return; // the SYN vanishes: connect timeout
      this.clock.setTimer(this.delayMs(), () => {
        if (connection.state !== 'connecting') return;
        connection.listener = endpoint.link;
        connection.state = 'open';
        dialer.clock.runOrHold(() => connection.settleReady.resolve());
      });
    });
    return connection;
  }

  send(connection: Connection, direction: Direction, frame: Frame): void {
    if (connection.state !== 'open') return;
    this.figures.frames++;
    const bytes = encodeFrame(frame);
    const arrivalMs = Math.max(this.clock.nowMs() + this.delayMs(), connection.lastArrivalMs[direction]);
    connection.lastArrivalMs[direction] = arrivalMs;
    this.clock.setTimer(arrivalMs - this.clock.nowMs(), () => this.arrive(connection, direction, bytes));
  }

  private arrive(connection: Connection, direction: Direction, bytes: Buffer): void {
    if (connection.state !== 'open') return;
    const listener = connection.listener!;
    if (connection.blocked[direction].length > 0 || !this.reachable(connection.dialer.nodeId, listener.nodeId)) {
      connection.blocked[direction].push(bytes);
      return;
    }
    const receiver = direction === 'toListener' ? listener : connection.dialer;
    const endpoint = this.endpoints.get(receiver.address);
    // A machine that is down (or came back as a new process) never sees the frame.
    if (endpoint?.link !== receiver || endpoint.down !== 'no') return;
    const frame = decodeFrame(bytes.subarray(4));
    receiver.clock.runOrHold(() => {
      if (connection.state !== 'open') return;
      if (direction === 'toListener') listener.receiveAsListener(connection, frame);
      else connection.dialer.receiveAsDialer(connection, frame);
    });
  }

  private flushBlocked(connection: Connection): void {
    if (connection.state !== 'open') return;
    for (const direction of ['toListener', 'toDialer'] as const) {
      const blocked = connection.blocked[direction];
      connection.blocked[direction] = [];
      for (const bytes of blocked) {
        const arrivalMs = Math.max(this.clock.nowMs() + this.delayMs(), connection.lastArrivalMs[direction]);
        connection.lastArrivalMs[direction] = arrivalMs;
        this.clock.setTimer(arrivalMs - this.clock.nowMs(), () => this.arrive(connection, direction, bytes));
      }
    }
  }

  breakConnection(connection: Connection, reason: string): void {
    if (connection.state === 'closed') return;
    this.figures.connectionsBroken++;
    this.record(`net break ${connection.dialer.address}->${connection.address} (${reason})`);
    this.closeConnection(connection, reason);
  }

  /** Both ends learn of the close after a network delay (the RST travels too). */
  private closeConnection(connection: Connection, reason: string): void {
    const wasConnecting = connection.state === 'connecting';
    connection.state = 'closed';
    this.connections.delete(connection);
    const { dialer, listener } = connection;
    this.clock.setTimer(this.delayMs(), () => {
      // As the real socket's 'close': the pending connect fails and the node hears of the
      // disconnect in one event, before any continuation of the failed call runs.
      dialer.clock.runOrHold(() => {
        if (wasConnecting) connection.settleReady.reject(new BerthError('ServiceUnavailable', `cannot reach peer ${connection.address} (${reason})`));
        dialer.onClosed(connection);
      });
      if (listener !== undefined) listener.clock.runOrHold(() => { for (const controller of connection.running.values()) controller.abort(); });
    });
  }
}

/** One node process's side of the network: the ReplicationLink its ClusterNode uses. */
export class SimPeerLink implements ReplicationLink {
  private readonly outbound = new Map<string, Connection>();

  constructor(
    private readonly network: SimNetwork,
    readonly nodeId: string,
    readonly address: string,
    readonly clock: NodeClock,
    private readonly handlers: PeerHandlers,
  ) {}

  async request(address: string, method: string, body: unknown, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<unknown> {
    const connection = this.connection(address);
    await connection.ready;
    const requestId = connection.nextRequestId++ >>> 0;
    const timeoutMs = options.timeoutMs ?? defaultRequestTimeoutMs;
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        timer.cancel();
        options.signal?.removeEventListener('abort', onAbort);
        connection.pending.delete(requestId);
      };
      const timer = this.clock.setTimer(timeoutMs, () => {
        cleanup();
        this.network.send(connection, 'toListener', { kind: FrameKind.Cancel, requestId });
        reject(new BerthError('ServiceUnavailable', `peer ${address} did not answer ${method} within ${timeoutMs} ms`));
      });
      const onAbort = (): void => this.network.send(connection, 'toListener', { kind: FrameKind.Cancel, requestId });
      options.signal?.addEventListener('abort', onAbort, { once: true });
      connection.pending.set(requestId, {
        resolve: (value) => { cleanup(); resolve(value); },
        reject: (error) => { cleanup(); reject(error); },
      });
      this.network.send(connection, 'toListener', { kind: FrameKind.Request, requestId, method, body });
    });
  }

  replicate(address: string, frame: ReplicateFrame): boolean {
    const connection = this.connection(address);
    if (connection.state !== 'open') return false;
    this.network.send(connection, 'toListener', frame);
    return true;
  }

  snapshotChunk(address: string, frame: SnapshotChunkFrame): boolean {
    const connection = this.connection(address);
    if (connection.state !== 'open') return false;
    this.network.send(connection, 'toListener', frame);
    return true;
  }

  private connection(address: string): Connection {
    if (!this.clock.alive) throw new BerthError('ServiceUnavailable', 'the process is dead');
    const existing = this.outbound.get(address);
    if (existing !== undefined && existing.state !== 'closed') return existing;
    const connection = this.network.dial(this, address);
    this.outbound.set(address, connection);
    return connection;
  }

  /** A frame from a node that dialled us. */
  receiveAsListener(connection: Connection, frame: Frame): void {
    switch (frame.kind) {
      case FrameKind.Request: {
        const controller = new AbortController();
        const requestId = frame.requestId;
        connection.running.set(requestId, controller);
        let answer: Promise<unknown>;
        try {
          answer = this.handlers.onRequest(frame.method, frame.body, controller.signal);
        } catch (error) {
          answer = Promise.reject(error);
        }
        answer.then(
          (result) => {
            connection.running.delete(requestId);
            if (this.clock.alive) this.network.send(connection, 'toDialer', { kind: FrameKind.Response, requestId, ok: true, body: result ?? null });
          },
          (error: unknown) => {
            connection.running.delete(requestId);
            if (this.clock.alive) this.network.send(connection, 'toDialer', { kind: FrameKind.Response, requestId, ok: false, body: errorToBody(error) });
          },
        );
        break;
      }
      case FrameKind.Cancel:
        connection.running.get(frame.requestId)?.abort();
        break;
      case FrameKind.Replicate: {
        const reply = (connection.replyAck ??= (ack: AckFrame): void => {
          if (this.clock.alive) this.network.send(connection, 'toDialer', ack);
        });
        // As the real transport: a handler that throws (a stopped log) answers NeedsSync.
        try {
          this.handlers.onReplicate(frame, reply);
        } catch {
          reply({ kind: FrameKind.Ack, key: frame.key, epoch: frame.epoch, status: AckStatus.NeedsSync, durableEnd: 0 });
        }
        break;
      }
      case FrameKind.SnapshotChunk:
        // As the real transport: a handler that throws is logged there and the chunk dropped (the primary resends the snapshot).
        try {
          this.handlers.onSnapshotChunk?.(frame);
        } catch {
          // dropped
        }
        break;
      default:
        break;
    }
  }

  /** A frame from a node we dialled. */
  receiveAsDialer(connection: Connection, frame: Frame): void {
    if (frame.kind === FrameKind.Response) {
      const waiter = connection.pending.get(frame.requestId);
      if (waiter === undefined) return;
      if (frame.ok) waiter.resolve(frame.body);
      else waiter.reject(errorFromBody(frame.body));
    } else if (frame.kind === FrameKind.Ack) {
      this.handlers.onAck(connection.address, frame);
    }
  }

  onClosed(connection: Connection): void {
    if (this.outbound.get(connection.address) === connection) this.outbound.delete(connection.address);
    for (const waiter of connection.pending.values()) waiter.reject(new BerthError('ServiceUnavailable', `connection to peer ${connection.address} closed`));
    connection.pending.clear();
    this.handlers.onDisconnect?.(connection.address);
  }
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}
