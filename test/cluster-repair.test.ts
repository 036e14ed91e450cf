// Cluster rejoin and repair against real etcd and real `berth serve` nodes on loopback:
//   a. a backup killed while the primary deletes the segments it lacks comes back, catches
//      up by snapshot, rejoins, and alone serves every acknowledged, undeleted message;
//   b. a replica down past --replica-replace-after-seconds is replaced by the fourth node,
//      which catches up and keeps the data through the loss of the original primary;
//   c. a queue of three partitions (standard and FIFO) end to end, and a kill -9 of one
//      partition's primary.
// Small segments (1 MiB) and frequent checkpoints make segment deletion quick. Message
// bodies are derived from a seed, so a failing run can be repeated (BERTH_TEST_SEED).

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  type Message,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { SeededRandom } from '../src/core/random.js';
import { clusterClients, startCluster, type TestCluster } from './harness/cluster.js';

const seed = Number(process.env['BERTH_TEST_SEED'] ?? 20261122);
const queueUrl = (base: string, queue: string): string => `${base}/000000000000/${queue}`;
/** BERTH_REPAIR_ONLY=a|b|c runs one part (each part starts its own cluster). */
const only = process.env['BERTH_REPAIR_ONLY'];
const skipUnless = (part: string): boolean => only !== undefined && only !== part;
const smallLogArgs = ['--segment-bytes-max', String(1024 * 1024), '--checkpoint-interval-ms', '200', '--lease-ttl-seconds', '3'];

function replicaCountAttribute(replicaCount: number): Record<string, { DataType: string; StringValue: string }> {
  return { 'Berth.ReplicaCount': { DataType: 'Number', StringValue: String(replicaCount) } };
}

/** A body of about `bytes` characters, different per (seed, label). */
function bodyOf(random: SeededRandom, label: string, bytes: number): string {
  let filler = '';
  while (filler.length < bytes) filler += random.int(1 << 30).toString(36);
  return `${label}:${filler.slice(0, bytes)}`;
}

/** Sends 10 messages at the given replica count and returns id -> body (throws if any entry failed). */
async function sendBatch(client: SQSClient, base: string, queue: string, bodies: string[], replicaCount: number): Promise<Map<string, string>> {
  const output = await client.send(new SendMessageBatchCommand({
    QueueUrl: queueUrl(base, queue),
    Entries: bodies.map((body, index) => ({ Id: String(index), MessageBody: body, MessageAttributes: replicaCountAttribute(replicaCount) })),
  }));
  assert.deepEqual(output.Failed ?? [], [], 'a batch entry failed');
  const sent = new Map<string, string>();
  for (const entry of output.Successful ?? []) sent.set(entry.MessageId!, bodies[Number(entry.Id)]!);
  return sent;
}

async function deleteAll(client: SQSClient, base: string, queue: string, messages: Message[]): Promise<void> {
  if (messages.length === 0) return;
  const output = await client.send(new DeleteMessageBatchCommand({
    QueueUrl: queueUrl(base, queue),
    Entries: messages.map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle! })),
  }));
  assert.deepEqual(output.Failed ?? [], [], 'a delete failed');
}

/**
 * Sends and deletes batches of ~8 KiB messages (so segments fill and the ACK level moves)
 * until `done` holds. Returns the ids it sent (all deleted).
 */
async function churn(cluster: TestCluster, client: SQSClient, base: string, queue: string, random: SeededRandom, replicaCount: number, done: () => Promise<boolean>): Promise<Set<string>> {
  const churned = new Set<string>();
  let round = 0;
  await until(cluster, async () => {
    const sent = await sendBatch(client, base, queue, Array.from({ length: 10 }, (_, index) => bodyOf(random, `churn-${round}-${index}`, 8000)), replicaCount);
    round++;
    for (const id of sent.keys()) churned.add(id);
    const pending = new Set(sent.keys());
    await until(cluster, async () => {
      const output = await client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl(base, queue), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 120 }));
      const messages = output.Messages ?? [];
      for (const message of messages) assert.ok(churned.has(message.MessageId!), `unexpected message ${message.MessageId} while churning`);
      await deleteAll(client, base, queue, messages);
      for (const message of messages) pending.delete(message.MessageId!);
      return pending.size === 0;
    }, 'the churn batch received and deleted', 30_000);
    return done();
  }, 'the primary to delete old segments', 120_000);
  return churned;
}

/** Receives (and deletes) until every expected id was seen; fails on a body mismatch or a message from `forbidden`. */
async function drainExpecting(cluster: TestCluster, client: SQSClient, base: string, queue: string, expected: Map<string, string>, forbidden: Set<string>): Promise<void> {
  const seen = new Set<string>();
  await until(cluster, async () => {
    const output = await client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl(base, queue), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 120 }));
    const messages = output.Messages ?? [];
    for (const message of messages) {
      assert.ok(!forbidden.has(message.MessageId!), `deleted message ${message.MessageId} came back`);
      const body = expected.get(message.MessageId!);
      assert.ok(body !== undefined, `unknown message ${message.MessageId}`);
      assert.equal(message.Body, body, `message ${message.MessageId} has another body`);
      seen.add(message.MessageId!);
    }
    await deleteAll(client, base, queue, messages);
    return [...expected.keys()].every((id) => seen.has(id));
  }, `every acknowledged, undeleted message of ${queue} received`, 60_000).catch((error: unknown) => {
    const missing = [...expected.entries()].filter(([id]) => !seen.has(id)).map(([, body]) => body.slice(0, body.indexOf(':')));
    throw new Error(`${String(error)}; missing ${missing.length} of ${expected.size}: ${missing.slice(0, 20).join(' ')}`);
  });
}

/**
 * cluster.waitFor, except that an assertion failing inside the predicate fails at once
 * instead of being retried like a transient error (a lost message must not look like a slow one).
 */
async function until(cluster: TestCluster, predicate: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  let failure: unknown;
  await cluster.waitFor(async () => {
    try {
      return await predicate();
    } catch (error) {
      if (!(error instanceof assert.AssertionError)) throw error;
      failure = error;
      return true;
    }
  }, what, timeoutMs);
  if (failure !== undefined) throw failure;
}

function logMentions(cluster: TestCluster, id: string, text: string): boolean {
  return cluster.node(id).process?.logRecords().some((record) => typeof record['msg'] === 'string' && record['msg'].includes(text)) ?? false;
}

describe('cluster repair: snapshot catch-up (3 nodes, real etcd)', { timeout: 170_000, skip: skipUnless('a') }, () => {
  let cluster: TestCluster;
  const clients = clusterClients(() => cluster);

  before(async () => {
    cluster = await startCluster({ nodes: 3, extraArgs: smallLogArgs });
  });

  after(async () => {
    clients.destroyAll();
    await cluster?.stop();
  });

  test('a. a backup killed while the primary deletes the segments it lacks catches up by snapshot, rejoins, and alone serves every acknowledged, undeleted message', async () => {
    const random = new SeededRandom(seed);
    const queue = 'repair';
    // ReplicaCount 1 for receives and deletes (so a lone node serves at the end); sends ask for 2 or 3.
    await clients.of('n1').send(new CreateQueueCommand({ QueueName: queue, Attributes: { ReplicaCount: '1' } as Record<string, string> }));
    const primary = await cluster.primaryOf(queue);
    const [victim, other] = cluster.nodes.map((node) => node.id).filter((id) => id !== primary) as [string, string];
    const client = clients.of(primary);
    const base = cluster.node(primary).url;
    // One round on all three replicas first (received and deleted: kept messages would pin the old segments).
    const deleted = await churn(cluster, client, base, queue, random, 3, async () => true);
    const kept = new Map<string, string>();
    await cluster.waitFor(async () => (await cluster.local(victim, queue))!.durableEndOffset === (await cluster.local(primary, queue))!.endOffset, `${victim} in sync before the kill`);
    const victimEnd = (await cluster.local(victim, queue))!.durableEndOffset;

    await cluster.kill9(victim);
    for (const id of await churn(cluster, client, base, queue, random, 2, async () => (await cluster.local(primary, queue))!.startOffset > victimEnd)) deleted.add(id);
    const primaryStart = (await cluster.local(primary, queue))!.startOffset;
    assert.ok(primaryStart > victimEnd, `the primary still holds ${primaryStart}..: the test needs it past the victim's end ${victimEnd}`);
    for (let round = 0; round < 3; round++) {
      for (const [id, body] of await sendBatch(client, base, queue, Array.from({ length: 10 }, (_, index) => bodyOf(random, `while-down-${round}-${index}`, 2000)), 2)) kept.set(id, body);
    }

    await cluster.start(victim);
    await cluster.waitFor(async () => {
      const primaryLocal = (await cluster.local(primary, queue))!;
      const victimLocal = await cluster.local(victim, queue);
      return victimLocal !== undefined && victimLocal.role === 'backup' && victimLocal.durableEndOffset === primaryLocal.endOffset &&
        primaryLocal.backups.find((backup) => backup.id === victim)?.phase === 'streaming';
    }, `${victim} caught up with ${primary} and streams`, 60_000);
    assert.ok(logMentions(cluster, victim, 'installed a snapshot'), `${victim} caught up without a snapshot install`);
    assert.ok((await cluster.local(victim, queue))!.startOffset > victimEnd, 'the victim\'s log restarted at the snapshot offset');
    // It counts for commits again: an r=3 send needs it.
    for (const [id, body] of await sendBatch(client, base, queue, Array.from({ length: 10 }, (_, index) => bodyOf(random, `after-rejoin-${index}`, 2000)), 3)) kept.set(id, body);

    // Only the rejoined node is left: it must serve everything acknowledged and nothing deleted.
    await Promise.all([cluster.kill9(primary), cluster.kill9(other)]);
    await cluster.waitFor(async () => (await cluster.local(victim, queue))?.role === 'primary', `${victim} leads after the others died`, 60_000);
    await drainExpecting(cluster, clients.of(victim), cluster.node(victim).url, queue, kept, deleted);
  });
});

describe('cluster repair: replacement of a replica gone too long (4 nodes, real etcd)', { timeout: 170_000, skip: skipUnless('b') }, () => {
  let cluster: TestCluster;
  const clients = clusterClients(() => cluster);

  before(async () => {
    cluster = await startCluster({ nodes: 4, extraArgs: [...smallLogArgs, '--replica-replace-after-seconds', '3'] });
  });

  after(async () => {
    clients.destroyAll();
    await cluster?.stop();
  });

  test('b. the controller puts the fourth node in the set, it catches up, and the data survives the loss of the original primary', async () => {
    const random = new SeededRandom(seed + 1);
    const queue = 'replace';
    await clients.of('n1').send(new CreateQueueCommand({ QueueName: queue, Attributes: { ReplicaCount: '1' } as Record<string, string> }));
    const primary = await cluster.primaryOf(queue);
    const original = (await cluster.status(primary)).partitions.find((entry) => entry.queue === queue)!.replicas;
    assert.equal(original.length, 3);
    const outsider = cluster.nodes.map((node) => node.id).find((id) => !original.includes(id))!;
    const [victim, other] = original.filter((id) => id !== primary) as [string, string];
    const client = clients.of(primary);
    const base = cluster.node(primary).url;
    // The primary deletes its first segments, so the newcomer (an empty log) needs a snapshot.
    const deleted = await churn(cluster, client, base, queue, random, 3, async () => (await cluster.local(primary, queue))!.startOffset > 0);
    const kept = new Map<string, string>();
    for (const [id, body] of await sendBatch(client, base, queue, Array.from({ length: 10 }, (_, index) => bodyOf(random, `before-${index}`, 1000)), 3)) kept.set(id, body);

    await cluster.kill9(victim);
    for (const [id, body] of await sendBatch(client, base, queue, Array.from({ length: 10 }, (_, index) => bodyOf(random, `victim-down-${index}`, 1000)), 2)) kept.set(id, body);
    await cluster.waitFor(async () => (await cluster.status(primary)).partitions.find((entry) => entry.queue === queue)!.replicas.includes(outsider), `${outsider} replaces ${victim}`, 60_000);
    const replicas = (await cluster.status(primary)).partitions.find((entry) => entry.queue === queue)!.replicas;
    assert.ok(!replicas.includes(victim), 'the dead replica left the set');
    await cluster.waitFor(async () => {
      const primaryLocal = (await cluster.local(primary, queue))!;
      const outsiderLocal = await cluster.local(outsider, queue);
      return outsiderLocal !== undefined && outsiderLocal.durableEndOffset === primaryLocal.endOffset &&
        primaryLocal.backups.find((backup) => backup.id === outsider)?.phase === 'streaming';
    }, `${outsider} caught up`, 60_000);
    assert.ok(logMentions(cluster, outsider, 'installed a snapshot'), `${outsider} caught up without the snapshot it needed`);
    // The newcomer counts for commits: r=3 with the victim gone needs it.
    for (const [id, body] of await sendBatch(client, base, queue, Array.from({ length: 10 }, (_, index) => bodyOf(random, `replaced-${index}`, 1000)), 3)) kept.set(id, body);

    await Promise.all([cluster.kill9(primary), cluster.kill9(other)]);
    await cluster.waitFor(async () => (await cluster.local(outsider, queue))?.role === 'primary', `${outsider} leads after the original replicas died`, 60_000);
    await drainExpecting(cluster, clients.of(outsider), cluster.node(outsider).url, queue, kept, deleted);
  });
});

describe('cluster repair: a queue of three partitions (3 nodes, real etcd)', { timeout: 170_000, skip: skipUnless('c') }, () => {
  let cluster: TestCluster;
  const clients = clusterClients(() => cluster);

  before(async () => {
    cluster = await startCluster({ nodes: 3, extraArgs: [...smallLogArgs, '--default-partition-count', '3'] });
  });

  after(async () => {
    clients.destroyAll();
    await cluster?.stop();
  });

  test('c. standard and FIFO over three partitions: spread, exact, ordered per group; a killed partition primary leaves the others serving and loses nothing', async () => {
    const random = new SeededRandom(seed + 2);
    const ids = cluster.nodes.map((node) => node.id);
    await clients.of('n1').send(new CreateQueueCommand({ QueueName: 'spread', Attributes: { ReplicaCount: '2' } as Record<string, string> }));
    await clients.of('n1').send(new CreateQueueCommand({ QueueName: 'spread.fifo', Attributes: { ReplicaCount: '2', FifoQueue: 'true' } as Record<string, string> }));
    const partitions = (await cluster.status('n1')).partitions.filter((entry) => entry.queue === 'spread');
    assert.equal(partitions.length, 3);
    const endsOf = async (queue: string): Promise<number[]> => Promise.all([0, 1, 2].map(async (partition) => (await cluster.local(await cluster.primaryOf(queue, partition), queue, partition))!.endOffset));
    const standardBefore = await endsOf('spread');

    // Standard: through every node.
    const standard = new Map<string, string>();
    for (let index = 0; index < 60; index++) {
      const id = ids[index % ids.length]!;
      const body = bodyOf(random, `standard-${index}`, 200);
      const output = await clients.of(id).send(new SendMessageCommand({ QueueUrl: queueUrl(cluster.node(id).url, 'spread'), MessageBody: body }));
      standard.set(output.MessageId!, body);
    }
    const standardAfter = await endsOf('spread');
    for (let partition = 0; partition < 3; partition++) assert.ok(standardAfter[partition]! > standardBefore[partition]!, `partition ${partition} got no standard send`);

    // FIFO: six groups, sent in order, through rotating nodes.
    const groups = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta'];
    const sentPerGroup = new Map<string, number>(groups.map((group) => [group, 0]));
    const sendFifo = async (count: number, via: string[]): Promise<void> => {
      for (let index = 0; index < count; index++) {
        const group = groups[index % groups.length]!;
        const sequence = sentPerGroup.get(group)!;
        const id = via[index % via.length]!;
        // A send to a partition whose primary just died fails until the failover is done; a
        // client retries it, safely so: the deduplication id makes a stored retry a no-op.
        await cluster.waitFor(async () => {
          await clients.of(id).send(new SendMessageCommand({
            QueueUrl: queueUrl(cluster.node(id).url, 'spread.fifo'),
            MessageBody: `${group}:${sequence}`,
            MessageGroupId: group,
            MessageDeduplicationId: `${group}-${sequence}`,
          }));
          return true;
        }, `FIFO send ${group}:${sequence}`, 60_000);
        sentPerGroup.set(group, sequence + 1);
      }
    };
    await sendFifo(60, ids);
    const fifoEnds = await endsOf('spread.fifo');
    assert.ok(fifoEnds.filter((end) => end > 1).length >= 2, `FIFO groups landed on fewer than two partitions: ${fifoEnds.join(',')}`);

    /** Receives FIFO messages until every group reached `until`; asserts exact order per group. */
    const receivedPerGroup = new Map<string, number>(groups.map((group) => [group, 0]));
    const drainFifo = async (via: string): Promise<void> => {
      await until(cluster, async () => {
        const output = await clients.of(via).send(new ReceiveMessageCommand({ QueueUrl: queueUrl(cluster.node(via).url, 'spread.fifo'), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 120 }));
        const messages = output.Messages ?? [];
        for (const message of messages) {
          const [group, sequenceText] = message.Body!.split(':') as [string, string];
          assert.equal(Number(sequenceText), receivedPerGroup.get(group), `group ${group} out of order: got ${message.Body}`);
          receivedPerGroup.set(group, Number(sequenceText) + 1);
        }
        await deleteAll(clients.of(via), cluster.node(via).url, 'spread.fifo', messages);
        return groups.every((group) => receivedPerGroup.get(group) === sentPerGroup.get(group));
      }, 'every FIFO message received in order', 60_000);
    };
    await drainFifo('n2');

    // Standard: each message exactly once, as sent.
    const seen = new Map<string, number>();
    await until(cluster, async () => {
      const output = await clients.of('n3').send(new ReceiveMessageCommand({ QueueUrl: queueUrl(cluster.node('n3').url, 'spread'), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 120 }));
      const messages = output.Messages ?? [];
      for (const message of messages) {
        assert.equal(message.Body, standard.get(message.MessageId!), `message ${message.MessageId} differs from what was sent`);
        seen.set(message.MessageId!, (seen.get(message.MessageId!) ?? 0) + 1);
      }
      await deleteAll(clients.of('n3'), cluster.node('n3').url, 'spread', messages);
      return seen.size === standard.size;
    }, 'every standard message received', 60_000);
    for (const [id, times] of seen) assert.equal(times, 1, `message ${id} delivered ${times} times`);

    // Acknowledged before the kill, kept undeleted: must survive.
    const survivors = new Map<string, string>();
    for (let index = 0; index < 30; index++) {
      const id = ids[index % ids.length]!;
      const body = bodyOf(random, `survivor-${index}`, 200);
      const output = await clients.of(id).send(new SendMessageCommand({ QueueUrl: queueUrl(cluster.node(id).url, 'spread'), MessageBody: body }));
      survivors.set(output.MessageId!, body);
    }
    await sendFifo(30, ids);
    const victim = await cluster.primaryOf('spread', 1);
    const live = ids.filter((id) => id !== victim);
    await cluster.kill9(victim);
    // The other partitions keep taking standard sends while partition 1 fails over.
    for (let index = 0; index < 20; index++) {
      const id = live[index % live.length]!;
      const body = bodyOf(random, `after-kill-${index}`, 200);
      const output = await clients.of(id).send(new SendMessageCommand({ QueueUrl: queueUrl(cluster.node(id).url, 'spread'), MessageBody: body }));
      survivors.set(output.MessageId!, body);
    }
    await sendFifo(30, live);
    await drainFifo(live[0]!);
    await drainExpecting(cluster, clients.of(live[1]!), cluster.node(live[1]!).url, 'spread', survivors, new Set(seen.keys()));
  });
});
