// Cluster replication against real etcd and three real `berth serve` nodes on loopback:
// acknowledgement at the replica count, a backup that dies and catches up, dead-letter
// moves and redrives between replicated FIFO queues, and a restart of every node at once.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ListMessageMoveTasksCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  StartMessageMoveTaskCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { clusterClients, startCluster, type TestCluster } from './harness/cluster.js';

const accountUrl = (base: string, queue: string): string => `${base}/000000000000/${queue}`;

function send(client: SQSClient, base: string, queue: string, body: string, replicaCount?: number): Promise<string> {
  return client
    .send(
      new SendMessageCommand({
        QueueUrl: accountUrl(base, queue),
        MessageBody: body,
        ...(replicaCount === undefined ? {} : { MessageAttributes: { 'Berth.ReplicaCount': { DataType: 'Number', StringValue: String(replicaCount) } } }),
      }),
    )
    .then((output) => output.MessageId!);
}

/** Receives (and deletes) until every id in `expected` was seen or the bound passes. */
async function drain(client: SQSClient, base: string, queue: string, expected: Set<string>, cluster: TestCluster): Promise<Set<string>> {
  const seen = new Set<string>();
  await cluster.waitFor(async () => {
    const output = await client.send(new ReceiveMessageCommand({ QueueUrl: accountUrl(base, queue), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 60 }));
    const messages = output.Messages ?? [];
    for (const message of messages) seen.add(message.MessageId!);
    if (messages.length > 0) {
      await client.send(new DeleteMessageBatchCommand({ QueueUrl: accountUrl(base, queue), Entries: messages.map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle! })) }));
    }
    return [...expected].every((id) => seen.has(id));
  }, `every acknowledged message of ${queue} received`, 60_000);
  return seen;
}

describe('cluster replication (3 nodes, real etcd)', { timeout: 240_000 }, () => {
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

  test('r=3: a send is acknowledged only once all three replicas hold it; r=1 and r=2 do not wait for a paused backup', async () => {
    await clientOf('n1').send(new CreateQueueCommand({ QueueName: 'r3', Attributes: { ReplicaCount: '3' } as Record<string, string> }));
    const primary = await cluster.primaryOf('r3');
    const backups = cluster.nodes.map((node) => node.id).filter((id) => id !== primary);
    // Every acknowledged send is durable on both backups.
    for (let index = 0; index < 10; index++) {
      const entry = cluster.nodes[index % 3]!;
      const before = (await cluster.status(primary)).local.find((local) => local.queue === 'r3')!.endOffset;
      await send(clientOf(entry.id), entry.url, 'r3', `m${index}`);
      for (const backup of backups) {
        const local = (await cluster.status(backup)).local.find((candidate) => candidate.queue === 'r3')!;
        assert.ok(local.durableEndOffset >= before + 1, `backup ${backup} holds ${local.durableEndOffset} < ${before + 1} after an r=3 acknowledgement`);
      }
    }
    // With one backup paused: an r=3 send waits; an r=2 send sent after it completes first.
    const paused = backups[1]!;
    cluster.pause(paused);
    try {
      let r3Done = false;
      const r3 = send(clientOf(primary), cluster.node(primary).url, 'r3', 'needs-three', 3).then((id) => {
        r3Done = true;
        return id;
      });
      await send(clientOf(primary), cluster.node(primary).url, 'r3', 'needs-two', 2);
      await send(clientOf(primary), cluster.node(primary).url, 'r3', 'needs-one', 1);
      assert.equal(r3Done, false, 'the r=3 send was acknowledged while a replica was paused');
      cluster.resume(paused);
      const id = await r3;
      assert.match(id, /^[0-9a-f-]{36}$/);
    } finally {
      cluster.resume(paused);
    }
    // The message's system attributes say which hosts hold its replicas, primary first.
    const received = await clientOf(backups[0]!).send(
      new ReceiveMessageCommand({ QueueUrl: accountUrl(cluster.node(backups[0]!).url, 'r3'), MaxNumberOfMessages: 1, WaitTimeSeconds: 2, MessageSystemAttributeNames: ['All'] }),
    );
    const hosts = received.Messages?.[0]?.Attributes?.['Berth.ReplicaHosts' as 'SenderId']?.split(',');
    assert.equal(hosts?.[0], primary, `Berth.ReplicaHosts names the primary first: ${String(hosts)}`);
    assert.deepEqual([...(hosts ?? [])].sort(), cluster.nodes.map((node) => node.id).sort());
  });

  test('a replica count larger than the replica set is refused', async () => {
    await assert.rejects(send(clientOf('n2'), cluster.node('n2').url, 'r3', 'too-many', 4), /Replica count 4/);
  });

  test('a killed backup misses sends, comes back and catches up', async () => {
    await clientOf('n1').send(new CreateQueueCommand({ QueueName: 'rejoin', Attributes: { ReplicaCount: '2' } as Record<string, string> }));
    const primary = await cluster.primaryOf('rejoin');
    const victim = cluster.nodes.map((node) => node.id).find((id) => id !== primary)!;
    await cluster.kill9(victim);
    const acknowledged = new Set<string>();
    for (let index = 0; index < 30; index++) acknowledged.add(await send(clientOf(primary), cluster.node(primary).url, 'rejoin', `while-down-${index}`));
    await cluster.start(victim);
    await cluster.waitFor(async () => {
      const primaryLocal = (await cluster.status(primary)).local.find((local) => local.queue === 'rejoin')!;
      const victimLocal = (await cluster.status(victim)).local.find((local) => local.queue === 'rejoin');
      return victimLocal !== undefined && victimLocal.role === 'backup' && victimLocal.durableEndOffset === primaryLocal.endOffset &&
        primaryLocal.backups.find((backup) => backup.id === victim)?.phase === 'streaming';
    }, `${victim} caught up with ${primary}`);
    // And counts again: with the third node paused, r=2 sends still complete through the rejoined one.
    const third = cluster.nodes.map((node) => node.id).find((id) => id !== primary && id !== victim)!;
    cluster.pause(third);
    try {
      acknowledged.add(await send(clientOf(primary), cluster.node(primary).url, 'rejoin', 'after-rejoin'));
    } finally {
      cluster.resume(third);
    }
    const seen = await drain(clientOf(primary), cluster.node(primary).url, 'rejoin', acknowledged, cluster);
    for (const id of acknowledged) assert.ok(seen.has(id), `acknowledged ${id} was lost`);
  });

  test('FIFO dead-letter move and redrive across nodes: the message arrives once each way, with its id, body and group', async () => {
    const n1 = clientOf('n1');
    const n2 = clientOf('n2');
    const n3 = clientOf('n3');
    const fifo = { FifoQueue: 'true', ReplicaCount: '3' };
    await n1.send(new CreateQueueCommand({ QueueName: 'dead.fifo', Attributes: fifo as Record<string, string> }));
    const arnOf = async (queue: string): Promise<string> =>
      (await n1.send(new GetQueueAttributesCommand({ QueueUrl: accountUrl(cluster.node('n1').url, queue), AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
    const deadArn = await arnOf('dead.fifo');
    const redrivePolicy = JSON.stringify({ deadLetterTargetArn: deadArn, maxReceiveCount: 1 });
    await n1.send(new CreateQueueCommand({ QueueName: 'poisoned.fifo', Attributes: { ...fifo, RedrivePolicy: redrivePolicy } as Record<string, string> }));
    const sourceArn = await arnOf('poisoned.fifo');
    const sent = await n1.send(new SendMessageCommand({ QueueUrl: accountUrl(cluster.node('n1').url, 'poisoned.fifo'), MessageBody: 'poison', MessageGroupId: 'g', MessageDeduplicationId: 'd-1' }));
    const receive = (client: SQSClient, node: string, queue: string) =>
      client.send(new ReceiveMessageCommand({ QueueUrl: accountUrl(cluster.node(node).url, queue), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 0, MessageSystemAttributeNames: ['All'] }));
    const visibleIn = async (queue: string): Promise<number> =>
      Number((await n3.send(new GetQueueAttributesCommand({ QueueUrl: accountUrl(cluster.node('n3').url, queue), AttributeNames: ['ApproximateNumberOfMessages'] }))).Attributes!.ApproximateNumberOfMessages);

    // One delivery (visibility 0: visible again at once); the next receive moves it.
    let deliveries = 0;
    await cluster.waitFor(async () => {
      deliveries += (await receive(n2, 'n2', 'poisoned.fifo')).Messages?.length ?? 0;
      return (await visibleIn('dead.fifo')) === 1;
    }, 'the message to reach the FIFO dead-letter queue', 30_000);
    assert.equal(deliveries, 1, 'delivered maxReceiveCount times, then moved');
    const dead = (await receive(n3, 'n3', 'dead.fifo')).Messages ?? [];
    assert.equal(dead.length, 1, 'exactly one copy in the dead-letter queue');
    assert.equal(dead[0]!.MessageId, sent.MessageId);
    assert.equal(dead[0]!.Body, 'poison');
    assert.equal(dead[0]!.Attributes?.MessageGroupId, 'g');
    assert.equal(dead[0]!.Attributes?.DeadLetterQueueSourceArn, sourceArn);

    // Back to the source with a move task started on another node.
    await n2.send(new StartMessageMoveTaskCommand({ SourceArn: deadArn }));
    await cluster.waitFor(async () => {
      const tasks = await n2.send(new ListMessageMoveTasksCommand({ SourceArn: deadArn }));
      return tasks.Results?.[0]?.Status === 'COMPLETED';
    }, 'the move task to complete', 30_000);
    assert.equal(await visibleIn('dead.fifo'), 0);
    const back = (await receive(n1, 'n1', 'poisoned.fifo')).Messages ?? [];
    assert.equal(back.length, 1, 'exactly one copy back in the source queue');
    assert.equal(back[0]!.MessageId, sent.MessageId);
    assert.equal(back[0]!.Body, 'poison');
    assert.equal(back[0]!.Attributes?.MessageGroupId, 'g');
    assert.equal(back[0]!.Attributes?.DeadLetterQueueSourceArn, undefined, 'a redriven message no longer names a dead-letter source');
  });

  test('restart every node at once: nothing acknowledged is lost', async () => {
    await clientOf('n1').send(new CreateQueueCommand({ QueueName: 'restart-all', Attributes: { ReplicaCount: '2' } as Record<string, string> }));
    const acknowledged = new Set<string>();
    for (let index = 0; index < 40; index++) {
      const entry = cluster.nodes[index % 3]!;
      acknowledged.add(await send(clientOf(entry.id), entry.url, 'restart-all', `before-restart-${index}`));
    }
    await Promise.all(cluster.nodes.map((node) => cluster.kill9(node.id)));
    await Promise.all(cluster.nodes.map((node) => cluster.start(node.id)));
    const seen = await drain(clientOf('n3'), cluster.node('n3').url, 'restart-all', acknowledged, cluster);
    for (const id of acknowledged) assert.ok(seen.has(id), `acknowledged ${id} was lost across the restart`);
  });
});
