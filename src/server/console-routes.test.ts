import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createConsoleHandler, parseConsoleCredentials, type HttpRequest, type HttpResponse } from './console-routes.js';
import { BerthMetrics } from './metrics.js';
import { BerthError, type ErrorCode } from '../protocol/errors.js';
import type { QueueService } from '../broker/service.js';

// The console's development in-memory QueueService (plain JS, shared with its dev server).
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const memoryServicePath = path.join(repoRoot, 'src', 'console', 'dev', 'memory-queue-service.mjs');

async function newService(): Promise<QueueService> {
  const module = (await import(memoryServicePath)) as { MemoryQueueService: new (options: { makeError: (code: string, message: string) => Error }) => QueueService };
  return new module.MemoryQueueService({ makeError: (code, message) => new BerthError(code as ErrorCode, message) });
}

function request(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): HttpRequest {
  return {
    method,
    url,
    headers: { ...(method === 'GET' ? {} : { 'x-berth-console': '1' }), ...headers },
    body: body === undefined ? Buffer.alloc(0) : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
  };
}

function jsonOf(response: HttpResponse | undefined): any {
  assert.ok(response !== undefined, 'the console handler must answer');
  assert.match(response.headers['content-type'] ?? '', /^application\/json/);
  return JSON.parse(response.body.toString('utf8'));
}

function basic(accessKeyId: string, secret: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${accessKeyId}:${secret}`).toString('base64')}` };
}

describe('console handler', () => {
  let staticDirectory: string;
  const metricsList: BerthMetrics[] = [];

  before(() => {
    staticDirectory = mkdtempSync(path.join(tmpdir(), 'berth-console-static-'));
    mkdirSync(path.join(staticDirectory, 'assets'));
    writeFileSync(path.join(staticDirectory, 'index.html'), '<!doctype html><title>Berth console</title>');
    writeFileSync(path.join(staticDirectory, 'assets', 'index-abc123.js'), 'console.log(1)');
    writeFileSync(path.join(staticDirectory, 'assets', 'index-abc123.css'), 'body{}');
  });
  after(() => {
    rmSync(staticDirectory, { recursive: true, force: true });
    for (const metrics of metricsList) metrics.close();
  });

  async function setup(options: { authorize?: (request: HttpRequest) => boolean; staticDirectory?: string } = {}) {
    const service = await newService();
    const metrics = new BerthMetrics({ collectDefault: false, monitorEventLoop: false });
    metricsList.push(metrics);
    const handle = createConsoleHandler({ service, metrics, staticDirectory: options.staticDirectory ?? staticDirectory, ...(options.authorize ? { authorize: options.authorize } : {}) });
    return { service, metrics, handle };
  }

  test('leaves paths it does not own to the next handler', async () => {
    const { handle } = await setup();
    for (const url of ['/', '/health/ready', '/000000000000/orders', '/consoles', '/metricsx']) {
      assert.equal(await handle(request('GET', url)), undefined, url);
    }
  });

  test('create, list, send, peek without changing visibility, purge', async () => {
    const { handle } = await setup();
    const created = await handle(request('POST', '/console/api/queues', { name: 'orders' }));
    assert.equal(created?.status, 201);
    assert.equal(jsonOf(created).arn, 'arn:aws:sqs:us-east-1:000000000000:orders');

    const sent = await handle(request('POST', '/console/api/queues/orders/messages', { body: 'hello' }));
    assert.equal(sent?.status, 201);
    assert.equal(typeof jsonOf(sent).messageId, 'string');

    const list = jsonOf(await handle(request('GET', '/console/api/queues')));
    assert.deepEqual(list.queues.map((queue: { name: string }) => queue.name), ['orders']);
    assert.deepEqual(list.queues[0].counts, { visible: 1, inflight: 0, delayed: 0, oldestMessageAgeSeconds: 0 });
    assert.equal(list.queues[0].series.sent.length, 60);

    const peeked = jsonOf(await handle(request('GET', '/console/api/queues/orders/messages?max=5')));
    assert.equal(peeked.messages.length, 1);
    assert.equal(peeked.messages[0].body, 'hello');
    assert.equal(peeked.messages[0].receiveCount, 0);
    const detail = jsonOf(await handle(request('GET', '/console/api/queues/orders')));
    assert.equal(detail.counts.visible, 1, 'peek leaves the message visible');
    assert.equal(detail.attributes.ApproximateNumberOfMessages, '1');
    assert.equal(detail.attributes.QueueArn, 'arn:aws:sqs:us-east-1:000000000000:orders');

    assert.equal((await handle(request('POST', '/console/api/queues/orders/purge')))?.status, 200);
    assert.equal(jsonOf(await handle(request('GET', '/console/api/queues/orders'))).counts.visible, 0);
    const again = await handle(request('POST', '/console/api/queues/orders/purge'));
    assert.equal(again?.status, 403);
    assert.equal(jsonOf(again).error.code, 'PurgeQueueInProgress');
  });

  test('a FIFO queue gets FifoQueue=true and needs a group id to send', async () => {
    const { handle, service } = await setup();
    assert.equal((await handle(request('POST', '/console/api/queues', { name: 'jobs.fifo' })))?.status, 201);
    assert.equal((await service.describeQueue('jobs.fifo')).attributes['FifoQueue'], 'true');
    const missing = await handle(request('POST', '/console/api/queues/jobs.fifo/messages', { body: 'x' }));
    assert.equal(missing?.status, 400);
    assert.equal(jsonOf(missing).error.code, 'MissingParameter');
  });

  test('rejects bad input with JSON errors and sensible statuses', async () => {
    const { handle } = await setup();
    const cases: Array<[HttpRequest, number, string]> = [
      [request('POST', '/console/api/queues', { name: 'bad name!' }), 400, 'InvalidParameterValue'],
      [request('POST', '/console/api/queues', '{not json'), 400, 'InvalidParameterValue'],
      [request('POST', '/console/api/queues', { name: 'a', surprise: 1 }), 400, 'InvalidParameterValue'],
      [request('POST', '/console/api/queues/orders/messages', { body: '' }), 400, 'InvalidParameterValue'],
      [request('GET', '/console/api/queues/missing'), 400, 'QueueDoesNotExist'],
      [request('GET', '/console/api/queues/orders/messages?max=0'), 400, 'InvalidParameterValue'],
      [request('GET', '/console/api/nothing-here'), 404, 'NotFound'],
      [request('PATCH', '/console/api/queues'), 405, 'MethodNotAllowed'],
      [request('POST', '/console/api/queues', { name: 'x' }, { 'x-berth-console': '' }), 403, 'AccessDenied'],
      [request('POST', '/console/api/queues', 'x'.repeat(2 * 1024 * 1024 + 1)), 413, 'PayloadTooLarge'],
    ];
    for (const [input, status, code] of cases) {
      const response = await handle(input);
      assert.equal(response?.status, status, `${input.method} ${input.url}`);
      assert.equal(jsonOf(response).error.code, code, `${input.method} ${input.url}`);
      assert.equal(typeof jsonOf(response).error.message, 'string');
    }
    const notAllowed = await handle(request('PATCH', '/console/api/queues'));
    assert.equal(notAllowed?.headers['allow'], 'GET, POST');
  });

  test('edits mutable attributes only', async () => {
    const { handle } = await setup();
    await handle(request('POST', '/console/api/queues', { name: 'orders' }));
    const saved = await handle(request('PUT', '/console/api/queues/orders/attributes', { attributes: { VisibilityTimeout: '45' } }));
    assert.equal(saved?.status, 200);
    assert.equal(jsonOf(saved).attributes.VisibilityTimeout, '45');
    const createOnly = await handle(request('PUT', '/console/api/queues/orders/attributes', { attributes: { FifoQueue: 'true' } }));
    assert.equal(createOnly?.status, 400);
    assert.equal(jsonOf(createOnly).error.code, 'InvalidAttributeName');
    const empty = await handle(request('PUT', '/console/api/queues/orders/attributes', { attributes: {} }));
    assert.equal(empty?.status, 400);
  });

  test('dead-letter relations and redrive', async () => {
    const { handle } = await setup();
    await handle(request('POST', '/console/api/queues', { name: 'orders-dlq' }));
    const policy = JSON.stringify({ deadLetterTargetArn: 'arn:aws:sqs:us-east-1:000000000000:orders-dlq', maxReceiveCount: 3 });
    await handle(request('POST', '/console/api/queues', { name: 'orders', attributes: { RedrivePolicy: policy } }));
    const source = jsonOf(await handle(request('GET', '/console/api/queues/orders')));
    assert.equal(source.deadLetterQueue, 'orders-dlq');
    assert.equal(source.maxReceiveCount, 3);
    const deadLetter = jsonOf(await handle(request('GET', '/console/api/queues/orders-dlq')));
    assert.deepEqual(deadLetter.deadLetterSourceQueues, ['orders']);
    const redrive = await handle(request('POST', '/console/api/queues/orders-dlq/redrive', {}));
    assert.equal(redrive?.status, 201);
    assert.equal(typeof jsonOf(redrive).taskHandle, 'string');
    const badDestination = await handle(request('POST', '/console/api/queues/orders-dlq/redrive', { destinationQueue: 'nowhere' }));
    assert.equal(jsonOf(badDestination).error.code, 'QueueDoesNotExist');
  });

  test('cluster status defaults to one healthy node and one partition per queue', async () => {
    const { handle } = await setup();
    await handle(request('POST', '/console/api/queues', { name: 'a' }));
    await handle(request('POST', '/console/api/queues', { name: 'b' }));
    const status = jsonOf(await handle(request('GET', '/console/api/cluster')));
    assert.equal(status.mode, 'single-node');
    assert.equal(status.nodes.length, 1);
    assert.equal(status.nodes[0].health, 'healthy');
    assert.deepEqual(status.partitions.map((partition: { queue: string }) => partition.queue), ['a', 'b']);
  });

  test('series and /metrics reflect recorded traffic and current queue depth', async () => {
    const { handle, metrics } = await setup();
    await handle(request('POST', '/console/api/queues', { name: 'orders' }));
    await handle(request('POST', '/console/api/queues/orders/messages', { body: 'one' }));
    await handle(request('POST', '/console/api/queues/orders/messages', { body: 'two' }));
    metrics.recordAction('SendMessage', 'orders', undefined, 2);
    const series = jsonOf(await handle(request('GET', '/console/api/series?seconds=60')));
    assert.equal(series.series.requests.length, 60);
    assert.equal(series.series.latencyP50Ms.length, 60);
    const scraped = await handle(request('GET', '/metrics'));
    assert.equal(scraped?.status, 200);
    assert.match(scraped?.headers['content-type'] ?? '', /^text\/plain/);
    const text = scraped?.body.toString('utf8') ?? '';
    assert.match(text, /^berth_queue_messages\{queue="orders",state="visible"\} 2$/m);
    assert.match(text, /^berth_requests_total\{action="SendMessage",queue="orders"\} 1$/m);
  });

  test('with authorize: API and metrics need credentials, session and static files do not', async () => {
    const { handle } = await setup({ authorize: (input) => parseConsoleCredentials(input)?.secretAccessKey === 'right' });
    const anonymous = await handle(request('GET', '/console/api/queues'));
    assert.equal(anonymous?.status, 401);
    assert.equal(jsonOf(anonymous).error.code, 'Unauthorized');
    assert.equal(anonymous?.headers['www-authenticate'], undefined, 'no browser popup for the API');
    assert.equal((await handle(request('GET', '/console/api/queues', undefined, basic('AKID', 'wrong'))))?.status, 401);
    assert.equal((await handle(request('GET', '/console/api/queues', undefined, basic('AKID', 'right'))))?.status, 200);
    const session = jsonOf(await handle(request('GET', '/console/api/session')));
    assert.deepEqual([session.authRequired, session.authenticated], [true, false]);
    const signedIn = jsonOf(await handle(request('GET', '/console/api/session', undefined, basic('AKID', 'right'))));
    assert.deepEqual([signedIn.authenticated, signedIn.accessKeyId], [true, 'AKID']);
    const metrics = await handle(request('GET', '/metrics'));
    assert.equal(metrics?.status, 401);
    assert.match(metrics?.headers['www-authenticate'] ?? '', /^Basic /);
    assert.equal((await handle(request('GET', '/metrics', undefined, basic('AKID', 'right'))))?.status, 200);
    assert.equal((await handle(request('GET', '/console/')))?.status, 200);
  });

  test('parseConsoleCredentials reads Basic credentials and refuses other schemes', () => {
    assert.deepEqual(parseConsoleCredentials(request('GET', '/', undefined, basic('AKID', 'se:cret'))), { accessKeyId: 'AKID', secretAccessKey: 'se:cret' });
    assert.equal(parseConsoleCredentials(request('GET', '/', undefined, { authorization: 'AWS4-HMAC-SHA256 Credential=x' })), undefined);
    assert.equal(parseConsoleCredentials(request('GET', '/')), undefined);
  });

  test('serves the SPA: redirect, index without cache, hashed assets cached, fallback, no traversal', async () => {
    const { handle } = await setup();
    const bare = await handle(request('GET', '/console'));
    assert.equal(bare?.status, 308);
    assert.equal(bare?.headers['location'], '/console/');
    const index = await handle(request('GET', '/console/'));
    assert.equal(index?.status, 200);
    assert.equal(index?.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(index?.headers['cache-control'], 'no-cache');
    assert.match(index?.body.toString() ?? '', /Berth console/);
    const script = await handle(request('GET', '/console/assets/index-abc123.js'));
    assert.equal(script?.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.match(script?.headers['cache-control'] ?? '', /immutable/);
    assert.equal((await handle(request('GET', '/console/assets/index-abc123.css')))?.headers['content-type'], 'text/css; charset=utf-8');
    const route = await handle(request('GET', '/console/queues/orders'));
    assert.equal(route?.status, 200);
    assert.match(route?.body.toString() ?? '', /Berth console/, 'app routes fall back to index.html');
    assert.equal((await handle(request('GET', '/console/assets/missing.js')))?.status, 404);
    for (const url of ['/console/..%2f..%2f..%2fetc%2fpasswd', '/console/%2e%2e/%2e%2e/etc/passwd', '/console/../../etc/passwd.txt']) {
      const response = await handle(request('GET', url));
      assert.ok(response !== undefined);
      assert.doesNotMatch(response.body.toString(), /root:/, url);
    }
    const head = await handle(request('HEAD', '/console/'));
    assert.equal(head?.status, 200);
    assert.equal(head?.body.length, 0);
  });

  test('says how to build the console when dist/console is missing', async () => {
    const { handle } = await setup({ staticDirectory: path.join(staticDirectory, 'does-not-exist') });
    const response = await handle(request('GET', '/console/'));
    assert.equal(response?.status, 503);
    assert.match(response?.body.toString() ?? '', /npm run build/);
  });
});
