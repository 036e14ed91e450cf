// Test harness for cluster mode: a real etcd (Debian's /usr/bin/etcd) on free loopback
// ports with a temp data dir, and N real `berth serve --etcd ...` nodes, each with its own
// data dir, HTTP port and peer port (kept across restarts, so a restarted node is the same
// node). Helpers kill -9 / SIGSTOP / SIGCONT / restart a node, read /cluster/status, find a
// partition's primary and wait for conditions by polling (bounded; never a bare sleep).
//
// stop() stops every node and etcd and removes every temp dir; the server harness's exit
// hook SIGKILLs anything left if a test dies first.

import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { freePort, httpRequest, makeTempDir, requireFile, sqsClient, startBerth, waitUntil, type BerthProcess } from './server.js';

export const etcdBinary = '/usr/bin/etcd';

export interface ClusterStatusReport {
  selfId: string;
  controller: string;
  nodes: Array<{ id: string; health: 'healthy' | 'down'; zone: string }>;
  partitions: Array<{ queue: string; partition: number; epoch: number; primary: string; replicas: string[] }>;
  local: Array<{ queue: string; partition: number; role: 'primary' | 'backup'; epoch: number; endOffset: number; durableEndOffset: number; lastEpoch: number; backups: Array<{ id: string; phase: string; durableEnd: number }>; startOffset: number }>;
}

export interface ClusterNodeHandle {
  readonly id: string;
  readonly dataDir: string;
  readonly port: number;
  readonly peerPort: number;
  /** Native protocol port (kept across restarts) when the cluster was started with `native: true`. */
  readonly nativePort: number | undefined;
  /** The running process; undefined while stopped. */
  process: BerthProcess | undefined;
  readonly url: string;
}

export interface TestCluster {
  readonly etcdUrl: string;
  readonly nodes: ClusterNodeHandle[];
  node(id: string): ClusterNodeHandle;
  /** Starts (or restarts) a node with its old data dir and ports. */
  start(id: string): Promise<void>;
  kill9(id: string): Promise<void>;
  pause(id: string): void;
  resume(id: string): void;
  /** SIGTERM and wait. */
  stopNode(id: string): Promise<void>;
  status(id: string): Promise<ClusterStatusReport>;
  /** The primary of partition `partition` of `queue` as the named (or any live) node sees it. */
  primaryOf(queue: string, partition?: number, via?: string): Promise<string>;
  /**
   * The primary of each of the queue's partitions once every live node agrees on it and
   * the primary itself serves it (a view taken right after a create or a restart may still
   * be settling).
   */
  settledPrimaries(queue: string, partitions: number): Promise<string[]>;
  /** Waits until every node of the cluster is registered healthy (as `via`, default the first node, sees it). */
  waitAllHealthy(via?: string): Promise<void>;
  waitFor(predicate: () => Promise<boolean> | boolean, what: string, timeoutMs?: number): Promise<void>;
  /** What node `id` reports about its replica of `queue`'s partition (undefined when it hosts none). */
  local(id: string, queue: string, partition?: number): Promise<ClusterStatusReport['local'][number] | undefined>;
  stop(): Promise<void>;
}

export interface StartClusterOptions {
  nodes: number;
  zones?: string[];
  extraArgs?: string[];
  /** Open each node's native protocol port (off by default). */
  native?: boolean;
}

export interface EtcdProcess {
  child: ChildProcess;
  url: string;
  dir: { path: string; remove(): void };
}

/** A real etcd on free loopback ports and a temp data dir; the caller kills the child and removes the dir. */
export async function startEtcd(): Promise<EtcdProcess> {
  requireFile(etcdBinary, 'etcd (Debian package etcd-server)');
  const dir = makeTempDir('berth-etcd-');
  const clientPort = await freePort();
  const peerPort = await freePort();
  const url = `http://127.0.0.1:${clientPort}`;
  const child = spawn(
    etcdBinary,
    [
      '--data-dir', dir.path,
      '--name', 'test',
      '--listen-client-urls', url,
      '--advertise-client-urls', url,
      '--listen-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-cluster', `test=http://127.0.0.1:${peerPort}`,
      '--log-level', 'error',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-8000);
  });
  process.once('exit', () => child.kill('SIGKILL'));
  try {
    await waitUntil(async () => {
      if (child.exitCode !== null) throw new Error(`etcd exited: ${stderr}`);
      try {
        const response = await httpRequest(url, { method: 'GET', path: '/health' });
        return response.status === 200;
      } catch {
        return false;
      }
    }, 'etcd to answer /health', 20_000, 100);
  } catch (error) {
    child.kill('SIGKILL');
    dir.remove();
    throw error;
  }
  return { child, url, dir };
}

export async function startCluster(options: StartClusterOptions): Promise<TestCluster> {
  const etcd = await startEtcd();
  const handles: ClusterNodeHandle[] = [];
  for (let index = 0; index < options.nodes; index++) {
    const port = await freePort();
    const peerPort = await freePort();
    const nativePort = options.native === true ? await freePort() : undefined;
    const dir = makeTempDir('berth-node-');
    handles.push({ id: `n${index + 1}`, dataDir: dir.path, port, peerPort, nativePort, process: undefined, url: `http://127.0.0.1:${port}` });
  }
  const zoneOf = (index: number): string | undefined => options.zones?.[index % options.zones.length];

  const cluster: TestCluster = {
    etcdUrl: etcd.url,
    nodes: handles,
    node(id) {
      const handle = handles.find((candidate) => candidate.id === id);
      if (handle === undefined) throw new Error(`no node ${id}`);
      return handle;
    },
    async start(id) {
      const handle = cluster.node(id);
      const index = handles.indexOf(handle);
      const zone = zoneOf(index);
      handle.process = await startBerth({
        name: `cluster-${id}`,
        dataDir: handle.dataDir,
        port: handle.port,
        args: [
          '--native-port', String(handle.nativePort ?? 0),
          '--node-id', id,
          '--etcd', etcd.url,
          '--peer-port', String(handle.peerPort),
          '--log-level', 'info',
          ...(zone === undefined ? [] : ['--zone', zone]),
          ...(options.extraArgs ?? []),
        ],
      });
    },
    async kill9(id) {
      const handle = cluster.node(id);
      const running = handle.process;
      if (running === undefined) return;
      running.kill('SIGKILL');
      await running.waitForExit();
      handle.process = undefined;
    },
    pause(id) {
      cluster.node(id).process?.kill('SIGSTOP');
    },
    resume(id) {
      cluster.node(id).process?.kill('SIGCONT');
    },
    async stopNode(id) {
      const handle = cluster.node(id);
      await handle.process?.stop({ keepDataDir: true });
      handle.process = undefined;
    },
    async status(id) {
      const response = await httpRequest(cluster.node(id).url, { method: 'GET', path: '/cluster/status' });
      if (response.status !== 200) throw new Error(`status of ${id}: HTTP ${response.status}`);
      return JSON.parse(response.body) as ClusterStatusReport;
    },
    async primaryOf(queue, partition = 0, via) {
      const ids = via !== undefined ? [via] : handles.filter((handle) => handle.process !== undefined).map((handle) => handle.id);
      for (const id of ids) {
        try {
          const status = await cluster.status(id);
          const entry = status.partitions.find((candidate) => candidate.queue === queue && candidate.partition === partition);
          if (entry !== undefined) return entry.primary;
        } catch {
          // try the next node
        }
      }
      throw new Error(`no node knows the primary of ${queue}#${partition}`);
    },
    async settledPrimaries(queue, partitions) {
      const ids = handles.filter((handle) => handle.process !== undefined).map((handle) => handle.id);
      let primaries: string[] = [];
      await cluster.waitFor(async () => {
        const statuses = await Promise.all(ids.map((id) => cluster.status(id)));
        primaries = Array.from({ length: partitions }, (_, partition) => statuses[0]!.partitions.find((entry) => entry.queue === queue && entry.partition === partition)?.primary ?? '');
        return primaries.every((primary, partition) =>
          ids.includes(primary) &&
          statuses.every((status) => status.partitions.some((entry) => entry.queue === queue && entry.partition === partition && entry.primary === primary)) &&
          statuses[ids.indexOf(primary)]!.local.some((entry) => entry.queue === queue && entry.partition === partition && entry.role === 'primary'));
      }, `the primaries of ${queue} to settle`);
      return primaries;
    },
    async waitAllHealthy(via = handles[0]!.id) {
      try {
        await cluster.waitFor(async () => (await cluster.status(via)).nodes.filter((node) => node.health === 'healthy').length === handles.length, `${handles.length} nodes registered healthy`);
      } catch (error) {
        // Say why: what the view shows, and each node's latest warnings (a rare timeout under a loaded CI machine is otherwise blind).
        const view = await cluster.status(via).then((status) => status.nodes.map((node) => `${node.id}:${node.health}`).join(' '), (statusError: unknown) => `no status from ${via}: ${String(statusError)}`);
        const warnings = handles.map((handle) => {
          const lines = (handle.process?.logRecords() ?? []).filter((record) => typeof record['level'] === 'number' && record['level'] >= 40).slice(-5);
          return `${handle.id} (${handle.process === undefined ? 'not running' : `pid ${handle.process.pid}`}): ${lines.map((record) => String(record['msg'])).join(' | ') || 'no warnings'}`;
        });
        throw new Error(`${(error as Error).message}\nview: ${view}\n${warnings.join('\n')}`);
      }
    },
    waitFor(predicate, what, timeoutMs = 30_000) {
      return waitUntil(async () => {
        try {
          return await predicate();
        } catch {
          return false;
        }
      }, what, timeoutMs, 100);
    },
    async local(id, queue, partition = 0) {
      return (await cluster.status(id)).local.find((entry) => entry.queue === queue && entry.partition === partition);
    },
    async stop() {
      await Promise.all(handles.map(async (handle) => {
        if (handle.process !== undefined) {
          // A paused node cannot handle SIGTERM.
          handle.process.kill('SIGCONT');
          await handle.process.stop({ keepDataDir: true, timeoutMs: 10_000 });
          handle.process = undefined;
        }
      }));
      etcd.child.kill('SIGKILL');
      await new Promise<void>((resolve) => (etcd.child.exitCode !== null ? resolve() : etcd.child.once('exit', () => resolve())));
      etcd.dir.remove();
      for (const handle of handles) rmSync(handle.dataDir, { recursive: true, force: true });
    },
  };
  try {
    await Promise.all(handles.map((handle) => cluster.start(handle.id)));
    await cluster.waitAllHealthy();
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

/** One SQS client per node of a cluster, made on first use; `destroyAll` closes them. */
export function clusterClients(cluster: () => TestCluster): { of(id: string): SQSClient; destroyAll(): void } {
  const clients = new Map<string, SQSClient>();
  return {
    of(id: string): SQSClient {
      let client = clients.get(id);
      if (client === undefined) clients.set(id, (client = sqsClient(cluster().node(id).url)));
      return client;
    },
    destroyAll(): void {
      for (const client of clients.values()) client.destroy();
      clients.clear();
    },
  };
}
