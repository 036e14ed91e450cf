// Unit tests of the bench's pure pieces: the message codec, the W4 group layout, the
// push-to-pull buffer and the BENCHMARKS.md section rewrite (which must leave other
// sections, such as "## Storage", untouched).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeliveryBuffer } from './drivers/buffer.js';
import { groupOf } from './load-protocol.js';
import { decodeMessage, encodeMessage, messageBytes } from './message.js';
import { markdownTable, sectionTitle, updateBenchmarksDocument, type BenchRun } from './report.js';

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
