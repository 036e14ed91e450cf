// Berth over its SQS API, two rows.
//
// "Berth SQS": a light client that speaks AWS JSON 1.0 directly over node:http keep-alive
// agents (SendMessageBatch, ReceiveMessage with long polling, DeleteMessageBatch), so the
// figure is the server's, not the SDK's.
// "Berth SQS via @aws-sdk/client-sqs": the same calls through the official SDK, with a
// small message count; it shows what an ordinary user's client costs (client-bound).
//
// The server is `node bin/berth.js serve` on loopback with its data directory in the temp
// directory. Berth acknowledges a send only after the batch's log records are fsynced.

import { Agent, request } from 'node:http';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { berthEnvironment, berthNodeArguments, freePort, launch, logTail, stopLaunched, waitUntil } from '../processes.js';
import type { Consumer, Driver, Endpoint, OutgoingMessage, Producer, QueueSpec, RunningSystem, StartContext } from './types.js';

/** The project root: dist/bench/drivers/berth-sqs.js -> three levels up. */
const projectRoot = resolve(fileURLToPath(import.meta.url), '..', '..', '..', '..');
const visibilityTimeoutSeconds = '300';

export class SqsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly statusCode: number,
  ) {
    super(`${type}: ${message}`);
  }
}

/** One AWS JSON 1.0 call; resolves with the parsed response body. */
export async function sqsCall(agent: Agent, endpoint: Endpoint, action: string, body: unknown): Promise<Record<string, unknown>> {
  const payload = Buffer.from(JSON.stringify(body));
  return await new Promise((resolvePromise, reject) => {
    const call = request(
      {
        agent,
        host: endpoint.host,
        port: endpoint.port,
        method: 'POST',
        path: '/',
        headers: {
          'Content-Type': 'application/x-amz-json-1.0',
          'X-Amz-Target': `AmazonSQS.${action}`,
          'Content-Length': payload.length,
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: Record<string, unknown> = {};
          try {
            parsed = text.length === 0 ? {} : (JSON.parse(text) as Record<string, unknown>);
          } catch {
            reject(new SqsError('UnparsableResponse', text.slice(0, 200), response.statusCode ?? 0));
            return;
          }
          if (response.statusCode !== 200) {
            reject(new SqsError(String(parsed['__type'] ?? 'HttpError'), String(parsed['message'] ?? parsed['Message'] ?? text.slice(0, 200)), response.statusCode ?? 0));
            return;
          }
          resolvePromise(parsed);
        });
      },
    );
    call.on('error', reject);
    call.end(payload);
  });
}

function sendEntries(batch: OutgoingMessage[], fifo: boolean): Array<Record<string, string>> {
  return batch.map((message, index) => {
    const entry: Record<string, string> = { Id: String(index), MessageBody: message.body };
    if (fifo) {
      entry['MessageGroupId'] = message.group ?? '0';
      entry['MessageDeduplicationId'] = String(message.id);
    }
    return entry;
  });
}

function queueUrlOf(queue: QueueSpec): string {
  const url = queue.extra?.['queueUrl'];
  if (typeof url !== 'string') throw new Error(`queue ${queue.name} has no QueueUrl`);
  return url;
}

async function startBerth(context: StartContext): Promise<RunningSystem> {
  const port = await freePort();
  const dataDirectory = join(context.directory, 'data');
  const launched = launch(process.execPath, [...berthNodeArguments(), join(projectRoot, 'bin', 'berth.js'), 'serve', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDirectory, '--log-level', 'warn'], {
    directory: context.directory,
    name: 'berth',
    cwd: projectRoot,
    env: berthEnvironment(),
  });
  const endpoint: Endpoint = { host: '127.0.0.1', port };
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  try {
    await waitUntil('berth serve to answer ListQueues', async () => {
      if (launched.child.exitCode !== null) throw new Error('exited');
      await sqsCall(agent, endpoint, 'ListQueues', {});
      return true;
    }, 60_000, 300);
  } catch (error) {
    agent.destroy();
    await stopLaunched(launched);
    throw new Error(`berth serve did not start: ${String(error)}\n${logTail(launched.logPath)}`);
  }
  return {
    endpoint,
    serverPids: () => (launched.child.pid === undefined ? [] : [launched.child.pid]),
    async createQueue(name, fifo) {
      const queueName = fifo ? `${name}.fifo` : name;
      const attributes: Record<string, string> = { VisibilityTimeout: visibilityTimeoutSeconds };
      if (fifo) attributes['FifoQueue'] = 'true';
      const response = await sqsCall(agent, endpoint, 'CreateQueue', { QueueName: queueName, Attributes: attributes });
      const queueUrl = response['QueueUrl'];
      if (typeof queueUrl !== 'string') throw new Error(`CreateQueue answered without QueueUrl: ${JSON.stringify(response)}`);
      return { name: queueName, fifo, extra: { queueUrl } };
    },
    async stop() {
      agent.destroy();
      await stopLaunched(launched, 'SIGTERM', 30_000);
    },
  };
}

const berthDurability = 'fsync (group commit) of the log before every acknowledged send, receive and delete';

export const berthSqsDriver: Driver = {
  id: 'berth',
  label: 'Berth SQS (JSON over node:http)',
  durabilityNote: berthDurability,
  fsyncPerAck: true,
  isBerth: true,
  fifo: { kind: 'groups', note: 'FIFO queue, 1,000 message groups' },
  binaries: [],
  start: startBerth,

  async producer(endpoint: Endpoint, queue: QueueSpec): Promise<Producer> {
    const agent = new Agent({ keepAlive: true, maxSockets: 64 });
    const queueUrl = queueUrlOf(queue);
    return {
      async send(batch) {
        const response = await sqsCall(agent, endpoint, 'SendMessageBatch', { QueueUrl: queueUrl, Entries: sendEntries(batch, queue.fifo) });
        const failed = response['Failed'];
        if (Array.isArray(failed) && failed.length > 0) throw new Error(`SendMessageBatch failed entries: ${JSON.stringify(failed.slice(0, 3))}`);
      },
      async close() {
        agent.destroy();
      },
    };
  },

  async consumer(endpoint: Endpoint, queue: QueueSpec): Promise<Consumer> {
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    const queueUrl = queueUrlOf(queue);
    return {
      async receive(maxMessages, waitMs) {
        const response = await sqsCall(agent, endpoint, 'ReceiveMessage', {
          QueueUrl: queueUrl,
          MaxNumberOfMessages: Math.min(10, maxMessages),
          WaitTimeSeconds: Math.min(20, Math.ceil(waitMs / 1000)),
        });
        const messages = response['Messages'];
        if (!Array.isArray(messages)) return [];
        return messages.map((message: Record<string, unknown>) => ({ body: String(message['Body']), handle: String(message['ReceiptHandle']) }));
      },
      async ack(deliveries) {
        if (deliveries.length === 0) return;
        const response = await sqsCall(agent, endpoint, 'DeleteMessageBatch', {
          QueueUrl: queueUrl,
          Entries: deliveries.map((delivery, index) => ({ Id: String(index), ReceiptHandle: delivery.handle as string })),
        });
        const failed = response['Failed'];
        if (Array.isArray(failed) && failed.length > 0) throw new Error(`DeleteMessageBatch failed entries: ${JSON.stringify(failed.slice(0, 3))}`);
      },
      async close() {
        agent.destroy();
      },
    };
  },
};

function sdkClient(endpoint: Endpoint): SQSClient {
  return new SQSClient({
    endpoint: `http://${endpoint.host}:${endpoint.port}`,
    region: 'us-east-1',
    credentials: { accessKeyId: 'bench', secretAccessKey: 'bench-secret' },
    maxAttempts: 1,
  });
}

export const berthAwsSdkDriver: Driver = {
  id: 'berth-sdk',
  label: 'Berth SQS via @aws-sdk/client-sqs (client-bound)',
  durabilityNote: berthDurability,
  fsyncPerAck: true,
  isBerth: true,
  fifo: { kind: 'groups', note: 'FIFO queue, 1,000 message groups' },
  messagesMax: 20_000,
  skipWorkloads: { W3: 'backlog is a server figure, see the Berth SQS row' },
  binaries: [],
  start: startBerth,

  async producer(endpoint: Endpoint, queue: QueueSpec): Promise<Producer> {
    const client = sdkClient(endpoint);
    const queueUrl = queueUrlOf(queue);
    return {
      async send(batch) {
        const response = await client.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: sendEntries(batch, queue.fifo) as never }));
        if ((response.Failed ?? []).length > 0) throw new Error(`SendMessageBatch failed entries: ${JSON.stringify(response.Failed?.slice(0, 3))}`);
      },
      async close() {
        client.destroy();
      },
    };
  },

  async consumer(endpoint: Endpoint, queue: QueueSpec): Promise<Consumer> {
    const client = sdkClient(endpoint);
    const queueUrl = queueUrlOf(queue);
    return {
      async receive(maxMessages, waitMs) {
        const response = await client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: Math.min(10, maxMessages), WaitTimeSeconds: Math.min(20, Math.ceil(waitMs / 1000)) }));
        return (response.Messages ?? []).map((message) => ({ body: message.Body ?? '', handle: message.ReceiptHandle ?? '' }));
      },
      async ack(deliveries) {
        if (deliveries.length === 0) return;
        const response = await client.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: deliveries.map((delivery, index) => ({ Id: String(index), ReceiptHandle: delivery.handle as string })) }));
        if ((response.Failed ?? []).length > 0) throw new Error(`DeleteMessageBatch failed entries: ${JSON.stringify(response.Failed?.slice(0, 3))}`);
      },
      async close() {
        client.destroy();
      },
    };
  },
};
