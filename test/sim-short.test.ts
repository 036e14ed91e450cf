// A short run of the deterministic simulator (src/testing/simulator) for CI: determinism
// of one seed, and a bounded number of seeds with every invariant checked. Long runs:
// `npm run sim -- --seeds 2000` (see RELIABILITY.md).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runSimulation, type SimulationResult } from '../src/testing/simulator/simulator.js';

function describeFailures(results: SimulationResult[], flags = ''): string {
  return results
    .filter((result) => result.anomalies.length > 0)
    .map((result) => `seed ${result.seed}: ${result.anomalies.slice(0, 3).map((anomaly) => `[${anomaly.kind}] ${anomaly.detail}`).join('; ')} (replay: npm run sim -- --seeds 1 --start ${result.seed} --steps ${result.steps}${flags} --trace, with --no-page-cache for the seeds 1..40 test)`)
    .join('\n');
}

describe('deterministic simulation (short)', () => {
  test('one seed replays exactly: the same trace hash twice', async () => {
    const first = await runSimulation({ seed: 7, steps: 150 });
    const second = await runSimulation({ seed: 7, steps: 150 });
    assert.equal(first.traceHash, second.traceHash);
    assert.deepEqual(first.diskOperations, second.diskOperations);
    assert.ok(first.operations > 50, `a run does work (${first.operations} operations)`);
    assert.ok(first.acknowledgedMessages > 20, 'messages were acknowledged');
    const other = await runSimulation({ seed: 8, steps: 150 });
    assert.notEqual(other.traceHash, first.traceHash, 'another seed is another run');
  });

  test('seeds 1..40 without page-cache restarts find no anomaly', async () => {
    const results: SimulationResult[] = [];
    for (let seed = 1; seed <= 40; seed++) {
      results.push(await runSimulation({ seed, steps: 150, pageCacheRestarts: false }));
    }
    const crashes = results.reduce((sum, result) => sum + result.crashes, 0);
    const faults = results.reduce((sum, result) => sum + result.faults, 0);
    assert.ok(crashes > 50 && faults > 20, `the run crashed (${crashes}) and faulted (${faults}) often enough to mean something`);
    assert.equal(describeFailures(results), '');
  });

  test('seeds 41..60 with logs preallocating space (as berth serve does) find no anomaly', async () => {
    const results: SimulationResult[] = [];
    for (let seed = 41; seed <= 60; seed++) results.push(await runSimulation({ seed, steps: 150, preallocate: true }));
    const crashes = results.reduce((sum, result) => sum + result.crashes, 0);
    assert.ok(crashes > 20, `the runs crashed often enough to tear writes into preallocated space (${crashes})`);
    assert.equal(describeFailures(results, ' --preallocate'), '');
  });

  test('seed 19: a receive long poll spins while dead-lettering fails on a stopped dead-letter queue', async () => {
    const result = await runSimulation({ seed: 19, steps: 150, pageCacheRestarts: false });
    assert.equal(describeFailures([result]), '');
  });

  // Checker false positives found in the 300-step runs (see the comments in checker.ts):
  // each seed failed before its fix and must stay clean.
  //   182  concurrent receives answered out of order: the newest receipt was lost (lost-acknowledged)
  //   72   a deduplicated FIFO send answered after a disk error (acknowledged-after-disk-failure)
  //   12   two dead-letter copies of one standard message both delivered in the drain (visibility)
  //   2    a deduplicated answer carrying another group than the send (fifo-order)
  //   39   a receive overlapping a purge of the queue (fifo-group-in-flight)
  for (const seed of [182, 72, 12, 2, 39]) {
    test(`seed ${seed} with page-cache restarts (300 steps) finds no anomaly`, async () => {
      const result = await runSimulation({ seed, steps: 300 });
      assert.equal(describeFailures([result]), '');
    });
  }

  test('seed 16 with page-cache restarts: recovery after a process crash that kept unsynced writes', async () => {
    const result = await runSimulation({ seed: 16, steps: 300 });
    assert.equal(describeFailures([result]), '');
  });
});
