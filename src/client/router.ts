// Which connection a call goes over. Today one node: SingleNodeRouter keeps one
// connection and reopens it with backoff when it is lost. The cluster issue adds a router
// that holds the partition map, talks to each partition's primary and prefers the local
// zone; everything above (Berth, producers, consumers) asks a Router and stays unchanged.

import { ClientConnection, type ConnectOptions } from './connection.js';
import { clientClosed, connectionClosed, AuthenticationError, ProtocolError, type BerthClientError } from './errors.js';

export interface Router {
  /** An open connection for calls about `queue` (any connection when absent), and about one of its partitions when given. */
  connectionFor(queue?: string, partition?: number): Promise<ClientConnection>;
  /**
   * Routers that send calls to partition primaries (ClusterRouter): the partition a message
   * call concerns, so a batch can be split by partition. Absent: one connection serves all.
   */
  partitionOf?(queue: string, key: { groupId?: string; receiptHandle?: string }): Promise<number | undefined>;
  /** Called with every newly opened connection (subscriptions re-subscribe). */
  onReconnect(listener: () => void): () => void;
  close(): void;
}

export interface ReconnectOptions {
  /** First wait after a failed attempt; doubles up to backoffMaxMs, with jitter. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Give up (calls fail with ConnectionClosedError) when no connection for this long. */
  reconnectTimeoutMs?: number;
}

export class SingleNodeRouter implements Router {
  private current: ClientConnection | undefined;
  private connecting: Promise<ClientConnection> | undefined;
  private closed = false;
  private readonly reconnectListeners = new Set<() => void>();
  private readonly closeListeners = new Set<() => void>();
  private everConnected = false;

  constructor(
    private readonly connectOptions: ConnectOptions,
    private readonly reconnect: ReconnectOptions = {},
  ) {}

  connectionFor(): Promise<ClientConnection> {
    if (this.closed) return Promise.reject(clientClosed('Berth client'));
    if (this.current !== undefined && this.current.isOpen) return Promise.resolve(this.current);
    this.connecting ??= this.connectWithBackoff().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  onReconnect(listener: () => void): () => void {
    this.reconnectListeners.add(listener);
    return () => this.reconnectListeners.delete(listener);
  }

  /** Called whenever the open connection is lost (the ClusterRouter drops routes through it). */
  onConnectionClosed(listener: () => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  close(): void {
    this.closed = true;
    this.current?.close();
    this.current = undefined;
  }

  private async connectWithBackoff(): Promise<ClientConnection> {
    const initialMs = this.reconnect.backoffInitialMs ?? 50;
    const maxMs = this.reconnect.backoffMaxMs ?? 2_000;
    const deadline = Date.now() + (this.reconnect.reconnectTimeoutMs ?? 30_000);
    let waitMs = initialMs;
    let lastError: BerthClientError | undefined;
    for (;;) {
      if (this.closed) throw clientClosed('Berth client');
      try {
        const connection = await ClientConnection.open(this.connectOptions);
        if (this.closed) {
          connection.close();
          throw clientClosed('Berth client');
        }
        this.current = connection;
        const reconnected = this.everConnected;
        this.everConnected = true;
        connection.onClose(() => {
          if (this.current === connection) this.current = undefined;
          for (const listener of this.closeListeners) listener();
        });
        if (reconnected) for (const listener of this.reconnectListeners) queueMicrotask(listener);
        return connection;
      } catch (error) {
        // Wrong credentials or a server that speaks another protocol will not get better.
        if (error instanceof AuthenticationError || error instanceof ProtocolError) throw error;
        lastError = error as BerthClientError;
      }
      if (Date.now() + waitMs > deadline) {
        throw connectionClosed(`no connection to ${this.connectOptions.host}:${this.connectOptions.port}: ${lastError?.message ?? 'gave up'}`, lastError);
      }
      await new Promise((resolve) => setTimeout(resolve, waitMs * (0.5 + Math.random() / 2)));
      waitMs = Math.min(maxMs, waitMs * 2);
    }
  }
}
