// The SDK's cluster routing against real etcd and three real nodes: a client given any
// node's URL learns each queue's partition primaries and sends every call to the primary
// it concerns, so the node it was given never handles (forwards) them; it follows the
// primary when the old one is killed; FIFO batches and receipts of a multi-partition queue
// are split by partition. Which node handled a call is read from each node's own
// /metrics (berth_messages_total counts at the node a call arrived at).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Berth, BerthClientError, ClusterRouter } from '../src/client/index.js';
import { httpRequest } from './harness/server.js';
import { startCluster, type TestCluster } from './harness/cluster.js';

async function messagesCounted(cluster: TestCluster, id: string, queue: string, kind: 'sent' | 'received' | 'deleted'): Promise<number> {
  const response = await httpRequest(cluster.node(id).url, { path: '/metrics' });
  const line = response.body.split('\n').find((each) => each.startsWith(`berth_messages_total{queue="${queue}",kind="${kind}"}`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

function nativeUrlOf(cluster: TestCluster, id: string): string {
  const port = cluster.node(id).nativePort;
  assert.ok(port !== undefined, `node ${id} has a native port`);
  return `berth://127.0.0.1:${port}`;
}

/**
 * Waits until the client routes partition p of `queue` to `primaries[p]`: its view of a
 * queue created (or failed over) a moment ago may lag by a watch event, and routes refresh
 * every 5 s.
 */
function clientRoutesTo(cluster: TestCluster, router: ClusterRouter, queue: string, primaries: readonly string[], timeoutMs: number): Promise<void> {
  return cluster.waitFor(
    async () => (await Promise.all(primaries.map((_, partition) => router.nodeFor(queue, partition)))).every((id, partition) => id === primaries[partition]),
    `the client routes each partition of ${queue} to its primary (${primaries.join(', ')})`,
    timeoutMs,
  );
}

describe('SDK cluster routing (3 nodes, real etcd)', { timeout: 240_000 }, () => {
  let cluster: TestCluster;
  const clients: Berth[] = [];
  const connect = async (id: string, cluster_: boolean | { zone?: string } = true): Promise<Berth> => {
    const berth = await Berth.connect({ url: nativeUrlOf(cluster, id), cluster: cluster_ });
    clients.push(berth);
    return berth;
  };

  before(async () => {
    cluster = await startCluster({ nodes: 3, native: true });
  });
  after(async () => {
    await Promise.all(clients.map((berth) => berth.close().catch(() => undefined)));
    await cluster?.stop();
  });

  test('calls go to the primary, not to the node the client was given; the client follows a new primary after a kill -9', async () => {
    const admin = await connect('n1', false);
    await admin.createQueue('routed', { attributes: { ReplicaCount: '2' } });
    const primary = await cluster.primaryOf('routed');
    const seed = cluster.nodes.map((node) => node.id).find((id) => id !== primary)!;
    const berth = await connect(seed);
    assert.ok(berth.router instanceof ClusterRouter);
    const router = berth.router;
    await clientRoutesTo(cluster, router, 'routed', [primary], 20_000);

    const sent = await berth.send('routed', Array.from({ length: 20 }, (_, index) => ({ body: `m${index}` })));
    assert.ok(sent.every((result) => !(result instanceof BerthClientError)), String(sent.find((result) => result instanceof BerthClientError)));
    const bodies = new Set<string>();
    while (bodies.size < 20) {
      const messages = await berth.receive('routed', { maxMessages: 10, waitMs: 2_000 });
      assert.ok(messages.length > 0, 'the sent messages are received');
      for (const message of messages) bodies.add(message.body);
      const acks = await berth.ack('routed', messages.map((message) => message.receiptHandle));
      assert.deepEqual(acks, messages.map(() => null));
    }
    const sentCounts = await Promise.all(cluster.nodes.map(async (node) => `${node.id}:${await messagesCounted(cluster, node.id, 'routed', 'sent')}`));
    assert.equal(await messagesCounted(cluster, primary, 'routed', 'sent'), 20, `the primary ${primary} took the sends itself (sent counted per node: ${sentCounts.join(' ')}, seed ${seed})`);
    assert.equal(await messagesCounted(cluster, primary, 'routed', 'deleted'), 20);
    assert.equal(await messagesCounted(cluster, seed, 'routed', 'sent'), 0, 'the seed node forwarded nothing');
    assert.equal(await messagesCounted(cluster, seed, 'routed', 'received'), 0);

    // A client without routing goes through its seed, which forwards (the control).
    const plain = await connect(seed, false);
    await plain.send('routed', [{ body: 'via the seed' }]);
    assert.equal(await messagesCounted(cluster, seed, 'routed', 'sent'), 1);

    // Kill the primary: after failover the routed client's calls reach the new primary.
    await cluster.kill9(primary);
    await cluster.waitFor(async () => {
      const now = await cluster.primaryOf('routed', 0, seed).catch(() => primary);
      return now !== primary;
    }, 'a new primary for routed', 60_000);
    const successor = await cluster.primaryOf('routed', 0, seed);
    let delivered = false;
    await cluster.waitFor(async () => {
      const [result] = await berth.send('routed', [{ body: 'after the kill' }]).catch(() => [undefined]);
      delivered = result !== undefined && !(result instanceof BerthClientError);
      return delivered;
    }, 'a send through the routed client after the failover', 60_000);
    await clientRoutesTo(cluster, router, 'routed', [successor], 30_000);
    const before = await messagesCounted(cluster, successor, 'routed', 'sent');
    await berth.send('routed', [{ body: 'routed to the successor' }]);
    assert.equal(await messagesCounted(cluster, successor, 'routed', 'sent'), before + 1);
    await cluster.start(primary);
    await cluster.waitAllHealthy(seed); // the next test starts from a settled cluster
  });

  test('a FIFO queue with 3 partitions: a batch over many groups is split by partition, each group keeps its order, receipts go back to their partitions', async () => {
    const admin = await connect('n1', false);
    await admin.createQueue('split.fifo', { attributes: { FifoQueue: 'true', ReplicaCount: '2', PartitionCount: '3' } });
    assert.equal((await admin.getQueueAttributes('split.fifo'))['PartitionCount'], '3');
    const primaries = await cluster.settledPrimaries('split.fifo', 3);
    const berth = await connect('n3', { zone: 'nowhere' });
    const router = berth.router as ClusterRouter;
    await clientRoutesTo(cluster, router, 'split.fifo', primaries, 20_000);
    const groups = Array.from({ length: 12 }, (_, index) => `g${index}`);
    for (let round = 0; round < 3; round++) {
      const results = await berth.send('split.fifo', groups.map((group) => ({ body: `${group}:${round}`, groupId: group, deduplicationId: `${group}-${round}` })));
      assert.ok(results.every((result) => !(result instanceof BerthClientError)), String(results.find((result) => result instanceof BerthClientError)));
    }
    const seen = new Map<string, number>();
    let total = 0;
    while (total < groups.length * 3) {
      const messages = await berth.receive('split.fifo', { maxMessages: 10, waitMs: 2_000 });
      assert.ok(messages.length > 0, `received ${total} of ${groups.length * 3}`);
      for (const message of messages) {
        const [group, round] = message.body.split(':') as [string, string];
        assert.equal(Number(round), seen.get(group) ?? 0, `group ${group} in order`);
        seen.set(group, Number(round) + 1);
        total++;
      }
      const acks = await berth.ack('split.fifo', messages.map((message) => message.receiptHandle));
      assert.deepEqual(acks, messages.map(() => null));
    }
    const counts = await admin.queueCounts('split.fifo');
    assert.equal(counts.visible + counts.inflight, 0);
    // Every partition's primary took its own groups' sends: none was forwarded.
    let sentAtPrimaries = 0;
    for (const id of new Set(primaries)) sentAtPrimaries += await messagesCounted(cluster, id, 'split.fifo', 'sent');
    assert.equal(sentAtPrimaries, groups.length * 3);
    assert.ok(primaries.includes((await router.nodeFor('split.fifo', 0))!));
  });
});
