// `npm run sim -- --seeds N [--start S] [--steps K] [--trace] [--quiet]`
//
// Runs seeds start .. start+N-1 of the deterministic simulator (simulator.ts), prints a
// progress line every few seeds, a summary, and for each failing seed its anomalies and
// the command that replays it. Exit code 1 when any seed found an anomaly.
//
// `npm run sim -- --cluster --seeds N [--start S] [--steps K] [--trace] [--quiet]` runs the
// cluster simulator instead (src/testing/cluster-sim/cluster-simulator.ts): 3-4 real
// ClusterNodes over simulated disks, clocks, network and etcd.

import { Command } from 'commander';
import { runSimulation, type SimulationResult } from './simulator.js';
import { runClusterSimulation, type ClusterSimulationResult } from '../cluster-sim/cluster-simulator.js';

interface CliOptions {
  seeds: string;
  start: string;
  steps: string;
  trace?: boolean;
  quiet?: boolean;
  pageCache: boolean;
  cluster?: boolean;
  topics?: boolean;
  preallocate?: boolean;
  diskStalls?: boolean;
}

function positiveInteger(text: string, name: string, allowZero = false): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < (allowZero ? 0 : 1)) {
    process.stderr.write(`sim: --${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got ${JSON.stringify(text)}\n`);
    process.exit(2);
  }
  return value;
}

interface SeedOutcome {
  seed: number;
  traceHash: string;
  anomalies: ReadonlyArray<{ kind: string; step: number; detail: string }>;
}

/** Prints a failing seed with its anomalies and replay command (or a single seed's success); true when it failed. */
function reportSeed(result: SeedOutcome, seeds: number, replay: string): boolean {
  if (result.anomalies.length > 0) {
    process.stdout.write(`seed ${result.seed} FAILED (trace ${result.traceHash}):\n`);
    for (const anomaly of result.anomalies.slice(0, 10)) process.stdout.write(`  [${anomaly.kind}] step ${anomaly.step}: ${anomaly.detail}\n`);
    process.stdout.write(`  replay: ${replay}\n`);
    return true;
  }
  if (seeds === 1) process.stdout.write(`seed ${result.seed} ok (trace ${result.traceHash})\n`);
  return false;
}

/** The anomaly kinds and failing seeds of a run; exit code 1 when any seed failed. */
function reportFailures(failures: readonly SeedOutcome[]): void {
  if (failures.length === 0) return;
  const kinds = new Map<string, number>();
  for (const failure of failures) for (const anomaly of failure.anomalies) kinds.set(anomaly.kind, (kinds.get(anomaly.kind) ?? 0) + 1);
  process.stdout.write(`anomaly kinds: ${[...kinds].map(([kind, count]) => `${kind} ${count}`).join(', ')}\n`);
  process.stdout.write(`failing seeds: ${failures.map((failure) => failure.seed).join(' ')}\n`);
  process.exitCode = 1;
}

function reportProgress(done: number, seeds: number, start: number, last: SeedOutcome, startedMs: number, anomalies: number): void {
  const seconds = (performance.now() - startedMs) / 1000;
  process.stdout.write(`[${done}/${seeds}] seeds ${start}..${last.seed} ${seconds.toFixed(1)} s, last trace ${last.traceHash}, anomalies so far ${anomalies}\n`);
}

async function main(): Promise<void> {
  const program = new Command()
    .name('sim')
    .description('Berth deterministic simulation: the real broker over a simulated disk and clock, with crashes and disk faults')
    .option('--seeds <n>', 'how many seeds to run', '100')
    .option('--start <s>', 'first seed', '1')
    .option('--steps <k>', 'workload steps per seed before the final drain', '300')
    .option('--trace', 'print every trace line (use with one seed)')
    .option('--quiet', 'no progress lines')
    .option('--no-page-cache', 'every restart is a machine crash (never a process restart that keeps unsynced writes)')
    .option('--cluster', 'simulate a 3-4 node cluster (real ClusterNodes, simulated network and etcd) instead of one broker')
    .option('--topics', 'with --cluster: also a topic with subscriptions, every acknowledged publish checked in each')
    .option('--disk-stalls', 'with --cluster: also stalled disks (every fsync of a node hangs past the lease while the node runs on; it must step aside)')
    .option('--preallocate', 'logs write zeros ahead of their records, as berth serve does (crashes then tear writes into that space)')
    .parse(process.argv);
  const options = program.opts<CliOptions>();
  const seeds = positiveInteger(options.seeds, 'seeds');
  const start = positiveInteger(options.start, 'start', true);
  const steps = positiveInteger(options.steps, 'steps');
  if (options.cluster === true) {
    await runCluster(options, seeds, start, steps);
    return;
  }
  const startedMs = performance.now();
  const totals = { operations: 0, crashes: 0, restarts: 0, faults: 0, diskErrorAnswers: 0, acknowledged: 0, deliveries: 0, anomalies: 0 };
  const failures: SimulationResult[] = [];
  const progressEvery = Math.max(1, Math.min(100, Math.ceil(seeds / 20)));
  for (let index = 0; index < seeds; index++) {
    const seed = start + index;
    const result = await runSimulation({
      seed,
      steps,
      pageCacheRestarts: options.pageCache,
      preallocate: options.preallocate === true,
      onTrace: options.trace === true ? (line) => process.stdout.write(`${line}\n`) : undefined,
    });
    totals.operations += result.operations;
    totals.crashes += result.crashes;
    totals.restarts += result.restarts;
    totals.faults += result.faults;
    totals.diskErrorAnswers += result.diskErrorAnswers;
    totals.acknowledged += result.acknowledgedMessages;
    totals.deliveries += result.deliveries;
    totals.anomalies += result.anomalies.length;
    if (reportSeed(result, seeds, `npm run sim -- --seeds 1 --start ${seed} --steps ${steps}${options.pageCache ? '' : ' --no-page-cache'}${options.preallocate === true ? ' --preallocate' : ''} --trace`)) failures.push(result);
    if (options.quiet !== true && ((index + 1) % progressEvery === 0 || index + 1 === seeds)) reportProgress(index + 1, seeds, start, result, startedMs, totals.anomalies);
  }
  const seconds = (performance.now() - startedMs) / 1000;
  process.stdout.write(
    `\nsummary: seeds ${seeds} (${start}..${start + seeds - 1}), steps ${steps}, operations ${totals.operations}, `
      + `acknowledged messages ${totals.acknowledged}, deliveries ${totals.deliveries}, crashes ${totals.crashes}, `
      + `process restarts ${totals.restarts}, disk faults injected ${totals.faults} (disk-error answers ${totals.diskErrorAnswers}), `
      + `anomalies ${totals.anomalies} in ${failures.length} seed(s), ${seconds.toFixed(1)} s\n`,
  );
  reportFailures(failures);
}

async function runCluster(options: CliOptions, seeds: number, start: number, steps: number): Promise<void> {
  const startedMs = performance.now();
  const totals = { operations: 0, acknowledged: 0, excused: 0, deliveries: 0, commits: 0, stepAsides: 0, connectionsBroken: 0, simulatedMs: 0, anomalies: 0 };
  const faults = new Map<string, number>();
  const limitations = new Map<string, number>();
  const failures: ClusterSimulationResult[] = [];
  const progressEvery = Math.max(1, Math.min(100, Math.ceil(seeds / 20)));
  for (let index = 0; index < seeds; index++) {
    const seed = start + index;
    const result = await runClusterSimulation({ seed, steps, topics: options.topics === true, preallocate: options.preallocate === true, diskStalls: options.diskStalls === true, onTrace: options.trace === true ? (line) => process.stdout.write(`${line}\n`) : undefined });
    totals.operations += result.operations;
    totals.acknowledged += result.acknowledgedMessages;
    totals.excused += result.excusedMessages;
    totals.deliveries += result.deliveries;
    totals.commits += result.commits;
    totals.stepAsides += result.stepAsides;
    totals.connectionsBroken += result.connectionsBroken;
    totals.simulatedMs += result.simulatedMs;
    totals.anomalies += result.anomalies.length;
    for (const [kind, count] of Object.entries(result.faults)) faults.set(kind, (faults.get(kind) ?? 0) + count);
    for (const limitation of result.limitations) limitations.set(limitation, (limitations.get(limitation) ?? 0) + 1);
    if (reportSeed(result, seeds, `npm run sim -- --cluster${options.topics === true ? ' --topics' : ''}${options.preallocate === true ? ' --preallocate' : ''}${options.diskStalls === true ? ' --disk-stalls' : ''} --seeds 1 --start ${seed} --steps ${steps} --trace`)) failures.push(result);
    if (options.quiet !== true && ((index + 1) % progressEvery === 0 || index + 1 === seeds)) reportProgress(index + 1, seeds, start, result, startedMs, totals.anomalies);
  }
  const seconds = (performance.now() - startedMs) / 1000;
  process.stdout.write(
    `\nsummary (cluster): seeds ${seeds} (${start}..${start + seeds - 1}), steps ${steps}, operations ${totals.operations}, `
      + `acknowledged messages ${totals.acknowledged} (${totals.excused} excused by concurrent faults), deliveries ${totals.deliveries}, `
      + `commits ${totals.commits}, ${options.diskStalls === true ? `step-asides ${totals.stepAsides}, ` : ''}faults ${[...faults].map(([kind, count]) => `${kind} ${count}`).join(', ') || 'none'}, `
      + `connections broken ${totals.connectionsBroken}, simulated ${(totals.simulatedMs / 1000).toFixed(0)} s, `
      + `anomalies ${totals.anomalies} in ${failures.length} seed(s), ${seconds.toFixed(1)} s\n`,
  );
  if (limitations.size > 0) process.stdout.write(`known limitations met: ${[...limitations].map(([kind, count]) => `${kind} in ${count} seed(s)`).join(', ')}\n`);
  reportFailures(failures);
}

await main();
