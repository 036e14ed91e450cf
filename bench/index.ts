// `npm run bench`: Berth against its peers, end to end, on this machine.
//
// For each selected system in turn: start it on loopback in a fresh temp directory, run
// the selected workloads (W1 throughput, W2 latency at a fixed rate, W3 backlog, W4 FIFO),
// stop it, remove the directory. With W5 selected, the 3-node cluster rows follow the
// single-node ones and each runs W1 and W2 at the cluster rate (--cluster-rate). Then print
// the tables (single node, and "Cluster (W5)"), write bench/results/latest.json, latest.md
// and latest.svg, and rewrite the "## Peers and end-to-end" section of BENCHMARKS.md. See
// report.ts methodMarkdown() for the method.

import { Command, InvalidArgumentError } from 'commander';
import cliProgress from 'cli-progress';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, freemem, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pc from 'picocolors';
import { drivers } from './drivers/registry.js';
import type { BenchWorkloadId, Driver, RunningSystem, WorkloadId } from './drivers/types.js';
import { commandExists, removeOnExit, runCommand } from './processes.js';
import { measureRawDurableWrites } from './raw-disk.js';
import { chartSvg, clusterRatioLines, clusterTerminalTable, latestMarkdown, ratioLines, rawDiskLines, terminalTable, updateBenchmarksDocument, type BenchRun, type SystemRun } from './report.js';
import { allWorkloads, selectSystems, workloadsOf } from './selection.js';
import { medianRun } from './repeats.js';
import { runWorkload, type WorkloadResult, type WorkloadSettings } from './workloads.js';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function positiveInteger(value: string): number {
  const parsed = Number(value.replace(/[_,]/g, ''));
  if (!Number.isInteger(parsed) || parsed <= 0) throw new InvalidArgumentError('expected a positive integer');
  return parsed;
}

function list(value: string): string[] {
  return value.split(',').map((item) => item.trim()).filter((item) => item.length > 0);
}

interface Options {
  systems?: string[];
  workloads?: string[];
  messages?: number;
  backlog?: number;
  rate: number;
  clusterRate: number;
  duration?: number;
  fifoMessages?: number;
  repeats?: number;
  quick: boolean;
  reportOnly: boolean;
  updateDoc: boolean;
  setup: boolean;
  out: string;
}

const program = new Command()
  .name('bench')
  .description('Berth vs Redis Streams, BullMQ, RabbitMQ and NATS JetStream on loopback')
  .option('--systems <list>', `comma-separated: ${drivers.map((driver) => driver.id).join(',')}`, list)
  .option('--workloads <list>', 'comma-separated: W1,W2,W3,W4,W5 (W5: W1 and W2 on the 3-node cluster rows)', list)
  .option('--messages <n>', 'W1 messages (default 200,000; --quick 20,000)', positiveInteger)
  .option('--backlog <n>', 'W3 backlog (default 5,000,000; --quick 200,000)', positiveInteger)
  .option('--rate <n>', 'W2 offered rate in msg/s', positiveInteger, 5000)
  .option('--cluster-rate <n>', 'W5 latency run: offered rate in msg/s', positiveInteger, 1000)
  .option('--duration <s>', 'W2 seconds (default 20; --quick 5)', positiveInteger)
  .option('--fifo-messages <n>', 'W4 messages (default 50,000; --quick 10,000)', positiveInteger)
  .option('--repeats <n>', 'runs of W1 and W2 per system, the median reported (default 3; --quick 1)', positiveInteger)
  .option('--quick', 'short run', false)
  .option('--no-update-doc', 'do not rewrite the section in BENCHMARKS.md')
  .option('--report-only', 'rewrite latest.md, latest.svg and BENCHMARKS.md from latest.json without running', false)
  .option('--no-setup', 'do not run bench/setup.sh when a peer binary is missing')
  .option('--out <dir>', 'results directory', join(projectRoot, 'bench', 'results'));

async function versionOf(command: string, args: string[]): Promise<string> {
  const result = await runCommand('sh', ['-c', `${command} ${args.join(' ')} 2>&1 | head -1`]);
  return result.output.trim() || 'unknown';
}

async function machineVersions(): Promise<Record<string, string>> {
  const dpkg = async (name: string): Promise<string> => (await versionOf('dpkg-query', ['-W', "-f='${Version}'", name])).replace(/'/g, '');
  return {
    'redis-server': await dpkg('redis-server'),
    'rabbitmq-server': await dpkg('rabbitmq-server'),
    'nats-server': await dpkg('nats-server'),
    erlang: await dpkg('erlang-base'),
    etcd: await dpkg('etcd-server'),
  };
}

async function ensureBinaries(selected: Driver[], setupAllowed: boolean): Promise<void> {
  const missing: string[] = [];
  for (const driver of selected) for (const binary of driver.binaries) if (!(await commandExists(binary))) missing.push(binary);
  if (missing.length === 0 || !setupAllowed) return;
  console.log(pc.yellow(`missing ${[...new Set(missing)].join(', ')}: running bench/setup.sh`));
  const result = await runCommand('bash', [join(projectRoot, 'bench', 'setup.sh')], process.env, 900_000);
  console.log(result.output.trim().split('\n').slice(-3).join('\n'));
}

interface RunOptions {
  rate: number;
  clusterRate: number;
  messages: number;
  backlog: number;
  duration: number;
  fifoMessages: number;
}

function settingsFor(workload: WorkloadId, driver: Driver, options: RunOptions): WorkloadSettings {
  const cap = (count: number): number => Math.min(count, driver.messagesMax ?? Number.POSITIVE_INFINITY);
  const common = { producers: 4, consumers: 4, consumerLanes: 4, batchSize: 10, stallMs: 60_000, fillThenDrain: false };
  switch (workload) {
    case 'W1':
      return { ...common, id: 'W1', messages: cap(options.messages), inFlightPerProducer: 8 };
    case 'W2':
      return { ...common, id: 'W2', messages: cap(options.rate * options.duration), ratePerSecond: options.rate, inFlightPerProducer: 64 };
    case 'W3':
      return { ...common, id: 'W3', messages: cap(options.backlog), inFlightPerProducer: 8, fillThenDrain: true };
    case 'W4':
      return { ...common, id: 'W4', messages: cap(options.fifoMessages), inFlightPerProducer: 8, groups: 1000 };
  }
}

function formatResultLine(result: WorkloadResult): string {
  const parts = [`${result.workload} ${result.status}`];
  if (result.status === 'ok' || result.status === 'FAILED') {
    if (result.latency !== undefined) parts.push(`p50 ${result.latency.p50Ms.toFixed(2)} ms p99 ${result.latency.p99Ms.toFixed(2)} ms p99.9 ${result.latency.p999Ms.toFixed(2)} ms max ${result.latency.maxMs.toFixed(1)} ms`);
    else if (result.messagesPerSecond !== undefined) parts.push(`${Math.round(result.messagesPerSecond)} msg/s`);
    if (result.resources !== undefined) parts.push(`client CPU ${result.resources.clientCpuPercent.toFixed(0)}%, server CPU ${result.resources.serverCpuPercent.toFixed(0)}%, RSS peak ${(result.resources.rssPeakBytes / 2 ** 20).toFixed(0)} MiB`);
    if ((result.duplicates ?? 0) > 0) parts.push(`${result.duplicates} duplicates`);
  }
  if (result.note !== undefined) parts.push(result.note);
  if (result.firstError !== undefined) parts.push(`first error: ${result.firstError.split('\n')[0]}`);
  return parts.join(', ');
}

function writeOutputs(run: BenchRun, out: string, updateDoc: boolean): void {
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'latest.json'), `${JSON.stringify(run, null, 2)}\n`);
  writeFileSync(join(out, 'latest.md'), `# Latest end-to-end bench run\n\n${latestMarkdown(run)}`);
  writeFileSync(join(out, 'latest.svg'), `${chartSvg(run)}\n`);
  if (updateDoc) updateBenchmarksDocument(join(projectRoot, 'BENCHMARKS.md'), run);
}

function printTables(run: BenchRun): void {
  if (run.systems.some((system) => system.cluster === undefined)) {
    console.log(terminalTable(run));
    for (const line of ratioLines(run)) console.log(line);
  }
  if (run.systems.some((system) => system.cluster !== undefined)) {
    console.log(pc.bold('Cluster (W5)'));
    console.log(clusterTerminalTable(run));
    for (const line of clusterRatioLines(run)) console.log(line);
  }
}

async function main(): Promise<void> {
  program.parse(process.argv);
  const raw = program.opts<Options>();
  if (raw.reportOnly) {
    const run = JSON.parse(readFileSync(join(raw.out, 'latest.json'), 'utf8')) as BenchRun;
    printTables(run);
    writeOutputs(run, raw.out, raw.updateDoc);
    return;
  }
  const quick = raw.quick;
  const options: RunOptions = {
    rate: raw.rate,
    clusterRate: raw.clusterRate,
    messages: raw.messages ?? (quick ? 20_000 : 200_000),
    backlog: raw.backlog ?? (quick ? 200_000 : 5_000_000),
    duration: raw.duration ?? (quick ? 5 : 20),
    fifoMessages: raw.fifoMessages ?? (quick ? 10_000 : 50_000),
  };
  const repeats = raw.repeats ?? (quick ? 1 : 3);
  const workloads = (raw.workloads ?? allWorkloads).map((workload) => {
    const upper = workload.toUpperCase() as BenchWorkloadId;
    if (!allWorkloads.includes(upper)) throw new InvalidArgumentError(`unknown workload ${workload}`);
    return upper;
  });
  const selected = selectSystems(drivers, raw.systems, workloads);

  await ensureBinaries(selected, raw.setup);
  const startedMs = Date.now();
  const root = mkdtempSync(join(tmpdir(), 'berth-bench-'));
  removeOnExit(root);
  const cpuInfo = cpus();
  const run: BenchRun = {
    startedAt: new Date(startedMs).toISOString(),
    durationMs: 0,
    machine: {
      cpus: cpuInfo.length,
      cpuModel: cpuInfo[0]?.model.trim() ?? 'unknown',
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      kernel: release(),
      node: process.version,
      versions: await machineVersions(),
      loadAverageStart: loadavg(),
      loadAverageEnd: [],
    },
    options: { systems: selected.map((driver) => driver.id), workloads, messages: options.messages, backlog: options.backlog, ratePerSecond: options.rate, clusterRatePerSecond: options.clusterRate, latencySeconds: options.duration, fifoMessages: options.fifoMessages, fifoGroups: 1000, quick, repeats },
    rawDisk: [],
    systems: [],
  };
  console.log(pc.bold(`berth bench: ${selected.map((driver) => driver.id).join(', ')} x ${workloads.join(', ')} in ${root} (${(freemem() / 2 ** 30).toFixed(0)} GiB free)`));

  try {
    const rawDuration = quick ? 2000 : 5000;
    for (const recordsPerBatch of [10, 100]) run.rawDisk.push(measureRawDurableWrites(root, recordsPerBatch, rawDuration));
    for (const line of rawDiskLines(run)) console.log(`raw disk: ${line}`);

    const bars = new cliProgress.MultiBar(
      {
        format: '{system} {workload} [{bar}] {percentage}% {value}/{total} {phase} {rate}',
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        noTTYOutput: !process.stdout.isTTY,
        notTTYSchedule: 10_000,
        barsize: 24,
      },
      cliProgress.Presets.shades_classic,
    );

    for (const driver of selected) {
      const systemRun: SystemRun = { id: driver.id, label: driver.label, durabilityNote: driver.durabilityNote, fsyncPerAck: driver.fsyncPerAck, isBerth: driver.isBerth, status: 'ok', workloads: {} };
      if (driver.cluster !== undefined) systemRun.cluster = driver.cluster;
      run.systems.push(systemRun);
      const directory = mkdtempSync(join(root, `${driver.id}-`));
      let system: RunningSystem | undefined;
      try {
        const startBegan = Date.now();
        system = await driver.start({ directory, log: (line) => bars.log(`${line}\n`) });
        systemRun.startMs = Date.now() - startBegan;
        for (const workload of workloadsOf(driver, workloads)) {
          const skipReason = driver.skipWorkloads?.[workload];
          if (skipReason !== undefined) {
            systemRun.workloads[workload] = { workload, status: 'skipped', note: skipReason, messages: 0 };
            continue;
          }
          if (workload === 'W4' && driver.fifo.kind === 'none') {
            systemRun.workloads[workload] = { workload, status: 'n/a', note: driver.fifo.note.replace(/^n\/a: /, ''), messages: 0 };
            continue;
          }
          const settings = settingsFor(workload, driver, driver.cluster === undefined ? options : { ...options, rate: options.clusterRate });
          const runs: WorkloadResult[] = [];
          const times = workload === 'W1' || workload === 'W2' ? repeats : 1;
          for (let attempt = 1; attempt <= times; attempt++) {
            const label = times === 1 ? workload : `${workload} ${attempt}/${times}`;
            const bar = bars.create(settings.messages, 0, { system: driver.id.padEnd(9), workload: label, phase: 'starting', rate: '' });
            const began = Date.now();
            const attemptResult = await runWorkload(driver, system, settings, (progress) => {
              const seconds = (Date.now() - began) / 1000;
              bar.setTotal(progress.total);
              bar.update(progress.done, { phase: progress.phase.padEnd(10), rate: seconds > 0 ? `${Math.round(progress.done / seconds)}/s` : '' });
            });
            bar.update({ phase: attemptResult.status.padEnd(10) });
            bar.stop();
            // The result line below replaces the finished bar (a kept bar is redrawn forever).
            bars.remove(bar);
            bars.log(`${driver.id} ${times === 1 ? '' : `(${attempt}/${times}) `}${formatResultLine(attemptResult)}\n`);
            runs.push(attemptResult);
            // A failed run is what gets reported; running again would not change that.
            if (attemptResult.status !== 'ok') break;
          }
          const result = medianRun(runs);
          if (workload === 'W4' && driver.fifo.kind === 'single-queue-order') result.note = [driver.fifo.note, result.note].filter(Boolean).join('; ');
          systemRun.workloads[workload] = result;
          if (result.status === 'FAILED' || result.status === 'error') systemRun.status = 'FAILED';
        }
      } catch (error) {
        systemRun.status = 'error';
        systemRun.error = error instanceof Error ? error.message : String(error);
        bars.log(pc.red(`${driver.id}: ${systemRun.error.split('\n').slice(0, 6).join('\n')}\n`));
      } finally {
        await system?.stop().catch((error: unknown) => bars.log(pc.red(`${driver.id}: stop failed: ${String(error)}\n`)));
        rmSync(directory, { recursive: true, force: true });
      }
    }
    // stop() drops lines logged since the last redraw (in a pipe, the last result lines): draw once more.
    bars.update();
    bars.stop();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  run.durationMs = Date.now() - startedMs;
  run.machine.loadAverageEnd = loadavg();

  printTables(run);
  writeOutputs(run, raw.out, raw.updateDoc);
  console.log(`wrote ${join(raw.out, 'latest.{json,md,svg}')}${raw.updateDoc ? ' and BENCHMARKS.md' : ''} in ${(run.durationMs / 60_000).toFixed(1)} min`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
