// Bounded HTTP fuzzing of a real `berth serve` over raw sockets (node:net): random and
// mutated requests (garbage bytes, mutated SQS JSON and Query bodies, odd paths, headers
// and content lengths, huge headers, bad chunked encoding) and slowloris-ish partial
// requests that the test abandons after a short bound.
//
// Checked:
// - every complete request is answered (an HTTP status line) or the connection is closed
//   within the bound; none hangs;
// - no request is answered with 500 (a bad input is an SQS error, never an internal one);
// - the server stays up: the process is alive, GET /health/live is 200 after each round,
//   and a normal SDK create/send/receive still works at the end.
//
// Seed: BERTH_FUZZ_SEED (default fixed); the seed and the request are in every failure.

import assert from 'node:assert/strict';
import { SeededRandom } from '../src/core/random.js';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { httpRequest, sqsClient, startBerth, type BerthProcess } from './harness/server.js';
import { accountId } from './harness/sqs.js';

const seed = Number(process.env.BERTH_FUZZ_SEED ?? 20240601);
const requestsPerRound = 60;
const rounds = 6;
const concurrency = 8;
const answerBoundMs = 25_000;
const partialBoundMs = 300;

let berth: BerthProcess;
let sqs: SQSClient;
let queueUrl: string;

before(async () => {
  berth = await startBerth();
  sqs = sqsClient(berth.url);
  queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'fuzz' }))).QueueUrl!;
  await sqs.send(new CreateQueueCommand({ QueueName: 'fuzz.fifo', Attributes: { FifoQueue: 'true' } }));
});

after(async () => {
  sqs?.destroy();
  await berth?.stop();
});

/** A seeded generator (the project's SeededRandom), so a failing seed replays. */
function seededRandom(seed: number): () => number {
  const random = new SeededRandom(seed);
  return () => random.next();
}

interface Case {
  description: string;
  bytes: Buffer;
  /** A complete request: must be answered or closed within the bound. */
  complete: boolean;
  /** For partial requests: send in pieces this far apart (slowloris). */
  dripMs?: number;
}

type Outcome = { kind: 'answered'; status: number; head: string } | { kind: 'closed' } | { kind: 'timeout' };

/** Writes the bytes (or drips them) and waits for a status line, a close, or the bound. */
function exchange(port: number, testCase: Case): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let received = Buffer.alloc(0);
    let settled = false;
    const bound = testCase.complete ? answerBoundMs : partialBoundMs;
    const finish = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearInterval(drip);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ kind: 'timeout' }), bound);
    let drip: NodeJS.Timeout | undefined;
    socket.on('error', () => finish({ kind: 'closed' }));
    socket.on('close', () => {
      const head = received.toString('latin1');
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      finish(status ? { kind: 'answered', status: Number(status[1]), head: head.slice(0, 300) } : { kind: 'closed' });
    });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const head = received.toString('latin1');
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      if (status && head.includes('\r\n\r\n')) finish({ kind: 'answered', status: Number(status[1]), head: head.slice(0, 300) });
    });
    socket.on('connect', () => {
      if (testCase.dripMs === undefined) {
        socket.write(testCase.bytes);
        return;
      }
      let offset = 0;
      drip = setInterval(() => {
        if (offset >= testCase.bytes.length || socket.destroyed) return;
        socket.write(testCase.bytes.subarray(offset, offset + 3));
        offset += 3;
      }, testCase.dripMs);
    });
  });
}

function generateCases(random: () => number, port: number): Case[] {
  const integer = (below: number) => Math.floor(random() * below);
  const pick = <T>(items: readonly T[]): T => items[integer(items.length)]!;
  const randomBytes = (length: number) => Buffer.from(Array.from({ length }, () => integer(256)));
  const host = `127.0.0.1:${port}`;

  const jsonActions: Array<[string, Record<string, unknown>]> = [
    ['CreateQueue', { QueueName: 'fuzz-made', Attributes: { VisibilityTimeout: '10' }, tags: { a: 'b' } }],
    ['SendMessage', { QueueUrl: queueUrl, MessageBody: 'hello', MessageAttributes: { k: { DataType: 'String', StringValue: 'v' } }, DelaySeconds: 0 }],
    ['SendMessageBatch', { QueueUrl: queueUrl, Entries: [{ Id: 'a', MessageBody: 'x' }, { Id: 'b', MessageBody: 'y' }] }],
    ['SendMessage', { QueueUrl: `http://${host}/${accountId}/fuzz.fifo`, MessageBody: 'f', MessageGroupId: 'g', MessageDeduplicationId: 'd' }],
    ['ReceiveMessage', { QueueUrl: queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 0, MessageAttributeNames: ['All'] }],
    ['GetQueueAttributes', { QueueUrl: queueUrl, AttributeNames: ['All'] }],
    ['SetQueueAttributes', { QueueUrl: queueUrl, Attributes: { DelaySeconds: '0' } }],
    ['ListQueues', { QueueNamePrefix: 'fu', MaxResults: 5 }],
    ['GetQueueUrl', { QueueName: 'fuzz' }],
    ['DeleteMessage', { QueueUrl: queueUrl, ReceiptHandle: 'abc' }],
    ['ChangeMessageVisibilityBatch', { QueueUrl: queueUrl, Entries: [{ Id: 'a', ReceiptHandle: 'h', VisibilityTimeout: 5 }] }],
    ['TagQueue', { QueueUrl: queueUrl, Tags: { x: 'y' } }],
    ['ListMessageMoveTasks', { SourceArn: `arn:aws:sqs:us-east-1:${accountId}:fuzz` }],
  ];
  const queryBodies = [
    `Action=SendMessage&Version=2012-11-05&QueueUrl=${encodeURIComponent(queueUrl)}&MessageBody=hi&MessageAttribute.1.Name=k&MessageAttribute.1.Value.DataType=String&MessageAttribute.1.Value.StringValue=v`,
    `Action=ReceiveMessage&Version=2012-11-05&QueueUrl=${encodeURIComponent(queueUrl)}&MaxNumberOfMessages=10&VisibilityTimeout=0`,
    `Action=CreateQueue&Version=2012-11-05&QueueName=fuzz-q&Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=5`,
    `Action=GetQueueAttributes&Version=2012-11-05&QueueUrl=${encodeURIComponent(queueUrl)}&AttributeName.1=All`,
    `Action=SendMessageBatch&Version=2012-11-05&QueueUrl=${encodeURIComponent(queueUrl)}&SendMessageBatchRequestEntry.1.Id=a&SendMessageBatchRequestEntry.1.MessageBody=b`,
    `Action=ListQueues&Version=2012-11-05`,
  ];
  const oddValues: unknown[] = [null, -1, 1e308, 'x'.repeat(300_000), [], {}, [[[[[]]]]], true, '\u0000', '\ud800', 'A'.repeat(81), { DataType: 'Binary' }, 43_201, '../../etc/passwd'];

  function mutateJsonValue(value: unknown, depth = 0): unknown {
    if (random() < 0.25 || depth > 4) return pick(oddValues);
    if (Array.isArray(value)) return value.map((item) => mutateJsonValue(item, depth + 1));
    if (value !== null && typeof value === 'object') {
      const result: Record<string, unknown> = {};
      for (const [key, inner] of Object.entries(value)) {
        if (random() < 0.1) continue; // drop a member
        result[random() < 0.05 ? `${key}X` : key] = random() < 0.5 ? mutateJsonValue(inner, depth + 1) : inner;
      }
      return result;
    }
    return value;
  }

  function mutateBytes(bytes: Buffer): Buffer {
    const copy = Buffer.from(bytes);
    const mutations = 1 + integer(4);
    let result = copy;
    for (let index = 0; index < mutations; index += 1) {
      const choice = integer(4);
      if (choice === 0 && result.length > 0) result[integer(result.length)] = integer(256);
      else if (choice === 1) result = result.subarray(0, integer(result.length + 1));
      else if (choice === 2) {
        const at = integer(result.length + 1);
        result = Buffer.concat([result.subarray(0, at), randomBytes(1 + integer(20)), result.subarray(at)]);
      } else result = Buffer.concat([result, result.subarray(0, integer(result.length + 1))]);
    }
    return result;
  }

  function request(method: string, path: string, headers: Array<[string, string]>, body: Buffer): Buffer {
    const lines = [`${method} ${path} HTTP/1.1`, `Host: ${host}`, ...headers.map(([name, value]) => `${name}: ${value}`), `Content-Length: ${body.length}`, 'Connection: close', '', ''];
    return Buffer.concat([Buffer.from(lines.join('\r\n'), 'latin1'), body]);
  }

  const cases: Case[] = [];
  const generators: Array<() => Case> = [
    () => {
      const [action, input] = pick(jsonActions);
      const body = Buffer.from(JSON.stringify(mutateJsonValue(input)), 'utf8');
      return { description: `JSON ${action} with mutated values`, complete: true, bytes: request('POST', '/', [['Content-Type', 'application/x-amz-json-1.0'], ['X-Amz-Target', `AmazonSQS.${action}`]], body) };
    },
    () => {
      const [action, input] = pick(jsonActions);
      const body = mutateBytes(Buffer.from(JSON.stringify(input), 'utf8'));
      return { description: `JSON ${action} with mutated bytes`, complete: true, bytes: request('POST', '/', [['Content-Type', 'application/x-amz-json-1.0'], ['X-Amz-Target', `AmazonSQS.${action}`]], body) };
    },
    () => {
      const target = pick(['AmazonSQS.NoSuchAction', 'AmazonSQS.', 'Other.SendMessage', '', 'AmazonSQS.SendMessage\u00ff', `AmazonSQS.${'x'.repeat(5000)}`]);
      return { description: `odd X-Amz-Target ${JSON.stringify(target.slice(0, 40))}`, complete: true, bytes: request('POST', '/', [['Content-Type', 'application/x-amz-json-1.0'], ['X-Amz-Target', target]], Buffer.from('{}')) };
    },
    () => {
      const body = mutateBytes(Buffer.from(pick(queryBodies), 'latin1'));
      return { description: 'Query form with mutated bytes', complete: true, bytes: request('POST', pick(['/', `/${accountId}/fuzz`]), [['Content-Type', 'application/x-www-form-urlencoded']], body) };
    },
    () => {
      const body = Buffer.from(`${pick(queryBodies)}&${pick(['Action=Bogus', 'MaxNumberOfMessages=99999999999999999999', 'Attribute.999999.Name=x', 'MessageAttribute.1.Value.DataType=Binary', 'QueueUrl=%zz', 'a=%', '&&&=&='])}`, 'latin1');
      return { description: 'Query form with an odd parameter', complete: true, bytes: request('POST', '/', [['Content-Type', 'application/x-www-form-urlencoded']], body) };
    },
    () => {
      const path = pick(['/../../etc/passwd', '/%zz', `/${'a'.repeat(10_000)}`, '/?Action=ListQueues', '/health/../health/live', '*', '/000000000000/fuzz?Action=ReceiveMessage', '//', '/\u00e9']);
      const method = pick(['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'HEAD', 'PATCH', 'BREW', 'G\u00c9T']);
      return { description: `${method} ${JSON.stringify(path.slice(0, 40))}`, complete: true, bytes: request(method, path, [['Content-Type', pick(['application/x-amz-json-1.0', 'text/plain', 'application/x-www-form-urlencoded', ''])]], randomBytes(integer(64))) };
    },
    () => ({ description: 'garbage bytes', complete: true, bytes: Buffer.concat([randomBytes(1 + integer(2_000)), Buffer.from('\r\n\r\n')]) }),
    () => ({
      description: 'huge header',
      complete: true,
      bytes: Buffer.from(`POST / HTTP/1.1\r\nHost: ${host}\r\nX-Big: ${'b'.repeat(100_000 + integer(200_000))}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`, 'latin1'),
    }),
    () => ({
      description: 'many headers',
      complete: true,
      bytes: Buffer.from(`GET /health/live HTTP/1.1\r\nHost: ${host}\r\n${Array.from({ length: 3_000 }, (_, index) => `X-H${index}: v`).join('\r\n')}\r\nConnection: close\r\n\r\n`, 'latin1'),
    }),
    () => {
      const length = pick(['-1', 'abc', '1e3', '99999999999999999999', '10, 20', '0x10']);
      return { description: `Content-Length ${length}`, complete: true, bytes: Buffer.from(`POST / HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: AmazonSQS.ListQueues\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n{}`, 'latin1') };
    },
    () => ({
      description: 'bad chunked encoding',
      complete: true,
      bytes: Buffer.from(`POST / HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: AmazonSQS.ListQueues\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${pick(['zz\r\n{}\r\n0\r\n\r\n', '2\r\n{}\r\n0\r\n\r\n', '-5\r\n\r\n', '2\r\n{}\r\n0\r\nX-Trailer: \u0000\r\n\r\n'])}`, 'latin1'),
    }),
    () => ({
      // A chunk that announces (far) more than is sent is a partial request: abandoned.
      description: 'huge chunk size (abandoned)',
      complete: false,
      bytes: Buffer.from(`POST / HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: AmazonSQS.ListQueues\r\nTransfer-Encoding: chunked\r\n\r\n${pick(['ffffffffffffffff', '7fffffff', '100000'])}\r\n{}\r\n0\r\n\r\n`, 'latin1'),
    }),
    () => ({
      description: 'gzip Content-Encoding with garbage',
      complete: true,
      bytes: request('POST', '/', [['Content-Type', 'application/x-amz-json-1.0'], ['X-Amz-Target', 'AmazonSQS.ListQueues'], ['Content-Encoding', 'gzip']], randomBytes(40)),
    }),
    () => {
      // Claims more body than it sends: the server waits; the test abandons it.
      const full = request('POST', '/', [['Content-Type', 'application/x-amz-json-1.0'], ['X-Amz-Target', 'AmazonSQS.ListQueues']], Buffer.from('{}'));
      return { description: 'short body (abandoned)', complete: false, bytes: Buffer.from(full.toString('latin1').replace('Content-Length: 2', 'Content-Length: 2000'), 'latin1') };
    },
    () => ({ description: 'slowloris headers (abandoned)', complete: false, dripMs: 20, bytes: Buffer.from(`POST / HTTP/1.1\r\nHost: ${host}\r\nX-Slow: ${'s'.repeat(500)}\r\n`, 'latin1') }),
    () => ({ description: 'connect and say nothing (abandoned)', complete: false, bytes: Buffer.alloc(0) }),
  ];
  for (let index = 0; index < requestsPerRound; index += 1) cases.push(pick(generators)());
  return cases;
}

test(`raw HTTP fuzzing (seed ${seed}): every complete request answered or closed, no 500, server stays up`, async (t) => {
  const random = seededRandom(seed);
  const problems: string[] = [];
  const outcomes = new Map<string, number>();
  for (let round = 0; round < rounds; round += 1) {
    const cases = generateCases(random, berth.port);
    let next = 0;
    const worker = async () => {
      while (next < cases.length) {
        const testCase = cases[next]!;
        const number = next;
        next += 1;
        const outcome = await exchange(berth.port, testCase);
        const key = outcome.kind === 'answered' ? `HTTP ${outcome.status}` : outcome.kind;
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
        const where = `seed ${seed} round ${round} case ${number} (${testCase.description}): ${JSON.stringify(testCase.bytes.subarray(0, 300).toString('latin1'))}`;
        if (testCase.complete && outcome.kind === 'timeout') problems.push(`no answer and no close within ${answerBoundMs} ms: ${where}`);
        if (outcome.kind === 'answered' && outcome.status === 500) problems.push(`HTTP 500: ${where}\nresponse: ${outcome.head}`);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    assert.equal(berth.exitInfo, undefined, `seed ${seed} round ${round}: the server process died; log tail:\n${berth.logs().slice(-4_000)}`);
    const live = await httpRequest(berth.url, { path: '/health/live' });
    assert.equal(live.status, 200, `seed ${seed} round ${round}: /health/live after the round`);
  }
  t.diagnostic(`outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
  assert.deepEqual(problems, [], `problems found:\n${problems.join('\n')}`);

  // A normal client still works.
  const sent = await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'still fine' }));
  assert.ok(sent.MessageId);
  let found = false;
  for (let attempt = 0; attempt < 20 && !found; attempt += 1) {
    const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 30 }));
    found = (received.Messages ?? []).some((message) => message.MessageId === sent.MessageId);
  }
  assert.ok(found, 'the message sent after the fuzzing is received');
});
