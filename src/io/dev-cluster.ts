// `berth dev-cluster --nodes N`: a throwaway local cluster for development. Starts etcd
// (/usr/bin/etcd, temp data dir, free loopback ports) and N `berth serve` nodes with their
// own data directories, prints the endpoints, and stops everything (and removes the temp
// dirs unless --keep) on Ctrl-C.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { berthNodeFlags, berthProcessEnvironment } from './berth-process.js';
import { freePort } from './free-port.js';

export interface DevClusterOptions {
  nodes: number;
  /** First HTTP port; node k gets basePort + k - 1 (0: free ports). */
  basePort: number;
  replicaCount: number;
  partitionCount: number;
  keep: boolean;
  berthBin: string;
  print(line: string): void;
}


async function waitHttp(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const response = await fetch(url);
      if (response.ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not come up within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export async function runDevCluster(options: DevClusterOptions): Promise<void> {
  if (!existsSync('/usr/bin/etcd')) throw new Error('/usr/bin/etcd is missing: apt-get install -y etcd-server');
  const root = mkdtempSync(path.join(os.tmpdir(), 'berth-dev-cluster-'));
  const children: ChildProcess[] = [];
  const stop = (): void => {
    for (const child of children) child.kill('SIGTERM');
  };
  const clientPort = await freePort();
  const peerPort = await freePort();
  const etcdUrl = `http://127.0.0.1:${clientPort}`;
  const etcd = spawn('/usr/bin/etcd', [
    '--data-dir', path.join(root, 'etcd'), '--name', 'dev',
    '--listen-client-urls', etcdUrl, '--advertise-client-urls', etcdUrl,
    '--listen-peer-urls', `http://127.0.0.1:${peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
    '--initial-cluster', `dev=http://127.0.0.1:${peerPort}`, '--log-level', 'error',
  ], { stdio: 'ignore' });
  children.push(etcd);
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    await waitHttp(`${etcdUrl}/health`, 20_000);
    const endpoints: string[] = [];
    const nativeUrls: string[] = [];
    for (let index = 1; index <= options.nodes; index++) {
      const port = options.basePort === 0 ? await freePort() : options.basePort + index - 1;
      // Native ports sit 100 above the HTTP ones (9424, 9425, ... by default).
      const nativePort = options.basePort === 0 ? await freePort() : options.basePort + 100 + index - 1;
      const nodePeerPort = await freePort();
      // The Node flags and environment bin/berth.js's shebang gives (see there).
      const child = spawn(process.execPath, [
        ...berthNodeFlags, options.berthBin, 'serve', '--port', String(port), '--native-port', String(nativePort), '--data-dir', path.join(root, `n${index}`),
        '--node-id', `n${index}`, '--etcd', etcdUrl, '--peer-port', String(nodePeerPort), '--zone', `zone-${index}`,
        '--default-replica-count', String(options.replicaCount), '--default-partition-count', String(options.partitionCount), '--log-level', 'warn',
      ], { stdio: ['ignore', 'inherit', 'inherit'], env: berthProcessEnvironment() });
      children.push(child);
      endpoints.push(`http://127.0.0.1:${port}`);
      nativeUrls.push(`berth://127.0.0.1:${nativePort}`);
    }
    await Promise.all(endpoints.map((endpoint) => waitHttp(`${endpoint}/health/ready`, 30_000)));
    options.print(`etcd: ${etcdUrl}`);
    endpoints.forEach((endpoint, index) => options.print(`node n${index + 1}: ${endpoint}  native ${nativeUrls[index]}  (console ${endpoint}/console, status ${endpoint}/cluster/status)`));
    options.print(`data: ${root}`);
    options.print('Ctrl-C stops everything.');
    await Promise.all(children.map((child) => new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', () => resolve())))));
  } finally {
    stop();
    if (!options.keep) rmSync(root, { recursive: true, force: true });
  }
}
