// The seeded, deterministic cluster simulator: 3 (sometimes 4) real ClusterNodes (their
// partitions, replication drivers, controller and queue machines: the production code, not
// copies) in one process, each over its own simulated disk (src/testing/sim-filesystem.ts)
// and its own skewed clock on the one shared timeline (SimTimeline), talking through the
// simulated peer network and simulated etcd (sim-network.ts, sim-coordinator.ts). One seed
// drives everything; the trace hash of a seed is the same on every run.
//
// One run:
//   setup     start the nodes, create a standard and a FIFO queue (sometimes a second
//             standard one), replica counts 1-3 chosen by the seed, 1 or 2 partitions each
//   steps     each step does one thing chosen by the seed: a client operation through a
//             random live node (send batch, receive, delete with a current or stale receipt,
//             change visibility), advance time, or a fault: a process crash (page cache
//             kept), a machine crash (unsynced writes lost, maybe torn), a pause past the
//             lease, a node cut off from everyone (etcd included), a cut between two nodes,
//             a disk fault (fsync or write EIO), or a broken connection. A fault heals a few
//             steps later (restart, resume, heal). Clocks are skewed from the start.
//   drain     heal everything, let failovers and catch-up finish, receive and delete
//             everything through random nodes, then check the replicas converged.
//
// With `topics` (opt-in, so the regression seeds keep their schedules): also a topic with
// two subscriptions made at setup, a third made halfway through the run, the first's
// visibility timeout changed at 60% and the second deleted (unsubscribed) three quarters
// through, each by whichever node a step picks; steps
// publish to the topic and receive (and delete) from a subscription. Every acknowledged publish must reach every subscription that existed when
// its send started, at least once (the same excuse as a plain send: unless as many nodes as
// the topic's replica count were faulty at once since its acknowledgement); a subscription
// must never deliver a body nobody published, nor a message again before the lease of its
// last known delivery from that subscription could have lapsed (that subscription's
// visibility timeout, the shorter of two while a change is under way). TopicCheck does that part.
//
// What a run guarantees, and checks (SimChecker does the client-visible part):
//   - A node is "faulty" from a fault's start until recoveryWindowMs after it healed (a pair
//     cut makes both nodes faulty; a broken connection makes nobody faulty). The run keeps
//     at most maxConcurrentFaults (1 or 2, by seed) nodes faulty at once. An acknowledged
//     send with replica count r must survive unless, at some moment between its
//     acknowledgement and the end, r or more nodes were faulty at once. Loss under that
//     condition is allowed by design (an r=1 message dies with its primary's cut tail).
//   - FIFO: order within a group, no message of a group while another is in flight.
//   - No in-flight message handed out again before its deadline. Deadlines are set by the
//     primary's wall clock and kept by the next primary's, so the check allows the largest
//     skew between two nodes (skewToleranceMs).
//   - At most one primary process commits per (partition, epoch): every acknowledgement a
//     PrimaryDriver lets through is recorded with the node and process that made it.
//   - At the end (faults healed, time advanced) every replica of every partition holds the
//     same log: the same end, and the same records (offset, epoch, type, leaf hash) over the
//     range all of them still keep.
//
// Scheduling is the single-node simulator's: timers of every process and of the network
// and etcd sit on one SimTimeline, fired one at a time, each followed by one setImmediate
// turn so every promise that can settle has settled (nothing on this path does real I/O or
// reads real time). A dead process's timers never fire and its disk calls throw.

import { createHash, type Hash } from 'node:crypto';
import { queueAttributeDefaults } from '../../queue/config.js';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { PartitionLogger, PartitionOptions } from '../../broker/partition.js';
import { decodeReceiptHandle } from '../../broker/receipt.js';
import { ClusterNode } from '../../cluster/cluster-node.js';
import { partitionKey } from '../../cluster/coordinator.js';
import { sleepOn } from '../../core/clock.js';
import { SeededRandom } from '../../core/random.js';
import { BerthError } from '../../protocol/errors.js';
import type { ReceivedMessage, SendInput, SendOutcome } from '../../queue/types.js';
import { SimFileSystem } from '../sim-filesystem.js';
import { SimChecker, type Anomaly } from '../simulator/checker.js';
import { preallocationOf, ProcessClock, ProcessFileSystem, SimTimeline } from '../simulator/sim-process.js';
import { NodeClock } from './node-clock.js';
import { SimCoordinator, SimEtcd } from './sim-coordinator.js';
import { SimNetwork, SimPeerLink } from './sim-network.js';

export interface ClusterSimulationOptions {
  seed: number;
  /** Workload steps before the drain. */
  steps: number;
  /** Also a topic with subscriptions (see the header). Off by default: it changes every seed's schedule. */
  topics?: boolean;
  /** Logs write zeros ahead of their records (preallocateBytes, as `berth serve` does). Off by default, like `topics`. */
  preallocate?: boolean;
  /**
   * Also a stalled disk: every fsync of a node hangs for past the lease, while the node
   * runs on (the thread-pool case of a real node); it must step aside (give its lease up)
   * and come back when its disk does. Off by default, like `topics`.
   */
  diskStalls?: boolean;
  onTrace?: (line: string) => void;
}

export interface ClusterSimulationResult {
  seed: number;
  traceHash: string;
  steps: number;
  nodes: number;
  operations: number;
  acknowledgedMessages: number;
  /** Acknowledged messages the run stopped promising (more faulty nodes than their replica count allows). */
  excusedMessages: number;
  deliveries: number;
  commits: number;
  /** Times a node gave its lease up because an fsync outlasted it (with `diskStalls`). */
  stepAsides: number;
  faults: Record<string, number>;
  connectionsBroken: number;
  simulatedMs: number;
  /** Known limitations met (not anomalies), e.g. a backup behind its primary's oldest segment. */
  limitations: string[];
  /** With `topics`: publishes acknowledged, deliveries from subscriptions, subscriptions made (one is deleted later). */
  topic?: { acknowledged: number; excused: number; deliveries: number; subscriptions: number };
  anomalies: Anomaly[];
}

const region = 'sim-region-1';
const accountId = '000000000000';
const dataDirectory = '/berth';
const leaseTtlMs = 3000;
const fenceMarginMs = 1000;
const pollIntervalMs = 200;
const recoveryWindowMs = 10_000;
const wallOffsetMaxMs = 150;
const skewToleranceMs = 2 * wallOffsetMaxMs + 50;
const outstandingOperationsMax = 8;
const startMs = 1_700_000_000_000;

type FaultKind = 'crash' | 'machine-crash' | 'pause' | 'isolate' | 'cut-pair' | 'disk' | 'drop' | 'stall';

interface SimNode {
  id: string;
  address: string;
  disk: SimFileSystem;
  wallOffsetMs: number;
  rate: number;
  generation: number;
  processClock: ProcessClock | undefined;
  fs: ProcessFileSystem | undefined;
  clock: NodeClock | undefined;
  node: ClusterNode | undefined;
  /** The fault on this node now, healed at healStep. */
  fault: { kind: FaultKind; healStep: number; window: FaultWindow; partner?: string; minimumUntilMs?: number } | undefined;
}

interface FaultWindow {
  nodes: string[];
  /** Infinity while the fault lasts; then its heal time plus recoveryWindowMs. */
  untilMs: number;
}

interface Outstanding {
  describe: string;
  nodeId: string;
  generation: number;
  onLost: () => void;
}

interface Delivered {
  queue: string;
  messageId: string;
  receiptHandle: string;
  unknownReceivesAtDelivery: number;
}

export async function runClusterSimulation(options: ClusterSimulationOptions): Promise<ClusterSimulationResult> {
  return new ClusterSimulation(options).run();
}

class ClusterSimulation {
  private readonly random: SeededRandom;
  private readonly idRandom: SeededRandom;
  private readonly timeline = new SimTimeline(startMs);
  private readonly infrastructureClock = new ProcessClock(this.timeline);
  private readonly checker = new SimChecker();
  private readonly trace: Hash = createHash('sha256');
  private readonly network: SimNetwork;
  private readonly etcd: SimEtcd;
  private readonly nodes: SimNode[] = [];
  private readonly maxConcurrentFaults: number;
  private readonly partitionCount: number;
  private readonly partitionOptions: Partial<PartitionOptions>;
  private readonly faultWindows: FaultWindow[] = [];
  private readonly acknowledged: Array<{ messageId: string; replicaCount: number; excused: boolean }> = [];
  private readonly queueReplicaCounts = new Map<string, number>();
  private readonly queueNames: string[] = [];
  private readonly outstanding = new Map<number, Outstanding>();
  private readonly deliveredByQueue = new Map<string, Delivered[]>();
  private readonly activeReceives = new Map<string, number>();
  private readonly receiveStarts = new Map<string, number>();
  private readonly commits = new Map<string, string>();
  private readonly limitations = new Set<string>();
  private readonly figures = { operations: 0, commits: 0, stepAsides: 0, faults: {} as Record<string, number> };
  private operationCounter = 0;
  private bodyCounter = 0;
  private deduplicationCounter = 0;
  private step = 0;
  private readonly topic: TopicCheck | undefined;

  constructor(private readonly options: ClusterSimulationOptions) {
    this.random = new SeededRandom(options.seed);
    this.idRandom = new SeededRandom(options.seed ^ 0x5bd1e995);
    const networkRandom = new SeededRandom(options.seed ^ 0x27d4eb2f);
    this.network = new SimNetwork(this.infrastructureClock, networkRandom, (line) => this.record(line));
    this.etcd = new SimEtcd(this.infrastructureClock, (line) => this.record(line));
    const nodeCount = this.random.int(4) === 0 ? 4 : 3;
    this.maxConcurrentFaults = 1 + this.random.int(2);
    this.partitionCount = 1 + this.random.int(2);
    this.partitionOptions = {
      maintenanceIntervalMs: 250 + this.random.int(1000),
      checkpointEveryRecords: 20 + this.random.int(100),
      checkpointIntervalMs: 1000 + this.random.int(10_000),
      logOptions: {
        segmentBytesMax: 64 * 1024,
        groupCommitBytesMax: 4096 + this.random.int(8192),
        indexIntervalBytes: 256,
        ...preallocationOf(options.seed, options.preallocate),
      },
    };
    for (let index = 1; index <= nodeCount; index++) {
      const id = `n${index}`;
      const node: SimNode = {
        id, address: `${id}:7100`, disk: new SimFileSystem(),
        wallOffsetMs: this.random.int(2 * wallOffsetMaxMs + 1) - wallOffsetMaxMs,
        rate: 1 + (this.random.int(11) - 5) / 1000,
        generation: 0, processClock: undefined, fs: undefined, clock: undefined, node: undefined, fault: undefined,
      };
      this.nodes.push(node);
      this.record(`node ${id} wall offset ${node.wallOffsetMs} ms, clock rate ${node.rate}`);
    }
    this.record(`config nodes=${nodeCount} maxConcurrentFaults=${this.maxConcurrentFaults} partitions=${this.partitionCount}`);
    if (options.topics === true) this.topic = new TopicCheck(new SeededRandom(options.seed ^ 0x1b873593));
  }

  async run(): Promise<ClusterSimulationResult> {
    const onUnhandled = (reason: unknown): void => this.checker.report('unhandled-rejection', describeError(reason));
    process.on('unhandledRejection', onUnhandled);
    try {
      for (const node of this.nodes) this.startNode(node);
      await this.advance(2000);
      await this.setup();
      for (this.step = 0; this.step < this.options.steps; this.step++) {
        this.checker.step = this.step;
        await this.oneStep();
        await this.settle();
      }
      await this.drain();
    } catch (error) {
      this.checker.report('simulator-error', describeError(error));
    } finally {
      for (const node of this.nodes) this.kill(node, 'process');
      await this.settle();
      process.off('unhandledRejection', onUnhandled);
    }
    this.record(`end anomalies=${this.checker.anomalies.map((anomaly) => anomaly.kind).join(',')}`);
    const figures = this.checker.figures;
    return {
      seed: this.options.seed,
      traceHash: this.trace.digest('hex').slice(0, 16),
      steps: this.options.steps,
      nodes: this.nodes.length,
      operations: this.figures.operations,
      acknowledgedMessages: figures.acknowledged,
      excusedMessages: this.acknowledged.filter((entry) => entry.excused).length,
      deliveries: figures.deliveries,
      commits: this.figures.commits,
      stepAsides: this.figures.stepAsides,
      faults: { ...this.figures.faults },
      connectionsBroken: this.network.figures.connectionsBroken,
      simulatedMs: this.timeline.nowMs() - startMs,
      limitations: [...this.limitations],
      anomalies: this.checker.anomalies,
      ...(this.topic === undefined ? {} : { topic: this.topic.figures() }),
    };
  }

  // ---- node processes --------------------------------------------------------------

  private startNode(state: SimNode): void {
    const generation = ++state.generation;
    const processClock = new ProcessClock(this.timeline);
    const clock = new NodeClock(processClock, this.timeline, state.wallOffsetMs, state.rate);
    // With disk stalls the node watches its running syncs, as a real node does (NodeFileSystem).
    const fs = new ProcessFileSystem(state.disk, this.options.diskStalls === true ? () => clock.monotonicMs() : undefined);
    Object.assign(state, { processClock, clock, fs });
    const logger: PartitionLogger = {
      info: () => undefined,
      warn: (object, message) => {
        if (message.startsWith('stepping aside')) this.figures.stepAsides++;
        this.record(`${state.id}#${generation} warn ${message} ${describeFields(object)}`);
      },
      error: (object, message) => this.record(`${state.id}#${generation} error ${message} ${describeError((object as { err?: unknown }).err)}`),
    };
    const coordinator = new SimCoordinator({
      nodeId: state.id, etcd: this.etcd, network: this.network, networkClock: this.infrastructureClock, clock,
      leaseTtlMs, fenceMarginMs, pollIntervalMs, requestTimeoutMs: 2000, logger,
      ...(this.options.diskStalls === true ? { pendingSyncAgeMs: () => fs.pendingSyncAgeMs() } : {}),
    });
    let node: ClusterNode | undefined;
    const link = new SimPeerLink(this.network, state.id, state.address, clock, {
      onRequest: (method, body, signal) => (node === undefined ? Promise.reject(new Error('node is starting')) : node.handlePeerRequest(method, body, signal)),
      onReplicate: (frame, reply) => node?.handleReplicate(frame, reply),
      onAck: (address, frame) => node?.handleAck(address, frame),
      onSnapshotChunk: (frame) => node?.handleSnapshotChunk(frame),
      onDisconnect: (address) => node?.handleDisconnect(address),
    });
    this.network.register(state.address, state.id, link);
    let ids = 0;
    const self = { id: state.id, zone: '', region, httpUrl: '', peerAddress: state.address };
    node = new ClusterNode({
      self,
      coordinator, link, fs, dataDirectory, clock, logger, region, accountId,
      newId: () => `${hex(this.idRandom, 8)}-${(ids++ % 0x10000).toString(16).padStart(4, '0')}-4${hex(this.idRandom, 3)}-8${hex(this.idRandom, 3)}-${hex(this.idRandom, 12)}`,
      newIncarnation: () => hex(this.idRandom, 16),
      partitionOptions: { ...this.partitionOptions, logOptions: { ...this.partitionOptions.logOptions, clock } },
      defaultReplicaCount: 1,
      defaultPartitionCount: this.partitionCount,
      replicaSetSizeDefault: 3,
      commitTimeoutMs: 10_000,
      routeTimeoutMs: 15_000,
      replicaReplaceAfterMs: 5 * 60_000,
      onCommitted: (commit) => this.recordCommit(`${state.id}#${generation}`, commit),
    });
    state.node = node;
    const started = node;
    const join = async (): Promise<void> => {
      for (;;) {
        try {
          await coordinator.start(self);
          if (state.generation === generation) started.start();
          return;
        } catch (error) {
          this.record(`${state.id}#${generation} join failed ${describeError(error)}`);
          await sleepOn(clock, 500);
        }
      }
    };
    void join();
    this.record(`start ${state.id}#${generation}`);
  }

  /** The process dies: nothing it does reaches its disk, the network or the timeline again. */
  private kill(state: SimNode, kind: 'process' | 'machine'): void {
    if (state.processClock === undefined) return;
    state.processClock.alive = false;
    state.fs!.alive = false;
    this.network.down(state.address, kind);
    state.processClock = undefined;
    state.node = undefined;
    for (const [id, operation] of [...this.outstanding]) {
      if (operation.nodeId !== state.id) continue;
      this.outstanding.delete(id);
      this.record(`lost ${id} ${operation.describe}`);
      operation.onLost();
    }
  }

  private live(): SimNode[] {
    return this.nodes.filter((node) => node.node !== undefined);
  }

  // ---- setup -----------------------------------------------------------------------

  private async setup(): Promise<void> {
    const queues: Array<{ name: string; fifo: boolean }> = [{ name: 'std', fifo: false }, { name: 'fifo.fifo', fifo: true }];
    if (this.random.int(2) === 0) queues.push({ name: 'std-b', fifo: false });
    for (const queue of queues) {
      const replicaCount = 1 + this.random.int(3);
      const visibilityTimeoutSeconds = 1 + this.random.int(20);
      const attributes: Record<string, string> = { ReplicaCount: String(replicaCount), VisibilityTimeout: String(visibilityTimeoutSeconds) };
      if (queue.fifo) attributes['FifoQueue'] = 'true';
      const node = this.nodes[0]!.node!;
      let created = false;
      for (let attempt = 0; attempt < 20 && !created; attempt++) {
        created = await this.awaitPromise(node.createQueue(queue.name, attributes, {}).then(() => true, (error: unknown) => {
          this.record(`create ${queue.name} failed ${describeError(error)}`);
          return false;
        }), 60_000) ?? false;
        if (!created) await this.advance(1000);
      }
      if (!created) throw new Error(`could not create queue ${queue.name}`);
      this.checker.addQueue({ name: queue.name, family: queue.name, fifo: queue.fifo, visibilityTimeoutSeconds, retentionSeconds: 345_600, deadLetterTarget: false });
      this.queueNames.push(queue.name);
      this.queueReplicaCounts.set(queue.name, replicaCount);
      this.deliveredByQueue.set(queue.name, []);
      this.record(`create ${queue.name} ${JSON.stringify(attributes)}`);
    }
    if (this.topic !== undefined) await this.setupTopic(this.topic);
  }

  private async setupTopic(topic: TopicCheck): Promise<void> {
    const node = this.nodes[0]!.node!;
    const create = async (name: string, attributes: Record<string, string>): Promise<void> => {
      for (let attempt = 0; attempt < 20; attempt++) {
        const created = await this.awaitPromise(node.createQueue(name, attributes, {}).then(() => true, (error: unknown) => {
          this.record(`create ${name} failed ${describeError(error)}`);
          return false;
        }), 60_000);
        if (created === true) {
          this.record(`create ${name} ${JSON.stringify(attributes)}`);
          return;
        }
        await this.advance(1000);
      }
      throw new Error(`could not create ${name}`);
    };
    await create(topicName, { 'Berth.Kind': 'topic', ReplicaCount: String(topic.replicaCount) });
    for (const name of ['tp-a', 'tp-b']) {
      const visibilityTimeoutSeconds = 1 + topic.random.int(20);
      await create(name, { 'Berth.Topic': topicName, VisibilityTimeout: String(visibilityTimeoutSeconds) });
      topic.subscribed(name, 0, visibilityTimeoutSeconds);
    }
  }

  /** A topic step (with `topics`): publish, receive and delete from a subscription, or make the late subscription. */
  private topicStep(topic: TopicCheck): void {
    if (!topic.unsubscribing && this.step >= (this.options.steps * 3) / 4) {
      // From the delete's start nothing more is promised for tp-b: what it still held goes with it.
      topic.unsubscribing = true;
      topic.unsubscribed('tp-b');
      this.launchTopicChange('tp-b', 'delete tp-b', (node) => node.deleteQueue('tp-b'));
      return;
    }
    if (!topic.settingsChanged && this.step >= (this.options.steps * 3) / 5) {
      // A changed subscription (a Subscribe record with new settings) keeps its messages and its place.
      topic.settingsChanged = true;
      const visibilityTimeoutSeconds = String(1 + topic.random.int(20));
      topic.visibilityChanging('tp-a', Number(visibilityTimeoutSeconds));
      this.launchTopicChange('tp-a', `set tp-a VisibilityTimeout=${visibilityTimeoutSeconds}`, (node) => node.setQueueAttributes('tp-a', { VisibilityTimeout: visibilityTimeoutSeconds }));
      return;
    }
    if (!topic.lateCreated && !topic.lateCreating && this.step >= this.options.steps / 2) {
      topic.lateCreating = true;
      this.launchTopicChange('tp-late', 'create tp-late', (node) => node.createQueue('tp-late', { 'Berth.Topic': topicName }, {}), (ok, endOperation) => {
        topic.lateCreating = false;
        if (!ok) return;
        topic.lateCreated = true;
        topic.subscribed('tp-late', endOperation, queueAttributeDefaults.VisibilityTimeout);
      });
      return;
    }
    if (topic.random.int(2) === 0) this.startPublish(topic);
    else this.startSubscriptionReceive(topic, topic.pickSubscription(), false);
  }

  /** Creates, changes or deletes a subscription through a random node; `done` hears whether it answered ok (a lost answer is not). */
  private launchTopicChange(queue: string, describe: string, run: (node: ClusterNode) => Promise<unknown>, done: (ok: boolean, endOperation: number) => void = () => undefined): void {
    const startOperation = this.operationCounter + 1;
    this.launch(
      describe,
      run,
      (_result, error, endOperation) => {
        if (error !== undefined) this.noteError(queue, error);
        this.record(`answer ${startOperation} ${describe} ${error === undefined ? 'ok' : describeError(error)}`);
        done(error === undefined, endOperation);
      },
      () => done(false, this.operationCounter),
    );
  }

  private startPublish(topic: TopicCheck): void {
    const entries: Array<SendInput & { body: string }> = [];
    const count = 1 + topic.random.int(4);
    for (let index = 0; index < count; index++) entries.push({ body: `t${++this.bodyCounter}`, attributes: {}, systemAttributes: {}, senderId: accountId });
    const startOperation = this.operationCounter + 1;
    for (const entry of entries) topic.published(entry.body);
    this.launch(
      `publish ${entries.map((entry) => entry.body).join(',')}`,
      (node) => node.send(topicName, entries),
      (results, error) => {
        if (results === undefined) {
          this.record(`answer ${startOperation} publish error ${describeError(error)}`);
          this.noteError(topicName, error);
          return;
        }
        const summary = results.map((result: SendOutcome | BerthError, index) => {
          if (result instanceof BerthError) {
            this.noteError(topicName, result);
            return result.code;
          }
          topic.acknowledged(entries[index]!.body, result.messageId, startOperation);
          return result.messageId;
        });
        this.excuseAcknowledged();
        this.record(`answer ${startOperation} publish ${summary.join(',')}`);
      },
      () => undefined,
    );
  }

  /**
   * Receives from a subscription and deletes what came, or (a quarter of the time) leaves it
   * to come back after its lease. At least once is what is checked, and no redelivery
   * before the lease of the last known delivery could have lapsed.
   */
  private startSubscriptionReceive(topic: TopicCheck, subscription: string, drain: boolean): number {
    const startOperation = this.operationCounter + 1;
    // As for queues (startReceive): the next primary keeps the deadline by its own clock.
    const startedMs = this.timeline.nowMs() - skewToleranceMs;
    const maxMessages = 1 + topic.random.int(10);
    return this.launch(
      `${drain ? 'drain-' : ''}receive ${subscription} max=${drain ? 10 : maxMessages}`,
      (node) => node.receive(subscription, { maxMessages: drain ? 10 : maxMessages, waitTimeSeconds: 0, ...(drain ? { visibilityTimeoutSeconds: 3600 } : {}) }),
      (messages: ReceivedMessage[] | undefined, error, endOperation) => {
        if (messages === undefined) {
          this.record(`answer ${startOperation} receive ${subscription} error ${describeError(error)}`);
          this.noteError(subscription, error);
          return;
        }
        this.record(`answer ${startOperation} receive ${subscription} ${messages.map((message) => `${message.body}x${message.receiveCount}`).join(',')}`);
        // A receive record the faulty nodes may cut sets no deadline the next primary keeps.
        const lease = {
          fromMs: topic.replicaCount <= this.faultyNodes().size ? Number.NEGATIVE_INFINITY : startedMs,
          toMs: this.timeline.nowMs(),
          visibilityTimeoutSeconds: drain ? 3600 : undefined,
          startOperation,
          endOperation,
        };
        for (const message of messages) {
          const problem = topic.delivered(subscription, message.messageId, message.body);
          if (problem !== undefined) this.checker.report('topic-unknown-message', problem);
          const early = topic.leased(subscription, message.messageId, lease);
          if (early !== undefined) this.checker.report('topic-early-redelivery', early);
        }
        if (messages.length === 0) return;
        // A quarter stay undeleted, to come back once their lease lapses (and not before: see leased).
        if (!drain && topic.random.int(4) === 0) return;
        const deleteOperation = this.operationCounter + 1;
        this.launch(
          `delete ${subscription} ${messages.map((message) => message.messageId).join(',')}`,
          (node) => node.deleteMessages(subscription, messages.map((message) => message.receiptHandle)),
          (results, deleteError) => {
            if (results === undefined) this.noteError(subscription, deleteError);
            this.record(`answer ${deleteOperation} delete ${subscription} ${results === undefined ? describeError(deleteError) : results.map((result) => result?.code ?? 'ok').join(',')}`);
          },
          () => undefined,
        );
      },
      () => undefined,
    );
  }

  // ---- one step --------------------------------------------------------------------

  private async oneStep(): Promise<void> {
    for (const node of this.nodes) if (node.fault !== undefined && node.fault.healStep <= this.step) await this.heal(node);
    if (this.topic !== undefined && this.outstanding.size < outstandingOperationsMax && this.topic.random.int(3) === 0) {
      this.topicStep(this.topic);
      return;
    }
    const roll = this.random.int(100);
    if (this.outstanding.size >= outstandingOperationsMax || roll < 18) {
      await this.advance(this.random.int(5) === 0 ? 2000 + this.random.int(8000) : this.random.int(1500));
    } else if (roll < 46) {
      this.startSend();
    } else if (roll < 66) {
      this.startReceive(this.pickQueue(), false);
    } else if (roll < 80) {
      this.startDelete();
    } else if (roll < 86) {
      this.startChangeVisibility();
    } else if (roll < 96) {
      this.injectFault();
    } else {
      await this.advance(this.random.int(300));
    }
  }

  // ---- faults ----------------------------------------------------------------------

  private faultyNodes(): Set<string> {
    const nowMs = this.timeline.nowMs();
    const faulty = new Set<string>();
    for (const window of this.faultWindows) if (window.untilMs > nowMs) for (const id of window.nodes) faulty.add(id);
    return faulty;
  }

  private injectFault(): void {
    const kinds: FaultKind[] = ['crash', 'machine-crash', 'pause', 'isolate', 'cut-pair', 'disk', 'drop', ...(this.options.diskStalls === true ? (['stall'] as FaultKind[]) : [])];
    const kind = kinds[this.random.int(kinds.length)]!;
    if (kind === 'drop') {
      const broken = this.network.breakRandomConnection();
      if (broken !== undefined) this.count('drop');
      return;
    }
    const faulty = this.faultyNodes();
    const candidates = this.nodes.filter((node) => node.fault === undefined && node.processClock !== undefined && !faulty.has(node.id));
    const width = kind === 'cut-pair' ? 2 : 1;
    if (candidates.length < width || faulty.size + width > this.maxConcurrentFaults) return;
    const target = candidates[this.random.int(candidates.length)]!;
    const partner = kind === 'cut-pair' ? candidates.filter((node) => node !== target)[this.random.int(candidates.length - 1)]! : undefined;
    const window: FaultWindow = { nodes: partner === undefined ? [target.id] : [target.id, partner.id], untilMs: Number.POSITIVE_INFINITY };
    this.faultWindows.push(window);
    const healStep = this.step + 2 + this.random.int(12);
    target.fault = { kind, healStep, window, ...(partner === undefined ? {} : { partner: partner.id }) };
    this.count(kind);
    this.excuseAcknowledged();
    switch (kind) {
      case 'crash':
        this.kill(target, 'process');
        break;
      case 'machine-crash':
        this.kill(target, 'machine');
        break;
      case 'pause':
        target.clock!.pause();
        // Past the lease, most of the time: the node must come back fenced.
        target.fault.minimumUntilMs = this.pastTheLeaseMostly();
        break;
      case 'isolate':
        this.network.isolate(target.id);
        break;
      case 'cut-pair':
        this.network.cut(target.id, partner!.id);
        break;
      case 'disk':
        if (this.random.int(2) === 0) target.disk.injectFault({ operation: 'sync', code: 'EIO', count: 1 + this.random.int(2) });
        else target.disk.injectFault({ operation: 'write', code: 'EIO', count: 1 });
        break;
      case 'stall':
        target.disk.stall();
        // Past the lease, most of the time: the node must step aside, then come back.
        target.fault.minimumUntilMs = this.pastTheLeaseMostly();
        break;
    }
    this.record(`fault ${kind} ${window.nodes.join(',')} until step ${healStep}`);
  }

  /** When a pause or a stall may end at the earliest: 0.5 s from now one time in four, else past the lease TTL. */
  private pastTheLeaseMostly(): number {
    return this.timeline.nowMs() + (this.random.int(4) === 0 ? 500 : leaseTtlMs + 500 + this.random.int(4000));
  }

  private async heal(state: SimNode): Promise<void> {
    const fault = state.fault!;
    state.fault = undefined;
    // A pause or a stall lasts at least until its minimum, whatever step heals it.
    if (fault.minimumUntilMs !== undefined && fault.minimumUntilMs > this.timeline.nowMs()) await this.advance(fault.minimumUntilMs - this.timeline.nowMs());
    switch (fault.kind) {
      case 'crash':
        this.startNode(state);
        break;
      case 'machine-crash': {
        const torn = this.random.int(2) === 0;
        state.disk.crash({ torn, garbage: torn && this.random.int(3) === 0, random: this.random });
        this.startNode(state);
        break;
      }
      case 'pause':
        state.clock?.resume();
        break;
      case 'stall':
        state.disk.unstall();
        break;
      case 'isolate':
      case 'cut-pair':
        // Some connections held across the cut time out before it heals.
        this.network.breakSomeBlocked();
        this.network.healNode(state.id);
        break;
      case 'disk':
        // A failed log stops for good: the operator restarts the node (a machine crash, to be harsh).
        this.kill(state, 'machine');
        state.disk.clearFaults();
        state.disk.crash({ torn: false, random: this.random });
        this.startNode(state);
        break;
      default:
        break;
    }
    fault.window.untilMs = this.timeline.nowMs() + recoveryWindowMs;
    this.record(`heal ${fault.kind} ${fault.window.nodes.join(',')}`);
  }

  /**
   * Stops promising what the faulty nodes can now undo: acknowledged messages, and the
   * receives and deletes of queues, whose replica count they reach.
   */
  private excuseAcknowledged(): void {
    const faulty = this.faultyNodes().size;
    for (const [queue, replicaCount] of this.queueReplicaCounts) if (replicaCount <= faulty) this.checker.excuseQueue(queue);
    for (const entry of this.acknowledged) {
      if (entry.excused || entry.replicaCount > faulty) continue;
      entry.excused = true;
      this.checker.excuseLoss(entry.messageId);
    }
    if (this.topic !== undefined && this.topic.replicaCount <= faulty) this.topic.excuseAll();
  }

  /** Whether an answer on this queue now may be undone by the faulty nodes (see excuseAcknowledged). */
  private undoable(queue: string): boolean {
    return this.queueReplicaCounts.get(queue)! <= this.faultyNodes().size;
  }

  private count(kind: string): void {
    this.figures.faults[kind] = (this.figures.faults[kind] ?? 0) + 1;
  }

  private recordCommit(process: string, commit: { key: string; epoch: number; endOffset: number; replicaCount: number }): void {
    this.figures.commits++;
    const slot = `${commit.key}@${commit.epoch}`;
    const holder = this.commits.get(slot);
    if (holder === undefined) this.commits.set(slot, process);
    else if (holder !== process) this.checker.report('two-primaries-one-epoch', `partition ${commit.key} epoch ${commit.epoch}: ${holder} and ${process} both committed (end ${commit.endOffset})`);
  }

  // ---- time ------------------------------------------------------------------------

  private async advance(deltaMs: number): Promise<void> {
    const targetMs = this.timeline.nowMs() + deltaMs;
    this.record(`advance ${deltaMs}`);
    while (this.timeline.fireNext(targetMs)) await this.settle();
    await this.settle();
  }

  private async settle(): Promise<void> {
    await nextTurn();
  }

  /** Fires timers until the promise settled (at most `limitMs` of simulated time); undefined when it did not. */
  private async awaitPromise<T>(promise: Promise<T>, limitMs: number): Promise<T | undefined> {
    let settled = false;
    let value: T | undefined;
    promise.then((result) => { settled = true; value = result; }, () => { settled = true; });
    await this.settle();
    const untilMs = this.timeline.nowMs() + limitMs;
    while (!settled && this.timeline.fireNext(untilMs)) await this.settle();
    return value;
  }

  // ---- client operations -----------------------------------------------------------

  private pickQueue(): string {
    return this.queueNames[this.random.int(this.queueNames.length)]!;
  }

  /** Starts an operation through a random live node (held while that node is paused). */
  private launch<T>(describe: string, run: (node: ClusterNode) => Promise<T>, answer: (result: T | undefined, error: unknown, endOperation: number) => void, onLost: () => void): number {
    const id = ++this.operationCounter;
    this.figures.operations++;
    const live = this.live();
    if (live.length === 0) {
      this.record(`start ${id} ${describe}: no live node`);
      onLost();
      return id;
    }
    const target = live[this.random.int(live.length)]!;
    const node = target.node!;
    const generation = target.generation;
    this.record(`start ${id} via ${target.id} ${describe}`);
    this.outstanding.set(id, { describe, nodeId: target.id, generation, onLost });
    const settled = (result: T | undefined, error: unknown): void => {
      if (!this.outstanding.has(id) || target.generation !== generation) return;
      this.outstanding.delete(id);
      answer(result, error, ++this.operationCounter);
    };
    target.clock!.runOrHold(() => {
      let promise: Promise<T>;
      try {
        promise = run(node);
      } catch (error) {
        promise = Promise.reject(error);
      }
      promise.then((result) => settled(result, undefined), (error: unknown) => settled(undefined, error ?? new Error('rejected without a reason')));
    });
    return id;
  }

  private startSend(): void {
    const queue = this.pickQueue();
    const fifo = this.checker.queues.get(queue)!.fifo;
    const replicaCount = this.queueReplicaCounts.get(queue)!;
    const entries: Array<SendInput & { body: string }> = [];
    const count = 1 + this.random.int(4);
    for (let index = 0; index < count; index++) {
      const body = `m${++this.bodyCounter}:${'x'.repeat(this.random.int(60))}`;
      const entry: SendInput & { body: string } = { body, attributes: {}, systemAttributes: {}, senderId: accountId };
      if (fifo) {
        entry.groupId = `g${this.random.int(3)}`;
        entry.deduplicationId = `d${++this.deduplicationCounter}`;
      }
      entries.push(entry);
    }
    const startedMs = this.timeline.nowMs();
    const startOperation = this.operationCounter + 1;
    // Known as possibly sent from the start: a receive through the primary may hand a
    // message out (once it is committed) before the send's answer crossed the network back.
    // (Deduplication ids are never reused here, so this hides no deduplication check.)
    const unknown = (): void => { for (const entry of entries) this.checker.sendUnknown(queue, entry.body, entry.deduplicationId, startedMs, startOperation); };
    for (const entry of entries) this.checker.sendStarted(queue, entry.deduplicationId);
    unknown();
    this.launch(
      `send ${queue} ${entries.map((entry) => entry.body.slice(0, entry.body.indexOf(':')) + (entry.groupId === undefined ? '' : `/${entry.groupId}`)).join(',')}`,
      (node) => node.send(queue, entries),
      (results, error) => {
        if (results === undefined) {
          this.record(`answer ${startOperation} send error ${describeError(error)}`);
          this.noteError(queue, error);
          unknown();
          return;
        }
        const summary = results.map((result: SendOutcome | BerthError, index) => {
          const entry = entries[index]!;
          if (result instanceof BerthError) {
            this.noteError(queue, result);
            this.checker.sendUnknown(queue, entry.body, entry.deduplicationId, startedMs, startOperation);
            return result.code;
          }
          this.checker.sendAcknowledged({
            queue, body: entry.body, messageId: result.messageId, sequenceNumber: result.sequenceNumber, groupId: entry.groupId,
            deduplicationId: entry.deduplicationId, deduplicationIdReused: false, startMs: startedMs, startOperation,
          });
          this.acknowledged.push({ messageId: result.messageId, replicaCount, excused: false });
          return `${result.messageId}${result.sequenceNumber === undefined ? '' : `#${result.sequenceNumber}`}`;
        });
        this.excuseAcknowledged();
        this.record(`answer ${startOperation} send ${summary.join(',')}`);
      },
      unknown,
    );
  }

  private startReceive(queue: string, drain: boolean): number {
    const info = this.checker.queues.get(queue)!;
    const override = drain ? 3600 : this.random.int(2) === 0 ? undefined : this.random.int(21);
    const waitTimeSeconds = drain || this.random.int(10) < 7 ? 0 : 1 + this.random.int(3);
    const maxMessages = drain ? 10 : 1 + this.random.int(10);
    // The deadline is kept by whichever primary serves the next receive: allow the skew between two nodes.
    const startedMs = this.timeline.nowMs() - skewToleranceMs;
    const startOperation = this.operationCounter + 1;
    // A long poll of several partitions polls them all and keeps the first answer; the others
    // may still deliver and hand their messages back (visibility 0), unseen by the client but
    // making its receipts stale. Such a receive counts as unknown from its start to its end.
    const hiddenDeliveries = this.partitionCount > 1 && waitTimeSeconds > 0;
    if (hiddenDeliveries) this.checker.receiveUnknown(queue);
    const unknownReceivesAtDelivery = this.checker.unknownReceiveCount(queue);
    this.activeReceives.set(queue, (this.activeReceives.get(queue) ?? 0) + 1);
    this.receiveStarts.set(queue, (this.receiveStarts.get(queue) ?? 0) + 1);
    const finished = (): void => {
      this.activeReceives.set(queue, (this.activeReceives.get(queue) ?? 1) - 1);
      if (hiddenDeliveries) this.checker.receiveUnknown(queue);
    };
    return this.launch(
      `receive ${queue} max=${maxMessages} visibility=${override ?? '-'} wait=${waitTimeSeconds}`,
      (node) => node.receive(queue, { maxMessages, visibilityTimeoutSeconds: override, waitTimeSeconds }),
      (messages: ReceivedMessage[] | undefined, error, endOperation) => {
        finished();
        if (messages === undefined) {
          this.record(`answer ${startOperation} receive error ${describeError(error)}`);
          this.noteError(queue, error);
          this.checker.receiveUnknown(queue);
          return;
        }
        this.record(`answer ${startOperation} receive ${messages.map((message) => `${message.messageId}${message.sequenceNumber === undefined ? '' : `#${message.sequenceNumber}`}x${message.receiveCount}@${receiptText(message.receiptHandle)}`).join(',')}`);
        const batch = new Set(messages.map((message) => message.messageId));
        const list = this.deliveredByQueue.get(queue)!;
        // A receive record the faulty nodes may cut sets no deadline the next primary keeps.
        const deadlineFromMs = this.undoable(queue) ? Number.NEGATIVE_INFINITY : startedMs;
        for (const message of messages) {
          this.checker.delivered({
            queue, messageId: message.messageId, body: message.body, receiptHandle: message.receiptHandle, groupId: message.groupId,
            sequenceNumber: message.sequenceNumber, receiveCount: message.receiveCount, visibilityTimeoutSeconds: override ?? info.visibilityTimeoutSeconds,
            startMs: deadlineFromMs, endMs: this.timeline.nowMs(), startOperation, endOperation, batch, drain,
          });
          list.push({ queue, messageId: message.messageId, receiptHandle: message.receiptHandle, unknownReceivesAtDelivery });
        }
        if (list.length > 60) list.splice(0, list.length - 60);
      },
      () => { finished(); this.checker.receiveUnknown(queue); },
    );
  }

  private pickDeliveries(maxCount: number): Delivered[] {
    const list = this.deliveredByQueue.get(this.pickQueue())!;
    if (list.length === 0) return [];
    const picked: Delivered[] = [];
    const count = 1 + this.random.int(maxCount);
    for (let index = 0; index < count; index++) {
      const recent = this.random.int(5) !== 0;
      const delivered = list[recent ? list.length - 1 - this.random.int(Math.min(list.length, 8)) : this.random.int(list.length)]!;
      if (!picked.includes(delivered)) picked.push(delivered);
    }
    return picked;
  }

  private startDelete(picked = this.pickDeliveries(5), drain = false): number | undefined {
    if (picked.length === 0) return undefined;
    const queue = picked[0]!.queue;
    const startOperation = this.operationCounter + 1;
    const latest = picked.map((delivered) => this.checker.isLatestReceipt(queue, delivered.messageId, delivered.receiptHandle));
    const quietAtStart = (this.activeReceives.get(queue) ?? 0) === 0;
    const receiveStartsAtStart = this.receiveStarts.get(queue) ?? 0;
    for (const delivered of picked) this.checker.changeStarted({ queue, messageId: delivered.messageId, receiptHandle: delivered.receiptHandle, startOperation, notBeforeMs: Number.NEGATIVE_INFINITY });
    const report = (answered: 'ok' | 'unknown', index: number): void => {
      if (!latest[index]) return;
      const delivered = picked[index]!;
      const concurrentReceive = !quietAtStart || (this.receiveStarts.get(queue) ?? 0) !== receiveStartsAtStart;
      const outcome = answered === 'ok' && this.undoable(queue) ? 'unknown' : answered;
      this.checker.deleteResult({ queue, messageId: delivered.messageId, receiptHandle: delivered.receiptHandle, outcome, unknownReceivesAtDelivery: delivered.unknownReceivesAtDelivery, startOperation, concurrentReceive });
    };
    return this.launch(
      `${drain ? 'drain-' : ''}delete ${queue} ${picked.map((delivered) => `${delivered.messageId}@${receiptText(delivered.receiptHandle)}`).join(',')}`,
      (node) => node.deleteMessages(queue, picked.map((delivered) => delivered.receiptHandle)),
      (results, error) => {
        if (results === undefined) {
          this.record(`answer ${startOperation} delete error ${describeError(error)}`);
          this.noteError(queue, error);
          picked.forEach((_, index) => report('unknown', index));
          return;
        }
        this.record(`answer ${startOperation} delete ${results.map((result) => result?.code ?? 'ok').join(',')}`);
        results.forEach((result, index) => {
          if (result === null) report('ok', index);
          else {
            this.noteError(queue, result);
            if (isUnknownOutcome(result)) report('unknown', index);
          }
        });
      },
      () => picked.forEach((_, index) => report('unknown', index)),
    );
  }

  private startChangeVisibility(): void {
    const picked = this.pickDeliveries(3);
    if (picked.length === 0) return;
    const queue = picked[0]!.queue;
    const timeouts = picked.map(() => this.random.int(31));
    const startedMs = this.timeline.nowMs() - skewToleranceMs;
    const startOperation = this.operationCounter + 1;
    picked.forEach((delivered, index) => {
      this.checker.changeStarted({ queue, messageId: delivered.messageId, receiptHandle: delivered.receiptHandle, startOperation, notBeforeMs: startedMs + timeouts[index]! * 1000 });
    });
    const report = (answered: 'ok' | 'unknown', index: number): void => {
      const delivered = picked[index]!;
      const outcome = answered === 'ok' && this.undoable(queue) ? 'unknown' : answered;
      this.checker.visibilityChanged({ queue, messageId: delivered.messageId, receiptHandle: delivered.receiptHandle, visibilityTimeoutSeconds: timeouts[index]!, startMs: startedMs, outcome, startOperation });
    };
    this.launch(
      `change-visibility ${queue} ${picked.map((delivered, index) => `${delivered.messageId}=${timeouts[index]!}`).join(',')}`,
      (node) => node.changeVisibility(queue, picked.map((delivered, index) => ({ receiptHandle: delivered.receiptHandle, visibilityTimeoutSeconds: timeouts[index]! }))),
      (results, error) => {
        if (results === undefined) {
          this.record(`answer ${startOperation} change-visibility error ${describeError(error)}`);
          this.noteError(queue, error);
          picked.forEach((_, index) => report('unknown', index));
          return;
        }
        this.record(`answer ${startOperation} change-visibility ${results.map((result) => result?.code ?? 'ok').join(',')}`);
        results.forEach((result, index) => {
          if (result === null) report('ok', index);
          else {
            this.noteError(queue, result);
            if (isUnknownOutcome(result)) report('unknown', index);
          }
        });
      },
      () => picked.forEach((_, index) => report('unknown', index)),
    );
  }

  /** Cluster answers: unavailability is expected under faults; anything that is not a BerthError is a bug. */
  private noteError(queue: string, error: unknown): void {
    if (error instanceof BerthError) {
      if (error.code === 'InternalError' && this.faultyNodes().size === 0 && !this.nodes.some((node) => node.fault !== undefined)) {
        this.checker.report('unexpected-error', `${queue}: InternalError with no fault in the cluster: ${error.message}`);
      }
      return;
    }
    this.checker.report('unexpected-error', `${queue}: ${describeError(error)}`);
  }

  // ---- the end ---------------------------------------------------------------------

  private async drain(): Promise<void> {
    this.checker.step = this.options.steps;
    this.record('drain');
    for (const node of this.nodes) if (node.fault !== undefined) await this.heal(node);
    this.network.heal();
    // Past every visibility deadline (at most 30 s), failovers and catch-up included.
    await this.advance(45_000);
    for (const queue of this.queueNames) {
      let emptyAnswers = 0;
      for (let attempt = 0; attempt < 400 && emptyAnswers < 2; attempt++) {
        const before = this.checker.figures.deliveries;
        const id = this.startReceive(queue, true);
        await this.awaitOperation(id);
        const got = this.checker.figures.deliveries - before;
        if (got === 0) {
          emptyAnswers++;
          await this.advance(1000);
          continue;
        }
        emptyAnswers = 0;
        const list = this.deliveredByQueue.get(queue)!;
        const deleteId = this.startDelete(list.slice(list.length - got), true);
        if (deleteId !== undefined) await this.awaitOperation(deleteId);
      }
    }
    if (this.topic !== undefined) await this.drainTopic(this.topic);
    await this.advance(5000);
    await this.checkConvergence();
    const counts = new Map<string, { visible: number; inflight: number; delayed: number }>();
    for (const queue of this.queueNames) {
      const node = this.live()[0]?.node;
      const queueCounts = node === undefined ? undefined : await this.awaitPromise(node.queueCounts(queue), 30_000);
      if (queueCounts === undefined) this.checker.report('drain-counts', `${queue}: no node answered the counts after the drain`);
      else counts.set(queue, queueCounts);
    }
    this.checker.finish({ nowMs: this.timeline.nowMs() - skewToleranceMs, counts });
  }

  /** Receives every subscription empty (deleting as it goes), then checks every acknowledged publish reached each. */
  private async drainTopic(topic: TopicCheck): Promise<void> {
    for (const subscription of topic.subscriptions()) {
      let emptyAnswers = 0;
      for (let attempt = 0; attempt < 400 && emptyAnswers < 2; attempt++) {
        const before = topic.deliveries;
        await this.awaitOperation(this.startSubscriptionReceive(topic, subscription, true));
        // Let the delete it started finish before the next receive.
        await this.advance(200);
        if (topic.deliveries === before) {
          emptyAnswers++;
          await this.advance(1000);
        } else {
          emptyAnswers = 0;
        }
      }
    }
    for (const problem of topic.missing()) this.checker.report('topic-lost-acknowledged', problem);
  }

  private async awaitOperation(id: number): Promise<void> {
    await this.settle();
    const untilMs = this.timeline.nowMs() + 60_000;
    while (this.outstanding.has(id) && this.timeline.fireNext(untilMs)) await this.settle();
    if (this.outstanding.has(id)) this.checker.report('operation-stuck', `operation ${id} (${this.outstanding.get(id)!.describe}) never answered in 60 s`);
  }

  /** Every replica of every partition holds the same log (retried while catch-up runs). */
  private async checkConvergence(): Promise<void> {
    let problems: string[] = [];
    for (let round = 0; round < 8; round++) {
      problems = await this.compareReplicas();
      if (problems.length === 0) return;
      await this.advance(5000);
    }
    for (const problem of problems) this.checker.report('replicas-diverged', problem);
  }

  private async compareReplicas(): Promise<string[]> {
    const problems: string[] = [];
    const view = this.etcd.range();
    for (const [key, versioned] of view.partitions) {
      const runners = versioned.assignment.replicas.map((id) => ({ id, runner: this.nodes.find((node) => node.id === id)?.node?.hostedRunner(key) }));
      const missing = runners.filter((entry) => entry.runner === undefined || entry.runner.isClosed);
      if (missing.length > 0) {
        problems.push(`${key}: replicas ${missing.map((entry) => entry.id).join(',')} do not host it`);
        continue;
      }
      const primary = runners.find((entry) => entry.id === versioned.assignment.primary)!.runner!;
      const ends = runners.map((entry) => `${entry.id}:${entry.runner!.startOffset}-${entry.runner!.endOffset}/e${entry.runner!.lastEpoch}`);
      const behind = runners.filter((entry) => entry.runner!.endOffset < primary.startOffset);
      if (behind.length > 0) {
        // Catch-up below the primary's oldest segment needs a snapshot transfer (not built yet).
        this.limitations.add('backup-behind-log-start');
        this.record(`limitation ${key}: ${behind.map((entry) => entry.id).join(',')} behind the primary's log start (${ends.join(' ')})`);
        continue;
      }
      if (new Set(runners.map((entry) => entry.runner!.endOffset)).size !== 1) {
        const progress = this.nodes.find((node) => node.id === versioned.assignment.primary)?.node?.status().local.find((local) => local.key === key);
        const backups = progress?.backups.map((backup) => `${backup.id} ${backup.phase} durable ${backup.durableEnd}`).join(', ') ?? 'no driver';
        problems.push(`${key} (epoch ${versioned.assignment.epoch}, primary ${versioned.assignment.primary} ${progress?.role ?? '?'} at ${progress?.epoch ?? '?'}): log ends differ: ${ends.join(' ')}; primary's backups: ${backups}`);
        continue;
      }
      const from = Math.max(...runners.map((entry) => entry.runner!.startOffset));
      const end = primary.endOffset;
      const digests: string[] = [];
      for (const entry of runners) {
        const hash = createHash('sha256');
        let at = from;
        while (at < end) {
          const records = await this.awaitPromise(entry.runner!.readForShipping(at, end, 1024 * 1024), 10_000);
          if (records === undefined || records.length === 0) break;
          for (const record of records) hash.update(`${record.offset}/${record.epoch}/${record.type}/${Buffer.from(record.leafHash).toString('hex')}\n`);
          at = records[records.length - 1]!.offset + 1;
        }
        digests.push(`${at === end ? '' : `short at ${at} `}${hash.digest('hex').slice(0, 12)}`);
      }
      if (new Set(digests).size !== 1) problems.push(`${key}: records differ over ${from}..${end}: ${runners.map((entry, index) => `${entry.id}=${digests[index]!}`).join(' ')}`);
    }
    return problems;
  }

  private record(line: string): void {
    const text = `${this.timeline.nowMs() - startMs} ${line}`;
    this.trace.update(text).update('\n');
    this.options.onTrace?.(text);
  }
}

/** A log call's fields for the trace (an error by its message only). */
function describeFields(object: object): string {
  return JSON.stringify(object, (key, value: unknown) => (key === 'err' ? describeError(value) : value));
}

/** partition:messageOffset/receiveOffset of a receipt handle, for the trace. */
function receiptText(handle: string): string {
  const fields = decodeReceiptHandle(handle);
  return `p${fields.partition}:${fields.messageOffset}/${fields.receiveOffset}`;
}

function isUnknownOutcome(error: unknown): boolean {
  return !(error instanceof BerthError) || error.code === 'ServiceUnavailable' || error.code === 'InternalError' || error.code === 'NotPrimary';
}

function describeError(error: unknown): string {
  if (error instanceof BerthError) return `${error.code}: ${error.message}`;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

function hex(random: SeededRandom, length: number): string {
  let text = '';
  for (let index = 0; index < length; index++) text += '0123456789abcdef'[random.int(16)];
  return text;
}

const topicName = 'tp';

/**
 * The topic's part of the checks: which publishes were acknowledged (and from which
 * operation), which subscription existed from which operation, and what each delivered.
 */
class TopicCheck {
  readonly replicaCount: number;
  lateCreating = false;
  lateCreated = false;
  unsubscribing = false;
  settingsChanged = false;
  deliveries = 0;
  private readonly bodies = new Set<string>();
  private readonly acknowledgedPublishes = new Map<string, { body: string; startOperation: number; excused: boolean }>();
  private readonly since = new Map<string, number>();
  private readonly seen = new Map<string, Set<string>>();
  /** Per subscription, the shortest visibility timeout it may have had since its last change began (seconds). */
  private readonly visibilitySeconds = new Map<string, number>();
  /** Per subscription and message: when its last known lease began at the earliest, for how long, and the operation that answered it. */
  private readonly leases = new Map<string, Map<string, { fromMs: number; visibilityMs: number; answeredOperation: number }>>();

  constructor(readonly random: SeededRandom) {
    this.replicaCount = 1 + random.int(3);
  }

  private made = 0;

  subscribed(name: string, fromOperation: number, visibilityTimeoutSeconds: number): void {
    this.made++;
    this.since.set(name, fromOperation);
    this.seen.set(name, new Set());
    this.visibilitySeconds.set(name, visibilityTimeoutSeconds);
    this.leases.set(name, new Map());
  }

  /** A change of the subscription's visibility timeout began: until it is known to be done, either value may hold. */
  visibilityChanging(name: string, visibilityTimeoutSeconds: number): void {
    this.visibilitySeconds.set(name, Math.min(this.visibilitySeconds.get(name) ?? visibilityTimeoutSeconds, visibilityTimeoutSeconds));
  }

  /**
   * A problem, or undefined: a message came again from `subscription` before the lease of its
   * last known delivery there could have lapsed. `lease.fromMs` is the receive's start (less
   * the clock skew allowed), or -Infinity when faulty nodes may cut its receive record;
   * `toMs` its answer. As SimChecker judges queues: only a receive that started after the
   * earlier one was answered is held to its deadline. Two receives that overlapped may have
   * leased in either order (the first answered may hold the older, lapsed lease), so then
   * the later of the two leases began no earlier than either receive's start.
   */
  leased(subscription: string, messageId: string, lease: { fromMs: number; toMs: number; visibilityTimeoutSeconds: number | undefined; startOperation: number; endOperation: number }): string | undefined {
    const leases = this.leases.get(subscription);
    if (leases === undefined) return undefined;
    const previous = leases.get(messageId);
    const visibilityMs = (lease.visibilityTimeoutSeconds ?? this.visibilitySeconds.get(subscription) ?? 0) * 1000;
    if (previous !== undefined && lease.startOperation <= previous.answeredOperation) {
      leases.set(messageId, {
        fromMs: Math.max(previous.fromMs, lease.fromMs),
        visibilityMs: Math.min(previous.visibilityMs, visibilityMs),
        answeredOperation: Math.max(previous.answeredOperation, lease.endOperation),
      });
      return undefined;
    }
    leases.set(messageId, { fromMs: lease.fromMs, visibilityMs, answeredOperation: lease.endOperation });
    if (previous === undefined || lease.toMs >= previous.fromMs + previous.visibilityMs) return undefined;
    return `${subscription}: ${messageId} delivered again by ${lease.toMs} ms, while its lease from ${previous.fromMs} ms (${previous.visibilityMs} ms) still held`;
  }

  unsubscribed(name: string): void {
    this.since.delete(name);
  }

  subscriptions(): string[] {
    return [...this.since.keys()];
  }

  pickSubscription(): string {
    const names = this.subscriptions();
    return names[this.random.int(names.length)]!;
  }

  published(body: string): void {
    this.bodies.add(body);
  }

  acknowledged(body: string, messageId: string, startOperation: number): void {
    this.acknowledgedPublishes.set(messageId, { body, startOperation, excused: false });
  }

  excuseAll(): void {
    for (const entry of this.acknowledgedPublishes.values()) entry.excused = true;
    // The faulty nodes may also cut receive records: no lease known so far binds the next primary.
    for (const leases of this.leases.values()) leases.clear();
  }

  /** A problem, or undefined: every delivered body was published by some send (answered or not). */
  delivered(subscription: string, messageId: string, body: string): string | undefined {
    this.deliveries++;
    this.seen.get(subscription)?.add(messageId);
    if (!this.bodies.has(body)) return `${subscription}: delivered ${messageId} with a body no publish carried: ${JSON.stringify(body.slice(0, 40))}`;
    const acknowledged = this.acknowledgedPublishes.get(messageId);
    if (acknowledged !== undefined && acknowledged.body !== body) return `${subscription}: ${messageId} delivered with body ${body}, published with ${acknowledged.body}`;
    return undefined;
  }

  /** Acknowledged, not excused publishes a subscription that existed when the send started never delivered. */
  missing(): string[] {
    const problems: string[] = [];
    for (const [messageId, entry] of this.acknowledgedPublishes) {
      if (entry.excused) continue;
      for (const [subscription, fromOperation] of this.since) {
        if (entry.startOperation > fromOperation && !this.seen.get(subscription)!.has(messageId)) {
          problems.push(`${subscription}: acknowledged publish ${messageId} (${entry.body}, started at operation ${entry.startOperation}, subscribed from ${fromOperation}) never delivered`);
        }
      }
    }
    return problems;
  }

  figures(): { acknowledged: number; excused: number; deliveries: number; subscriptions: number } {
    const entries = [...this.acknowledgedPublishes.values()];
    return { acknowledged: entries.length, excused: entries.filter((entry) => entry.excused).length, deliveries: this.deliveries, subscriptions: this.made };
  }
}
