// A Berth node in a cluster: a QueueService that any client may call (it routes each call to
// the partition's primary, here or over the peer protocol), the host of the partitions this
// node replicates (as primary or backup), and, when elected, the controller.
//
// Partition hosting, per partition whose replica set holds this node (reconcile(), driven
// by every view read from etcd):
//   absent -> opening -> backup(knownEpoch, syncedEpoch)       when another node is primary
//   backup -> claiming (CAS epoch+1 with itself as primary)   when the map names this node primary
//   claiming -> primary(epoch)                                 once the map shows the claimed epoch
//   primary -> backup                                          when the map names another primary,
//                                                              or a backup reports a newer epoch
//   any -> closed                                              queue deleted / node left the set
// A node always claims a fresh epoch before it appends as primary (after a restart, after a
// promotion by the controller), so one epoch has exactly one appender: what makes
// (offset, epoch) identify a record and the divergence check sound.
//
// The controller (one node, elected with an etcd key under its lease) moves the primary of a
// partition whose primary's lease expired: it asks every live replica for its durable log end
// and last epoch, picks the most up-to-date (highest last epoch, then longest log) so no
// acknowledged record is lost, and writes the new assignment with compare-and-swap. It also
// replaces a replica gone longer than replicaReplaceAfterMs by a live node outside the set.
//
// Topics (docs/topics.md): a topic is a queue with partitions like any other; a
// subscription is a queue entry in etcd without partitions of its own, naming its topic (and
// the topic's incarnation) and its logical queue in the topic's partitions, where every call
// on it is routed. etcd says which subscriptions exist; the primary of each topic partition
// brings its log in line with it (Subscribe / Unsubscribe records) whenever a view shows a
// difference, always against a freshly read view, and at once when a create, change or
// delete of a subscription asks it to (p.syncSubscriptions), so the call answers only when
// every partition has the record. A new primary after a failover does the same from its
// first view. Ids of logical queues come from the topic's nextLogicalQueueId, taken by
// compare-and-swap before the subscription is created, and are never reused.

import { byReceipt, movedCopy, parseQueueConfig, partitionOfGroup, queueArn, queueNameFromArn, receiptHandleOf, receivedMessage, takenForMove, topicAttributes, type QueueIdentity } from '../broker/queue-calls.js';
import { repeatOn, sleepOn, type Clock, type TimerHandle } from '../core/clock.js';
import type { FileSystem } from '../core/filesystem.js';
import { assert } from '../core/assert.js';
import { BerthError } from '../protocol/errors.js';
import { sequenceNumberOf } from '../queue/machine.js';
import type { EnqueuePayload } from '../queue/records.js';
import type { QueueConfig, QueueCounts, ReceivedMessage, SendInput, SendOutcome } from '../queue/types.js';
import { newQueueMetadata, type QueueMetadata } from '../broker/metadata-store.js';
import { checkSubscriptionConfig, checkTopicAttributes, kindOf, reconcileSubscriptions, refusePartitionCountOnSubscription, refuseOnSubscription, refuseOnTopic, refuseReceiveOnTopic, requireTopic, subscribesTo, subscriptionsDiffer, wantedSubscriptions } from '../broker/topics.js';
import { PartitionRunner, type Delivery, type PartitionLogger, type PartitionOptions } from '../broker/partition.js';
import { MoveTaskRunner, type MoveTaskBroker } from '../broker/move-tasks.js';
import type { MoveTask, QueueDescription, QueueRouting, QueueService, ReceiveInput, VisibilityChange } from '../broker/service.js';
import { PrimaryDriver, type ReplicationLink, type ReplicaStateAnswer } from '../replication/driver.js';
import { SnapshotAssembly, decideReplicate, epochRunsOf } from '../replication/state.js';
import { AckStatus, FrameKind } from '../replication/wire.js';
import type { AckFrame, ReplicateFrame, SnapshotChunkFrame } from '../io/peer-transport.js';
import { chooseReplicaSet, loadOf, placePartitions } from './placement.js';
import { partitionKey, type ClusterView, type Coordinator, type NodeInfo, type PartitionAssignment, type VersionedAssignment } from './coordinator.js';

export interface ClusterNodeOptions {
  self: NodeInfo;
  coordinator: Coordinator;
  link: ReplicationLink;
  fs: FileSystem;
  dataDirectory: string;
  clock: Clock;
  logger: PartitionLogger & { debug?(object: object, message: string): void };
  region: string;
  accountId: string;
  newId: () => string;
  newIncarnation: () => string;
  partitionOptions?: Partial<PartitionOptions>;
  defaultReplicaCount: number;
  defaultPartitionCount: number;
  /** Replica set size of new partitions: at least this many nodes (when live), more if ReplicaCount asks. */
  replicaSetSizeDefault: number;
  commitTimeoutMs: number;
  /** How long a call waits for a partition to get a working primary before ServiceUnavailable. */
  routeTimeoutMs: number;
  replicaReplaceAfterMs: number;
  /** Observes every acknowledgement a primary driver of this node lets through (the cluster simulator records them). */
  onCommitted?: (commit: { key: string; epoch: number; endOffset: number; replicaCount: number }) => void;
}

interface Hosted {
  key: string;
  queue: string;
  incarnation: string;
  partition: number;
  runner: PartitionRunner | undefined;
  opening: Promise<void> | undefined;
  role: 'backup' | 'primary';
  /** The epoch this node serves as primary (claimed by it), 0 when backup. */
  servingEpoch: number;
  claiming: boolean;
  /** Backup: highest epoch seen; records of a lower one are refused. */
  knownEpoch: number;
  /** Backup: epoch whose primary synced this backup. */
  syncedEpoch: number;
  /** Backup: end below which every replica holds the records (checkpoints stay below it). */
  safeEnd: number;
  driver: PrimaryDriver | undefined;
  backupAddressIds: Map<string, string>;
  closing: boolean;
  /** Backup: the snapshot a primary is shipping (snapshot catch-up), if any. */
  snapshot?: SnapshotAssembly;
  /** Backup: the last Ok acknowledgement sent, and on which connection (see handleReplicate). */
  lastOkAck?: { reply: (ack: AckFrame) => void; epoch: number; durableEnd: number };
  /** Primary of a topic partition: the running reconciliation of its subscriptions with etcd, if any. */
  subscriptionSync?: Promise<void>;
  /** The last reconciliation's failure, logged once rather than at every view while it repeats. */
  subscriptionSyncError?: string;
}

interface QueueView {
  metadata: QueueMetadata;
  modRevision: string;
  config: QueueConfig;
  /** Whose partitions serve the queue: its own incarnation, or its topic's for a subscription. */
  partitionIncarnation: string;
  /** The logical queue it reads in those partitions: 0, or the subscription's. */
  logicalQueueId: number;
}

const queueDeletedRecentlyMs = 60_000;
const replicaTailRecordsMax = 10_000;

export class ClusterNode implements QueueService, MoveTaskBroker {
  readonly region: string;
  readonly accountId: string;
  private readonly hosted = new Map<string, Hosted>();
  private readonly moveTasks: MoveTaskRunner;
  private readonly nextSendPartition = new Map<string, number>();
  private readonly failoversRunning = new Set<string>();
  private readonly downSinceMs = new Map<string, number>();
  private controllerTimer: TimerHandle | undefined;
  private isController = false;
  private closed = false;
  /** Queue settings parsed from the view's metadata objects (queueView). */
  private readonly parsedConfigs = new WeakMap<QueueMetadata, QueueConfig>();

  constructor(private readonly options: ClusterNodeOptions) {
    this.region = options.region;
    this.accountId = options.accountId;
    this.moveTasks = new MoveTaskRunner(this, options.clock, options.logger, options.newId);
  }

  get selfId(): string {
    return this.options.self.id;
  }

  get controller(): boolean {
    return this.isController;
  }

  /** Starts following the view; call after the coordinator started. */
  start(): void {
    this.options.coordinator.onView((view) => this.reconcile(view));
    this.reconcile(this.options.coordinator.view());
    this.controllerTimer = repeatOn(this.options.clock, 500, () => {
      void this.controllerTick().catch((error: unknown) => this.options.logger.warn({ err: error }, 'controller tick failed'));
    }, { background: true });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.controllerTimer?.cancel();
    this.moveTasks.stopAll();
    await Promise.all(
      [...this.hosted.values()].map(async (hosted) => {
        hosted.driver?.stop('server stopping');
        await hosted.opening?.catch(() => undefined);
        await hosted.runner?.close();
      }),
    );
  }

  // ---- hosting -------------------------------------------------------------------

  private reconcile(view: ClusterView): void {
    if (this.closed) return;
    const selfId = this.options.self.id;
    for (const [key, versioned] of view.partitions) {
      const assignment = versioned.assignment;
      if (!assignment.replicas.includes(selfId)) continue;
      const queue = view.queues.get(assignment.queue);
      if (queue === undefined || queue.metadata.incarnation !== assignment.incarnation) continue;
      let hosted = this.hosted.get(key);
      if (hosted === undefined) {
        hosted = {
          key,
          queue: assignment.queue,
          incarnation: assignment.incarnation,
          partition: assignment.partition,
          runner: undefined,
          opening: undefined,
          role: 'backup',
          servingEpoch: 0,
          claiming: false,
          knownEpoch: assignment.epoch,
          syncedEpoch: 0,
          safeEnd: 0,
          driver: undefined,
          backupAddressIds: new Map(),
          closing: false,
        };
        this.hosted.set(key, hosted);
        hosted.opening = this.openHosted(hosted, queue.metadata).finally(() => {
          if (hosted !== undefined) hosted.opening = undefined;
          this.reconcile(this.options.coordinator.view());
        });
        continue;
      }
      if (hosted.runner === undefined || hosted.closing) continue;
      hosted.knownEpoch = Math.max(hosted.knownEpoch, assignment.epoch);
      // A view read before this node's own claim landed: nothing to learn from it.
      if (assignment.epoch < hosted.servingEpoch) continue;
      if (assignment.primary !== selfId) {
        if (hosted.role === 'primary') this.demote(hosted, `the map names ${assignment.primary} primary at epoch ${assignment.epoch}`);
        continue;
      }
      if (hosted.role === 'primary' && hosted.servingEpoch === assignment.epoch) {
        // Same epoch: follow changes of the backup set.
        const backups = assignment.replicas.filter((id) => id !== selfId);
        const current = [...(hosted.driver?.state.backups.keys() ?? [])];
        if (backups.join(',') !== current.join(',')) this.startServing(hosted, assignment);
        continue;
      }
      if (hosted.role === 'primary' && hosted.servingEpoch !== assignment.epoch) this.demote(hosted, 'epoch moved on');
      if (!hosted.claiming) void this.claim(hosted, versioned);
    }
    // Partitions this node no longer replicates (queue deleted, or moved off this node).
    for (const hosted of [...this.hosted.values()]) {
      const versioned = view.partitions.get(hosted.key);
      const queue = view.queues.get(hosted.queue);
      const stillHere = versioned !== undefined && versioned.assignment.replicas.includes(selfId) && queue?.metadata.incarnation === hosted.incarnation;
      if (!stillHere && hosted.runner !== undefined && !hosted.closing) void this.closeHosted(hosted, versioned === undefined);
    }
    // Topic partitions this node leads whose logs differ from the subscriptions etcd names.
    for (const hosted of this.hosted.values()) {
      if (hosted.role !== 'primary' || hosted.driver === undefined || hosted.runner === undefined || hosted.closing || hosted.subscriptionSync !== undefined) continue;
      const topic = view.queues.get(hosted.queue)?.metadata;
      if (topic === undefined || topic.incarnation !== hosted.incarnation || kindOf(topic) !== 'topic') continue;
      if (!subscriptionsDiffer(hosted.runner, this.wantedSubscriptions(view, topic))) continue;
      this.syncSubscriptions(hosted).then(
        () => {
          hosted.subscriptionSyncError = undefined;
        },
        (error: unknown) => {
          const text = error instanceof Error ? error.message : String(error);
          if (hosted.subscriptionSyncError !== text) this.options.logger.warn({ err: error, partition: hosted.key }, 'could not bring a topic partition in line with its subscriptions; retrying at every view');
          hosted.subscriptionSyncError = text;
        },
      );
    }
  }

  /**
   * Brings a topic partition this node leads in line with the subscriptions etcd names, read
   * afresh: a view older than a Subscribe record already in the log could otherwise end a
   * subscription that exists. One run at a time per partition; a call waits for its own run.
   */
  private syncSubscriptions(hosted: Hosted): Promise<void> {
    const run = async (): Promise<void> => {
      const view = await this.etcd(this.options.coordinator.refresh());
      const topic = view.queues.get(hosted.queue)?.metadata;
      if (topic === undefined || topic.incarnation !== hosted.incarnation) return; // deleted: its partitions close
      const runner = hosted.runner;
      if (runner === undefined || hosted.role !== 'primary' || hosted.closing) {
        throw new BerthError('NotPrimary', `node ${this.options.self.id} does not lead partition ${hosted.key} now; retry`);
      }
      await reconcileSubscriptions(runner, this.wantedSubscriptions(view, topic));
    };
    const next = (hosted.subscriptionSync ?? Promise.resolve()).then(run, run);
    const clear = (): void => {
      if (hosted.subscriptionSync === next) hosted.subscriptionSync = undefined;
    };
    hosted.subscriptionSync = next;
    next.then(clear, clear);
    return next;
  }

  /** The logical queues a topic's partitions should hold, from a view; a subscription's settings default to the topic's replica count. */
  private wantedSubscriptions(view: ClusterView, topic: QueueMetadata): ReturnType<typeof wantedSubscriptions> {
    const replicaCount = this.configFor(topic.attributes).replicaCount;
    return wantedSubscriptions(topic, [...view.queues.values()].map((entry) => entry.metadata), (subscription) => parseQueueConfig(subscription.attributes, replicaCount));
  }

  private async openHosted(hosted: Hosted, metadata: QueueMetadata): Promise<void> {
    try {
      hosted.runner = await PartitionRunner.open({
        name: metadata.partitionCount === 1 ? metadata.name : `${metadata.name}#${hosted.partition}`,
        fs: this.options.fs,
        directory: `${this.options.dataDirectory}/queues/${metadata.incarnation}/p${hosted.partition}`,
        config: this.configFor(metadata.attributes),
        clock: this.options.clock,
        logger: this.options.logger,
        options: this.options.partitionOptions,
        hooks: { deadLetter: (payloads, logicalQueueId) => this.deadLetter(this.logicalQueueName(metadata, logicalQueueId), payloads) },
        replication: { role: 'backup', epoch: Math.max(1, hosted.knownEpoch), tracker: this.backupTracker(hosted), recentRecordsMax: 8192 },
      });
    } catch (error) {
      this.options.logger.error({ err: error, partition: hosted.key }, 'could not open a partition replica');
      this.hosted.delete(hosted.key);
    }
  }

  private backupTracker(hosted: Hosted): { waitCommitted(): Promise<void>; checkpointSafeEnd(): number } {
    return {
      waitCommitted: () => Promise.reject(new BerthError('ServiceUnavailable', `partition ${hosted.key} is a backup here`)),
      checkpointSafeEnd: () => hosted.safeEnd,
    };
  }

  private async closeHosted(hosted: Hosted, removeData: boolean): Promise<void> {
    hosted.closing = true;
    hosted.driver?.stop('partition closed here');
    await hosted.runner?.close();
    this.hosted.delete(hosted.key);
    if (removeData) {
      try {
        await this.options.fs.remove(`${this.options.dataDirectory}/queues/${hosted.incarnation}/p${hosted.partition}`);
      } catch (error) {
        this.options.logger.warn({ err: error, partition: hosted.key }, 'could not remove a deleted partition\'s data');
      }
    }
  }

  private demote(hosted: Hosted, reason: string): void {
    this.options.logger.warn({ partition: hosted.key, epoch: hosted.servingEpoch, reason }, 'stepping down to backup');
    hosted.driver?.stop(reason);
    hosted.driver = undefined;
    hosted.role = 'backup';
    hosted.servingEpoch = 0;
    hosted.syncedEpoch = 0;
    hosted.runner?.setReplication({ role: 'backup', epoch: Math.max(1, hosted.knownEpoch), tracker: this.backupTracker(hosted), recentRecordsMax: 8192 });
  }

  /** Takes a fresh epoch for this node as primary (compare-and-swap), then serves once the map shows it. */
  private async claim(hosted: Hosted, versioned: VersionedAssignment): Promise<void> {
    hosted.claiming = true;
    try {
      if (this.options.coordinator.acknowledgeUntilMs() <= this.options.clock.monotonicMs()) return;
      if (hosted.runner?.logHoldsState === false) {
        this.options.logger.warn({ partition: hosted.key }, 'not claiming: a snapshot install has not yet received the records its state needs');
        return;
      }
      const next: PartitionAssignment = { ...versioned.assignment, epoch: versioned.assignment.epoch + 1 };
      const won = await this.options.coordinator.casPartition(next, versioned.modRevision);
      if (!won) return;
      hosted.knownEpoch = Math.max(hosted.knownEpoch, next.epoch);
      // Serve at once: the CAS succeeded, so the map names us primary at next.epoch.
      this.startServing(hosted, next);
      this.options.logger.info({ partition: hosted.key, epoch: next.epoch, endOffset: hosted.runner?.endOffset }, 'leading partition');
    } catch (error) {
      this.options.logger.warn({ err: error, partition: hosted.key }, 'claiming the partition failed');
    } finally {
      hosted.claiming = false;
      void this.options.coordinator.refresh().catch(() => undefined);
    }
  }

  private startServing(hosted: Hosted, assignment: PartitionAssignment): void {
    const runner = hosted.runner;
    assert(runner !== undefined, 'serving a partition that is not open');
    hosted.driver?.stop('backup set changed');
    const selfId = this.options.self.id;
    const backups = assignment.replicas.filter((id) => id !== selfId);
    const driver = new PrimaryDriver({
      key: hosted.key,
      epoch: assignment.epoch,
      runner,
      backups: backups.map((id) => ({ id, address: () => this.options.coordinator.view().nodes.get(id)?.peerAddress })),
      link: this.options.link,
      clock: this.options.clock,
      mayAcknowledge: () => this.options.coordinator.acknowledgeUntilMs() > this.options.clock.monotonicMs(),
      onSuperseded: () => {
        if (hosted.driver === driver) this.demote(hosted, 'a backup knows a newer epoch');
      },
      onCommitted: (endOffset, replicaCount) => this.options.onCommitted?.({ key: hosted.key, epoch: assignment.epoch, endOffset, replicaCount }),
      logger: this.options.logger,
      commitTimeoutMs: this.options.commitTimeoutMs,
      windowRecordsMax: 4096,
      heartbeatMs: 300,
      tailRecordsMax: replicaTailRecordsMax,
    });
    hosted.driver = driver;
    hosted.role = 'primary';
    hosted.servingEpoch = assignment.epoch;
    runner.setReplication({ role: 'primary', epoch: assignment.epoch, tracker: driver, recentRecordsMax: 8192 });
    driver.start();
    // The log describes its own queue settings from the start (a backup opened later with
    // other attributes converges on the primary's).
    const queue = this.options.coordinator.view().queues.get(hosted.queue);
    if (queue !== undefined && (runner.endOffset === 0 || JSON.stringify(runner.config) !== JSON.stringify(this.configFor(queue.metadata.attributes)))) {
      runner.setConfig(this.configFor(queue.metadata.attributes)).catch((error: unknown) => this.options.logger.warn({ err: error, partition: hosted.key }, 'could not record the queue settings'));
    }
  }

  // ---- peer protocol: requests and replication from other nodes -----------------

  /** Handles a peer request (also used for calls routed to this node itself, with the caller's signal if any). */
  async handlePeerRequest(method: string, body: unknown, signal: AbortSignal | undefined): Promise<unknown> {
    const request = body as { key: string } & Record<string, unknown>;
    if (method.startsWith('replica.')) return this.handleReplicaRequest(method, request);
    const hosted = this.hosted.get(request.key);
    const runner = hosted?.runner;
    if (hosted === undefined || runner === undefined || hosted.role !== 'primary' || hosted.driver === undefined || runner.isClosed) {
      throw new BerthError('NotPrimary', `node ${this.options.self.id} does not lead partition ${request.key} now; retry`);
    }
    const logicalQueueId = (request['logicalQueueId'] as number | undefined) ?? 0;
    switch (method) {
      case 'p.send':
        return (await runner.send(request['payloads'] as EnqueuePayload[])).map((outcome) => (outcome instanceof BerthError ? errorOrNull(outcome) : outcome));
      case 'p.receive': {
        const input = request['input'] as { maxMessages: number; visibilityTimeoutSeconds?: number; waitTimeSeconds: number; attemptId?: string; logicalQueueId?: number };
        return runner.receive({ ...input, signal });
      }
      case 'p.delete':
        return (await runner.deleteMessages(request['receipts'] as Array<{ messageOffset: number; receiveOffset: number }>, logicalQueueId)).map(errorOrNull);
      case 'p.changeVisibility':
        return (await runner.changeVisibility(request['changes'] as Array<{ receipt: { messageOffset: number; receiveOffset: number }; visibilityTimeoutSeconds: number }>, logicalQueueId)).map(errorOrNull);
      case 'p.counts':
        return runner.counts(logicalQueueId);
      case 'p.purge':
        await runner.purge(logicalQueueId);
        return null;
      case 'p.peek':
        return runner.peek(request['maxMessages'] as number, logicalQueueId);
      case 'p.setConfig':
        await runner.setConfig(request['config'] as QueueConfig);
        return null;
      case 'p.syncSubscriptions':
        await this.syncSubscriptions(hosted);
        return null;
      default:
        throw new BerthError('InvalidAction', `unknown peer method ${method}`);
    }
  }

  private async handleReplicaRequest(method: string, request: { key: string } & Record<string, unknown>): Promise<unknown> {
    const hosted = this.hosted.get(request.key);
    if (hosted?.opening !== undefined) await hosted.opening;
    const runner = hosted?.runner;
    if (hosted === undefined || runner === undefined || hosted.closing) {
      throw new BerthError('NotPrimary', `node ${this.options.self.id} does not hold partition ${request.key} (yet)`);
    }
    switch (method) {
      case 'replica.logState': {
        await runner.waitLocallyDurable(runner.endOffset);
        return { endOffset: runner.endOffset, lastEpoch: runner.lastEpoch, knownEpoch: hosted.knownEpoch };
      }
      case 'replica.state': {
        const epoch = request['epoch'] as number;
        if (epoch < hosted.knownEpoch) return { knownEpoch: hosted.knownEpoch, endOffset: 0, tailFrom: 0, runs: [] } satisfies ReplicaStateAnswer;
        hosted.knownEpoch = epoch;
        if (hosted.role === 'primary') this.demote(hosted, `a primary at epoch ${epoch} contacted this node`);
        hosted.syncedEpoch = 0;
        hosted.lastOkAck = undefined;
        const tail = await runner.tailEpochs(replicaTailRecordsMax);
        return { knownEpoch: hosted.knownEpoch, endOffset: runner.endOffset, tailFrom: tail.tailFrom, runs: epochRunsOf(tail.records), floorOffset: runner.cutFloorOffset } satisfies ReplicaStateAnswer;
      }
      case 'replica.sync': {
        const epoch = request['epoch'] as number;
        const cutAt = request['cutAt'] as number;
        if (epoch < hosted.knownEpoch) throw new BerthError('ServiceUnavailable', `epoch ${epoch} is older than ${hosted.knownEpoch}`);
        if (hosted.role === 'primary') this.demote(hosted, `a primary at epoch ${epoch} synced this node`);
        hosted.knownEpoch = epoch;
        hosted.syncedEpoch = 0;
        hosted.lastOkAck = undefined;
        if (cutAt < runner.endOffset) await runner.truncateAndReload(cutAt);
        await runner.waitLocallyDurable(runner.endOffset);
        if (hosted.knownEpoch === epoch) hosted.syncedEpoch = epoch;
        return { endOffset: runner.endOffset };
      }
      case 'replica.installSnapshot': {
        const epoch = request['epoch'] as number;
        const snapshotOffset = request['snapshotOffset'] as number;
        if (epoch < hosted.knownEpoch) throw new BerthError('ServiceUnavailable', `snapshot of epoch ${epoch} is older than ${hosted.knownEpoch}`);
        const state = hosted.snapshot?.take(epoch, snapshotOffset, request['totalBytes'] as number);
        if (state === undefined) throw new BerthError('ServiceUnavailable', `snapshot of ${request.key} at ${snapshotOffset} (epoch ${epoch}) did not arrive whole; retry`);
        if (hosted.role === 'primary') this.demote(hosted, `a primary at epoch ${epoch} sent this node a snapshot`);
        hosted.knownEpoch = epoch;
        hosted.syncedEpoch = 0;
        hosted.lastOkAck = undefined;
        await runner.installSnapshot(request['logStartOffset'] as number, snapshotOffset, state, request['lastEpoch'] as number);
        hosted.safeEnd = snapshotOffset;
        if (hosted.knownEpoch === epoch) hosted.syncedEpoch = epoch;
        return { endOffset: runner.endOffset };
      }
      default:
        throw new BerthError('InvalidAction', `unknown peer method ${method}`);
    }
  }

  handleReplicate(frame: ReplicateFrame, reply: (ack: AckFrame) => void): void {
    const hosted = this.hosted.get(frame.key);
    const runner = hosted?.runner;
    const ack = (status: AckStatus, durableEnd: number): void => {
      const epoch = Math.max(frame.epoch, hosted?.knownEpoch ?? 0);
      if (hosted !== undefined) {
        // One fsync makes several frames durable at once, and each frame's acknowledgement
        // would carry the same durable end: on one connection, in one epoch, a repeat tells
        // the primary nothing (it keeps the highest), and each ack wakes it. Anything other
        // than Ok starts the comparison over.
        const last = hosted.lastOkAck;
        if (status === AckStatus.Ok && last !== undefined && last.reply === reply && last.epoch === epoch && last.durableEnd === durableEnd) return;
        hosted.lastOkAck = status === AckStatus.Ok ? { reply, epoch, durableEnd } : undefined;
      }
      reply({ kind: FrameKind.Ack, key: frame.key, epoch, status, durableEnd });
    };
    if (hosted === undefined || runner === undefined || hosted.closing || hosted.role !== 'backup') {
      ack(AckStatus.NeedsSync, 0);
      return;
    }
    const decision = decideReplicate(
      { knownEpoch: hosted.knownEpoch, syncedEpoch: hosted.syncedEpoch, endOffset: runner.endOffset },
      frame.epoch,
      frame.records[0]?.offset,
      frame.records.length,
    );
    if (decision.action === 'refuse') {
      ack(decision.status, 0);
      return;
    }
    hosted.safeEnd = Math.max(hosted.safeEnd, Math.min(frame.committedEnd, runner.endOffset));
    const fresh = frame.records.slice(decision.skip);
    if (fresh.length > 0) runner.applyReplicated(fresh);
    const end = runner.endOffset;
    runner.waitLocallyDurable(end).then(
      () => ack(AckStatus.Ok, runner.durableEndOffset),
      () => ack(AckStatus.NeedsSync, 0),
    );
  }

  handleSnapshotChunk(frame: SnapshotChunkFrame): void {
    const hosted = this.hosted.get(frame.key);
    if (hosted === undefined || hosted.closing) return;
    hosted.snapshot ??= new SnapshotAssembly();
    hosted.snapshot.add(hosted.knownEpoch, frame);
  }

  handleAck(address: string, frame: AckFrame): void {
    const hosted = this.hosted.get(frame.key);
    const driver = hosted?.driver;
    if (driver === undefined) return;
    const backupId = this.nodeIdAt(address);
    if (backupId === undefined) return;
    driver.onAck(backupId, frame.epoch, frame.status, frame.durableEnd);
  }

  handleDisconnect(address: string): void {
    const backupId = this.nodeIdAt(address);
    if (backupId === undefined) return;
    for (const hosted of this.hosted.values()) hosted.driver?.onDisconnect(backupId);
  }

  private nodeIdAt(address: string): string | undefined {
    for (const node of this.options.coordinator.view().nodes.values()) if (node.peerAddress === address) return node.id;
    return undefined;
  }

  // ---- controller ----------------------------------------------------------------

  private async controllerTick(): Promise<void> {
    if (this.closed) return;
    const coordinator = this.options.coordinator;
    let view = coordinator.view();
    if (view.controller === undefined) {
      this.isController = await coordinator.campaign();
      view = await coordinator.refresh();
    }
    this.isController = view.controller === this.options.self.id && coordinator.acknowledgeUntilMs() > this.options.clock.monotonicMs();
    if (!this.isController) return;
    const nowMs = this.options.clock.monotonicMs();
    for (const id of [...this.downSinceMs.keys()]) if (view.nodes.has(id)) this.downSinceMs.delete(id);
    for (const versioned of view.partitions.values()) {
      for (const id of versioned.assignment.replicas) if (!view.nodes.has(id) && !this.downSinceMs.has(id)) this.downSinceMs.set(id, nowMs);
    }
    for (const [key, versioned] of view.partitions) {
      if (this.failoversRunning.has(key)) continue;
      const assignment = versioned.assignment;
      if (!view.nodes.has(assignment.primary)) {
        this.failoversRunning.add(key);
        void this.failover(versioned, view).finally(() => this.failoversRunning.delete(key));
        continue;
      }
      const gone = assignment.replicas.find((id) => !view.nodes.has(id) && nowMs - (this.downSinceMs.get(id) ?? nowMs) > this.options.replicaReplaceAfterMs);
      if (gone !== undefined) {
        const live = [...view.nodes.values()].map((node) => ({ id: node.id, zone: node.zone, region: node.region }));
        const kept = assignment.replicas.filter((id) => id !== gone).map((id) => live.find((node) => node.id === id) ?? { id, zone: '', region: '' });
        const load = loadOf([...view.partitions.values()].map((entry) => entry.assignment));
        const [replacement] = chooseReplicaSet(live, 1, load, kept);
        if (replacement === undefined) continue;
        const next: PartitionAssignment = { ...assignment, replicas: assignment.replicas.map((id) => (id === gone ? replacement : id)) };
        if (await coordinator.casPartition(next, versioned.modRevision)) {
          this.options.logger.warn({ partition: key, gone, replacement }, 'replaced a replica gone too long');
        }
      }
    }
    // Last, and on its own: a failed etcd call here must not hold up the failovers above.
    await this.deleteOrphanSubscriptions(view).catch((error: unknown) => this.options.logger.warn({ err: error }, 'could not remove subscriptions whose topic is gone; will retry'));
  }

  private async failover(versioned: VersionedAssignment, view: ClusterView): Promise<void> {
    const assignment = versioned.assignment;
    const key = partitionKey(assignment.incarnation, assignment.partition);
    const candidates = assignment.replicas.filter((id) => id !== assignment.primary && view.nodes.has(id));
    if (candidates.length === 0) return;
    const startedMs = this.options.clock.monotonicMs();
    const answers = await Promise.all(
      candidates.map(async (id) => {
        try {
          const state = (await this.peerCall(id, 'replica.logState', { key }, 2000)) as { endOffset: number; lastEpoch: number };
          return { id, ...state };
        } catch {
          return undefined;
        }
      }),
    );
    // Every live replica must answer: skipping one could skip the only copy of an acknowledged record.
    if (answers.some((answer) => answer === undefined)) return;
    const ranked = (answers as Array<{ id: string; endOffset: number; lastEpoch: number }>).sort(
      (a, b) => b.lastEpoch - a.lastEpoch || b.endOffset - a.endOffset || (a.id < b.id ? -1 : 1),
    );
    const chosen = ranked[0]!;
    const next: PartitionAssignment = {
      ...assignment,
      epoch: assignment.epoch + 1,
      primary: chosen.id,
      replicas: [chosen.id, ...assignment.replicas.filter((id) => id !== chosen.id)],
    };
    if (await this.options.coordinator.casPartition(next, versioned.modRevision)) {
      this.options.logger.warn(
        { partition: key, from: assignment.primary, to: chosen.id, epoch: next.epoch, endOffset: chosen.endOffset, candidates: ranked, decisionMs: Math.round(this.options.clock.monotonicMs() - startedMs) },
        'failover: new primary chosen',
      );
      await this.options.coordinator.refresh();
    }
  }

  private async peerCall(nodeId: string, method: string, body: unknown, timeoutMs: number): Promise<unknown> {
    if (nodeId === this.options.self.id) return this.handlePeerRequest(method, body, undefined);
    const node = this.options.coordinator.view().nodes.get(nodeId);
    if (node === undefined) throw new BerthError('ServiceUnavailable', `node ${nodeId} is not live`);
    return this.options.link.request(node.peerAddress, method, body, { timeoutMs });
  }

  // ---- routing -------------------------------------------------------------------

  /** Calls the primary of a partition, here or remote; retries while the partition has no working primary. */
  private async callPartition(queue: QueueView, partition: number, method: string, body: Record<string, unknown>, options: { timeoutMs?: number; signal?: AbortSignal; retry?: boolean | 'refusals' } = {}): Promise<unknown> {
    const key = partitionKey(queue.partitionIncarnation, partition);
    const deadlineMs = this.options.clock.monotonicMs() + this.options.routeTimeoutMs;
    let lastError: unknown;
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new BerthError('ServiceUnavailable', 'the server is shutting down');
      const view = this.options.coordinator.view();
      const versioned = view.partitions.get(key);
      if (versioned === undefined) {
        if (!view.queues.has(queue.metadata.name)) throw new BerthError('QueueDoesNotExist', 'The specified queue does not exist.');
      } else {
        const primary = versioned.assignment.primary;
        try {
          if (primary === this.options.self.id) {
            // The caller's signal as is: an AbortController per call was a visible cost on a busy primary.
            return await this.handlePeerRequest(method, { key, ...body }, options.signal);
          }
          const node = view.nodes.get(primary);
          if (node === undefined) throw new BerthError('NotPrimary', `primary ${primary} of ${key} is not live`);
          return await this.options.link.request(node.peerAddress, method, { key, ...body }, { timeoutMs: options.timeoutMs ?? 30_000, ...(options.signal ? { signal: options.signal } : {}) } as { timeoutMs: number });
        } catch (error) {
          if (!(error instanceof BerthError) || (error.code !== 'ServiceUnavailable' && error.code !== 'NotPrimary')) throw error;
          // A ServiceUnavailable may come after the primary appended (its commit failed):
          // calls that are not idempotent retry only refusals made before any append.
          if (error.code === 'ServiceUnavailable' && options.retry === 'refusals') throw error;
          lastError = error;
        }
      }
      if (options.retry === false || this.options.clock.monotonicMs() > deadlineMs || options.signal?.aborted === true) {
        throw lastError instanceof BerthError ? lastError : new BerthError('ServiceUnavailable', `partition ${key} has no working primary now; retry`);
      }
      await sleepOn(this.options.clock, Math.min(500, 50 * (attempt + 1)));
      await this.options.coordinator.refresh().catch(() => undefined);
    }
  }

  private async queueView(name: string): Promise<QueueView> {
    let view = this.options.coordinator.view();
    let entry = view.queues.get(name);
    if (entry === undefined) entry = (view = await this.etcd(this.options.coordinator.refresh())).queues.get(name);
    if (entry === undefined) throw new BerthError('QueueDoesNotExist', 'The specified queue does not exist.');
    const topic = this.topicOf(view, entry.metadata);
    // Parsed once per metadata object the view holds, not on every call.
    let config = this.parsedConfigs.get(entry.metadata);
    if (config === undefined) this.parsedConfigs.set(entry.metadata, (config = this.queueConfigOf(entry.metadata, topic)));
    return this.viewOf(entry.metadata, entry.modRevision, config, topic);
  }

  private viewOf(metadata: QueueMetadata, modRevision: string, config: QueueConfig, topic: QueueMetadata | undefined): QueueView {
    return { metadata, modRevision, config, partitionIncarnation: topic?.incarnation ?? metadata.incarnation, logicalQueueId: metadata.subscription?.logicalQueueId ?? 0 };
  }

  /** A subscription's topic (undefined for other queues); QueueDoesNotExist when the topic is gone (its subscriptions go with it). */
  private topicOf(view: ClusterView, metadata: QueueMetadata): QueueMetadata | undefined {
    const subscription = metadata.subscription;
    if (subscription === undefined) return undefined;
    const topic = view.queues.get(subscription.topic)?.metadata;
    if (topic === undefined || !subscribesTo(metadata, topic)) throw new BerthError('QueueDoesNotExist', 'The specified queue does not exist.');
    return topic;
  }

  /** A queue's settings; a subscription's replica count defaults to its topic's. */
  private queueConfigOf(metadata: QueueMetadata, topic: QueueMetadata | undefined): QueueConfig {
    return topic === undefined ? this.configFor(metadata.attributes) : parseQueueConfig(metadata.attributes, this.configFor(topic.attributes).replicaCount);
  }

  /** The queue a logical queue of a partition answers to: the partition's queue (0) or one of its topic's subscriptions. */
  private logicalQueueName(physical: QueueMetadata, logicalQueueId: number): string {
    if (logicalQueueId === 0) return physical.name;
    for (const entry of this.options.coordinator.view().queues.values()) {
      if (subscribesTo(entry.metadata, physical) && entry.metadata.subscription!.logicalQueueId === logicalQueueId) return entry.metadata.name;
    }
    return `${physical.name}#subscription-${logicalQueueId}`; // removed meanwhile: the dead-letter move fails and is retried, then ignored
  }

  /** Asks the primary of each of a topic's partitions to bring its log in line with etcd now. */
  private async syncTopic(topic: QueueMetadata): Promise<void> {
    const view = this.viewOf(topic, '', this.configFor(topic.attributes), undefined);
    await Promise.all(Array.from({ length: topic.partitionCount }, (_, index) => this.callPartition(view, index, 'p.syncSubscriptions', {})));
  }

  /** etcd unreachable from this node (a cut, a timeout) is ServiceUnavailable to the caller, not an internal error. */
  private async etcd<T>(work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (error) {
      if (error instanceof BerthError) throw error;
      throw new BerthError('ServiceUnavailable', `the cluster's metadata store (etcd) did not answer this node: ${error instanceof Error ? error.message : String(error)}; retry`, { cause: error });
    }
  }

  private replicaSetSizeOf(queue: QueueView, partition: number): number {
    return this.options.coordinator.view().partitions.get(partitionKey(queue.partitionIncarnation, partition))?.assignment.replicas.length ?? 1;
  }

  // ---- QueueService: queues --------------------------------------------------------

  arnOf(name: string): string {
    return queueArn(this.region, this.accountId, name);
  }

  nameFromArn(arn: string): string | undefined {
    return queueNameFromArn(arn, this.accountId);
  }

  hasQueue(name: string): boolean {
    return this.options.coordinator.view().queues.has(name);
  }

  async createQueue(name: string, attributes: Record<string, string>, tags: Record<string, string>): Promise<QueueDescription> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const view = await this.etcd(this.options.coordinator.refresh());
      const existing = view.queues.get(name);
      if (existing !== undefined) {
        for (const [key, value] of Object.entries(attributes)) {
          if (existing.metadata.attributes[key] !== value) {
            throw new BerthError('QueueNameExists', `A queue already exists with the same name and a different value for attribute ${key}`);
          }
        }
        // A create retried after its subscription's records were not all written finishes them.
        const topic = existing.metadata.subscription === undefined ? undefined : view.queues.get(existing.metadata.subscription.topic)?.metadata;
        if (topic !== undefined && subscribesTo(existing.metadata, topic)) await this.syncTopic(topic);
        return describe(existing.metadata);
      }
      const deletedAtMs = view.deletedRecently.get(name);
      if (deletedAtMs !== undefined && this.options.clock.nowMs() - deletedAtMs < queueDeletedRecentlyMs) {
        throw new BerthError('QueueDeletedRecently', `You must wait 60 seconds after deleting a queue before you can create another with the same name (${name}).`);
      }
      const topicName = attributes[topicAttributes.topic];
      checkTopicAttributes(attributes, topicName !== undefined);
      if (topicName !== undefined) {
        const created = await this.createSubscription(view, name, topicName, attributes, tags);
        if (created !== undefined) return created;
        continue;
      }
      const withReplicaCount = { ...attributes };
      if (withReplicaCount['ReplicaCount'] === undefined) withReplicaCount['ReplicaCount'] = String(Math.min(this.options.defaultReplicaCount, Math.max(1, view.nodes.size)));
      const config = this.configFor(withReplicaCount);
      const live = [...view.nodes.values()].map((node) => ({ id: node.id, zone: node.zone, region: node.region }));
      if (config.replicaCount > live.length) {
        throw new BerthError('InvalidAttributeValue', `Invalid value for the parameter ReplicaCount: ${config.replicaCount} is larger than the ${live.length} live node(s) of this cluster.`);
      }
      const replicaSetSize = Math.min(live.length, Math.max(this.options.replicaSetSizeDefault, config.replicaCount));
      const partitionCount = attributes['PartitionCount'] !== undefined ? Number(attributes['PartitionCount']) : this.options.defaultPartitionCount;
      if (attributes['PartitionCount'] === undefined) withReplicaCount['PartitionCount'] = String(partitionCount);
      const sets = placePartitions(live, partitionCount, replicaSetSize, loadOf([...view.partitions.values()].map((entry) => entry.assignment)), this.options.self.region);
      const metadata = newQueueMetadata(name, this.options.newIncarnation(), withReplicaCount, tags, this.options.clock.nowMs(), partitionCount);
      if (kindOf(metadata) === 'topic') metadata.nextLogicalQueueId = 1;
      const assignments: PartitionAssignment[] = sets.map((replicas, partition) => ({
        queue: name,
        incarnation: metadata.incarnation,
        partition,
        epoch: 1,
        primary: replicas[0]!,
        replicas,
      }));
      if (await this.etcd(this.options.coordinator.createQueue(metadata, assignments))) {
        await this.etcd(this.options.coordinator.refresh());
        // Answer once every partition has a serving primary, so the first send does not wait
        // (a topic's primaries also end its logical queue 0: a topic holds none of its own).
        const queue = this.viewOf(metadata, '', config, undefined);
        if (kindOf(metadata) === 'topic') await this.syncTopic(metadata).catch(() => undefined);
        else await Promise.all(assignments.map((assignment) => this.callPartition(queue, assignment.partition, 'p.counts', {}).catch(() => undefined)));
        return describe(metadata);
      }
    }
    throw new BerthError('ServiceUnavailable', `could not create queue ${name}: concurrent changes; retry`);
  }

  /**
   * Creates a subscription: takes the next logical queue id from the topic (compare-and-swap;
   * an id taken by a create that then loses is skipped, never reused), writes the
   * subscription's entry, and answers once every topic partition has its Subscribe record.
   * Undefined when a concurrent change won a step: the caller reads the view again.
   */
  private async createSubscription(view: ClusterView, name: string, topicName: string, attributes: Record<string, string>, tags: Record<string, string>): Promise<QueueDescription | undefined> {
    refusePartitionCountOnSubscription(attributes);
    const topicEntry = view.queues.get(topicName);
    const topic = requireTopic(topicName, topicEntry?.metadata);
    const topicConfig = this.configFor(topic.attributes);
    checkSubscriptionConfig(topic.name, topicConfig.fifo, parseQueueConfig(attributes, topicConfig.replicaCount), attributes);
    const logicalQueueId = topic.nextLogicalQueueId ?? 1;
    const taken: QueueMetadata = { ...topic, nextLogicalQueueId: logicalQueueId + 1 };
    if (!(await this.etcd(this.options.coordinator.updateQueue(taken, topicEntry!.modRevision)))) return undefined;
    const metadata = newQueueMetadata(name, this.options.newIncarnation(), attributes, tags, this.options.clock.nowMs(), topic.partitionCount);
    metadata.subscription = { topic: topic.name, logicalQueueId, topicIncarnation: topic.incarnation };
    if (!(await this.etcd(this.options.coordinator.createQueue(metadata, [])))) return undefined;
    await this.etcd(this.options.coordinator.refresh());
    await this.syncTopic(topic);
    return describe(metadata);
  }

  async deleteQueue(name: string): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const queue = await this.queueView(name);
      if (await this.etcd(this.options.coordinator.deleteQueue(queue.metadata, queue.modRevision, this.options.clock.nowMs()))) {
        const view = await this.etcd(this.options.coordinator.refresh());
        const subscription = queue.metadata.subscription;
        if (subscription !== undefined) {
          // Unsubscribe: the topic's log stays; the logical queue and its hold on storage go.
          const topic = view.queues.get(subscription.topic)?.metadata;
          if (topic !== undefined && topic.incarnation === queue.partitionIncarnation) await this.syncTopic(topic);
        } else if (kindOf(queue.metadata) === 'topic') {
          // A topic takes its subscriptions with it (any this misses, the controller removes).
          await this.deleteOrphanSubscriptions(view);
        }
        return;
      }
      await this.etcd(this.options.coordinator.refresh());
    }
    throw new BerthError('ServiceUnavailable', `could not delete queue ${name}: concurrent changes; retry`);
  }

  /** Deletes the entries of subscriptions whose topic is gone (or was created again since). */
  private async deleteOrphanSubscriptions(view: ClusterView): Promise<void> {
    for (const entry of view.queues.values()) {
      const subscription = entry.metadata.subscription;
      if (subscription === undefined) continue;
      const topic = view.queues.get(subscription.topic)?.metadata;
      if (topic !== undefined && subscribesTo(entry.metadata, topic)) continue;
      if (await this.etcd(this.options.coordinator.deleteQueue(entry.metadata, entry.modRevision, this.options.clock.nowMs()))) {
        this.options.logger.info({ queue: entry.metadata.name, topic: subscription.topic }, 'removed a subscription whose topic is gone');
      }
    }
  }

  async describeQueue(name: string): Promise<QueueDescription> {
    return describe((await this.queueView(name)).metadata);
  }

  async listQueues(prefix?: string): Promise<string[]> {
    return [...this.options.coordinator.view().queues.keys()].filter((name) => prefix === undefined || name.startsWith(prefix)).sort();
  }

  async setQueueAttributes(name: string, attributes: Record<string, string>): Promise<void> {
    if ((await this.queueView(name)).metadata.subscription !== undefined) {
      // A subscription's settings live in its topic's partitions, as its Subscribe records.
      const queue = await this.updateMetadata(name, (metadata) => {
        const merged = { ...metadata.attributes, ...attributes };
        checkTopicAttributes(merged, true);
        const topic = this.topicOf(this.options.coordinator.view(), metadata)!;
        const topicConfig = this.configFor(topic.attributes);
        checkSubscriptionConfig(topic.name, topicConfig.fifo, parseQueueConfig(merged, topicConfig.replicaCount), merged);
        return { ...metadata, attributes: merged, lastModifiedTimestampMs: this.options.clock.nowMs() };
      });
      await this.syncTopic(this.topicOf(this.options.coordinator.view(), queue.metadata)!);
      return;
    }
    const queue = await this.updateMetadata(name, (metadata) => {
      const merged = { ...metadata.attributes, ...attributes };
      checkTopicAttributes(merged, false);
      const config = this.configFor(merged);
      const smallest = Math.min(...Array.from({ length: metadata.partitionCount }, (_, index) => this.options.coordinator.view().partitions.get(partitionKey(metadata.incarnation, index))?.assignment.replicas.length ?? 1));
      if (config.replicaCount > smallest) {
        throw new BerthError('InvalidAttributeValue', `Invalid value for the parameter ReplicaCount: ${config.replicaCount} is larger than the ${smallest} replica(s) this queue's partitions have.`);
      }
      return { ...metadata, attributes: merged, lastModifiedTimestampMs: this.options.clock.nowMs() };
    });
    await Promise.all(Array.from({ length: queue.metadata.partitionCount }, (_, index) => this.callPartition(queue, index, 'p.setConfig', { config: queue.config })));
  }

  async setQueueTags(name: string, tags: Record<string, string>): Promise<void> {
    await this.updateMetadata(name, (metadata) => ({ ...metadata, tags: { ...tags } }));
  }

  private async updateMetadata(name: string, change: (metadata: QueueMetadata) => QueueMetadata): Promise<QueueView> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const queue = await this.queueView(name);
      const next = change(queue.metadata);
      if (await this.etcd(this.options.coordinator.updateQueue(next, queue.modRevision))) {
        await this.etcd(this.options.coordinator.refresh());
        const topic = next.subscription === undefined ? undefined : this.topicOf(this.options.coordinator.view(), next);
        return this.viewOf(next, '', this.queueConfigOf(next, topic), topic);
      }
      await this.etcd(this.options.coordinator.refresh());
    }
    throw new BerthError('ServiceUnavailable', `could not change queue ${name}: concurrent changes; retry`);
  }

  async queueCounts(name: string): Promise<QueueCounts> {
    const queue = await this.queueView(name);
    const counts = (await Promise.all(Array.from({ length: queue.metadata.partitionCount }, (_, index) => this.callPartition(queue, index, 'p.counts', { logicalQueueId: queue.logicalQueueId })))) as QueueCounts[];
    const total: QueueCounts = { visible: 0, inflight: 0, delayed: 0, oldestMessageAgeSeconds: 0 };
    for (const count of counts) {
      total.visible += count.visible;
      total.inflight += count.inflight;
      total.delayed += count.delayed;
      total.oldestMessageAgeSeconds = Math.max(total.oldestMessageAgeSeconds, count.oldestMessageAgeSeconds);
    }
    return total;
  }

  async purgeQueue(name: string): Promise<void> {
    const queue = await this.queueView(name);
    refuseOnTopic(queue.metadata, 'PurgeQueue', 'purge each subscription instead');
    for (let index = 0; index < queue.metadata.partitionCount; index++) await this.callPartition(queue, index, 'p.purge', { logicalQueueId: queue.logicalQueueId });
  }

  // ---- QueueService: messages ------------------------------------------------------

  async send(name: string, messages: SendInput[]): Promise<Array<SendOutcome | BerthError>> {
    const queue = await this.queueView(name);
    refuseOnSubscription(queue.metadata);
    const nowMs = this.options.clock.nowMs();
    const results: Array<SendOutcome | BerthError | undefined> = new Array(messages.length);
    const byPartition = new Map<number, Array<{ index: number; payload: EnqueuePayload }>>();
    messages.forEach((message, index) => {
      const partition = this.partitionForSend(queue, message.groupId);
      const replicaCount = message.replicaCount ?? queue.config.replicaCount;
      const replicaSetSize = this.replicaSetSizeOf(queue, partition);
      if (replicaCount > replicaSetSize) {
        results[index] = new BerthError(
          'ReplicaCountUnavailable',
          `Replica count ${replicaCount} is larger than the ${replicaSetSize} replica(s) this queue's partitions have; lower it or add nodes.`,
        );
        return;
      }
      const payload: EnqueuePayload = {
        messageId: this.options.newId(),
        body: message.body,
        attributes: message.attributes,
        systemAttributes: message.systemAttributes,
        groupId: message.groupId,
        deduplicationId: message.deduplicationId,
        senderId: message.senderId,
        sentTimestampMs: nowMs,
        delaySeconds: message.delaySeconds ?? queue.config.delaySeconds,
        replicaCount,
      };
      let list = byPartition.get(partition);
      if (list === undefined) byPartition.set(partition, (list = []));
      list.push({ index, payload });
    });
    await Promise.all(
      [...byPartition.entries()].map(async ([partition, entries]) => {
        let outcomes: Array<{ messageId: string; offset: number } | BerthError>;
        try {
          const raw = (await this.callPartition(queue, partition, 'p.send', { payloads: entries.map((entry) => entry.payload) }, { retry: 'refusals' })) as Array<{ messageId: string; offset: number } | { code: string; message: string }>;
          outcomes = raw.map((outcome) => ('messageId' in outcome ? outcome : toBerthError(outcome)));
        } catch (error) {
          const failure = error instanceof BerthError ? error : new BerthError('InternalError', 'send failed', { cause: error });
          outcomes = entries.map(() => failure);
        }
        entries.forEach((entry, position) => {
          const outcome = outcomes[position]!;
          results[entry.index] =
            outcome instanceof BerthError ? outcome : { messageId: outcome.messageId, ...(queue.config.fifo ? { sequenceNumber: sequenceNumberOf(outcome.offset) } : {}) };
        });
      }),
    );
    return results.map((result) => result ?? new BerthError('InternalError', 'message was not processed'));
  }

  /** FIFO: the group's hash owner; standard: a partition this node leads (no hop), else round robin. */
  private partitionForSend(queue: QueueView, groupId: string | undefined): number {
    const count = queue.metadata.partitionCount;
    if (count === 1) return 0;
    if (queue.config.fifo && groupId !== undefined) return partitionOfGroup(groupId, count);
    const view = this.options.coordinator.view();
    const start = this.nextSendPartition.get(queue.metadata.name) ?? 0;
    this.nextSendPartition.set(queue.metadata.name, start + 1);
    const healthy: number[] = [];
    for (let step = 0; step < count; step++) {
      const index = (start + step) % count;
      const assignment = view.partitions.get(partitionKey(queue.partitionIncarnation, index))?.assignment;
      if (assignment === undefined) continue;
      const hosted = this.hosted.get(partitionKey(queue.partitionIncarnation, index));
      if (hosted?.role === 'primary' && hosted.driver !== undefined) return index;
      if (view.nodes.has(assignment.primary)) healthy.push(index);
    }
    return healthy[0] ?? start % count;
  }

  async receive(name: string, input: ReceiveInput): Promise<ReceivedMessage[]> {
    const queue = await this.queueView(name);
    refuseReceiveOnTopic(queue.metadata);
    const count = queue.metadata.partitionCount;
    const request = { maxMessages: input.maxMessages, visibilityTimeoutSeconds: input.visibilityTimeoutSeconds, attemptId: input.receiveRequestAttemptId, logicalQueueId: queue.logicalQueueId };
    const receiveFrom = async (index: number, waitTimeSeconds: number, signal?: AbortSignal): Promise<ReceivedMessage[]> => {
      // Only refusals are retried: a receive that failed after its primary appended the
      // receive record (a lost lease, a lost answer) may survive a failover and hold the
      // messages in flight under a receipt nobody got. Answering such a call with the
      // retry's result (often empty) hid that, and the caller's delete with its older
      // receipt then succeeded without deleting (found by the cluster simulator, seed 2411).
      // The caller now hears ServiceUnavailable, as when SQS loses a receive's answer.
      const deliveries = (await this.callPartition(queue, index, 'p.receive', { input: { ...request, waitTimeSeconds } }, {
        retry: 'refusals',
        timeoutMs: waitTimeSeconds * 1000 + 15_000,
        ...(signal ? { signal } : {}),
      })) as Delivery[];
      // The partition's replica set, primary first: the hosts that hold these messages.
      const assignment = this.options.coordinator.view().partitions.get(partitionKey(queue.partitionIncarnation, index))?.assignment;
      const replicaHosts = assignment === undefined ? undefined : [assignment.primary, ...assignment.replicas.filter((id) => id !== assignment.primary)];
      return deliveries.map((delivery) => {
        const message = receivedMessage(identityOf(queue), index, delivery);
        if (replicaHosts !== undefined) message.replicaHosts = replicaHosts;
        return message;
      });
    };
    if (count === 1) return receiveFrom(0, input.waitTimeSeconds, input.signal);
    // Several partitions: take what is ready anywhere; else long-poll all of them at once
    // and keep the first answer (the others are cancelled; any message they still
    // delivered is made visible again at once).
    // A partition whose receive failed with an unknown outcome (it may have appended its
    // receive record) makes the whole call fail: answering with another partition's
    // messages would hide receipts the caller never got (see receiveFrom). Refusals and a
    // queue deleted meanwhile are certain: that partition simply gave nothing.
    let uncertain: unknown;
    const noteFailure = (error: unknown): ReceivedMessage[] => {
      if (!(error instanceof BerthError) || error.code === 'ServiceUnavailable' || error.code === 'InternalError') uncertain ??= error;
      return [];
    };
    const release = (messages: ReceivedMessage[]): void => {
      if (messages.length > 0) void this.changeVisibility(name, messages.map((message) => ({ receiptHandle: message.receiptHandle, visibilityTimeoutSeconds: 0 }))).catch(() => undefined);
    };
    const start = (this.nextSendPartition.get(`receive:${name}`) ?? 0) % count;
    this.nextSendPartition.set(`receive:${name}`, start + 1);
    for (let step = 0; step < count; step++) {
      const index = (start + step) % count;
      const received = await receiveFrom(index, 0).catch(noteFailure);
      if (received.length > 0 && uncertain === undefined) return received;
      if (uncertain !== undefined) {
        release(received);
        throw uncertain;
      }
    }
    if (input.waitTimeSeconds === 0) return [];
    const controller = new AbortController();
    const onAbort = (): void => controller.abort();
    input.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const polls = Array.from({ length: count }, (_, index) =>
        receiveFrom(index, input.waitTimeSeconds, controller.signal).catch(noteFailure),
      );
      const first = await Promise.race(polls.map((poll) => poll.then((received) => (received.length > 0 ? received : new Promise<never>(() => undefined)))).concat([Promise.all(polls).then(() => [] as ReceivedMessage[])]));
      controller.abort();
      // The cancelled polls end at once; what they still delivered goes back to the queue.
      const all = await Promise.all(polls);
      release(all.flat().filter((message) => !first.includes(message)));
      if (uncertain !== undefined) {
        release(first);
        throw uncertain;
      }
      return first;
    } finally {
      input.signal?.removeEventListener('abort', onAbort);
    }
  }

  async deleteMessages(name: string, receiptHandles: string[]): Promise<Array<BerthError | null>> {
    const queue = await this.queueView(name);
    return byReceipt(identityOf(queue), receiptHandles.map((handle) => ({ handle, value: undefined })), async (partition, items) => {
      const raw = (await this.callPartition(queue, partition, 'p.delete', { receipts: items.map((item) => item.receipt), logicalQueueId: queue.logicalQueueId })) as Array<{ code: string; message: string } | null>;
      return raw.map((entry) => (entry === null ? null : toBerthError(entry)));
    });
  }

  async changeVisibility(name: string, changes: VisibilityChange[]): Promise<Array<BerthError | null>> {
    const queue = await this.queueView(name);
    return byReceipt(
      identityOf(queue),
      changes.map((change) => ({ handle: change.receiptHandle, value: change.visibilityTimeoutSeconds })),
      async (partition, items) => {
        const raw = (await this.callPartition(queue, partition, 'p.changeVisibility', {
          changes: items.map((item) => ({ receipt: item.receipt, visibilityTimeoutSeconds: item.value! })),
          logicalQueueId: queue.logicalQueueId,
        })) as Array<{ code: string; message: string } | null>;
        return raw.map((entry) => (entry === null ? null : toBerthError(entry)));
      },
    );
  }

  async peekMessages(name: string, maxMessages: number): Promise<ReceivedMessage[]> {
    const queue = await this.queueView(name);
    const messages: ReceivedMessage[] = [];
    for (let index = 0; index < queue.metadata.partitionCount && messages.length < maxMessages; index++) {
      const deliveries = (await this.callPartition(queue, index, 'p.peek', { maxMessages: maxMessages - messages.length, logicalQueueId: queue.logicalQueueId })) as Delivery[];
      for (const delivery of deliveries) messages.push(receivedMessage(identityOf(queue), index, delivery, false));
    }
    return messages;
  }

  // ---- dead-letter queues and move tasks -------------------------------------------

  async listDeadLetterSourceQueues(name: string): Promise<string[]> {
    await this.queueView(name);
    const sources: string[] = [];
    for (const entry of this.options.coordinator.view().queues.values()) {
      if (this.configFor(entry.metadata.attributes).redrive?.deadLetterQueueName === name) sources.push(entry.metadata.name);
    }
    return sources.sort();
  }

  startMessageMoveTask(sourceArn: string, destinationArn: string | undefined, maxNumberOfMessagesPerSecond: number | undefined): Promise<string> {
    return this.moveTasks.start(sourceArn, destinationArn, maxNumberOfMessagesPerSecond);
  }

  async listMessageMoveTasks(sourceArn: string, maxResults: number): Promise<MoveTask[]> {
    return this.moveTasks.list(sourceArn, maxResults);
  }

  async cancelMessageMoveTask(taskHandle: string): Promise<number> {
    return this.moveTasks.cancel(taskHandle);
  }

  async enqueueMoved(name: string, payloads: EnqueuePayload[], sourceArn: string | undefined): Promise<void> {
    const queue = await this.queueView(name);
    refuseOnSubscription(queue.metadata);
    const byPartition = new Map<number, EnqueuePayload[]>();
    for (const payload of payloads) {
      const moved = movedCopy(payload, sourceArn, queue.config.replicaCount);
      const partition = this.partitionForSend(queue, payload.groupId);
      let list = byPartition.get(partition);
      if (list === undefined) byPartition.set(partition, (list = []));
      list.push(moved);
    }
    for (const [partition, list] of byPartition) {
      const outcomes = (await this.callPartition(queue, partition, 'p.send', { payloads: list })) as Array<{ messageId: string } | { code: string; message: string }>;
      const failure = outcomes.find((outcome) => !('messageId' in outcome));
      if (failure !== undefined && !('messageId' in failure)) throw toBerthError(failure);
    }
  }

  async takeMessages(name: string, maxMessages: number): Promise<Array<{ payload: EnqueuePayload; receiptHandle: string }>> {
    const queue = await this.queueView(name);
    const taken: Array<{ payload: EnqueuePayload; receiptHandle: string }> = [];
    for (let index = 0; index < queue.metadata.partitionCount && taken.length < maxMessages; index++) {
      const deliveries = (await this.callPartition(queue, index, 'p.receive', {
        input: { maxMessages: maxMessages - taken.length, waitTimeSeconds: 0, visibilityTimeoutSeconds: 60, logicalQueueId: queue.logicalQueueId },
      })) as Delivery[];
      for (const delivery of deliveries) taken.push({ payload: takenForMove(delivery.payload, delivery.sequenceOffset), receiptHandle: receiptHandleOf(identityOf(queue), index, delivery) });
    }
    return taken;
  }

  private async deadLetter(sourceName: string, payloads: EnqueuePayload[]): Promise<void> {
    const source = this.options.coordinator.view().queues.get(sourceName);
    const target = source === undefined ? undefined : this.configFor(source.metadata.attributes).redrive?.deadLetterQueueName;
    if (target === undefined || !this.hasQueue(target)) throw new Error(`dead-letter queue ${target ?? '(none)'} of ${sourceName} does not exist`);
    await this.enqueueMoved(target, payloads, this.arnOf(sourceName));
  }

  // ---- status ----------------------------------------------------------------------

  /** The open log of a partition this node hosts, primary or backup (the cluster simulator compares replicas). */
  hostedRunner(key: string): PartitionRunner | undefined {
    return this.hosted.get(key)?.runner;
  }

  /** Per-partition log figures of the partitions this node leads (metrics). */
  partitionStats(): Array<{ queue: string; partition: string; endOffset: number; stats: PartitionRunner['logStats'] }> {
    const out: Array<{ queue: string; partition: string; endOffset: number; stats: PartitionRunner['logStats'] }> = [];
    for (const hosted of this.hosted.values()) {
      if (hosted.runner === undefined || hosted.role !== 'primary') continue;
      out.push({ queue: hosted.queue, partition: hosted.runner.name, endOffset: hosted.runner.endOffset, stats: hosted.runner.logStats });
    }
    return out;
  }

  /** Where the queue's partitions are led and how to reach those nodes (the SDK's cluster router asks). */
  async routing(name: string): Promise<QueueRouting> {
    const view = this.options.coordinator.view();
    const queue = view.queues.get(name);
    if (queue === undefined) throw new BerthError('QueueDoesNotExist', 'The specified queue does not exist.');
    const { partitionCount, attributes } = queue.metadata;
    // A subscription is served by its topic's partitions.
    const incarnation = this.topicOf(view, queue.metadata)?.incarnation ?? queue.metadata.incarnation;
    const partitions: QueueRouting['partitions'] = [];
    for (let partition = 0; partition < partitionCount; partition++) {
      const versioned = view.partitions.get(partitionKey(incarnation, partition));
      if (versioned !== undefined) partitions.push({ partition, epoch: versioned.assignment.epoch, primary: versioned.assignment.primary });
    }
    const nodes = [...view.nodes.values()].map((node) => ({ id: node.id, zone: node.zone, region: node.region, ...(node.nativeUrl !== undefined ? { nativeUrl: node.nativeUrl } : {}) }));
    return { fifo: attributes['FifoQueue'] === 'true', partitionCount, partitions, nodes };
  }

  /** This node's view of the cluster plus what it knows of the partitions it hosts. */
  status(): ClusterStatusReport {
    const view = this.options.coordinator.view();
    const knownNodes = new Set<string>([...view.nodes.keys()]);
    for (const versioned of view.partitions.values()) for (const id of versioned.assignment.replicas) knownNodes.add(id);
    return {
      mode: 'cluster',
      selfId: this.options.self.id,
      controller: view.controller ?? '',
      revision: view.revision,
      nodes: [...knownNodes].sort().map((id) => {
        const node = view.nodes.get(id);
        return { id, zone: node?.zone ?? '', region: node?.region ?? '', health: node === undefined ? 'down' : 'healthy', address: node?.peerAddress ?? '', httpUrl: node?.httpUrl ?? '' };
      }),
      partitions: [...view.partitions.values()]
        .map((versioned) => versioned.assignment)
        .sort((a, b) => (a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : a.partition - b.partition))
        .map((assignment) => ({ queue: assignment.queue, partition: assignment.partition, epoch: assignment.epoch, primary: assignment.primary, replicas: assignment.replicas })),
      local: [...this.hosted.values()].map((hosted) => {
        const runner = hosted.runner;
        const backups = hosted.driver === undefined ? [] : [...hosted.driver.state.backups.entries()].map(([id, progress]) => ({ id, phase: progress.phase, durableEnd: progress.durableEnd }));
        return {
          key: hosted.key,
          queue: hosted.queue,
          partition: hosted.partition,
          role: hosted.role,
          epoch: hosted.role === 'primary' ? hosted.servingEpoch : hosted.knownEpoch,
          syncedEpoch: hosted.syncedEpoch,
          endOffset: runner?.endOffset ?? 0,
          durableEndOffset: runner?.durableEndOffset ?? 0,
          lastEpoch: runner?.lastEpoch ?? 0,
          backups,
          startOffset: runner?.startOffset ?? 0,
        };
      }),
    };
  }

  // ---- internals -------------------------------------------------------------------

  private configFor(attributes: Record<string, string>): QueueConfig {
    return parseQueueConfig(attributes, this.options.defaultReplicaCount);
  }

}

export interface ClusterStatusReport {
  mode: 'cluster';
  selfId: string;
  controller: string;
  revision: string;
  nodes: Array<{ id: string; zone: string; region: string; health: 'healthy' | 'down'; address: string; httpUrl: string }>;
  partitions: Array<{ queue: string; partition: number; epoch: number; primary: string; replicas: string[] }>;
  local: Array<{
    key: string;
    queue: string;
    partition: number;
    role: 'primary' | 'backup';
    epoch: number;
    syncedEpoch: number;
    endOffset: number;
    durableEndOffset: number;
    lastEpoch: number;
    backups: Array<{ id: string; phase: string; durableEnd: number }>;
    /** Lowest offset the local log still holds (segments below it were deleted). */
    startOffset: number;
  }>;
}

function describe(metadata: QueueMetadata): QueueDescription {
  return {
    name: metadata.name,
    attributes: { ...metadata.attributes },
    tags: { ...metadata.tags },
    createdTimestampMs: metadata.createdTimestampMs,
    lastModifiedTimestampMs: metadata.lastModifiedTimestampMs,
  };
}

function errorOrNull(error: BerthError | null): { code: string; message: string } | null {
  return error === null ? null : { code: error.code, message: error.message };
}

function identityOf(queue: QueueView): QueueIdentity {
  return { incarnation: queue.metadata.incarnation, partitionCount: queue.metadata.partitionCount, fifo: queue.config.fifo };
}

function toBerthError(value: { code: string; message: string } | BerthError): BerthError {
  if (value instanceof BerthError) return value;
  return new BerthError(value.code as BerthError['code'], value.message);
}
