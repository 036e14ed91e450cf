import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { BerthMetrics } from './metrics.js';

function metricsAt(startMs: number): { metrics: BerthMetrics; clock: { nowMs(): number; advance(ms: number): void } } {
  let nowMs = startMs;
  const clock = { nowMs: () => nowMs, advance: (ms: number) => { nowMs += ms; } };
  return { metrics: new BerthMetrics({ clock, collectDefault: false, monitorEventLoop: false }), clock };
}

function sampleValue(text: string, line: string): number | undefined {
  const found = text.split('\n').find((candidate) => candidate.startsWith(line + ' '));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

describe('BerthMetrics', () => {
  test('counters, errors by code and histograms appear in the exposition', async () => {
    const { metrics } = metricsAt(1_700_000_000_000);
    metrics.recordAction('SendMessage', 'orders', undefined, 3);
    metrics.recordAction('SendMessage', 'orders', 'InvalidParameterValue', 1);
    metrics.recordMessages('orders', 'sent', 5);
    metrics.recordMessages('orders', 'deleted', 2);
    metrics.recordEndToEndLatency('orders', 1500);
    metrics.recordFsync('orders/0', 2, 17);
    metrics.setQueueGauges('orders', { visible: 3, inflight: 1, delayed: 4, oldestMessageAgeSeconds: 12 });
    metrics.setReplicationLag('orders/0', 9);
    const { contentType, body } = await metrics.exposition();
    assert.match(contentType, /^text\/plain/);
    assert.equal(sampleValue(body, 'berth_requests_total{action="SendMessage",queue="orders"}'), 2);
    assert.equal(sampleValue(body, 'berth_request_errors_total{action="SendMessage",queue="orders",code="InvalidParameterValue"}'), 1);
    assert.equal(sampleValue(body, 'berth_request_duration_seconds_count{action="SendMessage"}'), 2);
    assert.equal(sampleValue(body, 'berth_messages_total{queue="orders",kind="sent"}'), 5);
    assert.equal(sampleValue(body, 'berth_messages_total{queue="orders",kind="deleted"}'), 2);
    assert.equal(sampleValue(body, 'berth_message_end_to_end_seconds_sum{queue="orders"}'), 1.5);
    assert.equal(sampleValue(body, 'berth_storage_fsync_batch_records_sum{partition="orders/0"}'), 17);
    assert.equal(sampleValue(body, 'berth_queue_messages{queue="orders",state="visible"}'), 3);
    assert.equal(sampleValue(body, 'berth_queue_messages{queue="orders",state="delayed"}'), 4);
    assert.equal(sampleValue(body, 'berth_queue_oldest_message_age_seconds{queue="orders"}'), 12);
    assert.equal(sampleValue(body, 'berth_replication_lag_records{partition="orders/0"}'), 9);
    assert.doesNotMatch(body, /^process_/m, 'default metrics are off');
  });

  test('retainQueues drops the gauges and series of queues that went away', async () => {
    const { metrics } = metricsAt(1_700_000_000_000);
    metrics.setQueueGauges('kept', { visible: 1, inflight: 0, delayed: 0, oldestMessageAgeSeconds: 0 });
    metrics.setQueueGauges('gone', { visible: 1, inflight: 0, delayed: 0, oldestMessageAgeSeconds: 0 });
    metrics.recordMessages('gone', 'sent', 1);
    metrics.retainQueues(['kept']);
    const { body } = await metrics.exposition();
    assert.match(body, /berth_queue_messages\{queue="kept",state="visible"\} 1/);
    assert.doesNotMatch(body, /berth_queue_messages\{queue="gone"/);
    assert.deepEqual(metrics.queueSeries('gone', 10).sent, new Array(10).fill(0));
  });

  test('rolling series put counts in their second and rates leave out the current second', () => {
    const { metrics, clock } = metricsAt(1_700_000_000_250);
    metrics.recordMessages('orders', 'sent', 10);
    clock.advance(1000);
    metrics.recordMessages('orders', 'sent', 20);
    metrics.recordMessages('orders', 'received', 4);
    clock.advance(1000);
    metrics.recordMessages('orders', 'sent', 1000); // the current second: not in rates yet
    const series = metrics.queueSeries('orders', 4);
    assert.equal(series.stepMs, 1000);
    assert.equal(series.startMs, 1_699_999_998_000);
    assert.deepEqual(series.sent, [0, 0, 10, 20], 'the current second (1000) is not shown yet');
    assert.deepEqual(series.received, [0, 0, 0, 4]);
    const rates = metrics.queueRates('orders', 10);
    assert.equal(rates.sentPerSecond, 3);
    assert.equal(rates.receivedPerSecond, 0.4);
    assert.equal(metrics.serverRates(10).sentPerSecond, 3);
    clock.advance(1000);
    assert.deepEqual(metrics.queueSeries('orders', 4).sent, [0, 10, 20, 1000]);
  });

  test('a slot reused after the ring wraps starts from zero', () => {
    const { metrics, clock } = metricsAt(1_700_000_000_000);
    metrics.recordMessages('orders', 'sent', 7);
    metrics.recordAction('SendMessage', 'orders', undefined, 5000);
    clock.advance(300_000); // same slot, 300 seconds later
    metrics.recordMessages('orders', 'sent', 1);
    metrics.recordAction('SendMessage', 'orders', undefined, 1);
    clock.advance(1000);
    const series = metrics.queueSeries('orders', 300);
    assert.equal(series.sent.reduce((sum, value) => sum + value, 0), 1);
    const server = metrics.serverSeries(300);
    assert.equal(server.requests.reduce((sum, value) => sum + value, 0), 1);
    const p99 = server.latencyP99Ms[server.latencyP99Ms.length - 1];
    assert.ok(p99 !== null && p99 !== undefined && p99 < 2, `p99 ${p99} must not include the 5 s request of 300 s ago`);
  });

  test('per-second latency quantiles are within one bucket of the truth, null without requests', () => {
    const { metrics, clock } = metricsAt(1_700_000_000_000);
    for (let index = 1; index <= 100; index += 1) metrics.recordAction('ReceiveMessage', 'orders', undefined, index);
    clock.advance(2000);
    const series = metrics.serverSeries(5);
    assert.equal(series.requests.length, 5);
    const withRequests = series.requests.findIndex((count) => count > 0);
    assert.equal(series.requests[withRequests], 100);
    const p50 = series.latencyP50Ms[withRequests];
    const p99 = series.latencyP99Ms[withRequests];
    assert.ok(p50 !== null && p50 !== undefined && p50 >= 50 && p50 <= 50 * 1.19, `p50 ${p50}`);
    assert.ok(p99 !== null && p99 !== undefined && p99 >= 99 && p99 <= 99 * 1.19, `p99 ${p99}`);
    assert.equal(series.latencyP50Ms[series.latencyP50Ms.length - 1], null);
    assert.equal(series.errors.reduce((sum, value) => sum + value, 0), 0);
  });

  test('two instances keep separate registries', async () => {
    const first = metricsAt(0).metrics;
    const second = metricsAt(0).metrics;
    first.recordMessages('a', 'sent', 1);
    assert.doesNotMatch((await second.exposition()).body, /queue="a"/);
  });

  test('event-loop delay gauge is exported when monitoring is on', async () => {
    const metrics = new BerthMetrics({ collectDefault: true });
    try {
      const { body } = await metrics.exposition();
      assert.match(body, /^berth_event_loop_delay_seconds\{quantile="0.99"\} /m);
      assert.match(body, /^process_cpu_user_seconds_total /m);
    } finally {
      metrics.close();
    }
  });
});
