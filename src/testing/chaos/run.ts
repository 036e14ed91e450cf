// One chaos run: a real etcd and N real Berth nodes, SQS clients (@aws-sdk/client-sqs)
// loading four queues (standard and FIFO, ReplicaCount 2 and 3) through every node, a
// seeded schedule of faults, then a drain and the history checker.
//
// Phases: start -> load + faults (duration) -> heal (every node running, cuts removed)
// -> stop producers -> drain (consumers delete everything, until every queue is empty
// after every visibility timeout passed and every acknowledged message was seen, bounded)
// -> stop everything -> check.
//
// The seed fixes the fault schedule (kinds, times, hold times, targets among candidates)
// and every choice of the load (entry nodes, groups, which deliveries are left undeleted);
// what the processes do in between is real and not replayable exactly.

import { CreateQueueCommand, DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SeededRandom } from '../../core/random.js';
import { checkHistory, type CheckReport } from './checker.js';
import { ChaosProcesses, delay, httpGet } from './cluster-processes.js';
import type { FaultEvent, FaultKind, History, HistoryEvent, QueueSpec } from './history.js';
import { hubAddress, nodeAddress, type ChaosNetwork, type CutMode } from './netns.js';

export interface ChaosOptions {
  seed: number;
  durationSeconds: number;
  faults: number;
  nodes?: number;
  /** A network made by netns.ts (the driver runs in its hub); undefined: loopback, no partitions. */
  network?: ChaosNetwork;
  /** Fault kinds to draw from (default: all the machine allows). */
  faultKinds?: FaultKind[];
  visibilityTimeoutSeconds?: number;
  leaseTtlSeconds?: number;
  drainTimeoutSeconds?: number;
  /** Where logs, data and the history go (default a new temp dir). Removed after a clean run unless keep. */
  runDirectory?: string;
  keepRunDirectory?: boolean;
  /** Progress lines (a line per fault, a counter every few seconds). */
  log?: (line: string) => void;
  progressIntervalMs?: number;
}

export interface ChaosResult {
  report: CheckReport;
  history: History;
  runDirectory: string;
  kept: boolean;
  elapsedMs: number;
}

const accountId = '000000000000';
const callTimeoutMs = 12_000;

export const queueSpecs: QueueSpec[] = [
  { name: 'chaos-standard-r2', fifo: false, replicaCount: 2 },
  { name: 'chaos-standard-r3', fifo: false, replicaCount: 3 },
  { name: 'chaos-fifo-r2.fifo', fifo: true, replicaCount: 2 },
  { name: 'chaos-fifo-r3.fifo', fifo: true, replicaCount: 3 },
];

const fifoGroups = ['g0', 'g1', 'g2', 'g3'];

function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`.slice(0, 300);
  return String(error).slice(0, 300);
}

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const startedMs = Date.now();
  const log = options.log ?? (() => undefined);
  const nodeCount = options.nodes ?? 3;
  const visibilityTimeoutSeconds = options.visibilityTimeoutSeconds ?? 8;
  const leaseTtlSeconds = options.leaseTtlSeconds ?? 3;
  const network = options.network;
  const random = new SeededRandom(options.seed);
  const runDirectory = options.runDirectory ?? mkdtempSync(path.join(os.tmpdir(), `berth-chaos-${options.seed}-`));
  const placements = Array.from({ length: nodeCount }, (_, index) =>
    network === undefined ? { host: '127.0.0.1' } : { host: nodeAddress(index), namespace: network.nodeNamespaces[index]! },
  );
  const processes = new ChaosProcesses(runDirectory, placements, network === undefined ? '127.0.0.1' : hubAddress, leaseTtlSeconds);
  const events: HistoryEvent[] = [];
  const clients = new Map<string, SQSClient>();
  let drainComplete = false;
  let failure: unknown;

  const availableKinds: FaultKind[] = ['kill-primary', 'kill-backup', 'pause-primary', 'stall-disk-primary', 'restart-all', ...(network === undefined ? [] : (['partition-node', 'isolate-node', 'partition-pair'] as FaultKind[]))];
  const kinds = (options.faultKinds ?? availableKinds).filter((kind) => availableKinds.includes(kind));
  if (kinds.length === 0) throw new Error('no fault kind is possible with these options');

  // The schedule: K faults spread over the duration, each in its own slot.
  const durationMs = options.durationSeconds * 1000;
  const schedule = Array.from({ length: options.faults }, (_, slot) => ({
    atMs: Math.round(((slot + 0.15 + 0.5 * random.next()) * durationMs) / Math.max(1, options.faults)),
    kind: kinds[random.int(kinds.length)]!,
    holdMs: 0,
    pick: random.next(),
    pick2: random.next(),
    mode: (random.next() < 0.5 ? 'blackhole' : 'silent') as CutMode,
  }));
  for (const entry of schedule) {
    entry.holdMs =
      entry.kind === 'pause-primary' || entry.kind === 'stall-disk-primary' ? (leaseTtlSeconds + 1) * 1000 + random.int(3000)
        : entry.kind === 'restart-all' ? 500 + random.int(2000)
          : entry.kind.startsWith('kill') ? 1000 + random.int(4000)
            : 4000 + random.int(6000);
  }

  const clientOf = (id: string): SQSClient => {
    let client = clients.get(id);
    if (client === undefined) {
      client = new SQSClient({ endpoint: processes.node(id).url, region: 'us-east-1', credentials: { accessKeyId: 'AKIDCHAOS', secretAccessKey: 'chaos' }, maxAttempts: 1 });
      clients.set(id, client);
    }
    return client;
  };
  const queueUrl = (id: string, queue: string): string => `${processes.node(id).url}/${accountId}/${queue}`;
  const entryNode = (): string => {
    const up = processes.nodes.filter((node) => node.state !== 'stopped');
    const pool = up.length > 0 ? up : processes.nodes;
    return pool[random.int(pool.length)]!.id;
  };

  const counters = { sends: 0, acknowledged: 0, deliveries: 0, deletes: 0, errors: 0, faultsDone: 0 };
  let stopProducers = false;
  let stopConsumers = false;
  let draining = false;

  const producer = async (queue: QueueSpec, producerId: string): Promise<void> => {
    let attempt = 0;
    const next = new Map<string, number>(fifoGroups.map((group) => [group, 0]));
    while (!stopProducers) {
      const entry = entryNode();
      const group = queue.fifo ? fifoGroups[random.int(fifoGroups.length)]! : undefined;
      const index = group === undefined ? attempt++ : next.get(group)!;
      const key = group === undefined ? `${queue.name}/${producerId}/${index}` : `${queue.name}/${group}/${index}`;
      const body = `${key} ${'x'.repeat(16 + (index % 7) * 10)}`;
      const deduplicationId = group === undefined ? undefined : `${group}-${index}`;
      const startMs = Date.now();
      counters.sends++;
      try {
        const output = await clientOf(entry).send(
          new SendMessageCommand({ QueueUrl: queueUrl(entry, queue.name), MessageBody: body, ...(group === undefined ? {} : { MessageGroupId: group, MessageDeduplicationId: deduplicationId }) }),
          { abortSignal: AbortSignal.timeout(callTimeoutMs) },
        );
        events.push({ type: 'send', queue: queue.name, key, body, ...(group === undefined ? {} : { group, index, deduplicationId }), entry, startMs, endMs: Date.now(), outcome: 'ok', messageId: output.MessageId!, ...(output.SequenceNumber === undefined ? {} : { sequenceNumber: output.SequenceNumber }) });
        counters.acknowledged++;
        if (group !== undefined) next.set(group, index + 1);
      } catch (error) {
        counters.errors++;
        events.push({ type: 'send', queue: queue.name, key, body, ...(group === undefined ? {} : { group, index, deduplicationId }), entry, startMs, endMs: Date.now(), outcome: 'error', error: describeError(error) });
        // FIFO: the same index is retried (same deduplication id) next time its group comes up.
        await delay(50);
      }
    }
  };

  const emptyStreak = new Map<string, { since: number; streak: number }>();
  let drainStartMs = 0;
  const consumer = async (queue: QueueSpec): Promise<void> => {
    while (!stopConsumers) {
      const entry = entryNode();
      const startMs = Date.now();
      try {
        const output = await clientOf(entry).send(
          new ReceiveMessageCommand({ QueueUrl: queueUrl(entry, queue.name), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: visibilityTimeoutSeconds }),
          { abortSignal: AbortSignal.timeout(callTimeoutMs) },
        );
        const messages = (output.Messages ?? []).map((message) => ({ messageId: message.MessageId!, body: message.Body ?? '', receipt: message.ReceiptHandle! }));
        events.push({ type: 'receive', queue: queue.name, entry, startMs, endMs: Date.now(), visibilityTimeoutSeconds, outcome: 'ok', messages });
        counters.deliveries += messages.length;
        if (draining && startMs > drainStartMs + visibilityTimeoutSeconds * 1000) {
          const streak = emptyStreak.get(queue.name) ?? { since: startMs, streak: 0 };
          emptyStreak.set(queue.name, messages.length === 0 ? { since: streak.since, streak: streak.streak + 1 } : { since: startMs, streak: 0 });
        }
        for (const message of messages) {
          // While loading, some deliveries are left undeleted: they must come back after the visibility timeout.
          if (!draining && random.next() < 0.12) continue;
          const deleteEntry = random.next() < 0.7 ? entry : entryNode();
          const deleteStartMs = Date.now();
          try {
            await clientOf(deleteEntry).send(new DeleteMessageCommand({ QueueUrl: queueUrl(deleteEntry, queue.name), ReceiptHandle: message.receipt }), { abortSignal: AbortSignal.timeout(callTimeoutMs) });
            events.push({ type: 'delete', queue: queue.name, entry: deleteEntry, messageId: message.messageId, receipt: message.receipt, startMs: deleteStartMs, endMs: Date.now(), outcome: 'ok' });
            counters.deletes++;
          } catch (error) {
            counters.errors++;
            events.push({ type: 'delete', queue: queue.name, entry: deleteEntry, messageId: message.messageId, receipt: message.receipt, startMs: deleteStartMs, endMs: Date.now(), outcome: 'error', error: describeError(error) });
          }
        }
      } catch (error) {
        counters.errors++;
        events.push({ type: 'receive', queue: queue.name, entry, startMs, endMs: Date.now(), visibilityTimeoutSeconds, outcome: 'error', error: describeError(error), messages: [] });
        await delay(100);
      }
    }
  };

  // Status of the cluster as any running node sees it.
  const statusOf = async (id: string): Promise<{ nodes: Array<{ id: string; health: string }>; partitions: Array<{ queue: string; partition: number; primary: string; replicas: string[] }> }> => {
    const response = await httpGet(`${processes.node(id).url}/cluster/status`, 2_000);
    if (response.status !== 200) throw new Error(`status HTTP ${response.status}`);
    return JSON.parse(response.body) as never;
  };
  const partitionOf = async (queue: string): Promise<{ primary: string; replicas: string[] } | undefined> => {
    for (const node of processes.nodes) {
      if (node.state !== 'running') continue;
      try {
        const entry = (await statusOf(node.id)).partitions.find((candidate) => candidate.queue === queue && candidate.partition === 0);
        if (entry !== undefined) return entry;
      } catch {
        // next node
      }
    }
    return undefined;
  };
  const waitHealthy = async (timeoutMs: number): Promise<boolean> => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      let healthy = true;
      for (const node of processes.nodes) {
        try {
          const status = await statusOf(node.id);
          if (status.nodes.filter((entry) => entry.health === 'healthy').length < processes.nodes.length) healthy = false;
        } catch {
          healthy = false;
        }
        if (!healthy) break;
      }
      if (healthy) return true;
      await delay(250);
    }
    return false;
  };
  const startWithRetry = async (id: string): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        await processes.start(id);
        return;
      } catch (error) {
        if (attempt >= 3) throw error;
        log(`  ${id} failed to start (${describeError(error)}); retrying`);
        await processes.kill9(id);
        await delay(1000);
      }
    }
  };

  const injectFault = async (entry: (typeof schedule)[number], number: number): Promise<void> => {
    const queue = queueSpecs[Math.floor(entry.pick * queueSpecs.length)]!;
    const partition = await partitionOf(queue.name);
    const ids = processes.nodes.map((node) => node.id);
    const primary = partition?.primary ?? ids[Math.floor(entry.pick2 * ids.length)]!;
    const fault: FaultEvent = { type: 'fault', kind: entry.kind, targets: [], detail: '', startMs: Date.now(), endMs: 0 };
    const indexOf = (id: string): number => processes.node(id).index;
    switch (entry.kind) {
      case 'kill-primary': {
        fault.targets = [primary];
        fault.detail = `primary of ${queue.name}, down ${entry.holdMs} ms`;
        await processes.kill9(primary);
        await delay(entry.holdMs);
        await startWithRetry(primary);
        break;
      }
      case 'kill-backup': {
        const backups = (partition?.replicas ?? ids).filter((id) => id !== primary);
        const target = backups[Math.floor(entry.pick2 * backups.length)] ?? ids[0]!;
        fault.targets = [target];
        fault.detail = `backup of ${queue.name} (primary ${primary}), down ${entry.holdMs} ms`;
        await processes.kill9(target);
        await delay(entry.holdMs);
        await startWithRetry(target);
        break;
      }
      case 'pause-primary': {
        fault.targets = [primary];
        fault.detail = `SIGSTOP of the primary of ${queue.name} for ${entry.holdMs} ms (lease ${leaseTtlSeconds} s)`;
        processes.pause(primary);
        await delay(entry.holdMs);
        processes.resume(primary);
        break;
      }
      case 'stall-disk-primary': {
        // Its fsyncs hang: one on the main thread (a turn-end flush) stops the node
        // answering and its lease lapses, as with SIGSTOP, but its sockets, timers and
        // threads are alive and it resumes mid-flush. What the node did is reported, not
        // assumed: whether an fsync was held and where, whether the node still answered,
        // and where the partition's primary went.
        fault.targets = [primary];
        processes.stallDisk(primary);
        const probeAfterMs = Math.min(entry.holdMs, leaseTtlSeconds * 1000);
        await delay(probeAfterMs);
        const answered = await httpGet(`${processes.node(primary).url}/health`, 1_000).then(() => true, () => false);
        await delay(Math.max(0, fault.startMs + entry.holdMs - Date.now()));
        // Asked of another node: the stalled one would not answer.
        const witness = ids.find((id) => id !== primary && processes.node(id).state === 'running');
        const primaryDuring = witness === undefined ? 'unknown' : await statusOf(witness).then(
          (status) => status.partitions.find((candidate) => candidate.queue === queue.name && candidate.partition === 0)?.primary ?? 'none',
          () => 'unknown',
        );
        processes.unstallDisk(primary);
        const { held, steppedAside } = await processes.stallOutcome(primary, fault.startMs);
        fault.detail = `fsyncs of ${primary} (primary of ${queue.name}) hung for ${entry.holdMs} ms (lease ${leaseTtlSeconds} s): ${held === undefined ? 'no fsync was held' : `held an fsync for ${held.heldMs} ms on the ${held.where}`}; after ${probeAfterMs} ms it ${answered ? 'still answered' : 'did not answer'} /health; ${steppedAside ? 'it stepped aside' : 'it did not step aside'}; primary at the end: ${primaryDuring}`;
        break;
      }
      case 'restart-all': {
        fault.targets = ids;
        fault.detail = `kill -9 of every node, down ${entry.holdMs} ms`;
        await Promise.all(ids.map((id) => processes.kill9(id)));
        await delay(entry.holdMs);
        await Promise.all(ids.map((id) => startWithRetry(id)));
        break;
      }
      case 'partition-node':
      case 'isolate-node':
      case 'partition-pair': {
        const net = network!;
        if (entry.kind === 'partition-pair') {
          const others = ids.filter((id) => id !== primary);
          const other = others[Math.floor(entry.pick2 * others.length)]!;
          fault.targets = [primary, other];
          net.cut(indexOf(primary), indexOf(other), entry.mode);
          fault.detail = `${primary} (primary of ${queue.name}) cut from ${other} (${entry.mode}) for ${entry.holdMs} ms`;
        } else {
          fault.targets = [primary];
          for (const id of ids) if (id !== primary) net.cut(indexOf(primary), indexOf(id), entry.mode);
          if (entry.kind === 'isolate-node') net.cut(indexOf(primary), 'hub', entry.mode);
          fault.detail = `${primary} (primary of ${queue.name}) cut from the other nodes${entry.kind === 'isolate-node' ? ', etcd and the clients' : ' (etcd and clients still reach it)'} (${entry.mode}) for ${entry.holdMs} ms`;
        }
        await delay(entry.holdMs);
        net.healAll();
        break;
      }
    }
    fault.endMs = Date.now();
    events.push(fault);
    counters.faultsDone++;
    log(`[${((Date.now() - (loadStartMs || startedMs)) / 1000).toFixed(1)}s] fault ${number}/${schedule.length}: ${entry.kind} ${fault.targets.join(',')}: ${fault.detail}`);
  };

  let progressTimer: NodeJS.Timeout | undefined;
  let loadStartMs = 0;
  try {
    log(`chaos: seed ${options.seed}, ${options.durationSeconds} s, ${options.faults} faults (${kinds.join(', ')}), ${nodeCount} nodes, ${network === undefined ? 'loopback (no partitions)' : `network namespaces ${network.prefix}-*`}; run directory ${runDirectory}`);
    await processes.startEtcd();
    await processes.addNodes();
    await Promise.all(processes.nodes.map((node) => startWithRetry(node.id)));
    if (!(await waitHealthy(60_000))) throw new Error('the cluster did not form within 60 s');
    for (const queue of queueSpecs) {
      const attributes: Record<string, string> = { ReplicaCount: String(queue.replicaCount), VisibilityTimeout: String(visibilityTimeoutSeconds) };
      if (queue.fifo) attributes['FifoQueue'] = 'true';
      await clientOf('n1').send(new CreateQueueCommand({ QueueName: queue.name, Attributes: attributes }), { abortSignal: AbortSignal.timeout(30_000) });
    }
    loadStartMs = Date.now();
    progressTimer = setInterval(() => {
      const elapsed = (Date.now() - loadStartMs) / 1000;
      log(`[${elapsed.toFixed(0)}s${draining ? ' drain' : `/${options.durationSeconds}s`}] sends ${counters.sends} acknowledged ${counters.acknowledged} deliveries ${counters.deliveries} deletes ${counters.deletes} errors ${counters.errors} faults ${counters.faultsDone}/${schedule.length}`);
    }, options.progressIntervalMs ?? 5_000);
    const loops = [
      ...queueSpecs.map((queue) => producer(queue, 'p1')),
      ...queueSpecs.flatMap((queue) => [consumer(queue), consumer(queue)]),
    ];
    try {
      for (const [number, entry] of schedule.entries()) {
        const waitMs = loadStartMs + entry.atMs - Date.now();
        if (waitMs > 0) await delay(waitMs);
        await injectFault(entry, number + 1);
        if (!(await waitHealthy(60_000))) log('  warning: the cluster was not fully healthy 60 s after the fault');
      }
      const restMs = loadStartMs + durationMs - Date.now();
      if (restMs > 0) await delay(restMs);
    } finally {
      network?.healAll();
      for (const node of processes.nodes) {
        processes.unstallDisk(node.id);
        if (node.state === 'paused') processes.resume(node.id);
      }
      for (const node of processes.nodes) if (node.state === 'stopped') await startWithRetry(node.id).catch((error: unknown) => log(`  restart of ${node.id} failed: ${describeError(error)}`));
      stopProducers = true;
    }
    log(`[${((Date.now() - loadStartMs) / 1000).toFixed(1)}s] load done; draining`);
    await waitHealthy(60_000);
    draining = true;
    drainStartMs = Date.now();
    const drainDeadline = drainStartMs + (options.drainTimeoutSeconds ?? 120) * 1000;
    const acknowledgedIds = (): string[] => events.flatMap((event) => (event.type === 'send' && event.outcome === 'ok' ? [event.messageId!] : []));
    while (Date.now() < drainDeadline) {
      await delay(500);
      const quiet = queueSpecs.every((queue) => (emptyStreak.get(queue.name)?.streak ?? 0) >= 3);
      if (!quiet) continue;
      const seen = new Set<string>();
      for (const event of events) if (event.type === 'receive') for (const message of event.messages) seen.add(message.messageId);
      if (acknowledgedIds().every((id) => seen.has(id))) {
        drainComplete = true;
        break;
      }
    }
    stopConsumers = true;
    await Promise.all(loops);
  } catch (error) {
    failure = error;
  } finally {
    if (progressTimer !== undefined) clearInterval(progressTimer);
    stopProducers = true;
    stopConsumers = true;
    for (const client of clients.values()) client.destroy();
    network?.healAll();
    await processes.stopAll();
  }
  if (failure !== undefined) {
    writeFileSync(path.join(runDirectory, 'history.json'), JSON.stringify({ queues: queueSpecs, events, drainComplete: false }));
    throw Object.assign(new Error(`chaos run failed: ${describeError(failure)} (logs and history in ${runDirectory})`), { cause: failure });
  }
  const history: History = { queues: queueSpecs, events, drainComplete, deduplicationWindowMs: 5 * 60 * 1000 };
  const report = checkHistory(history);
  const keep = options.keepRunDirectory === true || !report.ok || report.anomalies.length > 0;
  if (keep) writeFileSync(path.join(runDirectory, 'history.json'), JSON.stringify(history));
  else if (options.runDirectory === undefined && existsSync(runDirectory)) rmSync(runDirectory, { recursive: true, force: true });
  return { report, history, runDirectory, kept: keep, elapsedMs: Date.now() - startedMs };
}
