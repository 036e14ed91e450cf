// Reconciling a topic partition's log with the subscriptions the metadata names, on a real
// partition runner (simulated disk). In a cluster a primary runs this whenever a view shows
// a difference, so once a partition is in line the comparison must say so: settings that
// read back from a Subscribe record differently from how they were parsed would write a
// record on every poll, for good.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../core/clock.js';
import { openTestRunner } from '../testing/test-partition.js';
import { testPayload } from '../testing/test-payloads.js';
import type { QueueMetadata } from './metadata-store.js';
import { parseQueueConfig } from './queue-calls.js';
import { reconcileSubscriptions, subscriptionsDiffer, wantedSubscriptions } from './topics.js';

function metadata(name: string, attributes: Record<string, string>, subscription?: QueueMetadata['subscription']): QueueMetadata {
  return { name, incarnation: '0123456789abcdef', attributes, tags: {}, createdTimestampMs: 0, lastModifiedTimestampMs: 0, partitionCount: 1, ...(subscription ? { subscription } : {}) };
}

test('a topic partition reconciled with its subscriptions reads back as in line; changes, removals and a topic created again are seen', async () => {
  const clock = new ManualClock();
  const runner = await openTestRunner({ name: 'topic', clock });
  try {
    const topic = { ...metadata('orders', { 'Berth.Kind': 'topic' }), incarnation: 'aaaaaaaaaaaaaaaa' };
    const redrive = JSON.stringify({ deadLetterTargetArn: 'arn:aws:sqs:us-east-1:000000000000:orders-dlq', maxReceiveCount: 3 });
    const queues = [
      topic,
      metadata('orders-a', { 'Berth.Topic': 'orders', VisibilityTimeout: '60', RedrivePolicy: redrive }, { topic: 'orders', logicalQueueId: 1, topicIncarnation: topic.incarnation }),
      metadata('orders-eu', { 'Berth.Topic': 'orders', 'Berth.FilterPolicy': '{"region":["eu"]}' }, { topic: 'orders', logicalQueueId: 2 }),
      // A subscription left behind by an earlier topic of the same name: not this topic's.
      metadata('orders-old', { 'Berth.Topic': 'orders' }, { topic: 'orders', logicalQueueId: 7, topicIncarnation: 'bbbbbbbbbbbbbbbb' }),
      metadata('plain', {}),
    ];
    const configOf = (each: QueueMetadata) => parseQueueConfig(each.attributes, 2);
    const wanted = wantedSubscriptions(topic, queues, configOf);
    assert.deepEqual([...wanted.keys()], [1, 2]);

    // A fresh partition holds logical queue 0 (a plain queue's): the topic has none.
    assert.deepEqual(runner.subscriptions().map((each) => each.logicalQueueId), [0]);
    assert.equal(subscriptionsDiffer(runner, wanted), true);
    await reconcileSubscriptions(runner, wanted);
    assert.deepEqual(runner.subscriptions().map((each) => each.logicalQueueId), [1, 2]);
    assert.equal(subscriptionsDiffer(runner, wanted), false, 'settings read back from the Subscribe records equal the parsed ones');
    const end = runner.endOffset;
    await reconcileSubscriptions(runner, wanted);
    assert.equal(runner.endOffset, end, 'nothing written when in line');

    // Publish: the filter applies per subscription.
    await runner.send([testPayload(clock, 0)]);
    assert.equal(runner.counts(1).visible, 1);
    assert.equal(runner.counts(2).visible, 0);

    // A changed setting and a removed subscription.
    queues[1] = metadata('orders-a', { 'Berth.Topic': 'orders', VisibilityTimeout: '90' }, { topic: 'orders', logicalQueueId: 1, topicIncarnation: topic.incarnation });
    queues.splice(2, 1);
    const next = wantedSubscriptions(topic, queues, configOf);
    assert.equal(subscriptionsDiffer(runner, next), true);
    await reconcileSubscriptions(runner, next);
    assert.deepEqual(runner.subscriptions().map((each) => each.logicalQueueId), [1]);
    assert.equal(runner.subscriptions()[0]!.config?.visibilityTimeoutSeconds, 90);
    assert.equal(runner.counts(1).visible, 1, 'a changed subscription keeps its messages');
    assert.equal(subscriptionsDiffer(runner, next), false);
  } finally {
    await runner.close();
  }
});
