// Berth over its native protocol with the Berth SDK: SEND frames of a whole batch,
// push consumption (SUBSCRIBE with adaptive credit), acks batched into ACK frames.
// The server is `berth serve` on loopback, the same binary and durability as the SQS
// rows: every acknowledged send, receive and delete is fsynced first.

import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Berth, type Message, type MessageStream } from '../../src/client/index.js';
import { berthEnvironment, berthNodeArguments, freePort, launch, logTail, stopLaunched, waitUntil } from '../processes.js';
import type { Consumer, Driver, Endpoint, Producer, QueueSpec, RunningSystem, StartContext } from './types.js';

/** The project root: dist/bench/drivers/berth-native.js -> three levels up. */
const projectRoot = resolve(fileURLToPath(import.meta.url), '..', '..', '..', '..');
const visibilityTimeoutSeconds = '300';

/** A cluster endpoint may ask for the SDK's cluster routing (each call straight to its partition's primary). */
function routingOf(endpoint: Endpoint): { cluster?: boolean } {
  return endpoint.extra?.['sdkRouting'] === true ? { cluster: true } : {};
}

function urlOf(endpoint: Endpoint): string {
  return `berth://${endpoint.host}:${endpoint.port}`;
}

/**
 * One consumer (a load worker) is one Berth client with one push subscription, however
 * many lanes take from it: that is how the SDK is meant to be used (a stream is shared by
 * any number of readers, its credit covers them all). A connection and a subscription per
 * lane made the server write to 16 sockets where 4 carry the same deliveries.
 */
interface SharedStream {
  key: string;
  berth: Berth;
  stream: MessageStream;
  users: number;
}

/** Per worker thread: each load worker imports this module on its own. */
const streams = new Map<string, Promise<SharedStream>>();

async function sharedStream(endpoint: Endpoint, queue: QueueSpec): Promise<SharedStream> {
  const key = `${urlOf(endpoint)} ${JSON.stringify(routingOf(endpoint))} ${queue.name}`;
  let opening = streams.get(key);
  if (opening === undefined) {
    opening = (async () => {
      const berth = await Berth.connect({ url: urlOf(endpoint), ...routingOf(endpoint) });
      return { key, berth, stream: berth.consume(queue.name, { prefetch: 2_000 }), users: 0 };
    })();
    streams.set(key, opening);
  }
  const shared = await opening;
  shared.users++;
  return shared;
}

async function start(context: StartContext): Promise<RunningSystem> {
  const httpPort = await freePort();
  const nativePort = await freePort();
  const dataDirectory = join(context.directory, 'data');
  const launched = launch(
    process.execPath,
    [...berthNodeArguments(), join(projectRoot, 'bin', 'berth.js'), 'serve', '--host', '127.0.0.1', '--port', String(httpPort), '--native-port', String(nativePort), '--data-dir', dataDirectory, '--log-level', 'warn'],
    { directory: context.directory, name: 'berth-native', cwd: projectRoot, env: berthEnvironment() },
  );
  const endpoint: Endpoint = { host: '127.0.0.1', port: nativePort, extra: { httpPort } };
  let admin: Berth | undefined;
  try {
    await waitUntil('berth serve to accept native connections', async () => {
      if (launched.child.exitCode !== null) throw new Error('exited');
      admin = await Berth.connect({ url: urlOf(endpoint), reconnectTimeoutMs: 1_000 });
      return true;
    }, 60_000, 300);
  } catch (error) {
    await stopLaunched(launched);
    throw new Error(`berth serve did not start: ${String(error)}\n${logTail(launched.logPath)}`);
  }
  const client = admin!;
  return {
    endpoint,
    serverPids: () => (launched.child.pid === undefined ? [] : [launched.child.pid]),
    async createQueue(name, fifo) {
      const queueName = fifo ? `${name}.fifo` : name;
      await client.createQueue(queueName, { attributes: { VisibilityTimeout: visibilityTimeoutSeconds, ...(fifo ? { FifoQueue: 'true' } : {}) } });
      return { name: queueName, fifo };
    },
    async stop() {
      await client.close();
      await stopLaunched(launched, 'SIGTERM', 30_000);
    },
  };
}

export const berthNativeDriver: Driver = {
  id: 'berth-native',
  label: 'Berth native protocol (Berth SDK)',
  durabilityNote: 'fsync (group commit) of the log before every acknowledged send, receive and delete',
  fsyncPerAck: true,
  isBerth: true,
  fifo: { kind: 'groups', note: 'FIFO queue, 1,000 message groups' },
  binaries: [],
  start,

  async producer(endpoint: Endpoint, queue: QueueSpec): Promise<Producer> {
    const berth = await Berth.connect({ url: urlOf(endpoint), ...routingOf(endpoint) });
    return {
      async send(batch) {
        const results = await berth.send(
          queue.name,
          batch.map((message) => (queue.fifo ? { body: message.body, groupId: message.group ?? '0', deduplicationId: String(message.id) } : { body: message.body })),
        );
        const failed = results.filter((result) => result instanceof Error);
        if (failed.length > 0) throw new Error(`SEND failed entries: ${failed.slice(0, 3).map(String).join('; ')}`);
      },
      async close() {
        await berth.close();
      },
    };
  },

  async consumer(endpoint: Endpoint, queue: QueueSpec): Promise<Consumer> {
    const shared = await sharedStream(endpoint, queue);
    let closed = false;
    return {
      async receive(maxMessages, waitMs) {
        const messages = await shared.stream.take(maxMessages, waitMs);
        return messages.map((message) => ({ body: message.body, handle: message }));
      },
      async ack(deliveries) {
        // One ACK frame and one promise for the whole receive.
        await shared.stream.ackAll(deliveries.map((delivery) => delivery.handle as Message));
      },
      async close() {
        if (closed) return;
        closed = true;
        if (--shared.users === 0) {
          streams.delete(shared.key);
          await shared.berth.close();
        }
      },
    };
  },
};
