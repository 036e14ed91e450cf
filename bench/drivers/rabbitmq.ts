// RabbitMQ quorum queue started by hand on loopback: its own epmd on a free port, node
// bench@localhost with mnesia, logs, config and Erlang cookie (HOME) in the temp directory.
// Producers use publisher confirms (a quorum queue confirms once a majority of its members,
// here the only one, has written and fsynced the message); consumers use manual acks
// (basic.ack, which AMQP does not confirm). W4 uses a quorum queue with single active
// consumer: one consumer at a time receives the whole queue in order.

import amqp from 'amqplib';
import { writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeliveryBuffer } from './buffer.js';
import { forgetOnExit, freePort, killOnExit, launch, logTail, runCommand, stopLaunched, waitUntil, type Launched } from '../processes.js';
import type { Consumer, Delivery, Driver, Endpoint, Producer, QueueSpec } from './types.js';

export const rabbitBinDirectory = '/usr/lib/rabbitmq/bin';
const nodeName = 'bench@localhost';
const prefetchCount = 100;

export function amqpUrl(endpoint: Endpoint): string {
  return `amqp://guest:guest@${endpoint.host}:${endpoint.port}`;
}

/** One rabbitmq-server node launched by the bench (its beam runs under a shell script). */
export interface RabbitNode {
  name: string;
  port: number;
  /** The environment rabbitmqctl needs to reach this node (HOME with the cookie, epmd port). */
  env: NodeJS.ProcessEnv;
  server: Launched;
  pidPath: string;
  /** The beam process, known once the node accepts AMQP connections. */
  pid?: number;
}

export interface RabbitNodeSettings {
  /** Holds this node's config, mnesia, logs and pid file. */
  directory: string;
  name: string;
  /** HOME: where the Erlang cookie lives; nodes of one cluster share it. */
  home: string;
  epmdPort: number;
}

/** Writes the node's config and launches rabbitmq-server; the caller waits with waitRabbitNode. */
export async function launchRabbitNode(settings: RabbitNodeSettings): Promise<RabbitNode> {
  const port = await freePort();
  const distributionPort = await freePort();
  mkdirSync(settings.directory, { recursive: true });
  mkdirSync(settings.home, { recursive: true });
  const configPath = join(settings.directory, 'rabbitmq.conf');
  writeFileSync(configPath, [`listeners.tcp.default = 127.0.0.1:${port}`, 'loopback_users = none', 'log.console = true', 'log.file = false', ''].join('\n'));
  const pluginsPath = join(settings.directory, 'enabled_plugins');
  writeFileSync(pluginsPath, '[].\n');
  const pidPath = join(settings.directory, 'rabbit.pid');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: settings.home,
    ERL_EPMD_PORT: String(settings.epmdPort),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    RABBITMQ_NODENAME: settings.name,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distributionPort),
    RABBITMQ_MNESIA_BASE: join(settings.directory, 'mnesia'),
    RABBITMQ_LOG_BASE: join(settings.directory, 'log'),
    RABBITMQ_CONFIG_FILE: configPath,
    RABBITMQ_ENABLED_PLUGINS_FILE: pluginsPath,
    RABBITMQ_PID_FILE: pidPath,
  };
  const server = launch(join(rabbitBinDirectory, 'rabbitmq-server'), [], { directory: settings.directory, name: settings.name.split('@')[0] ?? 'rabbitmq', env });
  return { name: settings.name, port, env, server, pidPath };
}

/** Waits until the node accepts AMQP connections, then adopts its beam process for the exit hook. */
export async function waitRabbitNode(node: RabbitNode): Promise<void> {
  await waitUntil(`RabbitMQ ${node.name} to accept AMQP connections`, async () => {
    if (node.server.child.exitCode !== null) throw new Error('exited');
    const connection = await amqp.connect(amqpUrl({ host: '127.0.0.1', port: node.port }));
    await connection.close();
    return true;
  }, 180_000, 500);
  const pid = pidFromFile(node.pidPath);
  if (pid === undefined) throw new Error(`RabbitMQ ${node.name} accepts connections but wrote no pid to ${node.pidPath}`);
  node.pid = pid;
  killOnExit(pid);
}

/** rabbitmqctl with the node's environment; throws with its output when it fails. */
export async function rabbitmqctl(node: RabbitNode, args: string[], timeoutMs = 120_000): Promise<void> {
  const result = await runCommand(join(rabbitBinDirectory, 'rabbitmqctl'), ['-n', node.name, ...args], node.env, timeoutMs);
  if (result.code !== 0) throw new Error(`rabbitmqctl -n ${node.name} ${args.join(' ')} failed (${result.code}): ${result.output.trim().slice(-500)}`);
}

/** Stops the node (rabbitmqctl stop, then signals); idempotent. */
export async function stopRabbitNode(node: RabbitNode): Promise<void> {
  if (node.server.child.exitCode === null) {
    await runCommand(join(rabbitBinDirectory, 'rabbitmqctl'), ['-n', node.name, 'stop'], node.env, 60_000);
  }
  await stopLaunched(node.server, 'SIGTERM', 30_000);
  // A node that failed its start may have written its pid file without being adopted yet.
  const pid = node.pid ?? pidFromFile(node.pidPath);
  if (pid !== undefined) {
    // rabbitmqctl stop normally ends beam; if it did not, it is ours to kill.
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone, as expected
    }
    forgetOnExit(pid);
  }
}

function pidFromFile(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Declares a durable quorum queue (with the given extra arguments) through the node. */
export async function declareQuorumQueue(endpoint: Endpoint, name: string, extraArguments: Record<string, unknown>): Promise<void> {
  const connection = await amqp.connect(amqpUrl(endpoint));
  try {
    const channel = await connection.createChannel();
    await channel.assertQueue(name, { durable: true, arguments: { 'x-queue-type': 'quorum', ...extraArguments } });
    await channel.close();
  } finally {
    await connection.close();
  }
}

export const rabbitmqDriver: Driver = {
  id: 'rabbitmq',
  label: 'RabbitMQ quorum queue',
  durabilityNote: 'quorum queue, publisher confirms: confirm after the Raft log entry is fsynced (batched); basic.ack unconfirmed',
  fsyncPerAck: true,
  isBerth: false,
  fifo: { kind: 'single-queue-order', note: 'single active consumer: whole-queue order, one consumer at a time' },
  binaries: ['rabbitmq-server', 'epmd'],

  async start(context) {
    const epmdPort = await freePort();
    const home = join(context.directory, 'home');
    const epmd = launch('epmd', ['-port', String(epmdPort), '-address', '127.0.0.1'], { directory: context.directory, name: 'epmd' });
    let node: RabbitNode | undefined;
    const stopAll = async (): Promise<void> => {
      if (node !== undefined) await stopRabbitNode(node);
      await stopLaunched(epmd, 'SIGTERM', 30_000);
    };
    try {
      node = await launchRabbitNode({ directory: context.directory, name: nodeName, home, epmdPort });
      await waitRabbitNode(node);
    } catch (error) {
      await stopAll();
      throw new Error(`rabbitmq-server did not start: ${String(error)}\n${node === undefined ? '' : logTail(node.server.logPath)}`);
    }
    const endpoint: Endpoint = { host: '127.0.0.1', port: node.port };
    return {
      endpoint,
      serverPids: () => (node?.pid === undefined ? [] : [node.pid]),
      async createQueue(name, fifo) {
        await declareQuorumQueue(endpoint, name, fifo ? { 'x-single-active-consumer': true } : {});
        return { name, fifo };
      },
      stop: stopAll,
    };
  },

  async producer(endpoint: Endpoint, queue: QueueSpec): Promise<Producer> {
    const connection = await amqp.connect(amqpUrl(endpoint));
    const channel = await connection.createConfirmChannel();
    return {
      async send(batch) {
        await Promise.all(
          batch.map(
            (message) =>
              new Promise<void>((resolve, reject) => {
                channel.sendToQueue(queue.name, Buffer.from(message.body), { persistent: true }, (error) => (error ? reject(error) : resolve()));
              }),
          ),
        );
      },
      async close() {
        await channel.close();
        await connection.close();
      },
    };
  },

  async consumer(endpoint: Endpoint, queue: QueueSpec): Promise<Consumer> {
    const connection = await amqp.connect(amqpUrl(endpoint));
    const channel = await connection.createChannel();
    await channel.prefetch(prefetchCount);
    const buffer = new DeliveryBuffer<Delivery>();
    await channel.consume(queue.name, (message) => {
      if (message !== null) buffer.push({ body: message.content.toString(), handle: message });
    }, { noAck: false });
    return {
      receive: (maxMessages, waitMs) => buffer.take(maxMessages, waitMs),
      async ack(deliveries) {
        for (const delivery of deliveries) channel.ack(delivery.handle as amqp.ConsumeMessage);
      },
      async close() {
        buffer.wake();
        try {
          await channel.close();
          await connection.close();
        } catch {
          // the server may already be closing the connection
        }
      },
    };
  },
};
