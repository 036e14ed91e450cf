// The native protocol's listener: accepts TCP (or TLS) connections and gives each a
// NativeConnection over the same QueueService the SQS API uses. The server process
// (src/server/serve.ts) starts it beside the HTTP server and closes it before the broker.

import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { QueueService } from '../../broker/service.js';
import type { Clock } from '../../core/clock.js';
import { NativeConnection, type ConnectionSettings, type NativeAuth } from './connection.js';
import { NativeOperations } from './operations.js';
import { frameBytesMaxDefault } from './wire.js';

export type { NativeAuth } from './connection.js';

export interface NativeServerOptions {
  service: QueueService;
  host: string;
  /** 0 picks a free port (see the returned `port`). */
  port: number;
  /** Open: any access key is accepted. Keys: the handshake must prove the secret of a known key. */
  auth: NativeAuth;
  clock: Clock;
  logger: Logger;
  /** PEM certificate and key: the listener speaks TLS. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  frameBytesMax?: number;
  heartbeatIntervalMs?: number;
  /** Default: 3 heartbeat intervals. */
  idleTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  requestsInFlightMax?: number;
  writeHighWaterBytes?: number;
  connectionsMax?: number;
}

export interface RunningNativeServer {
  readonly port: number;
  /** Connections open now. */
  connectionCount(): number;
  /** Stops accepting, ends subscriptions, lets running requests answer (up to graceMs), closes every connection. */
  close(graceMs?: number): Promise<void>;
}

export const nativePortDefault = 9325;

export async function startNativeServer(options: NativeServerOptions): Promise<RunningNativeServer> {
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 5_000;
  const settings: ConnectionSettings = {
    auth: options.auth,
    accountId: options.service.accountId,
    clock: options.clock,
    logger: options.logger,
    frameBytesMax: options.frameBytesMax ?? frameBytesMaxDefault,
    heartbeatIntervalMs,
    idleTimeoutMs: options.idleTimeoutMs ?? heartbeatIntervalMs * 3,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000,
    requestsInFlightMax: options.requestsInFlightMax ?? 256,
    writeHighWaterBytes: options.writeHighWaterBytes ?? 1024 * 1024,
    subscriptionPollMs: 20_000,
    serverVersion: 'berth/0.1.0',
  };
  const connectionsMax = options.connectionsMax ?? 10_000;
  const operations = new NativeOperations(options.service);
  const connections = new Set<NativeConnection>();

  const onSocket = (socket: net.Socket): void => {
    if (connections.size >= connectionsMax) {
      options.logger.warn({ connectionsMax }, 'native connection refused: too many connections');
      socket.destroy();
      return;
    }
    const connection = new NativeConnection(socket, operations, settings, (closed) => connections.delete(closed));
    connections.add(connection);
  };
  const server: net.Server = options.tls === undefined ? net.createServer(onSocket) : tls.createServer({ cert: options.tls.cert, key: options.tls.key }, onSocket);
  server.on('error', (error) => options.logger.error({ err: error }, 'native listener error'));
  if (options.tls !== undefined) {
    server.on('tlsClientError', (error) => options.logger.debug({ err: error }, 'native TLS handshake failed'));
  }

  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen({ host: options.host, port: options.port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  options.logger.info({ host: options.host, port, tls: options.tls !== undefined, auth: options.auth.mode }, 'native protocol listening');

  let closing: Promise<void> | undefined;
  return {
    port,
    connectionCount: () => connections.size,
    close(graceMs = 5_000): Promise<void> {
      closing ??= (async () => {
        const listenerClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        await Promise.all([...connections].map((connection) => connection.shutdown(graceMs)));
        await Promise.all([...connections].map((connection) => connection.closed));
        await listenerClosed;
      })();
      return closing;
    },
  };
}
