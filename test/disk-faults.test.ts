// Disk faults on one node: the real LocalBroker over the simulated disk (SimFileSystem)
// and a hand-driven clock. Disk full and fsync failure must refuse producers with
// ServiceUnavailable, acknowledge nothing afterwards, and lose nothing acknowledged; after
// a restart on a healthy disk everything acknowledged is there.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalBroker } from '../src/broker/local-broker.js';
import { ManualClock } from '../src/core/clock.js';
import { SeededRandom } from '../src/core/random.js';
import { BerthError } from '../src/protocol/errors.js';
import type { SendInput } from '../src/queue/types.js';
import { SimFileSystem } from '../src/testing/sim-filesystem.js';
import { silentLogger as silent } from '../src/testing/test-partition.js';
import { ProcessFileSystem } from '../src/testing/simulator/sim-process.js';


/** One server process over the shared disk; `kill` makes its view of the disk dead. */
async function openServer(disk: SimFileSystem, clock: ManualClock, random: SeededRandom, options: { checkpointEveryRecords?: number } = {}) {
  const fs = new ProcessFileSystem(disk);
  let counter = 0;
  const broker = await LocalBroker.open({
    fs,
    dataDirectory: '/data',
    clock,
    logger: silent,
    region: 'test-1',
    accountId: '000000000000',
    newId: () => `id-${random.int(1_000_000)}-${counter++}`,
    newIncarnation: () => Array.from({ length: 16 }, () => '0123456789abcdef'[random.int(16)]).join(''),
    partitionOptions: {
      maintenanceIntervalMs: 100,
      checkpointEveryRecords: options.checkpointEveryRecords ?? 1000,
      logOptions: { segmentBytesMax: 4096 },
    },
  });
  return { broker, kill: () => { fs.alive = false; } };
}

function message(body: string): SendInput {
  return { body, attributes: {}, systemAttributes: {}, senderId: '000000000000' };
}

async function sendOne(broker: LocalBroker, queue: string, body: string): Promise<string | BerthError> {
  const [result] = await broker.send(queue, [message(body)]);
  assert.ok(result !== undefined);
  return result instanceof BerthError ? result : result.messageId;
}

async function drainBodies(broker: LocalBroker, queue: string): Promise<Set<string>> {
  const bodies = new Set<string>();
  for (;;) {
    const messages = await broker.receive(queue, { maxMessages: 10, waitTimeSeconds: 0, visibilityTimeoutSeconds: 600 });
    if (messages.length === 0) return bodies;
    for (const received of messages) bodies.add(received.body);
  }
}

async function setup(seed: number) {
  const disk = new SimFileSystem();
  const clock = new ManualClock();
  const random = new SeededRandom(seed);
  const server = await openServer(disk, clock, random);
  await server.broker.createQueue('q', {}, {});
  const acknowledged: string[] = [];
  for (let index = 0; index < 30; index++) {
    const result = await sendOne(server.broker, 'q', `before-${index}`);
    assert.equal(typeof result, 'string', `send ${index} on a healthy disk`);
    acknowledged.push(`before-${index}`);
  }
  return { disk, clock, random, server, acknowledged };
}

describe('disk faults on a single node', () => {
  test('disk full during appends: producers get ServiceUnavailable, nothing acknowledged is lost', async () => {
    const { disk, clock, random, server, acknowledged } = await setup(1);
    disk.capacityBytes = disk.totalBytes() + 100;
    disk.partialWriteOnFault = true;
    const refused = await sendOne(server.broker, 'q', 'too-much-'.repeat(40));
    assert.ok(refused instanceof BerthError, 'a send past the disk capacity is refused');
    assert.equal(refused.code, 'ServiceUnavailable');
    assert.match(refused.message, /ENOSPC|no space/);
    // The partition stays stopped: later sends are refused too, even small ones, and nothing is acknowledged.
    for (let index = 0; index < 5; index++) {
      const later = await sendOne(server.broker, 'q', `after-${index}`);
      assert.ok(later instanceof BerthError, `send ${index} after the failure must not be acknowledged`);
      assert.equal(later.code, 'ServiceUnavailable');
    }
    await assert.rejects(server.broker.receive('q', { maxMessages: 1, waitTimeSeconds: 0 }), (error: unknown) => error instanceof BerthError && error.code === 'ServiceUnavailable');
    // Power loss, then a restart on a disk with room.
    server.kill();
    disk.crash({ torn: true, random });
    disk.capacityBytes = Number.POSITIVE_INFINITY;
    disk.partialWriteOnFault = false;
    const restarted = await openServer(disk, clock, random);
    const bodies = await drainBodies(restarted.broker, 'q');
    for (const body of acknowledged) assert.ok(bodies.has(body), `acknowledged ${body} survived`);
    const accepted = await sendOne(restarted.broker, 'q', 'after-restart');
    assert.equal(typeof accepted, 'string', 'the restarted server takes sends again');
    await restarted.broker.close();
  });

  test('fsync failure stops the partition: a clear error, no later acknowledgement, everything acknowledged after restart', async () => {
    const { disk, clock, random, server, acknowledged } = await setup(2);
    disk.injectFault({ operation: 'sync', code: 'EIO', count: 1 });
    const failed = await sendOne(server.broker, 'q', 'during-fault');
    assert.ok(failed instanceof BerthError);
    assert.equal(failed.code, 'ServiceUnavailable');
    assert.match(failed.message, /stopped after a disk error/);
    assert.match(failed.message, /EIO/);
    // The fault is spent (the next fsync would work), but after a failed fsync the log never
    // retries: nothing is acknowledged until a restart.
    const later = await sendOne(server.broker, 'q', 'after-fault');
    assert.ok(later instanceof BerthError && later.code === 'ServiceUnavailable', 'no acknowledgement after a failed fsync');
    const deleteResults = await server.broker.deleteMessages('q', ['AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA']);
    assert.ok(deleteResults[0] instanceof BerthError);
    server.kill();
    disk.crash({ torn: true, garbage: true, random });
    const restarted = await openServer(disk, clock, random);
    const bodies = await drainBodies(restarted.broker, 'q');
    for (const body of acknowledged) assert.ok(bodies.has(body), `acknowledged ${body} survived`);
    assert.ok(!bodies.has('after-fault'), 'a refused send was never written');
    await restarted.broker.close();
  });

  test('a restart after an fsync failure that keeps the page cache, then a power loss, recovers', async () => {
    const disk = new SimFileSystem();
    const clock = new ManualClock();
    const random = new SeededRandom(3);
    const first = await openServer(disk, clock, random, { checkpointEveryRecords: 1 });
    await first.broker.createQueue('q', {}, {});
    assert.equal(typeof (await sendOne(first.broker, 'q', 'acknowledged')), 'string');
    disk.injectFault({ operation: 'sync', code: 'EIO', count: 1 });
    const failed = await sendOne(first.broker, 'q', 'written-not-synced');
    assert.ok(failed instanceof BerthError && failed.code === 'ServiceUnavailable');
    // The process dies; the machine does not: the unsynced record is still in the page cache.
    first.kill();
    const second = await openServer(disk, clock, random, { checkpointEveryRecords: 1 });
    // Maintenance writes a checkpoint covering the recovered (never fsynced) record.
    clock.advance(31_000);
    for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
    second.kill();
    disk.crash();
    const third = await openServer(disk, clock, random, { checkpointEveryRecords: 1 });
    const bodies = await drainBodies(third.broker, 'q');
    assert.ok(bodies.has('acknowledged'));
    await third.broker.close();
  });
});

describe('dead-letter moves from a stopped source queue', () => {
  test('receives on a source whose log stopped make no dead-letter copies (each would be a duplicate)', async () => {
    const disk = new SimFileSystem();
    const clock = new ManualClock();
    const random = new SeededRandom(4);
    const server = await openServer(disk, clock, random);
    const broker = server.broker;
    await broker.createQueue('dlq', {}, {});
    await broker.createQueue('src', { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: 'arn:aws:sqs:test-1:000000000000:dlq', maxReceiveCount: 1 }) }, {});
    assert.equal(typeof (await sendOne(broker, 'src', 'poison')), 'string');
    const first = await broker.receive('src', { maxMessages: 1, waitTimeSeconds: 0, visibilityTimeoutSeconds: 1 });
    assert.equal(first.length, 1, 'received once: the next time it is due it goes to the dead-letter queue');
    // Stop the source's log: the next fsync (the source's) fails.
    disk.injectFault({ operation: 'sync', code: 'EIO', count: 1 });
    const refused = await sendOne(broker, 'src', 'during-fault');
    assert.ok(refused instanceof BerthError && refused.code === 'ServiceUnavailable');
    for (let attempt = 0; attempt < 4; attempt++) {
      clock.advance(1500);
      for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
      // The message is due for the dead-letter queue, but the source cannot record the move.
      await assert.rejects(broker.receive('src', { maxMessages: 1, waitTimeSeconds: 0 }), (error: unknown) => error instanceof BerthError && error.code === 'ServiceUnavailable');
      for (let turn = 0; turn < 20; turn++) await new Promise((resolve) => setImmediate(resolve));
    }
    const copies = (await broker.receive('dlq', { maxMessages: 10, waitTimeSeconds: 0, visibilityTimeoutSeconds: 600 })).filter((message) => message.body === 'poison');
    assert.equal(copies.length, 0, `no copy while the source cannot record the move (found ${copies.length})`);
    server.kill();
    // After a restart on a healthy disk the move completes: exactly one copy, none left in the source.
    const restarted = await openServer(disk, clock, random);
    clock.advance(1500);
    // ('during-fault' may be there: the process restart kept its unsynced bytes.)
    assert.ok(!(await drainBodies(restarted.broker, 'src')).has('poison'), 'moved out of the source');
    const moved = (await restarted.broker.receive('dlq', { maxMessages: 10, waitTimeSeconds: 0, visibilityTimeoutSeconds: 600 })).filter((message) => message.body === 'poison');
    assert.equal(moved.length, 1, 'one copy in the dead-letter queue after the restart');
    await restarted.broker.close();
  });
});
