// Failover against real etcd and three real nodes: kill -9 of a primary under continuous
// sends and receives, and a SIGSTOPped primary that must not acknowledge after it was
// replaced. Seeded: the seed picks bodies and which node each call enters through.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CreateQueueCommand, DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { SeededRandom } from '../src/core/random.js';
import { clusterClients, startCluster, type TestCluster } from './harness/cluster.js';

const seed = Number(process.env['BERTH_TEST_SEED'] ?? 20261122);
const accountUrl = (base: string, queue: string): string => `${base}/000000000000/${queue}`;

describe(`cluster failover (3 nodes, real etcd, seed ${seed})`, { timeout: 240_000 }, () => {
  let cluster: TestCluster;
  const clients = clusterClients(() => cluster);
  const clientOf = (id: string): SQSClient => clients.of(id);

  before(async () => {
    cluster = await startCluster({ nodes: 3 });
  });

  after(async () => {
    clients.destroyAll();
    await cluster?.stop();
  });

  test('kill -9 of the primary under load: service resumes, nothing acknowledged lost, FIFO order holds, no early redelivery', async () => {
    const random = new SeededRandom(seed);
    await clientOf('n1').send(new CreateQueueCommand({ QueueName: 'load.fifo', Attributes: { FifoQueue: 'true', ReplicaCount: '2' } as Record<string, string> }));
    const primary = await cluster.primaryOf('load.fifo');
    const entries = cluster.nodes.map((node) => node.id).filter((id) => id !== primary);
    const groups = ['g0', 'g1', 'g2'];
    const acknowledged = new Map<string, { group: string; index: number }>();
    const sendIndex = new Map<string, number>(groups.map((group) => [group, 0]));
    let killedAtMs = 0;
    let firstAckAfterKillMs = 0;
    let stopProducing = false;
    const producer = (async () => {
      let failures = 0;
      while (!stopProducing) {
        const group = groups[random.int(groups.length)]!;
        const index = sendIndex.get(group)!;
        const entry = entries[random.int(entries.length)]!;
        const startedMs = performance.now();
        try {
          const output = await clientOf(entry).send(
            new SendMessageCommand({
              QueueUrl: accountUrl(cluster.node(entry).url, 'load.fifo'),
              MessageBody: `${group}:${index}`,
              MessageGroupId: group,
              MessageDeduplicationId: `${group}-${index}`,
            }),
          );
          acknowledged.set(output.MessageId!, { group, index });
          sendIndex.set(group, index + 1);
          // Service resumed: a send that started after the kill was acknowledged.
          if (killedAtMs > 0 && startedMs > killedAtMs && firstAckAfterKillMs === 0) firstAckAfterKillMs = performance.now();
        } catch {
          // Not acknowledged: retried with the same deduplication id (the same message).
          failures++;
        }
      }
      return failures;
    })();
    // Consumer: records each delivery; deletes it. Visibility 30 s.
    const deliveries: Array<{ id: string; group: string; index: number; atMs: number }> = [];
    let stopConsuming = false;
    const consumer = (async () => {
      while (!stopConsuming) {
        const entry = entries[random.int(entries.length)]!;
        try {
          const output = await clientOf(entry).send(new ReceiveMessageCommand({ QueueUrl: accountUrl(cluster.node(entry).url, 'load.fifo'), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 30 }));
          for (const message of output.Messages ?? []) {
            const [group, index] = message.Body!.split(':');
            deliveries.push({ id: message.MessageId!, group: group!, index: Number(index), atMs: performance.now() });
            await clientOf(entry)
              .send(new DeleteMessageCommand({ QueueUrl: accountUrl(cluster.node(entry).url, 'load.fifo'), ReceiptHandle: message.ReceiptHandle! }))
              .catch(() => undefined);
          }
        } catch {
          // the partition is failing over
        }
      }
    })();
    await cluster.waitFor(() => acknowledged.size >= 60, '60 acknowledged sends before the kill');
    killedAtMs = performance.now();
    await cluster.kill9(primary);
    await cluster.waitFor(() => firstAckAfterKillMs > 0, 'a send acknowledged after the kill', 60_000);
    const resumeMs = firstAckAfterKillMs - killedAtMs;
    const countAtResume = acknowledged.size;
    await cluster.waitFor(() => acknowledged.size >= countAtResume + 60, '60 more acknowledged sends after the failover');
    stopProducing = true;
    await producer;
    const newPrimary = await cluster.primaryOf('load.fifo', 0, entries[0]);
    assert.notEqual(newPrimary, primary);
    await cluster.waitFor(() => [...acknowledged.keys()].every((id) => deliveries.some((delivery) => delivery.id === id)), 'every acknowledged message delivered', 90_000);
    stopConsuming = true;
    await consumer;
    // FIFO: within a group, first deliveries come in send order.
    for (const group of groups) {
      const firsts: number[] = [];
      const seen = new Set<number>();
      for (const delivery of deliveries) {
        if (delivery.group !== group || seen.has(delivery.index)) continue;
        seen.add(delivery.index);
        firsts.push(delivery.index);
      }
      for (let position = 1; position < firsts.length; position++) {
        assert.ok(firsts[position]! > firsts[position - 1]!, `group ${group} delivered ${firsts[position]} after ${firsts[position - 1]}`);
      }
    }
    // No message handed out again before its 30 s visibility deadline (the test is shorter than that).
    const byId = new Map<string, number>();
    for (const delivery of deliveries) byId.set(delivery.id, (byId.get(delivery.id) ?? 0) + 1);
    const early = [...byId.entries()].filter(([, count]) => count > 1);
    assert.deepEqual(early, [], 'messages delivered twice within their visibility timeout');
    console.log(`# failover: first acknowledged send ${Math.round(resumeMs)} ms after kill -9 of ${primary} (lease TTL 3 s); ${acknowledged.size} acknowledged, ${deliveries.length} delivered`);
    await cluster.start(primary);
  });

  test('a SIGSTOPped primary is replaced and acknowledges nothing after, then rejoins as a backup', async () => {
    await clientOf('n1').send(new CreateQueueCommand({ QueueName: 'fenced', Attributes: { ReplicaCount: '1' } as Record<string, string> }));
    const primary = await cluster.primaryOf('fenced');
    const others = cluster.nodes.map((node) => node.id).filter((id) => id !== primary);
    for (let index = 0; index < 5; index++) {
      // Replica count 3 for these: an r=1 message may still be only on the primary when it
      // is paused, and then rightly dies with its cut tail (r=1 survives no failure). The
      // queue's own r=1 is what the send to the paused primary below tests the fence with.
      await clientOf(others[0]!).send(
        new SendMessageCommand({
          QueueUrl: accountUrl(cluster.node(others[0]!).url, 'fenced'),
          MessageBody: `before-${index}`,
          MessageAttributes: { 'Berth.ReplicaCount': { DataType: 'Number', StringValue: '3' } },
        }),
      );
    }
    const oldEpoch = (await cluster.status(others[0]!)).partitions.find((partition) => partition.queue === 'fenced')!.epoch;
    const pausedAtMs = performance.now();
    cluster.pause(primary);
    // A send straight to the paused primary: its process reads it only after SIGCONT.
    const stalled = clientOf(primary)
      .send(new SendMessageCommand({ QueueUrl: accountUrl(cluster.node(primary).url, 'fenced'), MessageBody: 'sent-to-the-old-primary' }))
      .then(
        (output) => ({ ok: true as const, id: output.MessageId! }),
        (error: unknown) => ({ ok: false as const, error }),
      );
    // Both other nodes must see it: a node whose view still names the paused primary would
    // forward the next send there, and it would wait on the stopped process (seen in a clean-clone run).
    await cluster.waitFor(async () => {
      for (const id of others) {
        const partition = (await cluster.status(id)).partitions.find((candidate) => candidate.queue === 'fenced')!;
        if (partition.primary === primary || partition.epoch <= oldEpoch) return false;
      }
      return true;
    }, 'a new primary for the paused one, seen by both other nodes', 30_000);
    const takeoverMs = performance.now() - pausedAtMs;
    // The new primary serves.
    await clientOf(others[1]!).send(new SendMessageCommand({ QueueUrl: accountUrl(cluster.node(others[1]!).url, 'fenced'), MessageBody: 'after-takeover' }));
    cluster.resume(primary);
    const outcome = await stalled;
    // The old node may answer it only as an entry node forwarding to the new primary; if it
    // acknowledged the send itself at its old epoch, the record dies with its cut tail and
    // the message is missing below.
    const acknowledged = new Set<string>();
    if (outcome.ok) acknowledged.add(outcome.id);
    await cluster.waitFor(async () => {
      const local = (await cluster.status(primary)).local.find((candidate) => candidate.queue === 'fenced');
      const current = (await cluster.status(others[0]!)).partitions.find((candidate) => candidate.queue === 'fenced')!;
      return local !== undefined && local.role === 'backup' && local.epoch === current.epoch && local.lastEpoch <= current.epoch;
    }, 'the old primary rejoined as a backup', 30_000);
    const reader = clientOf(others[1]!);
    const seen = new Set<string>();
    await cluster.waitFor(async () => {
      const output = await reader.send(new ReceiveMessageCommand({ QueueUrl: accountUrl(cluster.node(others[1]!).url, 'fenced'), MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
      for (const message of output.Messages ?? []) {
        seen.add(message.MessageId!);
        await reader.send(new DeleteMessageCommand({ QueueUrl: accountUrl(cluster.node(others[1]!).url, 'fenced'), ReceiptHandle: message.ReceiptHandle! }));
      }
      return [...acknowledged].every((id) => seen.has(id)) && seen.size >= 6 + acknowledged.size;
    }, 'the messages acknowledged around the pause delivered', 30_000);
    const stoppingDown = cluster.node(primary).process!.logRecords().some((record) => record['msg'] === 'stepping down to backup');
    assert.ok(stoppingDown, 'the old primary never stepped down');
    console.log(`# SIGSTOP: new primary after ${Math.round(takeoverMs)} ms; the send held by the paused node ${outcome.ok ? 'was acknowledged (forwarded to the new primary) and delivered' : `failed: ${String(outcome.error)}`}`);
  });
});
