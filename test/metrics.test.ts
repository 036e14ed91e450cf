// /metrics against a real `berth serve`: SDK traffic moves the request and message
// counters, the queue gauges follow the queue's state, errors are counted by code, and
// the console's live series see the same traffic.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
} from '@aws-sdk/client-sqs';
import { httpRequest, repoRoot, sqsClient, startBerth, waitUntil, type BerthProcess } from './harness/server.js';

let server: BerthProcess | undefined;
after(async () => {
  await server?.stop();
});

/** Parses Prometheus text into "name{labels}" -> value (labels as printed by prom-client). */
function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

async function scrape(url: string): Promise<Map<string, number>> {
  const response = await httpRequest(url, { path: '/metrics' });
  assert.equal(response.status, 200);
  assert.match(String(response.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return parseExposition(response.body);
}

test('metrics follow sends, receives, deletes and errors', { timeout: 60_000 }, async () => {
  server = await startBerth({ name: 'metrics' });
  const client = sqsClient(server.url);
  try {
    const queue = 'metrics-orders';
    const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: queue }));
    assert.ok(QueueUrl);

    const before = await scrape(server.url);
    assert.equal(before.get(`berth_queue_messages{queue="${queue}",state="visible"}`), 0);
    assert.equal(before.get(`berth_messages_total{queue="${queue}",kind="sent"}`) ?? 0, 0);
    // The node's record cache budget: the default, nothing held yet.
    assert.equal(before.get('berth_record_cache_bytes{limit="max"}'), 256 * 1024 * 1024);
    assert.equal(before.get('berth_record_cache_bytes{limit="used"}'), 0);

    const entries = Array.from({ length: 5 }, (_, index) => ({ Id: `m${index}`, MessageBody: `message ${index}` }));
    const sent = await client.send(new SendMessageBatchCommand({ QueueUrl, Entries: entries }));
    assert.equal(sent.Successful?.length, 5);

    const afterSend = await scrape(server.url);
    assert.equal(afterSend.get(`berth_messages_total{queue="${queue}",kind="sent"}`), 5);
    assert.equal(afterSend.get(`berth_requests_total{action="SendMessageBatch",queue="${queue}"}`), 1);
    assert.equal(afterSend.get(`berth_request_duration_seconds_count{action="SendMessageBatch"}`), 1);
    assert.equal(afterSend.get(`berth_queue_messages{queue="${queue}",state="visible"}`), 5);
    const cachedAfterSend = afterSend.get('berth_record_cache_bytes{limit="used"}') ?? 0;
    assert.ok(cachedAfterSend > 5 * 'message 0'.length, `the five bodies are cached for receives: ${cachedAfterSend} bytes`);

    const received = await client.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 3, VisibilityTimeout: 120, WaitTimeSeconds: 0 }));
    const messages = received.Messages ?? [];
    assert.ok(messages.length >= 1, 'at least one message comes back');
    const afterReceive = await scrape(server.url);
    assert.equal(afterReceive.get(`berth_messages_total{queue="${queue}",kind="received"}`), messages.length);
    assert.equal(afterReceive.get(`berth_queue_messages{queue="${queue}",state="inflight"}`), messages.length);
    assert.equal(afterReceive.get(`berth_queue_messages{queue="${queue}",state="visible"}`), 5 - messages.length);

    const deleted = await client.send(
      new DeleteMessageBatchCommand({ QueueUrl, Entries: messages.map((message, index) => ({ Id: `d${index}`, ReceiptHandle: message.ReceiptHandle })) }),
    );
    assert.equal(deleted.Successful?.length, messages.length);
    const afterDelete = await scrape(server.url);
    assert.equal(afterDelete.get(`berth_messages_total{queue="${queue}",kind="deleted"}`), messages.length);
    assert.equal(afterDelete.get(`berth_queue_messages{queue="${queue}",state="inflight"}`), 0);
    assert.equal(afterDelete.get(`berth_queue_messages{queue="${queue}",state="visible"}`), 5 - messages.length);
    const cachedAfterDelete = afterDelete.get('berth_record_cache_bytes{limit="used"}') ?? 0;
    assert.ok(cachedAfterDelete > 0 && cachedAfterDelete < cachedAfterSend, `deleted messages leave the cache: ${cachedAfterSend} -> ${cachedAfterDelete} bytes`);
    // End-to-end latency is observed for one received message in 8, the first included.
    assert.equal(afterDelete.get(`berth_message_end_to_end_seconds_count{queue="${queue}"}`), Math.ceil(messages.length / 8));

    await assert.rejects(client.send(new GetQueueUrlCommand({ QueueName: 'metrics-missing' })), { name: 'QueueDoesNotExist' });
    const afterError = await scrape(server.url);
    const errorSamples = [...afterError.entries()].filter(([name]) => name.startsWith('berth_request_errors_total{action="GetQueueUrl"') && name.includes('code="QueueDoesNotExist"'));
    assert.equal(errorSamples.length, 1, 'the failed GetQueueUrl is counted under its error code');
    assert.equal(errorSamples[0]?.[1], 1);

    // Process metrics are there too.
    assert.ok([...afterError.keys()].some((name) => name.startsWith('berth_event_loop_delay_seconds{quantile="0.99"}')));
    assert.ok(afterError.has('process_resident_memory_bytes'));

    // The console's live series count the same traffic (summed over the window; the
    // current second is not in the series, so wait for the second to turn).
    let total = 0;
    await waitUntil(async () => {
      const series = JSON.parse((await httpRequest(server!.url, { path: '/console/api/series?seconds=60' })).body) as { series: { sent: number[] } };
      total = series.series.sent.reduce((sum, value) => sum + value, 0);
      assert.ok(total <= 5, `series counted ${total} sends`);
      return total === 5;
    }, 'the series shows the five sends once their second has passed', 10_000, 200);
  } finally {
    client.destroy();
  }
});

test('every metric docs/grafana-dashboard.json queries is exported', { timeout: 60_000 }, async () => {
  server ??= await startBerth({ name: 'metrics' });
  const exposition = (await httpRequest(server.url, { path: '/metrics' })).body;
  const declared = new Set([...exposition.matchAll(/^# TYPE (\S+) /gm)].map((match) => match[1]));
  const dashboard = JSON.parse(readFileSync(path.join(repoRoot, 'docs', 'grafana-dashboard.json'), 'utf8')) as { panels: Array<{ targets?: Array<{ expr: string }> }> };
  const queried = new Set<string>();
  for (const panel of dashboard.panels) {
    for (const target of panel.targets ?? []) {
      for (const match of target.expr.matchAll(/\b((?:berth|process|nodejs)_[a-z0-9_]+)/g)) queried.add((match[1] ?? '').replace(/_(bucket|sum|count)$/, ''));
    }
  }
  assert.ok(queried.size >= 10, `the dashboard queries ${queried.size} metrics`);
  const missing = [...queried].filter((name) => !declared.has(name));
  assert.deepEqual(missing, [], 'metrics the dashboard queries but the server does not export');
});
