// A short run of the deterministic cluster simulator (src/testing/cluster-sim) for CI:
// determinism of one seed, regression seeds, and a bounded number of seeds with every
// invariant checked. Long runs: `npm run sim -- --cluster --seeds 1000` (see RELIABILITY.md).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runClusterSimulation, type ClusterSimulationResult } from '../src/testing/cluster-sim/cluster-simulator.js';

function describeFailures(results: ClusterSimulationResult[], flags = ''): string {
  return results
    .filter((result) => result.anomalies.length > 0)
    .map((result) => `seed ${result.seed}: ${result.anomalies.slice(0, 3).map((anomaly) => `[${anomaly.kind}] ${anomaly.detail}`).join('; ')} (replay: npm run sim -- --cluster${result.topic === undefined ? '' : ' --topics'}${flags} --seeds 1 --start ${result.seed} --steps ${result.steps} --trace)`)
    .join('\n');
}

describe('deterministic cluster simulation (short)', () => {
  test('one seed replays exactly: the same trace hash twice', async () => {
    const first = await runClusterSimulation({ seed: 7, steps: 100 });
    const second = await runClusterSimulation({ seed: 7, steps: 100 });
    assert.equal(first.traceHash, second.traceHash);
    assert.equal(first.commits, second.commits);
    assert.ok(first.operations > 40, `a run does work (${first.operations} operations)`);
    assert.ok(first.acknowledgedMessages > 20, `messages were acknowledged (${first.acknowledgedMessages})`);
    assert.ok(first.commits > 0, 'the primary drivers committed');
    const other = await runClusterSimulation({ seed: 8, steps: 100 });
    assert.notEqual(other.traceHash, first.traceHash, 'another seed is another run');
  });

  // Seed 51 (150 steps): a node paused as primary appended a send on resume (epoch 2, offset
  // 3), was cut back to offset 3 when it rejoined, but its record cache kept the cut
  // payload; when it led again it served that payload at offset 3 in place of the
  // acknowledged message the new primary had written there (lost-acknowledged).
  test('seed 51: a cut tail leaves no cached payload behind', async () => {
    const result = await runClusterSimulation({ seed: 51, steps: 150 });
    assert.equal(describeFailures([result]), '');
  });

  // Seeds 2411, 2504, 2980 (200 steps, found by a 1,000-seed run): a primary paused past its
  // lease appended a receive record on resume, its commit failed, and the entry node retried
  // the receive: the retry answered empty, but the first record survived the failover and
  // held the messages in flight under a receipt no client had, so the client's delete with
  // its older receipt succeeded without deleting and the messages came back. A receive now
  // retries only refusals; the client hears ServiceUnavailable (an unknown outcome). Seed
  // 3283: the same through a queue of two partitions, where one partition's failed receive
  // was swallowed and the other's messages answered; now the whole receive fails.
  test('seeds 2411, 2504, 2980, 3283: a receive that failed after its record was appended is not hidden behind a retry', async () => {
    const results: ClusterSimulationResult[] = [];
    for (const seed of [2411, 2504, 2980, 3283]) results.push(await runClusterSimulation({ seed, steps: 200 }));
    assert.equal(describeFailures(results), '');
  });

  // Seed 4095: a node cut off from etcd took a send for a queue created after the cut; its
  // view lacked the queue, the refresh timed out, and the client got the raw "etcd request
  // timed out" (an internal error). Now ServiceUnavailable: retry, another node may serve.
  test('seed 4095: etcd unreachable from the entry node is ServiceUnavailable, not an internal error', async () => {
    const result = await runClusterSimulation({ seed: 4095, steps: 200 });
    assert.equal(describeFailures([result]), '');
  });

  // With a topic: a primary that brought its partition in line with the subscriptions of the
  // view it happened to hold (not one read afresh) ended a subscription that view predated
  // in 15 of 100 seeds (150 steps): acknowledged publishes never reached it. Caught here
  // when the fresh read is removed; seeds 1..300 (200 steps) pass with it.
  test('with a topic: seeds 1..10 deliver every acknowledged publish to every subscription', async () => {
    const results: ClusterSimulationResult[] = [];
    for (let seed = 1; seed <= 10; seed++) results.push(await runClusterSimulation({ seed, steps: 150, topics: true }));
    const held = results.reduce((sum, result) => sum + result.topic!.acknowledged - result.topic!.excused, 0);
    assert.ok(held > 100, `enough acknowledged publishes were held to their guarantee (${held})`);
    assert.ok(results.every((result) => result.topic!.subscriptions === 3), 'the late subscription was made in every run');
    assert.equal(describeFailures(results), '');
  });

  // A stalled disk (every fsync hangs, the node runs on): past the lease, the node must
  // step aside (give its lease up so the others take over) and come back with its disk.
  test('seeds 21..28 with stalled disks: stalled nodes step aside, and nothing acknowledged is lost', async () => {
    const results: ClusterSimulationResult[] = [];
    for (let seed = 21; seed <= 28; seed++) results.push(await runClusterSimulation({ seed, steps: 150, diskStalls: true }));
    const stalls = results.reduce((sum, result) => sum + (result.faults['stall'] ?? 0), 0);
    const stepAsides = results.reduce((sum, result) => sum + result.stepAsides, 0);
    assert.ok(stalls >= 4, `enough disks stalled (${stalls})`);
    assert.ok(stepAsides >= 2, `stalled nodes stepped aside (${stepAsides} times in ${stalls} stalls)`);
    assert.equal(describeFailures(results, ' --disk-stalls'), '');
  });

  test('seeds 11..18 with logs preallocating space (as berth serve does) find no anomaly', async () => {
    const results: ClusterSimulationResult[] = [];
    for (let seed = 11; seed <= 18; seed++) results.push(await runClusterSimulation({ seed, steps: 120, preallocate: true }));
    const acknowledged = results.reduce((sum, result) => sum + result.acknowledgedMessages - result.excusedMessages, 0);
    assert.ok(acknowledged > 150, `enough acknowledged messages were held to their guarantee (${acknowledged})`);
    assert.equal(describeFailures(results, ' --preallocate'), '');
  });

  test('seeds 1..10 find no anomaly', async () => {
    const results: ClusterSimulationResult[] = [];
    for (let seed = 1; seed <= 10; seed++) results.push(await runClusterSimulation({ seed, steps: 120 }));
    const faults = results.reduce((sum, result) => sum + Object.values(result.faults).reduce((a, b) => a + b, 0), 0);
    const acknowledged = results.reduce((sum, result) => sum + result.acknowledgedMessages - result.excusedMessages, 0);
    assert.ok(faults > 30, `the runs faulted often enough to mean something (${faults})`);
    assert.ok(acknowledged > 200, `enough acknowledged messages were held to their guarantee (${acknowledged})`);
    assert.equal(describeFailures(results), '');
  });
});
