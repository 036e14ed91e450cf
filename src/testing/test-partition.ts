// Partition runners for unit tests: the simulated disk, a clock the test moves, a silent
// logger, a queue with default settings, no dead-letter target, and maintenance that never
// runs on its own (its interval is an hour; the tests' clocks stand still).

import type { CacheBudget } from '../broker/cache-budget.js';
import type { Clock } from '../core/clock.js';
import { PartitionRunner, type PartitionReplication } from '../broker/partition.js';
import { queueConfigFromAttributes } from '../queue/config.js';
import type { PartitionLogOptions } from '../storage/types.js';
import { SimFileSystem } from './sim-filesystem.js';

/** A logger that drops everything (partition runners and brokers in tests). */
export const silentLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

export function openTestRunner(options: {
  /** The runner's name and its directory on the disk. */
  name: string;
  clock: Clock;
  /** Default: a fresh simulated disk. */
  fs?: SimFileSystem;
  /** Default: primary at epoch 1, committing at the log's durability. */
  replication?: PartitionReplication;
  logOptions?: Partial<PartitionLogOptions>;
  /** The node-wide budget over record caches; default none. */
  cacheBudget?: CacheBudget;
  /** Queue attributes (e.g. FifoQueue); default none. */
  attributes?: Record<string, string>;
  /** Messages the queue machine keeps in memory before the rest waits on disk; default the partition's. */
  windowMessagesMax?: number;
}): Promise<PartitionRunner> {
  return PartitionRunner.open({
    name: options.name,
    fs: options.fs ?? new SimFileSystem(),
    directory: `/${options.name}`,
    config: queueConfigFromAttributes(options.attributes ?? {}, { replicaCount: 1 }),
    clock: options.clock,
    hooks: { deadLetter: async () => undefined },
    logger: silentLogger,
    options: {
      maintenanceIntervalMs: 3_600_000,
      ...(options.logOptions === undefined ? {} : { logOptions: options.logOptions }),
      ...(options.cacheBudget === undefined ? {} : { cacheBudget: options.cacheBudget }),
      ...(options.windowMessagesMax === undefined ? {} : { windowMessagesMax: options.windowMessagesMax }),
    },
    replication: options.replication ?? { role: 'primary', epoch: 1 },
  });
}
