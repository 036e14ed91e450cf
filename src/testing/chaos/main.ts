// `npm run chaos -- --seed S --duration-seconds N --faults K [--no-netns] [--keep]`
//
// With network namespaces (root, iproute2; the default when the machine allows it) this
// process is the outer one: it makes the namespaces (netns.ts), runs itself again inside
// the hub namespace with --inner-netns <prefix> (that inner process starts etcd, the nodes
// and the load, and partitions the network), and removes the namespaces when the inner
// process ends however it ends, after killing any process the run started that is still
// alive (pids listed in <run dir>/pids). Without namespaces the run says so and runs here,
// on 127.0.0.1, without partition faults.
//
// Exit code: 0 when no acknowledged message was lost (other anomalies are printed and
// counted), 1 when one was lost or the run broke, 2 on bad arguments.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { formatReport } from './checker.js';
import type { FaultKind } from './history.js';
import { attachNetwork, probeNetns, setupNetwork } from './netns.js';
import { runChaos } from './run.js';

interface CliOptions {
  seed: string;
  durationSeconds: string;
  faults: string;
  nodes: string;
  netns: boolean;
  innerNetns?: string;
  runDirectory?: string;
  keep?: boolean;
  kinds?: string;
  visibilityTimeoutSeconds: string;
}

const program = new Command()
  .name('chaos')
  .description('fault run against a real 3-node Berth cluster with real etcd and SQS clients')
  .option('--seed <n>', 'seed of the fault schedule and the load', '1')
  .option('--duration-seconds <n>', 'how long the load and faults run (a drain follows)', '120')
  .option('--faults <n>', 'how many faults to inject', '10')
  .option('--nodes <n>', 'cluster size', '3')
  .option('--no-netns', 'do not use network namespaces (no partition faults)')
  .option('--kinds <list>', 'comma separated fault kinds (kill-primary,kill-backup,pause-primary,stall-disk-primary,restart-all,partition-node,isolate-node,partition-pair)')
  .option('--visibility-timeout-seconds <n>', 'visibility timeout of the consumers', '8')
  .option('--run-directory <dir>', 'where logs, data and the history go (default a temp dir)')
  .option('--keep', 'keep the run directory even after a clean run')
  .option('--inner-netns <prefix>', 'internal: run inside the hub namespace of an outer run');

function positiveInteger(text: string, name: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) {
    console.error(`--${name} must be a non-negative integer, got ${text}`);
    process.exit(2);
  }
  return value;
}

async function runHere(options: CliOptions, prefix: string | undefined, runDirectory: string | undefined): Promise<number> {
  const nodes = positiveInteger(options.nodes, 'nodes');
  const result = await runChaos({
    seed: positiveInteger(options.seed, 'seed'),
    durationSeconds: positiveInteger(options.durationSeconds, 'duration-seconds'),
    faults: positiveInteger(options.faults, 'faults'),
    nodes,
    ...(prefix === undefined ? {} : { network: attachNetwork(prefix, nodes) }),
    ...(options.kinds === undefined ? {} : { faultKinds: options.kinds.split(',').map((kind) => kind.trim()) as FaultKind[] }),
    visibilityTimeoutSeconds: positiveInteger(options.visibilityTimeoutSeconds, 'visibility-timeout-seconds'),
    ...(runDirectory === undefined ? {} : { runDirectory }),
    keepRunDirectory: options.keep === true || runDirectory !== undefined,
    log: (line) => console.log(line),
  });
  console.log('');
  console.log(`summary (seed ${options.seed}, ${(result.elapsedMs / 1000).toFixed(0)} s):`);
  console.log(formatReport(result.report));
  if (result.kept) console.log(`history and logs kept in ${result.runDirectory}`);
  return result.report.ok ? 0 : 1;
}

async function main(): Promise<void> {
  program.parse();
  const options = program.opts<CliOptions>();
  if (options.innerNetns !== undefined) {
    process.exitCode = await runHere(options, options.innerNetns, options.runDirectory);
    return;
  }
  if (!options.netns) {
    console.log('network namespaces: off (--no-netns); partition faults skipped');
    process.exitCode = await runHere(options, undefined, options.runDirectory);
    return;
  }
  const probe = probeNetns();
  if (!probe.ok) {
    console.log(`network namespaces: NOT AVAILABLE (${probe.reason}); partition faults skipped, everything on 127.0.0.1`);
    process.exitCode = await runHere(options, undefined, options.runDirectory);
    return;
  }
  const prefix = `berthc${process.pid}`;
  const nodes = positiveInteger(options.nodes, 'nodes');
  const runDirectory = options.runDirectory ?? mkdtempSync(path.join(os.tmpdir(), `berth-chaos-${options.seed}-`));
  const network = setupNetwork(prefix, nodes);
  console.log(`network namespaces: ${network.hub}, ${network.nodeNamespaces.join(', ')} (10.213.0.0/24 inside them only)`);
  let code = 1;
  try {
    const self = fileURLToPath(import.meta.url);
    const args = [self, ...process.argv.slice(2), '--inner-netns', prefix, '--run-directory', runDirectory];
    const child = spawn('ip', ['netns', 'exec', network.hub, process.execPath, ...args], { stdio: 'inherit' });
    const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
    const onInt = forward('SIGINT');
    const onTerm = forward('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    code = await new Promise<number>((resolve) => child.on('exit', (exitCode, signal) => resolve(exitCode ?? (signal === null ? 1 : 1))));
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  } finally {
    killLeftovers(runDirectory);
    network.teardown();
    const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').filter((line) => line.startsWith(prefix));
    console.log(left.length === 0 ? 'network namespaces removed' : `WARNING: namespaces left: ${left.join(', ')}`);
    if (options.runDirectory === undefined && options.keep !== true && code === 0) {
      spawnSync('rm', ['-rf', runDirectory]);
    }
  }
  process.exitCode = code;
}

/** Kills processes of this run still alive: pids the inner run recorded whose command line names the run directory. */
function killLeftovers(runDirectory: string): void {
  const file = path.join(runDirectory, 'pids');
  if (!existsSync(file)) return;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const pid = Number(line);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    try {
      const commandLine = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!commandLine.includes(runDirectory)) continue;
      process.kill(pid, 'SIGCONT');
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
