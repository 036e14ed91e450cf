// Unit tests of the bench's pure pieces: the message codec, the W4 group layout, the
// push-to-pull buffer, the BENCHMARKS.md section rewrite (which must leave other
// sections, such as "## Storage", untouched), and for W5 the system selection, the
// spread of client connections over cluster nodes and the "Cluster (W5)" report.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeliveryBuffer } from './drivers/buffer.js';
import { nodeEndpointFor, nodeEndpointsExtra } from './drivers/cluster.js';
import type { Driver } from './drivers/types.js';
import { groupOf } from './load-protocol.js';
import { decodeMessage, encodeMessage, messageBytes } from './message.js';
import { chartSvg, clusterMarkdownTable, clusterRatioLines, latestMarkdown, markdownTable, sectionTitle, singleNodeShare, updateBenchmarksDocument, w1Cell, w2Cell, type BenchRun, type SystemRun } from './report.js';
import { medianRun, spreadText } from './repeats.js';
import { selectSystems, workloadsOf } from './selection.js';
import type { WorkloadResult } from './workloads.js';

describe('message codec', () => {
  test('a message is 1 KiB and carries its fields', () => {
    const body = encodeMessage({ id: 123456, group: 999, sequence: 42, sendTimeUs: 1_763_000_000_123_456 });
    assert.equal(Buffer.byteLength(body), messageBytes);
    assert.deepEqual(decodeMessage(body), { id: 123456, group: 999, sequence: 42, sendTimeUs: 1_763_000_000_123_456 });
  });

  test('a foreign body is refused', () => {
    assert.throws(() => decodeMessage('hello world'));
  });
});

describe('W4 group layout', () => {
  test('each producer owns its groups and numbers each group 0, 1, 2, ...', () => {
    const groups = { total: 1000, producers: 4 };
    const owner = new Map<number, number>();
    const nextSequence = new Map<number, number>();
    for (let producer = 0; producer < 4; producer++) {
      for (let local = 0; local < 1000; local++) {
        const { group, sequence } = groupOf(producer, local, groups);
        assert.ok(group >= 0 && group < 1000);
        assert.equal(owner.get(group) ?? producer, producer, `group ${group} shared by two producers`);
        owner.set(group, producer);
        assert.equal(sequence, nextSequence.get(group) ?? 0);
        nextSequence.set(group, sequence + 1);
      }
    }
    assert.equal(owner.size, 1000);
  });
});

describe('DeliveryBuffer', () => {
  test('take returns what was pushed, in order, at most max', async () => {
    const buffer = new DeliveryBuffer<number>();
    for (let value = 0; value < 15; value++) buffer.push(value);
    assert.deepEqual(await buffer.take(10, 1000), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(await buffer.take(10, 1000), [10, 11, 12, 13, 14]);
  });

  test('a waiting take wakes on push', async () => {
    const buffer = new DeliveryBuffer<string>();
    const taken = buffer.take(10, 60_000);
    buffer.push('a');
    assert.deepEqual(await taken, ['a']);
  });
});

function sampleRun(): BenchRun {
  return {
    startedAt: '2026-01-01T00:00:00.000Z',
    durationMs: 60_000,
    machine: { cpus: 2, cpuModel: 'test', memoryGiB: 24, kernel: 'k', node: 'v20', versions: {}, loadAverageStart: [1, 1, 1], loadAverageEnd: [1, 1, 1] },
    options: { systems: ['berth'], workloads: ['W1'], messages: 100, backlog: 100, ratePerSecond: 5000, latencySeconds: 5, fifoMessages: 100, fifoGroups: 1000, quick: true },
    rawDisk: [],
    systems: [
      {
        id: 'berth',
        label: 'Berth SQS',
        durabilityNote: 'fsync',
        fsyncPerAck: true,
        isBerth: true,
        status: 'FAILED',
        workloads: { W1: { workload: 'W1', status: 'FAILED', messages: 100, messagesPerSecond: 5000, missing: 3, note: '3 missing' } },
      },
    ],
  };
}

describe('report', () => {
  test('a run with missing messages shows FAILED, never its figure', () => {
    const table = markdownTable(sampleRun());
    assert.match(table, /FAILED \(3 missing\)/);
    assert.doesNotMatch(table, /5,000/);
  });

  test('the BENCHMARKS.md rewrite replaces only its own section', () => {
    const directory = mkdtempSync(join(tmpdir(), 'bench-test-'));
    try {
      const path = join(directory, 'BENCHMARKS.md');
      writeFileSync(path, `# Benchmarks\n\n## Storage\n\nstorage text\n\n${sectionTitle}\n\nold peers text\n\n## Later\n\nlater text\n`);
      updateBenchmarksDocument(path, sampleRun());
      const first = readFileSync(path, 'utf8');
      assert.match(first, /## Storage\n\nstorage text\n/);
      assert.match(first, /## Later\n\nlater text\n/);
      assert.doesNotMatch(first, /old peers text/);
      assert.equal(first.split(sectionTitle).length, 2);
      updateBenchmarksDocument(path, sampleRun());
      assert.equal(readFileSync(path, 'utf8'), first, 'a second rewrite with the same run changes nothing');
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  test('the section is appended when absent', () => {
    const directory = mkdtempSync(join(tmpdir(), 'bench-test-'));
    try {
      const path = join(directory, 'BENCHMARKS.md');
      writeFileSync(path, '# Benchmarks\n\n## Storage\n\nstorage text\n');
      updateBenchmarksDocument(path, sampleRun());
      const text = readFileSync(path, 'utf8');
      assert.ok(text.indexOf('## Storage') < text.indexOf(sectionTitle));
      assert.match(text, /storage text/);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

function fakeDriver(id: string, cluster: boolean): Driver {
  const unused = (): never => {
    throw new Error('not started in unit tests');
  };
  return {
    id,
    label: id,
    durabilityNote: 'test',
    fsyncPerAck: true,
    isBerth: id.startsWith('berth'),
    fifo: { kind: 'none', note: 'n/a' },
    binaries: [],
    ...(cluster ? { cluster: { nodes: 3, replicas: 3, singleNodeId: id.replace('-cluster', '') } } : {}),
    start: unused,
    producer: unused,
    consumer: unused,
  };
}

describe('repeated runs', () => {
  const w1 = (messagesPerSecond: number, status: WorkloadResult['status'] = 'ok'): WorkloadResult => ({ workload: 'W1', status, messages: 1000, messagesPerSecond });
  const w2 = (p99Ms: number): WorkloadResult => ({ workload: 'W2', status: 'ok', messages: 1000, messagesPerSecond: 5000, latency: { p50Ms: 1, p99Ms, p999Ms: p99Ms * 2, maxMs: p99Ms * 3 } });

  test('W1 reports the median run by throughput, with every run\'s figure in the order run', () => {
    const result = medianRun([w1(21_000), w1(17_000), w1(19_000)]);
    assert.equal(result.messagesPerSecond, 19_000);
    assert.deepEqual(result.repeats, { metric: 'msg/s', values: [21_000, 17_000, 19_000] });
  });

  test('W2 reports the median run by p99, and the cell shows the spread', () => {
    const result = medianRun([w2(80), w2(30), w2(45)]);
    assert.equal(result.latency?.p99Ms, 45);
    assert.equal(result.latency?.maxMs, 135, 'the reported figures all come from the median run');
    const system: SystemRun = { id: 'berth-native', label: 'Berth native', durabilityNote: 'fsync', fsyncPerAck: true, isBerth: true, status: 'ok', workloads: { W2: result } };
    assert.equal(w2Cell(system), '1.00 / 45.0 / 90.0 / 135 (p99 30.0-80.0, median of 3)');
    assert.equal(w1Cell({ ...system, workloads: { W1: medianRun([w1(2_000), w1(1_000)]) } }), '2,000 (1,000-2,000, median of 2)');
  });

  test('a failed run is reported, never averaged away, and a single run has no spread', () => {
    const failed = w1(0, 'FAILED');
    assert.equal(medianRun([w1(20_000), failed, w1(19_000)]), failed);
    const single = medianRun([w1(20_000)]);
    assert.equal(single.repeats, undefined);
    assert.equal(spreadText(single, String), '');
  });
});

describe('W5 system selection', () => {
  // Registry order, with a cluster row listed before a single-node one to check the sort.
  const known = [fakeDriver('berth', false), fakeDriver('berth-cluster', true), fakeDriver('rabbitmq', false), fakeDriver('rabbitmq-cluster', true)];
  const ids = (selected: Driver[]): string[] => selected.map((driver) => driver.id);

  test('without W5 the cluster rows do not run (today\'s behaviour)', () => {
    assert.deepEqual(ids(selectSystems(known, undefined, ['W1', 'W2', 'W3', 'W4'])), ['berth', 'rabbitmq']);
  });

  test('every workload: single-node rows first, then the cluster rows', () => {
    assert.deepEqual(ids(selectSystems(known, undefined, ['W1', 'W2', 'W3', 'W4', 'W5'])), ['berth', 'rabbitmq', 'berth-cluster', 'rabbitmq-cluster']);
    assert.deepEqual(ids(selectSystems(known, ['rabbitmq-cluster', 'berth'], ['W1', 'W5'])), ['berth', 'rabbitmq-cluster']);
  });

  test('W5 alone runs only the cluster rows, and they run W1 and W2', () => {
    const selected = selectSystems(known, undefined, ['W5']);
    assert.deepEqual(ids(selected), ['berth-cluster', 'rabbitmq-cluster']);
    for (const driver of selected) assert.deepEqual(workloadsOf(driver, ['W5']), ['W1', 'W2']);
    assert.deepEqual(workloadsOf(known[0]!, ['W2', 'W5', 'W1']), ['W1', 'W2']);
  });

  test('a cluster row named without W5, an unknown row, or nothing to run is refused', () => {
    assert.throws(() => selectSystems(known, ['berth-cluster'], ['W1']), /runs only W5/);
    assert.throws(() => selectSystems(known, ['kafka'], ['W5']), /unknown system "kafka"/);
    assert.throws(() => selectSystems(known, ['berth'], ['W5']), /nothing to run/);
  });
});

describe('cluster client spread', () => {
  test('connection k goes to node k mod 3, through a serialisable endpoint', () => {
    const endpoint = JSON.parse(JSON.stringify({ host: '127.0.0.1', port: 1001, extra: nodeEndpointsExtra([1001, 1002, 1003]) })) as { host: string; port: number; extra: Record<string, string> };
    assert.deepEqual(
      [0, 1, 2, 3, 4, 15].map((index) => nodeEndpointFor(endpoint, index).port),
      [1001, 1002, 1003, 1001, 1002, 1001],
    );
    assert.equal(nodeEndpointFor(endpoint, 7).host, '127.0.0.1');
  });

  test('an endpoint without node ports is its own only node', () => {
    assert.equal(nodeEndpointFor({ host: '127.0.0.1', port: 9 }, 5).port, 9);
  });
});

function okThroughput(messagesPerSecond: number): WorkloadResult {
  return { workload: 'W1', status: 'ok', messages: 1000, messagesPerSecond, missing: 0, duplicates: 0 };
}

function okLatency(p99Ms: number): WorkloadResult {
  return { workload: 'W2', status: 'ok', messages: 1000, messagesPerSecond: 1000, offeredPerSecond: 1000, missing: 0, duplicates: 0, latency: { p50Ms: p99Ms / 2, p99Ms, p999Ms: p99Ms, maxMs: p99Ms } };
}

function system(id: string, isBerth: boolean, workloads: SystemRun['workloads'], cluster: boolean, fsyncPerAck = true): SystemRun {
  return {
    id,
    label: `${id} label`,
    durabilityNote: 'note',
    fsyncPerAck,
    isBerth,
    status: 'ok',
    workloads,
    ...(cluster ? { cluster: { nodes: 3, replicas: 3, singleNodeId: id.replace('-cluster', '') } } : {}),
  };
}

function clusterRun(berthCluster: SystemRun['workloads']): BenchRun {
  return {
    ...sampleRun(),
    options: { ...sampleRun().options, workloads: ['W1', 'W5'], clusterRatePerSecond: 1000 },
    systems: [
      system('berth', true, { W1: okThroughput(12_000) }, false),
      system('rabbitmq', false, { W1: okThroughput(17_000) }, false),
      system('berth-cluster', true, berthCluster, true),
      system('rabbitmq-cluster', false, { W1: okThroughput(6_400), W2: okLatency(28) }, true),
      // Faster but not durable per ack: never the comparison peer.
      system('nats-cluster', false, { W1: okThroughput(50_000), W2: okLatency(2) }, true, false),
    ],
  };
}

describe('Cluster (W5) report', () => {
  test('cluster rows have their own table; the single-node table and chart leave them out', () => {
    const run = clusterRun({ W1: okThroughput(9_600), W2: okLatency(14) });
    const single = markdownTable(run);
    const cluster = clusterMarkdownTable(run);
    assert.match(single, /rabbitmq label/);
    assert.doesNotMatch(single, /cluster label/);
    assert.doesNotMatch(chartSvg(run), /cluster label/);
    assert.match(cluster, /berth-cluster label \| yes: note \| 9,600 \(80%\)/);
    assert.match(cluster, /rabbitmq-cluster label \| yes: note \| 6,400 \(38%\)/);
    assert.match(cluster, /W2 at 1,000 msg\/s/);
    assert.doesNotMatch(single, /^\| berth label .*9,600/m);
  });

  test('a cluster row with a missing message shows FAILED, never its figure', () => {
    const failed: WorkloadResult = { ...okThroughput(9_600), status: 'FAILED', missing: 2, note: '2 missing' };
    const run = clusterRun({ W1: failed, W2: okLatency(14) });
    const cluster = clusterMarkdownTable(run);
    assert.match(cluster, /FAILED \(2 missing\)/);
    assert.doesNotMatch(cluster, /9,600/);
    assert.equal(singleNodeShare(run, run.systems[2]!), undefined);
    assert.match(clusterRatioLines(run).join('\n'), /W5 throughput: no ratio for berth-cluster label/);
  });

  test('ratios against the durable cluster peer say whether the issue\'s targets are met', () => {
    const met = clusterRatioLines(clusterRun({ W1: okThroughput(9_600), W2: okLatency(14) }));
    assert.deepEqual(met, [
      'W5 throughput: berth-cluster label 9,600 msg/s vs rabbitmq-cluster label 6,400 msg/s = x1.50 (target x1.50: met)',
      'W5 p99 latency at 1,000 msg/s: berth-cluster label 14.0 ms vs rabbitmq-cluster label 28.0 ms = x0.50 (target no worse, x1.00 or lower: met)',
    ]);
    const missed = clusterRatioLines(clusterRun({ W1: okThroughput(6_000), W2: okLatency(30) }));
    assert.match(missed[0]!, /x0\.94 \(target x1\.50: MISSED\)/);
    assert.match(missed[1]!, /x1\.07 \(target no worse, x1\.00 or lower: MISSED\)/);
  });

  test('the run summary has the Cluster (W5) part only when the run has cluster rows', () => {
    const withCluster = latestMarkdown(clusterRun({ W1: okThroughput(9_600), W2: okLatency(14) }));
    assert.match(withCluster, /\*\*Cluster \(W5\)\*\*/);
    assert.match(withCluster, /W5 \(3-node clusters\): W1 with 100 messages and W2 at 1,000 msg\/s/);
    assert.ok(withCluster.indexOf('Berth vs best durable peer') < withCluster.indexOf('Cluster (W5)'));
    const without = latestMarkdown(sampleRun());
    assert.doesNotMatch(without, /Cluster \(W5\)|W5/);
  });

  test('the BENCHMARKS.md section carries the cluster table', () => {
    const directory = mkdtempSync(join(tmpdir(), 'bench-test-'));
    try {
      const path = join(directory, 'BENCHMARKS.md');
      writeFileSync(path, '# Benchmarks\n');
      updateBenchmarksDocument(path, clusterRun({ W1: okThroughput(9_600), W2: okLatency(14) }));
      const text = readFileSync(path, 'utf8');
      assert.match(text, /\| berth-cluster label \|/);
      assert.match(text, /W5 throughput: .* = x1\.50/);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

describe('W2 warm-up', () => {
  test('a latency run first drains an unmeasured warm-up on the same queue, then measures only its own messages', async () => {
    const { driverById } = await import('./drivers/registry.js');
    const { runWorkload } = await import('./workloads.js');
    const driver = driverById('berth-native');
    const directory = mkdtempSync(join(tmpdir(), 'berth-bench-warmup-'));
    const system = await driver.start({ directory, log: () => undefined });
    try {
      const phases: string[] = [];
      const result = await runWorkload(
        driver,
        system,
        { id: 'W2', messages: 300, ratePerSecond: 150, producers: 2, consumers: 1, consumerLanes: 2, batchSize: 10, inFlightPerProducer: 8, stallMs: 30_000, fillThenDrain: false },
        (progress) => {
          if (phases[phases.length - 1] !== progress.phase) phases.push(progress.phase);
        },
      );
      assert.equal(result.status, 'ok', JSON.stringify(result));
      // The warm-up ran before the measured pass and nothing of it reached the measured consumers.
      const firstRunning = phases.indexOf('running');
      assert.ok(phases.indexOf('warming up') !== -1 && phases.indexOf('warming up') < firstRunning, phases.join(' -> '));
      assert.equal(result.messages, 300);
      assert.equal(result.missing, 0);
      assert.equal(result.duplicates, 0);
      assert.ok(result.latency !== undefined);
    } finally {
      await system.stop();
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

describe('driver loaders', () => {
  test('a load worker can load every system the registry lists, each on its own, and gets that same driver', async () => {
    const { drivers } = await import('./drivers/registry.js');
    const { driverLoaders, loadDriver } = await import('./drivers/loaders.js');
    assert.deepEqual(Object.keys(driverLoaders).sort(), drivers.map((driver) => driver.id).sort());
    for (const driver of drivers) assert.equal(await loadDriver(driver.id), driver, driver.id);
    await assert.rejects(loadDriver('kafka'), /unknown system "kafka"/);
  });
});
