// Server configuration: validated in one place at start, with messages that name the bad
// key. Precedence: command-line flags over environment (BERTH_*) over a JSON config file
// over defaults.

import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { preallocateBytesMax } from '../storage/segmented-log.js';

export const serverConfigSchema = z
  .object({
    host: z.string().min(1),
    port: z.number().int().min(0).max(65535),
    nativePort: z.number().int().min(0).max(65535),
    dataDir: z.string().min(1),
    accountId: z.string().regex(/^\d{12}$/, 'must be 12 digits'),
    region: z.string().regex(/^[a-z0-9-]+$/, 'must look like us-east-1'),
    publicUrl: z.string().url().optional(),
    authFile: z.string().optional(),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    logPretty: z.boolean().optional(),
    groupCommitDelayMs: z.number().min(0).max(100),
    segmentBytesMax: z.number().int().min(1024 * 1024).max(4 * 1024 * 1024 * 1024),
    preallocateBytes: z.number().int().min(0).max(preallocateBytesMax),
    requestBodyBytesMax: z.number().int().min(64 * 1024).max(64 * 1024 * 1024),
    shutdownTimeoutMs: z.number().int().min(0).max(600_000),
    // Cluster mode (only with etcd): see docs/cluster.md.
    nodeId: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, . _ - (1-64)').optional(),
    etcd: z.string().min(1).optional(),
    peerPort: z.number().int().min(0).max(65535).optional(),
    zone: z.string().max(64).optional(),
    defaultReplicaCount: z.number().int().min(1).max(100).optional(),
    defaultPartitionCount: z.number().int().min(1).max(256).optional(),
    leaseTtlSeconds: z.number().int().min(2).max(60).optional(),
    replicaReplaceAfterSeconds: z.number().int().min(1).max(7 * 24 * 3600).optional(),
    checkpointIntervalMs: z.number().int().min(100).max(3_600_000).optional(),
    recordCacheBytesMax: z.number().int().min(0).max(64 * 1024 * 1024 * 1024),
  })
  .strict();

export type ServerConfig = z.infer<typeof serverConfigSchema>;

export interface ConfigKey {
  key: keyof ServerConfig;
  flag: string;
  env: string;
  description: string;
  kind: 'string' | 'number' | 'boolean';
}

export const configKeys: ConfigKey[] = [
  { key: 'host', flag: '--host', env: 'BERTH_HOST', kind: 'string', description: 'address to listen on; anything beyond loopback without --auth-file prints a warning' },
  { key: 'port', flag: '--port', env: 'BERTH_PORT', kind: 'number', description: 'HTTP port for the SQS API, health, metrics and console' },
  { key: 'nativePort', flag: '--native-port', env: 'BERTH_NATIVE_PORT', kind: 'number', description: 'TCP port for the native protocol and the Berth SDK (0: off)' },
  { key: 'dataDir', flag: '--data-dir', env: 'BERTH_DATA_DIR', kind: 'string', description: 'where queue logs, checkpoints and metadata live' },
  { key: 'accountId', flag: '--account-id', env: 'BERTH_ACCOUNT_ID', kind: 'string', description: 'the 12-digit account id in queue URLs and ARNs' },
  { key: 'region', flag: '--region', env: 'BERTH_REGION', kind: 'string', description: 'the region in ARNs' },
  { key: 'publicUrl', flag: '--public-url', env: 'BERTH_PUBLIC_URL', kind: 'string', description: 'base of queue URLs (default: built from the Host header the client used)' },
  { key: 'authFile', flag: '--auth-file', env: 'BERTH_AUTH_FILE', kind: 'string', description: 'JSON {"credentials":[{"accessKeyId","secretAccessKey"}]}: turns on SigV4 verification' },
  { key: 'logLevel', flag: '--log-level', env: 'BERTH_LOG_LEVEL', kind: 'string', description: 'fatal, error, warn, info, debug, trace or silent' },
  { key: 'logPretty', flag: '--log-pretty', env: 'BERTH_LOG_PRETTY', kind: 'boolean', description: 'human-readable logs (default: when stdout is a terminal)' },
  { key: 'groupCommitDelayMs', flag: '--group-commit-delay-ms', env: 'BERTH_GROUP_COMMIT_DELAY_MS', kind: 'number', description: 'extra wait to batch more appends into one fsync (0: batch what arrives during the previous fsync)' },
  { key: 'segmentBytesMax', flag: '--segment-bytes-max', env: 'BERTH_SEGMENT_BYTES_MAX', kind: 'number', description: 'size at which a log segment file rolls over' },
  { key: 'preallocateBytes', flag: '--preallocate-bytes', env: 'BERTH_PREALLOCATE_BYTES', kind: 'number', description: 'most zeros written ahead of a log\'s records behind small batches, so that the next fsyncs write data only (0: off)' },
  { key: 'requestBodyBytesMax', flag: '--request-body-bytes-max', env: 'BERTH_REQUEST_BODY_BYTES_MAX', kind: 'number', description: 'largest HTTP request body accepted' },
  { key: 'nodeId', flag: '--node-id', env: 'BERTH_NODE_ID', kind: 'string', description: 'cluster: this node\'s unique id (required with --etcd)' },
  { key: 'etcd', flag: '--etcd', env: 'BERTH_ETCD', kind: 'string', description: 'cluster: etcd endpoints, comma separated (e.g. http://127.0.0.1:2379); turns on cluster mode' },
  { key: 'peerPort', flag: '--peer-port', env: 'BERTH_PEER_PORT', kind: 'number', description: 'cluster: TCP port of the peer protocol (replication, forwarding) on --host' },
  { key: 'zone', flag: '--zone', env: 'BERTH_ZONE', kind: 'string', description: 'cluster: availability zone of this node (replicas of a partition go to distinct zones)' },
  { key: 'defaultReplicaCount', flag: '--default-replica-count', env: 'BERTH_DEFAULT_REPLICA_COUNT', kind: 'number', description: 'cluster: replica count of new queues without a ReplicaCount attribute (default 2, at most the live nodes)' },
  { key: 'defaultPartitionCount', flag: '--default-partition-count', env: 'BERTH_DEFAULT_PARTITION_COUNT', kind: 'number', description: 'cluster: partitions of a new queue (default 1)' },
  { key: 'leaseTtlSeconds', flag: '--lease-ttl-seconds', env: 'BERTH_LEASE_TTL_SECONDS', kind: 'number', description: 'cluster: etcd lease TTL; a primary silent this long is replaced (default 3)' },
  { key: 'replicaReplaceAfterSeconds', flag: '--replica-replace-after-seconds', env: 'BERTH_REPLICA_REPLACE_AFTER_SECONDS', kind: 'number', description: 'cluster: a replica gone this long is replaced by a live node outside the set, which catches up by records or snapshot (default 300)' },
  { key: 'checkpointIntervalMs', flag: '--checkpoint-interval-ms', env: 'BERTH_CHECKPOINT_INTERVAL_MS', kind: 'number', description: 'a partition checkpoints its queue state at least this often when it changed (default 30000); segments below the checkpoint and the ACK level are deleted' },
  { key: 'recordCacheBytesMax', flag: '--record-cache-bytes-max', env: 'BERTH_RECORD_CACHE_BYTES_MAX', kind: 'number', description: 'memory for recently sent message bodies, over all partitions on this node (each keeps at most 64 MiB), so receives of recent messages need no disk read; over it the largest caches give way' },
  { key: 'shutdownTimeoutMs', flag: '--shutdown-timeout-ms', env: 'BERTH_SHUTDOWN_TIMEOUT_MS', kind: 'number', description: 'how long a graceful stop waits for requests in flight' },
];

export const defaultServerConfig: ServerConfig = {
  host: '127.0.0.1',
  port: 9324,
  nativePort: 9325,
  dataDir: './data',
  accountId: '000000000000',
  region: 'us-east-1',
  logLevel: 'info',
  groupCommitDelayMs: 0,
  segmentBytesMax: 128 * 1024 * 1024,
  preallocateBytes: 256 * 1024,
  requestBodyBytesMax: 4 * 1024 * 1024,
  shutdownTimeoutMs: 30_000,
  recordCacheBytesMax: 256 * 1024 * 1024,
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Resolves the configuration from its sources; throws ConfigError naming the bad key and source. */
export function resolveServerConfig(sources: {
  flags: Partial<Record<keyof ServerConfig, string | boolean | number>>;
  env: NodeJS.ProcessEnv;
  configFile?: string;
}): ServerConfig {
  const merged: Record<string, unknown> = { ...defaultServerConfig };
  const origin: Record<string, string> = {};
  if (sources.configFile !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(sources.configFile, 'utf8'));
    } catch (error) {
      throw new ConfigError(`cannot read config file ${sources.configFile}: ${(error as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ConfigError(`config file ${sources.configFile} must hold a JSON object`);
    for (const [key, value] of Object.entries(parsed)) {
      if (!configKeys.some((entry) => entry.key === key)) {
        throw new ConfigError(`config file ${sources.configFile}: unknown key "${key}" (known: ${configKeys.map((entry) => entry.key).join(', ')})`);
      }
      merged[key] = value;
      origin[key] = `config file ${sources.configFile}`;
    }
  }
  for (const entry of configKeys) {
    const raw = sources.env[entry.env];
    if (raw !== undefined && raw !== '') {
      merged[entry.key] = convert(raw, entry, `environment variable ${entry.env}`);
      origin[entry.key] = `environment variable ${entry.env}`;
    }
  }
  for (const entry of configKeys) {
    const raw = sources.flags[entry.key];
    if (raw !== undefined) {
      merged[entry.key] = typeof raw === 'string' ? convert(raw, entry, `flag ${entry.flag}`) : raw;
      origin[entry.key] = `flag ${entry.flag}`;
    }
  }
  const result = serverConfigSchema.safeParse(merged);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const key = String(issue.path[0] ?? '');
    const entry = configKeys.find((candidate) => candidate.key === key);
    throw new ConfigError(`invalid ${key} (${origin[key] ?? 'default'}${entry ? `; flag ${entry.flag}, env ${entry.env}` : ''}): ${issue.message}`);
  }
  return result.data;
}

function convert(raw: string, entry: ConfigKey, source: string): unknown {
  if (entry.kind === 'number') {
    const value = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(value)) throw new ConfigError(`invalid ${entry.key} (${source}): "${raw}" is not a number`);
    return value;
  }
  if (entry.kind === 'boolean') {
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    throw new ConfigError(`invalid ${entry.key} (${source}): "${raw}" is not true or false`);
  }
  return raw;
}

export interface AuthCredentials {
  credentials: Map<string, string>;
}

/** Reads an auth file: {"credentials":[{"accessKeyId":"..","secretAccessKey":".."}]}. */
export function loadAuthFile(path: string): Map<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ConfigError(`cannot read auth file ${path}: ${(error as Error).message}`);
  }
  const schema = z.object({
    credentials: z.array(z.object({ accessKeyId: z.string().min(1).max(128), secretAccessKey: z.string().min(1).max(256) }).strict()).min(1),
  });
  const result = schema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new ConfigError(`auth file ${path}: ${issue.path.join('.')}: ${issue.message} (expected {"credentials":[{"accessKeyId":"...","secretAccessKey":"..."}]})`);
  }
  return new Map(result.data.credentials.map((credential) => [credential.accessKeyId, credential.secretAccessKey]));
}
