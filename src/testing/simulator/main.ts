// `npm run sim -- --seeds N [--start S] [--steps K] [--trace] [--quiet]`
//
// Runs seeds start .. start+N-1 of the deterministic simulator (simulator.ts), prints a
// progress line every few seeds, a summary, and for each failing seed its anomalies and
// the command that replays it. Exit code 1 when any seed found an anomaly.

import { Command } from 'commander';
import { runSimulation, type SimulationResult } from './simulator.js';

interface CliOptions {
  seeds: string;
  start: string;
  steps: string;
  trace?: boolean;
  quiet?: boolean;
  pageCache: boolean;
}

function positiveInteger(text: string, name: string, allowZero = false): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < (allowZero ? 0 : 1)) {
    process.stderr.write(`sim: --${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got ${JSON.stringify(text)}\n`);
    process.exit(2);
  }
  return value;
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
    .parse(process.argv);
  const options = program.opts<CliOptions>();
  const seeds = positiveInteger(options.seeds, 'seeds');
  const start = positiveInteger(options.start, 'start', true);
  const steps = positiveInteger(options.steps, 'steps');
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
    if (result.anomalies.length > 0) {
      failures.push(result);
      process.stdout.write(`seed ${seed} FAILED (trace ${result.traceHash}):\n`);
      for (const anomaly of result.anomalies.slice(0, 10)) process.stdout.write(`  [${anomaly.kind}] step ${anomaly.step}: ${anomaly.detail}\n`);
      process.stdout.write(`  replay: npm run sim -- --seeds 1 --start ${seed} --steps ${steps}${options.pageCache ? '' : ' --no-page-cache'} --trace\n`);
    } else if (seeds === 1) {
      process.stdout.write(`seed ${seed} ok (trace ${result.traceHash})\n`);
    }
    if (options.quiet !== true && ((index + 1) % progressEvery === 0 || index + 1 === seeds)) {
      const seconds = (performance.now() - startedMs) / 1000;
      process.stdout.write(`[${index + 1}/${seeds}] seeds ${start}..${seed} ${seconds.toFixed(1)} s, last trace ${result.traceHash}, anomalies so far ${totals.anomalies}\n`);
    }
  }
  const seconds = (performance.now() - startedMs) / 1000;
  process.stdout.write(
    `\nsummary: seeds ${seeds} (${start}..${start + seeds - 1}), steps ${steps}, operations ${totals.operations}, `
      + `acknowledged messages ${totals.acknowledged}, deliveries ${totals.deliveries}, crashes ${totals.crashes}, `
      + `process restarts ${totals.restarts}, disk faults injected ${totals.faults} (disk-error answers ${totals.diskErrorAnswers}), `
      + `anomalies ${totals.anomalies} in ${failures.length} seed(s), ${seconds.toFixed(1)} s\n`,
  );
  if (failures.length > 0) {
    const kinds = new Map<string, number>();
    for (const failure of failures) for (const anomaly of failure.anomalies) kinds.set(anomaly.kind, (kinds.get(anomaly.kind) ?? 0) + 1);
    process.stdout.write(`anomaly kinds: ${[...kinds].map(([kind, count]) => `${kind} ${count}`).join(', ')}\n`);
    process.stdout.write(`failing seeds: ${failures.map((failure) => failure.seed).join(' ')}\n`);
    process.exitCode = 1;
  }
}

await main();
