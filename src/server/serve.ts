// The composition root of `berth serve`: wires the real file system, clock, logger,
// metrics, the broker and the HTTP routes, and owns the process lifecycle (readiness,
// graceful stop on SIGTERM/SIGINT, forced exit on a second SIGINT).

import { randomBytes } from 'node:crypto';
import { randomUuid } from '../core/uuid.js';
import path from 'node:path';
import { NodeFileSystem } from '../io/node-filesystem.js';
import { DiskStall } from '../io/disk-stall.js';
import { TurnEndFlusher } from '../io/turn-end-flusher.js';
import { CacheBudget } from '../broker/cache-budget.js';
import type { PartitionOptions } from '../broker/partition.js';
import { SystemClock } from '../io/system-clock.js';
import { lockDataDirectory } from '../io/data-directory-lock.js';
import { LocalBroker } from '../broker/local-broker.js';
import { createSqsHandler } from '../api/sqs/handler.js';
import { createConsoleHandler, parseConsoleCredentials, type ClusterStatus } from './console-routes.js';
import { BerthMetrics } from './metrics.js';
import { createLogger, type Logger } from './logger.js';
import { loadAuthFile, type ServerConfig } from './config.js';
import { startHttpServer, type HttpRequest, type HttpResponse, type RunningHttpServer } from './http-server.js';
import { instrumentService } from './instrumented-service.js';
import { startNativeServer, type RunningNativeServer } from '../api/native/server.js';
import { startClusterRuntime, type ClusterRuntime } from '../io/cluster-runtime.js';

export interface RunningServer {
  readonly port: number;
  readonly url: string;
  /** The native protocol's port; undefined when turned off. */
  readonly nativePort: number | undefined;
  readonly logger: Logger;
  stop(): Promise<void>;
}

const loopbackHosts = new Set(['127.0.0.1', 'localhost', '::1']);

export async function startServer(config: ServerConfig): Promise<RunningServer> {
  const logger = createLogger({ level: config.logLevel, pretty: config.logPretty });
  const clock = new SystemClock();
  const dataDirectory = path.resolve(config.dataDir);
  const credentials = config.authFile === undefined ? undefined : loadAuthFile(config.authFile);
  let ready = false;

  logger.info({ dataDirectory, host: config.host, port: config.port }, 'berth starting');
  if (credentials === undefined) {
    logger.warn({}, 'auth is open: any credentials are accepted (development mode). Use --auth-file to require AWS Signature Version 4.');
    if (!loopbackHosts.has(config.host)) {
      logger.warn({ host: config.host }, `listening beyond loopback (${config.host}) WITHOUT authentication: anyone who can reach this port can read and delete messages. Use --auth-file.`);
    }
  } else {
    logger.info({ accessKeys: credentials.size }, 'auth: AWS Signature Version 4 required on every request');
  }

  const lock = lockDataDirectory(dataDirectory);
  const metrics = new BerthMetrics({ clock });
  // One budget over every partition's record cache on this node.
  const cacheBudget = new CacheBudget(config.recordCacheBytesMax);
  metrics.watchRecordCache(cacheBudget);
  // A cluster node watches its thread-pool fsyncs: one stuck past the lease makes it step aside.
  const fs = new NodeFileSystem({ stall: DiskStall.fromEnvironment(process.env, logger), watchSyncs: config.etcd !== undefined });
  // Cluster mode only with --etcd; otherwise the single-node broker, unchanged.
  const cluster: ClusterRuntime | undefined = config.etcd === undefined ? undefined : await startCluster(config, dataDirectory, fs, clock, logger, cacheBudget);
  const broker = cluster?.node ?? await LocalBroker.open({
    fs,
    dataDirectory,
    clock,
    logger: logger.child({ component: 'broker' }),
    region: config.region,
    accountId: config.accountId,
    newId: randomUuid,
    newIncarnation: () => randomBytes(8).toString('hex'),
    partitionOptions: partitionOptionsOf(config, cacheBudget),
  });
  const service = instrumentService(broker, metrics, clock);

  const sqsHandler = createSqsHandler(service, {
    accountId: config.accountId,
    region: config.region,
    publicBaseUrl: config.publicUrl,
    auth: credentials === undefined ? { mode: 'open' } : { mode: 'sigv4', credentials },
    clock,
    logger: logger.child({ component: 'sqs' }),
    onActionResult: (action, queue, errorCode, durationMs) => metrics.recordAction(action, queue, errorCode, durationMs),
  });
  const consoleHandler = createConsoleHandler({
    service,
    metrics,
    ...(cluster === undefined ? {} : { clusterStatus: async () => consoleClusterStatus(cluster) }),
    logger: logger.child({ component: 'console' }),
    authorize:
      credentials === undefined
        ? undefined
        : (request) => {
            const given = parseConsoleCredentials(request);
            return given !== undefined && credentials.get(given.accessKeyId) === given.secretAccessKey;
          },
  });

  const health = async (request: HttpRequest): Promise<HttpResponse | undefined> => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return undefined;
    const pathname = request.url.split('?')[0];
    if (pathname === '/health/live') return json(200, { status: 'live' });
    if (pathname === '/health/ready') return ready ? json(200, { status: 'ready' }) : json(503, { status: 'starting' });
    if (pathname === '/cluster/status' && cluster !== undefined) return json(200, cluster.status());
    return undefined;
  };

  // Gauges and storage histograms follow the broker once a second.
  const previousStats = new Map<string, { batches: number; records: number; fsyncMsTotal: number }>();
  const sampler = setInterval(() => {
    void (async () => {
      const names = await broker.listQueues();
      for (const name of names) {
        try {
          metrics.setQueueGauges(name, await broker.queueCounts(name));
        } catch {
          // deleted meanwhile
        }
      }
      metrics.retainQueues(names);
      for (const { partition, stats } of broker.partitionStats()) {
        const before = previousStats.get(partition) ?? { batches: 0, records: 0, fsyncMsTotal: 0 };
        const batches = stats.batches - before.batches;
        if (batches > 0) metrics.recordFsync(partition, (stats.fsyncMsTotal - before.fsyncMsTotal) / batches, (stats.records - before.records) / batches);
        previousStats.set(partition, { batches: stats.batches, records: stats.records, fsyncMsTotal: stats.fsyncMsTotal });
      }
    })().catch((error: unknown) => logger.warn({ err: error }, 'metrics sampling failed'));
  }, 1000);
  sampler.unref();

  let http: RunningHttpServer;
  try {
    http = await startHttpServer({
      host: config.host,
      port: config.port,
      requestBodyBytesMax: config.requestBodyBytesMax,
      logger,
      routes: [health, async (request) => consoleHandler(request), async (request, signal) => sqsHandler(request, signal)],
    });
  } catch (error) {
    clearInterval(sampler);
    await (cluster ?? broker).close();
    lock.release();
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new Error(`port ${config.port} on ${config.host} is already in use: stop the other process or pick another with --port`);
    throw error;
  }
  let native: RunningNativeServer | undefined;
  if (config.nativePort !== 0) {
    try {
      native = await startNativeServer({
        service,
        host: config.host,
        port: config.nativePort,
        auth: credentials === undefined ? { mode: 'open' } : { mode: 'keys', credentials },
        clock,
        logger: logger.child({ component: 'native' }),
      });
    } catch (error) {
      // A taken native port must not stop the SQS API (several servers on one machine, tests).
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') {
        clearInterval(sampler);
        await http.close(0);
        await broker.close();
        lock.release();
        throw error;
      }
      logger.warn({ host: config.host, nativePort: config.nativePort }, `native port ${config.nativePort} is already in use: the native protocol is OFF for this server. Pick another with --native-port (0 turns it off).`);
    }
  }
  const displayHost = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${displayHost}:${http.port}`;
  if (cluster !== undefined) await cluster.join(url, native !== undefined ? `berth://${displayHost}:${native.port}` : undefined);
  ready = true;
  logger.info({ url, console: `${url}/console`, nativePort: native?.port, dataDirectory }, 'berth ready');

  let stopping: Promise<void> | undefined;
  return {
    port: http.port,
    url,
    nativePort: native?.port,
    logger,
    stop(): Promise<void> {
      stopping ??= (async () => {
        ready = false;
        logger.info({}, 'berth stopping: no new requests, finishing those in flight');
        clearInterval(sampler);
        await native?.close(config.shutdownTimeoutMs);
        await http.close(config.shutdownTimeoutMs);
        await (cluster ?? broker).close();
        lock.release();
        logger.info({}, 'berth stopped: every log flushed and fsynced');
      })();
      return stopping;
    },
  };
}

/** Runs until SIGTERM/SIGINT; a second SIGINT forces exit. */
export async function runServerProcess(config: ServerConfig): Promise<void> {
  const server = await startServer(config);
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      server.logger.warn({ signal }, 'second signal: exiting at once');
      process.exit(130);
    }
    server.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        server.logger.error({ err: error }, 'graceful stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

async function startCluster(config: ServerConfig, dataDirectory: string, fs: NodeFileSystem, clock: SystemClock, logger: Logger, cacheBudget: CacheBudget): Promise<ClusterRuntime> {
  if (config.nodeId === undefined) throw new Error('cluster mode (--etcd) needs --node-id');
  if (config.peerPort === undefined) throw new Error('cluster mode (--etcd) needs --peer-port (0 picks a free port)');
  return startClusterRuntime({
    config: {
      nodeId: config.nodeId,
      etcdEndpoints: config.etcd!.split(',').map((endpoint) => endpoint.trim()).filter((endpoint) => endpoint !== ''),
      host: config.host,
      peerPort: config.peerPort,
      zone: config.zone ?? '',
      region: config.region,
      accountId: config.accountId,
      dataDirectory,
      defaultReplicaCount: config.defaultReplicaCount ?? 2,
      defaultPartitionCount: config.defaultPartitionCount ?? 1,
      leaseTtlSeconds: config.leaseTtlSeconds ?? 3,
      replicaReplaceAfterMs: (config.replicaReplaceAfterSeconds ?? 300) * 1000,
    },
    fs,
    pendingSyncAgeMs: () => fs.pendingSyncAgeMs(),
    clock,
    logger: logger.child({ component: 'cluster', node: config.nodeId }),
    newId: randomUuid,
    newIncarnation: () => randomBytes(8).toString('hex'),
    partitionOptions: partitionOptionsOf(config, cacheBudget),
  });
}

/**
 * The partitions' options, alike for a single node and a cluster node. A turn's only
 * flush fsyncs on the main thread (TurnEndFlusher); on a primary, after the turn's records
 * left for the backups (Partition's beforeAppend). On a 3-node cluster at 1,000 msg/s that
 * cost about a fifth less CPU than the thread pool, and p99 was lower (BENCHMARKS.md, session 12).
 */
function partitionOptionsOf(config: ServerConfig, cacheBudget: CacheBudget): Partial<PartitionOptions> {
  return {
    cacheBudget,
    logOptions: {
      groupCommitDelayMs: config.groupCommitDelayMs,
      segmentBytesMax: config.segmentBytesMax,
      preallocateBytes: config.preallocateBytes,
      flushScheduler: new TurnEndFlusher(),
    },
    ...(config.checkpointIntervalMs === undefined ? {} : { checkpointIntervalMs: config.checkpointIntervalMs }),
  };
}

/** The console's cluster page model from this node's status (lag known for partitions it leads). */
function consoleClusterStatus(cluster: ClusterRuntime): ClusterStatus {
  const report = cluster.status();
  const lagByKey = new Map(report.local.filter((local) => local.role === 'primary').map((local) => [`${local.queue}#${local.partition}`, Math.max(0, ...local.backups.map((backup) => local.endOffset - backup.durableEnd))]));
  return {
    mode: 'cluster',
    selfId: report.selfId,
    nodes: report.nodes.map((node) => ({ id: node.id, region: node.region, zone: node.zone, health: node.health, ...(node.address === '' ? {} : { address: node.address }) })),
    partitions: report.partitions.map((partition) => ({
      queue: partition.queue,
      partition: partition.partition,
      primary: partition.primary,
      backups: partition.replicas.filter((id) => id !== partition.primary),
      epoch: partition.epoch,
      replicaLag: lagByKey.get(`${partition.queue}#${partition.partition}`) ?? 0,
    })),
  };
}

function json(status: number, body: unknown): HttpResponse {
  return { status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}
