// Real processes of a chaos run: one etcd and N `berth serve --etcd` nodes, each node's
// output appended to <runDirectory>/<id>.log (kept across restarts), its data dir under
// the run directory, ports fixed for the node's life so a restarted node is the same node.
// With network namespaces a node runs under `ip netns exec <its namespace>` (which execs,
// so the child's pid is the server's) on its own address; without, everything is on
// 127.0.0.1 with free ports.
//
// Node states: stopped -> starting (spawned, polling /health/ready) -> running; running ->
// paused (SIGSTOP) -> running (SIGCONT); running/paused -> stopped by kill -9 (waits for
// the exit). Apart from those, a node's disk may stall: each node is started with
// BERTH_TEST_DISK_STALL_FILE (src/io/disk-stall.ts), and its fsyncs hang while that file
// exists. Every pid spawned is appended to <runDirectory>/pids so the outer process of
// a namespace run can kill leftovers after a crash of the driver.

import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** dist/src/testing/chaos -> repository root. */
export const repositoryRoot = path.resolve(here, '..', '..', '..', '..');
const berthBin = path.join(repositoryRoot, 'bin', 'berth.js');
const etcdBinary = '/usr/bin/etcd';

export interface NodePlacement {
  /** Address the node listens on (127.0.0.1 or its namespace's address). */
  host: string;
  /** Namespace to run in, if any. */
  namespace?: string;
}

export interface ChaosNode {
  readonly id: string;
  readonly index: number;
  readonly url: string;
  readonly dataDir: string;
  state: 'stopped' | 'running' | 'paused';
  child: ChildProcess | undefined;
}

import { freePort } from '../../io/free-port.js';
export { freePort };

export function httpGet(url: string, timeoutMs = 3_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false, timeout: timeoutMs }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${url} timed out`)));
    request.on('error', reject);
  });
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class ChaosProcesses {
  readonly nodes: ChaosNode[] = [];
  etcdUrl = '';
  private etcd: ChildProcess | undefined;
  private readonly ports = new Map<string, { port: number; peerPort: number }>();

  constructor(
    private readonly runDirectory: string,
    private readonly placements: NodePlacement[],
    private readonly etcdHost: string,
    private readonly leaseTtlSeconds: number,
  ) {
    mkdirSync(runDirectory, { recursive: true });
  }

  private record(child: ChildProcess): void {
    if (child.pid !== undefined) appendFileSync(path.join(this.runDirectory, 'pids'), `${child.pid}\n`);
  }

  private spawnLogged(command: string, args: string[], logName: string, namespace?: string, extraEnv: Record<string, string> = {}): ChildProcess {
    const log = createWriteStream(path.join(this.runDirectory, `${logName}.log`), { flags: 'a' });
    const full = namespace === undefined ? [command, ...args] : ['ip', 'netns', 'exec', namespace, command, ...args];
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith('BERTH_') && !key.startsWith('NODE_TEST')) env[key] = value;
    Object.assign(env, extraEnv);
    const child = spawn(full[0]!, full.slice(1), { cwd: repositoryRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    child.on('exit', () => log.end());
    this.record(child);
    return child;
  }

  async startEtcd(): Promise<void> {
    const local = this.etcdHost === '127.0.0.1';
    const clientPort = local ? await freePort() : 2379;
    const peerPort = local ? await freePort() : 2380;
    this.etcdUrl = `http://${this.etcdHost}:${clientPort}`;
    const dataDir = path.join(this.runDirectory, 'etcd');
    this.etcd = this.spawnLogged(etcdBinary, [
      '--data-dir', dataDir, '--name', 'chaos',
      '--listen-client-urls', this.etcdUrl, '--advertise-client-urls', this.etcdUrl,
      '--listen-peer-urls', `http://127.0.0.1:${peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-cluster', `chaos=http://127.0.0.1:${peerPort}`, '--log-level', 'error',
    ], 'etcd');
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (this.etcd.exitCode !== null) throw new Error(`etcd exited (${this.etcd.exitCode}); see ${this.runDirectory}/etcd.log`);
      try {
        if ((await httpGet(`${this.etcdUrl}/health`, 1_000)).status === 200) return;
      } catch {
        // not yet
      }
      if (Date.now() > deadline) throw new Error('etcd did not answer /health within 20 s');
      await delay(100);
    }
  }

  async addNodes(): Promise<void> {
    for (let index = 0; index < this.placements.length; index++) {
      const placement = this.placements[index]!;
      const local = placement.namespace === undefined;
      const id = `n${index + 1}`;
      const port = local ? await freePort() : 9324;
      const peerPort = local ? await freePort() : 9400;
      this.ports.set(id, { port, peerPort });
      const dataDir = path.join(this.runDirectory, id);
      mkdirSync(dataDir, { recursive: true });
      this.nodes.push({ id, index, url: `http://${placement.host}:${port}`, dataDir, state: 'stopped', child: undefined });
    }
  }

  node(id: string): ChaosNode {
    const found = this.nodes.find((node) => node.id === id);
    if (found === undefined) throw new Error(`no node ${id}`);
    return found;
  }

  async start(id: string, readyTimeoutMs = 60_000): Promise<void> {
    const node = this.node(id);
    if (node.state !== 'stopped') return;
    const placement = this.placements[node.index]!;
    const ports = this.ports.get(id)!;
    const child = this.spawnLogged(process.execPath, [
      berthBin, 'serve', '--host', placement.host, '--port', String(ports.port), '--native-port', '0', '--data-dir', node.dataDir,
      '--node-id', id, '--etcd', this.etcdUrl, '--peer-port', String(ports.peerPort), '--lease-ttl-seconds', String(this.leaseTtlSeconds),
      '--log-level', 'info',
    ], id, placement.namespace, { BERTH_TEST_DISK_STALL_FILE: this.diskStallFile(id) });
    node.child = child;
    node.state = 'running';
    child.once('exit', () => {
      if (node.child === child) {
        node.child = undefined;
        node.state = 'stopped';
      }
    });
    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${id} exited while starting (${child.exitCode ?? child.signalCode}); see ${this.runDirectory}/${id}.log`);
      try {
        if ((await httpGet(`${node.url}/health/ready`, 1_000)).status === 200) return;
      } catch {
        // not yet
      }
      if (Date.now() > deadline) throw new Error(`${id} not ready within ${readyTimeoutMs} ms; see ${this.runDirectory}/${id}.log`);
      await delay(100);
    }
  }

  async kill9(id: string): Promise<void> {
    const node = this.node(id);
    const child = node.child;
    if (child === undefined) return;
    const exited = new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
    child.kill('SIGKILL');
    await exited;
    node.child = undefined;
    node.state = 'stopped';
  }

  pause(id: string): void {
    const node = this.node(id);
    if (node.child === undefined || node.state !== 'running') return;
    node.child.kill('SIGSTOP');
    node.state = 'paused';
  }

  resume(id: string): void {
    const node = this.node(id);
    if (node.child === undefined) return;
    node.child.kill('SIGCONT');
    node.state = 'running';
  }

  /** The file whose presence stalls node `id`'s fsyncs. */
  diskStallFile(id: string): string {
    return path.join(this.runDirectory, `${id}.disk-stall`);
  }

  /** From now on, every fsync of node `id` hangs until unstallDisk (its writes still go to the page cache). */
  stallDisk(id: string): void {
    writeFileSync(this.diskStallFile(id), 'fsyncs hang while this file exists\n');
  }

  unstallDisk(id: string): void {
    rmSync(this.diskStallFile(id), { force: true });
  }

  /**
   * What node `id`'s log says a stall since `sinceMs` did: how long it held an fsync and on
   * which thread (undefined when none was held; waits up to `timeoutMs` for the line), and
   * whether the node stepped aside (gave its lease up because an fsync outlasted it).
   */
  async stallOutcome(id: string, sinceMs: number, timeoutMs = 3_000): Promise<{ held: { heldMs: number; where: string } | undefined; steppedAside: boolean }> {
    const logPath = path.join(this.runDirectory, `${id}.log`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let held: { heldMs: number; where: string } | undefined;
      let steppedAside = false;
      const lines = existsSync(logPath) ? readFileSync(logPath, 'utf8').split('\n') : [];
      for (const line of lines) {
        if (!line.includes('the stalled disk is back') && !line.includes('stepping aside')) continue;
        try {
          const entry = JSON.parse(line) as { time?: number; msg?: string; heldMs?: number; where?: string };
          if ((entry.time ?? 0) < sinceMs) continue;
          if (entry.msg?.startsWith('stepping aside') === true) steppedAside = true;
          else if (entry.heldMs !== undefined) held = { heldMs: entry.heldMs, where: entry.where ?? '?' };
        } catch {
          // a line cut by a kill: not this one
        }
      }
      if (held !== undefined || Date.now() > deadline) return { held, steppedAside };
      await delay(100);
    }
  }

  /** Stops everything this object started (kill -9: data is thrown away with the run or kept for a post-mortem). */
  async stopAll(): Promise<void> {
    for (const node of this.nodes) {
      this.unstallDisk(node.id);
      node.child?.kill('SIGCONT');
    }
    await Promise.all(this.nodes.map((node) => this.kill9(node.id)));
    const etcd = this.etcd;
    if (etcd !== undefined && etcd.exitCode === null && etcd.signalCode === null) {
      const exited = new Promise<void>((resolve) => etcd.once('exit', () => resolve()));
      etcd.kill('SIGKILL');
      await exited;
    }
    this.etcd = undefined;
  }
}
