// Starts a private redis-server on loopback for the Redis Streams and BullMQ rows, with the
// strictest durability Redis offers: the append-only file on, fsynced before replies
// (appendfsync always; Redis group-commits all writes of one event-loop iteration into
// one write + fsync and only then sends their replies), RDB snapshots off.

import { Redis } from 'ioredis';
import { freePort, launch, logTail, stopLaunched, waitUntil, type Launched } from '../processes.js';
import type { StartContext } from './types.js';

export const redisDurabilityNote = 'AOF appendfsync always: fsync of the AOF before the reply (group commit per event-loop turn)';

export interface StartedRedis {
  port: number;
  launched: Launched;
  stop(): Promise<void>;
}

export async function startRedis(context: StartContext): Promise<StartedRedis> {
  const port = await freePort();
  const launched = launch(
    'redis-server',
    [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--dir', context.directory,
      '--appendonly', 'yes',
      '--appendfsync', 'always',
      '--save', '',
      '--protected-mode', 'no',
      '--daemonize', 'no',
      '--maxmemory-policy', 'noeviction',
    ],
    { directory: context.directory, name: 'redis' },
  );
  try {
    await waitUntil('redis-server to answer PING', async () => {
      if (launched.child.exitCode !== null) throw new Error('exited');
      const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      client.on('error', () => undefined); // refused while the server starts: connect() rejects too
      try {
        await client.connect();
        return (await client.ping()) === 'PONG';
      } finally {
        client.disconnect();
      }
    }, 30_000);
  } catch (error) {
    await stopLaunched(launched);
    throw new Error(`redis-server did not start: ${String(error)}\n${logTail(launched.logPath)}`);
  }
  return {
    port,
    launched,
    stop: async () => {
      await stopLaunched(launched, 'SIGTERM', 30_000);
    },
  };
}
