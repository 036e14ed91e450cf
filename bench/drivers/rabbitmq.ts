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

const binDirectory = '/usr/lib/rabbitmq/bin';
const nodeName = 'bench@localhost';
const prefetchCount = 100;

function urlOf(endpoint: Endpoint): string {
  return `amqp://guest:guest@${endpoint.host}:${endpoint.port}`;
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
    const port = await freePort();
    const distributionPort = await freePort();
    const epmdPort = await freePort();
    const home = join(context.directory, 'home');
    mkdirSync(home, { recursive: true });
    const configPath = join(context.directory, 'rabbitmq.conf');
    writeFileSync(configPath, [`listeners.tcp.default = 127.0.0.1:${port}`, 'loopback_users = none', 'log.console = true', 'log.file = false', ''].join('\n'));
    const pluginsPath = join(context.directory, 'enabled_plugins');
    writeFileSync(pluginsPath, '[].\n');
    const pidPath = join(context.directory, 'rabbit.pid');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: home,
      ERL_EPMD_PORT: String(epmdPort),
      ERL_EPMD_ADDRESS: '127.0.0.1',
      RABBITMQ_NODENAME: nodeName,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(port),
      RABBITMQ_DIST_PORT: String(distributionPort),
      RABBITMQ_MNESIA_BASE: join(context.directory, 'mnesia'),
      RABBITMQ_LOG_BASE: join(context.directory, 'log'),
      RABBITMQ_CONFIG_FILE: configPath,
      RABBITMQ_ENABLED_PLUGINS_FILE: pluginsPath,
      RABBITMQ_PID_FILE: pidPath,
    };
    const epmd = launch('epmd', ['-port', String(epmdPort), '-address', '127.0.0.1'], { directory: context.directory, name: 'epmd', env });
    const server = launch(join(binDirectory, 'rabbitmq-server'), [], { directory: context.directory, name: 'rabbitmq', env });
    let serverPid: number | undefined;
    const stopAll = async (launchedList: Launched[]): Promise<void> => {
      if (server.child.exitCode === null) {
        await runCommand(join(binDirectory, 'rabbitmqctl'), ['-n', nodeName, 'stop'], env, 60_000);
      }
      for (const launched of launchedList) await stopLaunched(launched, 'SIGTERM', 30_000);
      if (serverPid !== undefined) {
        // rabbitmqctl stop normally ends beam; if it did not, it is ours to kill.
        try {
          process.kill(serverPid, 'SIGKILL');
        } catch {
          // already gone, as expected
        }
        forgetOnExit(serverPid);
      }
    };
    try {
      await waitUntil('RabbitMQ to accept AMQP connections', async () => {
        if (server.child.exitCode !== null) throw new Error('exited');
        const connection = await amqp.connect(urlOf({ host: '127.0.0.1', port }));
        await connection.close();
        return true;
      }, 180_000, 500);
      serverPid = Number(readFileSync(pidPath, 'utf8').trim());
      killOnExit(serverPid);
    } catch (error) {
      await stopAll([server, epmd]);
      throw new Error(`rabbitmq-server did not start: ${String(error)}\n${logTail(server.logPath)}`);
    }
    return {
      endpoint: { host: '127.0.0.1', port },
      serverPids: () => (serverPid === undefined ? [] : [serverPid]),
      async createQueue(name, fifo) {
        const connection = await amqp.connect(urlOf({ host: '127.0.0.1', port }));
        try {
          const channel = await connection.createChannel();
          const queueArguments: Record<string, unknown> = { 'x-queue-type': 'quorum' };
          if (fifo) queueArguments['x-single-active-consumer'] = true;
          await channel.assertQueue(name, { durable: true, arguments: queueArguments });
          await channel.close();
        } finally {
          await connection.close();
        }
        return { name, fifo };
      },
      stop: () => stopAll([server, epmd]),
    };
  },

  async producer(endpoint: Endpoint, queue: QueueSpec): Promise<Producer> {
    const connection = await amqp.connect(urlOf(endpoint));
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
    const connection = await amqp.connect(urlOf(endpoint));
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
