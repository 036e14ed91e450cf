// The berth command: `berth serve` runs a node; the queue commands talk to a running one
// through the Berth SDK over the native protocol (--endpoint or BERTH_ENDPOINT, a
// berth:// URL); `cluster status` reads the node's HTTP status endpoint (--http-endpoint).

import { Command, Option } from 'commander';
import Table from 'cli-table3';
import pc from 'picocolors';
import cliProgress from 'cli-progress';
import { configKeys, ConfigError, defaultServerConfig, resolveServerConfig, type ServerConfig } from '../server/config.js';
import { Berth, BerthClientError, type Message, type SendMessageInput } from '../client/index.js';

const program = new Command();
program.name('berth').description('Berth: a durable, replicated message queue that speaks the Amazon SQS API').version('0.1.0');

// ---- serve ------------------------------------------------------------------------

const serve = program
  .command('serve')
  .description('run a Berth server (single node: the SQS API, health, metrics and the web console on one port)')
  .addOption(new Option('--config <file>', 'JSON config file with any of the keys below (flags > environment > file > defaults)').env('BERTH_CONFIG'));
for (const entry of configKeys) {
  const placeholder = entry.kind === 'boolean' ? '' : ` <${entry.kind === 'number' ? 'n' : 'value'}>`;
  const fallback = defaultServerConfig[entry.key];
  serve.addOption(new Option(`${entry.flag}${placeholder}`, `${entry.description} [env ${entry.env}${fallback !== undefined ? `, default ${String(fallback)}` : ''}]`));
}
serve.action(async (options: Record<string, string | boolean | undefined>) => {
  const flags: Partial<Record<keyof ServerConfig, string | boolean>> = {};
  for (const entry of configKeys) {
    const value = options[entry.key];
    if (value !== undefined) flags[entry.key] = value;
  }
  let config: ServerConfig;
  try {
    config = resolveServerConfig({ flags, env: process.env, configFile: (options['config'] as string | undefined) ?? undefined });
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message);
    throw error;
  }
  const { runServerProcess } = await import('../server/serve.js');
  await runServerProcess(config).catch((error: unknown) => fail(error instanceof Error ? error.message : String(error)));
});

// ---- client commands --------------------------------------------------------------

program.addOption(new Option('--endpoint <url>', 'the Berth server for queue commands (its native port)').env('BERTH_ENDPOINT').default('berth://127.0.0.1:9325'));
program.addOption(new Option('--http-endpoint <url>', 'the HTTP endpoint for cluster status').env('BERTH_HTTP_ENDPOINT').default('http://127.0.0.1:9324'));

async function connect(): Promise<Berth> {
  const endpoint = program.opts<{ endpoint: string }>().endpoint;
  if (/^https?:/.test(endpoint)) {
    fail(`--endpoint ${endpoint} is an HTTP URL; the queue commands use the native protocol: give berth://host:port (the server's --native-port, default 9325)`);
  }
  const accessKeyId = process.env['AWS_ACCESS_KEY_ID'];
  const secretAccessKey = process.env['AWS_SECRET_ACCESS_KEY'];
  try {
    return await Berth.connect({
      url: endpoint,
      connectTimeoutMs: 5_000,
      ...(accessKeyId !== undefined && secretAccessKey !== undefined ? { credentials: { accessKeyId, secretAccessKey } } : {}),
    });
  } catch (error) {
    fail(`cannot reach ${endpoint}: ${error instanceof Error ? error.message : String(error)} (is \`berth serve\` running, with its native port open?)`);
  }
}

program
  .command('queues')
  .description('list queues with their depth')
  .option('--prefix <prefix>', 'only queues whose name starts with this')
  .option('--json', 'print JSON')
  .action(async (options: { prefix?: string; json?: boolean }) => {
    await withClient(async (berth) => {
      const rows = await queueRows(berth, options.prefix);
      if (options.json === true) return print(JSON.stringify(rows, null, 2));
      if (rows.length === 0) return print(pc.dim('no queues'));
      const table = new Table({ head: ['queue', 'type', 'visible', 'in flight', 'delayed'].map((heading) => pc.bold(heading)), style: { head: [] } });
      for (const row of rows) table.push([row.name, row.fifo ? 'FIFO' : 'standard', row.visible, row.inflight, row.delayed]);
      print(table.toString());
    });
  });

program
  .command('stats')
  .description('queue depths and totals')
  .action(async () => {
    await withClient(async (berth) => {
      const rows = await queueRows(berth, undefined);
      const table = new Table({ head: ['queue', 'visible', 'in flight', 'delayed'].map((heading) => pc.bold(heading)), style: { head: [] } });
      let visible = 0;
      let inflight = 0;
      let delayed = 0;
      for (const row of rows) {
        table.push([row.name, row.visible, row.inflight, row.delayed]);
        visible += row.visible;
        inflight += row.inflight;
        delayed += row.delayed;
      }
      table.push([pc.bold(`${rows.length} queues`), pc.bold(String(visible)), pc.bold(String(inflight)), pc.bold(String(delayed))]);
      print(table.toString());
    });
  });

program
  .command('create <name>')
  .description('create a queue')
  .option('--fifo', 'a FIFO queue (the name gets .fifo if it lacks it)')
  .option('--content-dedup', 'FIFO: content-based deduplication')
  .option('--visibility-timeout <seconds>', 'default visibility timeout')
  .option('--attribute <name=value...>', 'any SQS queue attribute')
  .action(async (name: string, options: { fifo?: boolean; contentDedup?: boolean; visibilityTimeout?: string; attribute?: string[] }) => {
    await withClient(async (berth) => {
      const attributes: Record<string, string> = {};
      let queueName = name;
      if (options.fifo === true) {
        attributes['FifoQueue'] = 'true';
        if (!queueName.endsWith('.fifo')) queueName += '.fifo';
      }
      if (options.contentDedup === true) attributes['ContentBasedDeduplication'] = 'true';
      if (options.visibilityTimeout !== undefined) attributes['VisibilityTimeout'] = options.visibilityTimeout;
      for (const pair of options.attribute ?? []) {
        const split = pair.indexOf('=');
        if (split <= 0) fail(`--attribute expects name=value, got "${pair}"`);
        attributes[pair.slice(0, split)] = pair.slice(split + 1);
      }
      const url = await berth.createQueue(queueName, { attributes });
      print(`${pc.green('created')} ${url}`);
    });
  });

program
  .command('delete-queue <name>')
  .description('delete a queue and its messages')
  .action(async (name: string) => {
    await withClient(async (berth) => {
      await berth.deleteQueue(name);
      print(`${pc.green('deleted')} ${name}`);
    });
  });

/** Messages per SEND frame of `berth send --count`: big batches, one fsync each on the server. */
const sendBatchSize = 100;

program
  .command('send <queue> [body]')
  .description('send a message (body from the argument or standard input)')
  .option('--group <id>', 'MessageGroupId (FIFO)')
  .option('--dedup <id>', 'MessageDeduplicationId (FIFO)')
  .option('--delay <seconds>', 'DelaySeconds')
  .option('--replica-count <n>', 'hosts that must hold the message before it counts as sent (cluster)')
  .option('--count <n>', 'send the body n times (a progress bar shows the way)', '1')
  .action(async (queue: string, body: string | undefined, options: { group?: string; dedup?: string; delay?: string; replicaCount?: string; count: string }) => {
    await withClient(async (berth) => {
      const text = body ?? (await readStdin());
      if (text.length === 0) fail('the message body is empty: give it as an argument or on standard input');
      const count = Number(options.count);
      if (!Number.isInteger(count) || count < 1) fail('--count must be a positive integer');
      const message = (index: number): SendMessageInput => ({
        body: text,
        ...(options.group !== undefined ? { groupId: options.group } : {}),
        ...(options.dedup !== undefined ? { deduplicationId: count === 1 ? options.dedup : `${options.dedup}-${index}` } : {}),
        ...(options.delay !== undefined ? { delaySeconds: Number(options.delay) } : {}),
        ...(options.replicaCount !== undefined ? { replicaCount: Number(options.replicaCount) } : {}),
      });
      if (count === 1) {
        const [result] = await berth.send(queue, [message(0)]);
        if (result instanceof BerthClientError) throw result;
        print(`${pc.green('sent')} ${result!.messageId}${result!.sequenceNumber !== undefined ? ` seq ${result!.sequenceNumber}` : ''}`);
        return;
      }
      const bar = progressBar('sending', count);
      const failures = new Map<string, number>();
      for (let start = 0; start < count; start += sendBatchSize) {
        const batch: SendMessageInput[] = [];
        for (let index = start; index < Math.min(count, start + sendBatchSize); index++) batch.push(message(index));
        for (const result of await berth.send(queue, batch)) {
          if (result instanceof BerthClientError) failures.set(`${result.code}: ${result.message}`, (failures.get(`${result.code}: ${result.message}`) ?? 0) + 1);
        }
        bar.increment(batch.length);
      }
      bar.stop();
      const failed = [...failures.values()].reduce((sum, n) => sum + n, 0);
      print(`${pc.green('sent')} ${count - failed} messages${failed > 0 ? pc.red(`, ${failed} failed`) : ''}`);
      for (const [reason, n] of failures) print(pc.red(`  ${n} x ${reason}`));
      if (failed > 0) process.exitCode = 1;
    });
  });

program
  .command('receive <queue>')
  .description('receive messages and delete them (or keep them with --keep)')
  .option('--max <n>', 'messages per receive (1-1000)', '10')
  .option('--follow', 'keep receiving until interrupted (long polls)')
  .option('--keep', 'do not delete what was received (it becomes visible again after the visibility timeout)')
  .option('--json', 'print one JSON object per message')
  .action(async (queue: string, options: { max: string; follow?: boolean; keep?: boolean; json?: boolean }) => {
    const maxMessages = Number(options.max);
    if (!Number.isInteger(maxMessages) || maxMessages < 1 || maxMessages > 1000) fail('--max must be an integer from 1 to 1000');
    await withClient(async (berth) => {
      let stop = false;
      process.once('SIGINT', () => {
        stop = true;
      });
      let total = 0;
      do {
        const messages: Message[] = await berth.receive(queue, { maxMessages, waitMs: options.follow === true ? 20_000 : 1_000 });
        for (const message of messages) {
          total++;
          if (options.json === true) {
            print(JSON.stringify({
              MessageId: message.id, ReceiptHandle: message.receiptHandle, Body: message.body, ReceiveCount: message.receiveCount, SentTimestamp: message.sentTimestampMs,
              ...(message.groupId !== undefined ? { MessageGroupId: message.groupId } : {}),
              ...(message.sequenceNumber !== undefined ? { SequenceNumber: message.sequenceNumber } : {}),
            }));
          } else {
            print(`${pc.cyan(message.id)} ${message.body}`);
          }
        }
        if (options.keep !== true && messages.length > 0) {
          const outcomes = await berth.ack(queue, messages.map((message) => message.receiptHandle));
          const failed = outcomes.filter((outcome) => outcome !== null);
          if (failed.length > 0) process.stderr.write(pc.red(`berth: ${failed.length} deletes failed: ${failed[0]!.code}: ${failed[0]!.message}\n`));
        }
        if (options.follow !== true) break;
      } while (!stop);
      if (total === 0 && options.json !== true) print(pc.dim('no messages'));
    });
  });

program
  .command('purge <queue>')
  .description('delete every message in a queue')
  .action(async (queue: string) => {
    await withClient(async (berth) => {
      await berth.purgeQueue(queue);
      print(`${pc.green('purged')} ${queue}`);
    });
  });

// ---- helpers ----------------------------------------------------------------------

interface QueueRow {
  name: string;
  fifo: boolean;
  visible: number;
  inflight: number;
  delayed: number;
}

async function queueRows(berth: Berth, prefix: string | undefined): Promise<QueueRow[]> {
  const rows: QueueRow[] = [];
  for (const url of await berth.listQueues(prefix)) {
    const name = url.slice(url.lastIndexOf('/') + 1);
    const attributes = await berth.getQueueAttributes(name);
    rows.push({
      name,
      fifo: attributes['FifoQueue'] === 'true',
      visible: Number(attributes['ApproximateNumberOfMessages'] ?? 0),
      inflight: Number(attributes['ApproximateNumberOfMessagesNotVisible'] ?? 0),
      delayed: Number(attributes['ApproximateNumberOfMessagesDelayed'] ?? 0),
    });
  }
  return rows;
}

async function withClient(work: (berth: Berth) => Promise<void>): Promise<void> {
  const berth = await connect();
  try {
    await work(berth);
  } catch (error) {
    if (error instanceof BerthClientError) fail(`${error.code}: ${error.message}`);
    fail(error instanceof Error ? error.message : String(error));
  } finally {
    await berth.close();
  }
}

function progressBar(label: string, total: number): { increment(n: number): void; stop(): void } {
  if (process.stderr.isTTY !== true) return { increment: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar({ format: `${label} [{bar}] {percentage}% {value}/{total} {eta_formatted} left`, stream: process.stderr }, cliProgress.Presets.shades_classic);
  bar.start(total, 0);
  return { increment: (n) => bar.increment(n), stop: () => bar.stop() };
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY === true) return '';
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8').replace(/\n$/, '');
}

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

function fail(message: string): never {
  process.stderr.write(`${pc.red('berth:')} ${message}\n`);
  process.exit(1);
}

// ---- cluster --------------------------------------------------------------------------

const clusterCommand = program.command('cluster').description('cluster mode (nodes started with --etcd)');
clusterCommand
  .command('status')
  .description('nodes, zones, partitions, primaries, epochs and replica lag, as the --http-endpoint node sees them')
  .option('--json', 'print the raw JSON of GET /cluster/status')
  .action(async (options: { json?: boolean }) => {
    const endpoint = program.opts<{ httpEndpoint: string }>().httpEndpoint;
    const response = await fetch(new URL('/cluster/status', endpoint));
    if (response.status === 404) fail(`${endpoint} is not in cluster mode (started without --etcd)`);
    if (!response.ok) fail(`${endpoint}: HTTP ${response.status}`);
    const status = (await response.json()) as {
      selfId: string; controller: string;
      nodes: Array<{ id: string; zone: string; region: string; health: string; httpUrl: string }>;
      partitions: Array<{ queue: string; partition: number; epoch: number; primary: string; replicas: string[] }>;
      local: Array<{ queue: string; partition: number; role: string; endOffset: number; backups: Array<{ id: string; phase: string; durableEnd: number }> }>;
    };
    if (options.json === true) return print(JSON.stringify(status, null, 2));
    print(`answered by ${status.selfId}; controller ${status.controller || '(none)'}`);
    const nodes = new Table({ head: ['node', 'health', 'region', 'zone', 'http'] });
    for (const node of status.nodes) nodes.push([node.id, node.health === 'healthy' ? pc.green(node.health) : pc.red(node.health), node.region, node.zone, node.httpUrl]);
    print(nodes.toString());
    const partitions = new Table({ head: ['queue', 'partition', 'epoch', 'primary', 'backups', 'lag (records)'] });
    for (const partition of status.partitions) {
      const local = status.local.find((entry) => entry.queue === partition.queue && entry.partition === partition.partition && entry.role === 'primary');
      const lag = local === undefined ? '' : local.backups.map((backup) => `${backup.id}:${local.endOffset - backup.durableEnd}${backup.phase === 'streaming' ? '' : ` (${backup.phase})`}`).join(' ');
      partitions.push([partition.queue, String(partition.partition), String(partition.epoch), partition.primary, partition.replicas.filter((id) => id !== partition.primary).join(', '), lag]);
    }
    print(partitions.toString());
  });

program
  .command('dev-cluster')
  .description('start etcd and N nodes on loopback with temp data dirs; Ctrl-C stops everything')
  .option('--nodes <n>', 'number of nodes', '3')
  .option('--base-port <port>', 'HTTP port of node 1 (node k: base + k - 1; 0 picks free ports)', '9324')
  .option('--replica-count <n>', 'default replica count of new queues', '2')
  .option('--partition-count <n>', 'default partitions of new queues', '1')
  .option('--keep', 'keep the data directories after stopping')
  .action(async (options: { nodes: string; basePort: string; replicaCount: string; partitionCount: string; keep?: boolean }) => {
    const { runDevCluster } = await import('../io/dev-cluster.js');
    const { fileURLToPath } = await import('node:url');
    await runDevCluster({
      nodes: Number(options.nodes),
      basePort: Number(options.basePort),
      replicaCount: Number(options.replicaCount),
      partitionCount: Number(options.partitionCount),
      keep: options.keep === true,
      berthBin: fileURLToPath(new URL('../../../bin/berth.js', import.meta.url)),
      print,
    });
  });

program.parseAsync(process.argv).catch((error: unknown) => fail(error instanceof Error ? error.message : String(error)));
