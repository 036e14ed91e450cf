// The seeded, deterministic simulator: the real LocalBroker (partitions, segmented log,
// queue machine) over the simulated disk and simulated time, driven by one seed.
//
// One run:
//   setup     open a broker, create a standard queue and a FIFO queue each with a dead-letter
//             queue, and a plain queue; tiny segments, frequent checkpoints and maintenance
//   steps     each step does one thing chosen by the seed: start a client operation (send
//             batch, receive, delete with a current or stale receipt, change visibility,
//             purge, start a dead-letter redrive), advance time (firing timers one at a
//             time), crash the machine (unsynced writes lost, maybe torn), restart the
//             process (page cache kept), or inject a disk fault (fsync EIO, write EIO,
//             disk full). A faulted disk is healed and the server restarted a few steps later.
//   drain     crash and restart once more, let every deadline pass, receive and delete
//             everything in every queue, then check counts and that nothing acknowledged
//             was lost (see checker.ts).
//
// Scheduling. Client operations are started and not awaited; several can be outstanding
// (long polls wait for time to pass). After every step the loop waits for the microtask
// queue to drain (one setImmediate turn: nothing here does real I/O or uses real timers,
// so every promise that can settle has settled by then). Answers are recorded in the order
// they settle, which depends only on the seed. The same seed gives the same trace hash.
//
// A crash kills the process's views of disk and time (sim-process.ts): its outstanding
// operations never answer (their effect is unknown to the checker) and its timers never fire.

import { createHash, type Hash } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { LocalBroker } from '../../broker/local-broker.js';
import type { PartitionLogger, PartitionOptions } from '../../broker/partition.js';
import { SeededRandom } from '../../core/random.js';
import { BerthError } from '../../protocol/errors.js';
import type { ReceivedMessage, SendInput, SendOutcome } from '../../queue/types.js';
import { SimFileSystem } from '../sim-filesystem.js';
import { SimChecker, type Anomaly, type QueueInfo } from './checker.js';
import { preallocationOf, ProcessClock, ProcessFileSystem, SimTimeline } from './sim-process.js';

export interface SimulationOptions {
  seed: number;
  /** Workload steps before the drain. */
  steps: number;
  /** Log every trace line to this function (debugging a seed). */
  onTrace?: (line: string) => void;
  /**
   * Whether restarts may keep the page cache (a process crash, not a machine crash).
   * Default true. False: every restart is a machine crash (unsynced writes lost).
   */
  pageCacheRestarts?: boolean;
  /**
   * Logs write zeros ahead of their records (preallocateBytes, as `berth serve` does), so
   * crashes tear writes into preallocated space. Off by default: it changes every seed's
   * disk operations, and the regression seeds keep their schedules.
   */
  preallocate?: boolean;
}

export interface SimulationResult {
  seed: number;
  traceHash: string;
  steps: number;
  operations: number;
  crashes: number;
  restarts: number;
  faults: number;
  /** Operation answers that were disk errors (ServiceUnavailable): faults that reached a client. */
  diskErrorAnswers: number;
  acknowledgedMessages: number;
  deliveries: number;
  errorsLogged: number;
  diskOperations: Record<string, number>;
  anomalies: Anomaly[];
}

const region = 'sim-region-1';
const accountId = '000000000000';
const dataDirectory = '/berth';
const outstandingOperationsMax = 6;
const livelockErrorsMax = 2000;

interface Delivered {
  queue: string;
  messageId: string;
  receiptHandle: string;
  unknownReceivesAtDelivery: number;
}

interface Outstanding {
  id: number;
  describe: string;
  /** Called when the process dies before the operation answered. */
  onLost: () => void;
}

export async function runSimulation(options: SimulationOptions): Promise<SimulationResult> {
  const simulation = new Simulation(options);
  return simulation.run();
}

class Simulation {
  private readonly random: SeededRandom;
  /** Faults and workload choices use their own streams, so adding a choice in one does not reshuffle the other. */
  private readonly idRandom: SeededRandom;
  private readonly disk = new SimFileSystem();
  private readonly timeline = new SimTimeline(1_700_000_000_000);
  private readonly checker = new SimChecker();
  private readonly trace: Hash = createHash('sha256');
  private broker: LocalBroker | undefined;
  private processFs: ProcessFileSystem | undefined;
  private processClock: ProcessClock | undefined;
  private generation = 0;
  private readonly outstanding = new Map<number, Outstanding>();
  private operationCounter = 0;
  private bodyCounter = 0;
  private deduplicationCounter = 0;
  private readonly recentDeduplicationIds: string[] = [];
  private readonly deliveredByQueue = new Map<string, Delivered[]>();
  /** Per queue: receives outstanding now, and receives started so far (deletes racing a receive). */
  private readonly activeReceives = new Map<string, number>();
  private readonly receiveStarts = new Map<string, number>();
  private faultArmed = false;
  private restartDueStep: number | undefined;
  private errorsLogged = 0;
  /** Errors logged since the last settle: a flood without time passing is a livelock. */
  private errorsThisTurn = 0;
  private readonly partitionOptions: Partial<PartitionOptions>;
  private readonly queueNames: string[] = [];
  private readonly figures = { operations: 0, crashes: 0, restarts: 0, faults: 0, diskErrorAnswers: 0 };
  private stopped = false;
  /** 0: flush at once (batching what arrives during an fsync); else wait this long on the simulated clock. */
  private readonly groupCommitDelayMs: number;

  constructor(private readonly options: SimulationOptions) {
    this.random = new SeededRandom(options.seed);
    this.idRandom = new SeededRandom(options.seed ^ 0x5bd1e995);
    this.groupCommitDelayMs = this.random.int(3) === 0 ? 1 + this.random.int(5) : 0;
    const segmentBytesMax = 1024 * (1 + this.random.int(8));
    this.partitionOptions = {
      cacheBytesMax: this.random.int(2) === 0 ? 0 : 4096,
      maintenanceIntervalMs: 250 + this.random.int(1000),
      checkpointEveryRecords: 5 + this.random.int(60),
      checkpointIntervalMs: 1000 + this.random.int(10_000),
      loadBatchRecords: 4 + this.random.int(60),
      logOptions: {
        segmentBytesMax,
        groupCommitBytesMax: 4096 + this.random.int(8192),
        readAheadBytes: 4096 + this.random.int(4096),
        indexIntervalBytes: 128,
        ...preallocationOf(options.seed, options.preallocate),
      },
    };
  }

  async run(): Promise<SimulationResult> {
    const onUnhandled = (reason: unknown): void => {
      this.checker.report('unhandled-rejection', describeError(reason));
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      await this.start();
      await this.setup();
      for (let step = 0; step < this.options.steps && !this.stopped; step++) {
        this.checker.step = step;
        await this.step(step);
        await this.settle();
      }
      if (!this.stopped) await this.drain();
    } catch (error) {
      this.checker.report('simulator-error', describeError(error));
    } finally {
      this.kill();
      await this.settle();
      process.off('unhandledRejection', onUnhandled);
    }
    const figures = this.checker.figures;
    this.record(`end anomalies=${this.checker.anomalies.map((anomaly) => anomaly.kind).join(',')}`);
    return {
      seed: this.options.seed,
      traceHash: this.trace.digest('hex').slice(0, 16),
      steps: this.options.steps,
      ...this.figures,
      acknowledgedMessages: figures.acknowledged,
      deliveries: figures.deliveries,
      errorsLogged: this.errorsLogged,
      diskOperations: { ...this.disk.counts },
      anomalies: this.checker.anomalies,
    };
  }

  // ---- processes -----------------------------------------------------------------

  private async start(): Promise<void> {
    this.generation++;
    this.processFs = new ProcessFileSystem(this.disk);
    this.processClock = new ProcessClock(this.timeline);
    const generation = this.generation;
    let opened: LocalBroker | undefined;
    const logger: PartitionLogger = {
      info: () => undefined,
      warn: () => undefined,
      error: (object, message) => {
        if (generation !== this.generation) return;
        this.errorsLogged++;
        this.errorsThisTurn++;
        if (this.errorsThisTurn <= 20) this.record(`log-error ${message} ${describeError((object as { err?: unknown }).err)}`);
        if (this.errorsThisTurn === livelockErrorsMax && opened !== undefined) {
          // A loop that never yields to the timeline: stop the broker so the run can end.
          this.checker.report('livelock', `more than ${livelockErrorsMax} errors logged without time passing; last: ${message}: ${describeError((object as { err?: unknown }).err)}`);
          this.stopped = true;
          opened.close().catch(() => undefined);
        }
      },
    };
    let ids = 0;
    try {
      this.broker = await LocalBroker.open({
        fs: this.processFs,
        dataDirectory,
        clock: this.processClock,
        logger,
        region,
        accountId,
        newId: () => `${hex(this.idRandom, 8)}-${(ids++).toString(16).padStart(4, '0')}-4${hex(this.idRandom, 3)}-8${hex(this.idRandom, 3)}-${hex(this.idRandom, 12)}`,
        newIncarnation: () => hex(this.idRandom, 16),
        partitionOptions: { ...this.partitionOptions, logOptions: { ...this.partitionOptions.logOptions, clock: this.processClock, groupCommitDelayMs: this.groupCommitDelayMs } },
      });
      opened = this.broker;
    } catch (error) {
      this.checker.report('recovery-failed', `the broker did not open after a restart: ${describeError(error)}`);
      this.stopped = true;
    }
  }

  /** The process dies: nothing it does from now on reaches the disk or the timeline. */
  private kill(): void {
    if (this.processFs !== undefined) this.processFs.alive = false;
    if (this.processClock !== undefined) this.processClock.alive = false;
    this.broker = undefined;
    for (const operation of [...this.outstanding.values()]) {
      this.record(`lost ${operation.id} ${operation.describe}`);
      operation.onLost();
    }
    this.outstanding.clear();
  }

  private async restart(crashDisk: boolean): Promise<void> {
    this.kill();
    await this.settle();
    if (crashDisk) {
      const torn = this.random.int(2) === 0;
      const garbage = torn && this.random.int(3) === 0;
      this.disk.crash({ torn, garbage, random: this.random });
      this.figures.crashes++;
      this.record(`crash torn=${torn} garbage=${garbage}`);
    } else {
      this.figures.restarts++;
      this.record('restart');
    }
    // The server comes back on a healthy disk.
    this.disk.clearFaults();
    this.disk.capacityBytes = Number.POSITIVE_INFINITY;
    this.disk.partialWriteOnFault = false;
    this.faultArmed = false;
    this.restartDueStep = undefined;
    this.checker.restarted();
    await this.start();
    await this.settle();
  }

  // ---- setup ---------------------------------------------------------------------

  private async setup(): Promise<void> {
    const broker = this.requireBroker();
    const arn = (name: string): string => `arn:aws:sqs:${region}:${accountId}:${name}`;
    const visibility = (): number => 1 + this.random.int(20);
    const maxReceiveCount = (): number => 1 + this.random.int(4);
    const standardMaxReceiveCount = maxReceiveCount();
    const fifoMaxReceiveCount = maxReceiveCount();
    const shortRetention = this.random.int(3) === 0;
    const queues: Array<{ info: QueueInfo; attributes: Record<string, string> }> = [
      { info: { name: 'std-dlq', family: 'std', fifo: false, visibilityTimeoutSeconds: 30, retentionSeconds: 345_600, deadLetterTarget: true }, attributes: {} },
      { info: { name: 'fifo-dlq.fifo', family: 'fifo', fifo: true, visibilityTimeoutSeconds: 30, retentionSeconds: 345_600, deadLetterTarget: true }, attributes: { FifoQueue: 'true' } },
    ];
    const standardVisibility = visibility();
    queues.push({
      info: { name: 'std', family: 'std', fifo: false, visibilityTimeoutSeconds: standardVisibility, retentionSeconds: 345_600, deadLetterTarget: false, maxReceiveCount: standardMaxReceiveCount },
      attributes: {
        VisibilityTimeout: String(standardVisibility),
        DelaySeconds: String(this.random.int(3) === 0 ? 1 + this.random.int(3) : 0),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn('std-dlq'), maxReceiveCount: standardMaxReceiveCount }),
      },
    });
    const fifoVisibility = visibility();
    queues.push({
      info: { name: 'fifo.fifo', family: 'fifo', fifo: true, visibilityTimeoutSeconds: fifoVisibility, retentionSeconds: 345_600, deadLetterTarget: false, maxReceiveCount: fifoMaxReceiveCount },
      attributes: {
        FifoQueue: 'true',
        VisibilityTimeout: String(fifoVisibility),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn('fifo-dlq.fifo'), maxReceiveCount: fifoMaxReceiveCount }),
      },
    });
    const plainVisibility = visibility();
    const plainRetention = shortRetention ? 60 : 345_600;
    queues.push({
      info: { name: 'plain', family: 'plain', fifo: false, visibilityTimeoutSeconds: plainVisibility, retentionSeconds: plainRetention, deadLetterTarget: false },
      attributes: { VisibilityTimeout: String(plainVisibility), MessageRetentionPeriod: String(plainRetention) },
    });
    for (const queue of queues) {
      await broker.createQueue(queue.info.name, queue.attributes, {});
      this.checker.addQueue(queue.info);
      this.queueNames.push(queue.info.name);
      this.deliveredByQueue.set(queue.info.name, []);
      this.record(`create ${queue.info.name} ${JSON.stringify(queue.attributes)}`);
    }
  }

  // ---- one step ------------------------------------------------------------------

  private async step(step: number): Promise<void> {
    if (this.restartDueStep !== undefined && step >= this.restartDueStep) {
      await this.restart(this.random.int(2) === 0 || this.options.pageCacheRestarts === false);
      return;
    }
    const roll = this.random.int(100);
    if (this.outstanding.size >= outstandingOperationsMax || roll < 14) {
      await this.advance(this.random.int(5) === 0 ? 5000 + this.random.int(30_000) : this.random.int(3000));
    } else if (roll < 44) {
      this.startSend();
    } else if (roll < 66) {
      this.startReceive(this.pickQueue(), false);
    } else if (roll < 82) {
      this.startDelete();
    } else if (roll < 89) {
      this.startChangeVisibility();
    } else if (roll < 90) {
      this.startPurge();
    } else if (roll < 91) {
      this.startMoveTask();
    } else if (roll < 94) {
      await this.restart(true);
    } else if (roll < 95) {
      await this.restart(this.options.pageCacheRestarts === false);
    } else if (roll < 98 && !this.faultArmed) {
      this.injectFault(step);
    } else {
      await this.advance(this.random.int(1500));
    }
  }

  private injectFault(step: number): void {
    const kind = this.random.int(3);
    this.faultArmed = true;
    this.figures.faults++;
    this.restartDueStep = step + 2 + this.random.int(15);
    if (kind === 0) {
      this.disk.injectFault({ operation: 'sync', code: 'EIO', count: 1 + this.random.int(2) });
      this.record('fault fsync EIO');
    } else if (kind === 1) {
      this.disk.injectFault({ operation: 'write', code: 'EIO', count: 1 });
      this.disk.partialWriteOnFault = this.random.int(2) === 0;
      this.record(`fault write EIO partial=${this.disk.partialWriteOnFault}`);
    } else {
      this.disk.capacityBytes = this.disk.totalBytes() + this.random.int(4096);
      this.disk.partialWriteOnFault = this.random.int(2) === 0;
      this.record(`fault disk full at ${this.disk.capacityBytes} partial=${this.disk.partialWriteOnFault}`);
    }
  }

  /** Moves time forward, firing due timers one at a time and letting each one's work settle. */
  private async advance(deltaMs: number): Promise<void> {
    const targetMs = this.timeline.nowMs() + deltaMs;
    this.record(`advance ${deltaMs}`);
    while (this.timeline.fireNext(targetMs)) await this.settle();
    await this.settle();
  }

  /** Lets every promise that can settle, settle (see the model at the top). */
  private async settle(): Promise<void> {
    this.errorsThisTurn = 0;
    await nextTurn();
  }

  // ---- client operations ---------------------------------------------------------

  private pickQueue(): string {
    return this.queueNames[this.random.int(this.queueNames.length)]!;
  }

  /** Starts an operation; `answer` runs when it settles (unless the process died first). */
  private launch<T>(describe: string, run: (broker: LocalBroker) => Promise<T>, answer: (result: T | undefined, error: unknown, operation: number) => void, onLost: () => void): number {
    const broker = this.broker;
    const id = ++this.operationCounter;
    this.figures.operations++;
    this.record(`start ${id} ${describe}`);
    if (broker === undefined) return id;
    const generation = this.generation;
    this.outstanding.set(id, { id, describe, onLost });
    const settled = (result: T | undefined, error: unknown): void => {
      if (generation !== this.generation || !this.outstanding.has(id)) return;
      this.outstanding.delete(id);
      const endOperation = ++this.operationCounter;
      answer(result, error, endOperation);
    };
    let promise: Promise<T>;
    try {
      promise = run(broker);
    } catch (error) {
      promise = Promise.reject(error);
    }
    promise.then((result) => settled(result, undefined), (error: unknown) => settled(undefined, error ?? new Error('rejected without a reason')));
    return id;
  }

  private startSend(): void {
    const queue = this.pickQueue();
    const fifo = this.checker.queues.get(queue)!.fifo;
    const count = 1 + this.random.int(this.random.int(3) === 0 ? 10 : 3);
    const entries: Array<SendInput & { body: string }> = [];
    for (let index = 0; index < count; index++) {
      const body = `m${++this.bodyCounter}:${'x'.repeat(this.random.int(this.random.int(8) === 0 ? 600 : 40))}`;
      const input: SendInput & { body: string } = { body, attributes: {}, systemAttributes: {}, senderId: accountId };
      if (fifo) {
        input.groupId = `g${this.random.int(4)}`;
        const reuse = this.recentDeduplicationIds.length > 0 && this.random.int(8) === 0;
        input.deduplicationId = reuse
          ? this.recentDeduplicationIds[this.random.int(this.recentDeduplicationIds.length)]!
          : `d${++this.deduplicationCounter}`;
        if (!reuse) {
          this.recentDeduplicationIds.push(input.deduplicationId);
          if (this.recentDeduplicationIds.length > 20) this.recentDeduplicationIds.shift();
        }
      } else if (this.random.int(6) === 0) {
        input.delaySeconds = 1 + this.random.int(5);
      }
      entries.push(input);
    }
    const startMs = this.timeline.nowMs();
    const startOperation = this.operationCounter + 1;
    const reused = entries.map((entry) => this.checker.sendStarted(queue, fifo ? entry.deduplicationId : undefined));
    for (const entry of entries) this.checker.sendInFlight(queue, entry.body, startMs, startOperation);
    const unknown = (entry: SendInput & { body: string }): void =>
      this.checker.sendUnknown(queue, entry.body, fifo ? entry.deduplicationId : undefined, startMs, startOperation);
    this.launch(
      `send ${queue} ${entries.map((entry) => `${entry.body.slice(0, entry.body.indexOf(':'))}${entry.groupId === undefined ? '' : `/${entry.groupId}/${entry.deduplicationId ?? ''}`}`).join(',')}`,
      (broker) => broker.send(queue, entries),
      (results, error, endOperation) => {
        if (results === undefined) {
          this.record(`answer ${startOperation} send error ${describeError(error)}`);
          this.noteError(queue, error, endOperation);
          for (const entry of entries) unknown(entry);
          return;
        }
        const summary: string[] = [];
        results.forEach((result: SendOutcome | BerthError, index) => {
          const entry = entries[index]!;
          if (result instanceof BerthError) {
            summary.push(result.code);
            this.noteError(queue, result, endOperation);
            unknown(entry);
          } else {
            summary.push(`${result.messageId}${result.sequenceNumber === undefined ? '' : `#${result.sequenceNumber}`}`);
            this.checker.sendAcknowledged({
              queue, body: entry.body, messageId: result.messageId, sequenceNumber: result.sequenceNumber, groupId: entry.groupId,
              deduplicationId: entry.deduplicationId, deduplicationIdReused: reused[index]!, startMs, startOperation,
            });
          }
        });
        this.record(`answer ${startOperation} send ${summary.join(',')}`);
      },
      () => { for (const entry of entries) unknown(entry); },
    );
  }

  private startReceive(queue: string, drain: boolean, maxMessagesGiven?: number): number {
    const info = this.checker.queues.get(queue)!;
    const override = drain ? 3600 : this.random.int(2) === 0 ? undefined : this.random.int(21);
    const waitTimeSeconds = drain ? 0 : this.random.int(10) < 7 ? 0 : 1 + this.random.int(5);
    const maxMessages = maxMessagesGiven ?? 1 + this.random.int(10);
    const startMs = this.timeline.nowMs();
    const startOperation = this.operationCounter + 1;
    const unknownReceivesAtDelivery = this.checker.unknownReceiveCount(queue);
    this.activeReceives.set(queue, (this.activeReceives.get(queue) ?? 0) + 1);
    this.receiveStarts.set(queue, (this.receiveStarts.get(queue) ?? 0) + 1);
    const finished = (): void => { this.activeReceives.set(queue, (this.activeReceives.get(queue) ?? 1) - 1); };
    return this.launch(
      `receive ${queue} max=${maxMessages} visibility=${override ?? '-'} wait=${waitTimeSeconds}`,
      (broker) => broker.receive(queue, { maxMessages, visibilityTimeoutSeconds: override, waitTimeSeconds }),
      (messages: ReceivedMessage[] | undefined, error, endOperation) => {
        finished();
        if (messages === undefined) {
          this.record(`answer ${startOperation} receive error ${describeError(error)}`);
          this.noteError(queue, error, endOperation);
          this.checker.receiveUnknown(queue);
          return;
        }
        this.record(`answer ${startOperation} receive ${messages.map((message) => `${message.messageId}${message.sequenceNumber === undefined ? '' : `#${message.sequenceNumber}`}x${message.receiveCount}`).join(',')}`);
        const batch = new Set(messages.map((message) => message.messageId));
        const list = this.deliveredByQueue.get(queue)!;
        for (const message of messages) {
          this.checker.delivered({
            queue, messageId: message.messageId, body: message.body, receiptHandle: message.receiptHandle, groupId: message.groupId,
            sequenceNumber: message.sequenceNumber, receiveCount: message.receiveCount, visibilityTimeoutSeconds: override ?? info.visibilityTimeoutSeconds,
            startMs, endMs: this.timeline.nowMs(), startOperation, endOperation, batch, drain,
          });
          list.push({ queue, messageId: message.messageId, receiptHandle: message.receiptHandle, unknownReceivesAtDelivery });
        }
        if (list.length > 60) list.splice(0, list.length - 60);
      },
      () => { finished(); this.checker.receiveUnknown(queue); },
    );
  }

  /** Picks deliveries to act on: mostly recent (current receipts), sometimes old (likely stale). */
  private pickDeliveries(maxCount: number): Delivered[] {
    const queue = this.pickQueue();
    const list = this.deliveredByQueue.get(queue)!;
    if (list.length === 0) return [];
    const picked: Delivered[] = [];
    const count = 1 + this.random.int(maxCount);
    for (let index = 0; index < count; index++) {
      const recent = this.random.int(5) !== 0;
      const position = recent ? list.length - 1 - this.random.int(Math.min(list.length, 8)) : this.random.int(list.length);
      const delivered = list[position]!;
      if (!picked.includes(delivered)) picked.push(delivered);
    }
    return picked;
  }

  private startDelete(): void {
    const picked = this.pickDeliveries(5);
    if (picked.length === 0) return;
    const queue = picked[0]!.queue;
    const startOperation = this.operationCounter + 1;
    // Whether each receipt was the latest the client held, decided when the delete starts.
    const latest = picked.map((delivered) => this.checker.isLatestReceipt(queue, delivered.messageId, delivered.receiptHandle));
    const quietAtStart = (this.activeReceives.get(queue) ?? 0) === 0;
    const receiveStartsAtStart = this.receiveStarts.get(queue) ?? 0;
    for (const delivered of picked) {
      this.checker.changeStarted({ queue, messageId: delivered.messageId, receiptHandle: delivered.receiptHandle, startOperation, notBeforeMs: Number.NEGATIVE_INFINITY });
    }
    const report = (outcome: 'ok' | 'unknown', delivered: Delivered, index: number): void => {
      if (!latest[index]) return;
      const concurrentReceive = !quietAtStart || (this.receiveStarts.get(queue) ?? 0) !== receiveStartsAtStart;
      this.checker.deleteResult({ queue, messageId: delivered.messageId, receiptHandle: delivered.receiptHandle, outcome, unknownReceivesAtDelivery: delivered.unknownReceivesAtDelivery, startOperation, concurrentReceive });
    };
    this.launch(
      `delete ${queue} ${picked.map((delivered) => delivered.messageId).join(',')}`,
      (broker) => broker.deleteMessages(queue, picked.map((delivered) => delivered.receiptHandle)),
      (results, error, endOperation) => {
        if (results === undefined) {
          this.record(`answer ${startOperation} delete error ${describeError(error)}`);
          this.noteError(queue, error, endOperation);
          picked.forEach((delivered, index) => report('unknown', delivered, index));
          return;
        }
        this.record(`answer ${startOperation} delete ${results.map((result) => result?.code ?? 'ok').join(',')}`);
        results.forEach((result, index) => {
          if (result === null) report('ok', picked[index]!, index);
          else {
            this.noteError(queue, result, endOperation);
            if (isUnknownOutcome(result)) report('unknown', picked[index]!, index);
          }
        });
      },
      () => picked.forEach((delivered, index) => report('unknown', delivered, index)),
    );
  }

  private startChangeVisibility(): void {
    const picked = this.pickDeliveries(3);
    if (picked.length === 0) return;
    const queue = picked[0]!.queue;
    const timeouts = picked.map(() => this.random.int(31));
    const startMs = this.timeline.nowMs();
    const startOperation = this.operationCounter + 1;
    picked.forEach((delivered, index) => {
      this.checker.changeStarted({ queue, messageId: delivered.messageId, receiptHandle: delivered.receiptHandle, startOperation, notBeforeMs: startMs + timeouts[index]! * 1000 });
    });
    const report = (outcome: 'ok' | 'unknown', index: number): void => {
      const delivered = picked[index]!;
      this.checker.visibilityChanged({ queue, messageId: delivered.messageId, receiptHandle: delivered.receiptHandle, visibilityTimeoutSeconds: timeouts[index]!, startMs, outcome, startOperation });
    };
    this.launch(
      `change-visibility ${queue} ${picked.map((delivered, index) => `${delivered.messageId}=${timeouts[index]!}`).join(',')}`,
      (broker) => broker.changeVisibility(queue, picked.map((delivered, index) => ({ receiptHandle: delivered.receiptHandle, visibilityTimeoutSeconds: timeouts[index]! }))),
      (results, error, endOperation) => {
        if (results === undefined) {
          this.record(`answer ${startOperation} change-visibility error ${describeError(error)}`);
          this.noteError(queue, error, endOperation);
          picked.forEach((_, index) => report('unknown', index));
          return;
        }
        this.record(`answer ${startOperation} change-visibility ${results.map((result) => result?.code ?? 'ok').join(',')}`);
        results.forEach((result, index) => {
          if (result === null) report('ok', index);
          else {
            this.noteError(queue, result, endOperation);
            if (isUnknownOutcome(result)) report('unknown', index);
          }
        });
      },
      () => picked.forEach((_, index) => report('unknown', index)),
    );
  }

  private startPurge(): void {
    const queue = this.pickQueue();
    const startOperation = this.operationCounter + 1;
    const purge = this.checker.purgeStarted(queue, startOperation);
    this.launch(
      `purge ${queue}`,
      (broker) => broker.purgeQueue(queue),
      (_, error, endOperation) => {
        this.record(`answer ${startOperation} purge ${error === undefined ? 'ok' : describeError(error)}`);
        if (error === undefined) this.checker.purgeEnded(purge, 'ok', endOperation);
        else {
          this.noteError(queue, error, endOperation);
          this.checker.purgeEnded(purge, isUnknownOutcome(error) ? 'unknown' : 'refused', endOperation);
        }
      },
      () => this.checker.purgeEnded(purge, 'unknown', Number.POSITIVE_INFINITY),
    );
  }

  /** A dead-letter redrive: move the standard DLQ's messages back to their source queue. */
  private startMoveTask(): void {
    const startOperation = this.operationCounter + 1;
    this.checker.moveTaskStarted('std-dlq');
    this.launch(
      'move-task std-dlq',
      (broker) => broker.startMessageMoveTask(`arn:aws:sqs:${region}:${accountId}:std-dlq`, undefined, 1 + this.random.int(100)),
      (_, error, endOperation) => {
        this.record(`answer ${startOperation} move-task ${error === undefined ? 'ok' : describeError(error)}`);
        if (error !== undefined) this.noteError('std-dlq', error, endOperation);
      },
      () => undefined,
    );
  }

  /** Classifies an error answer: disk errors mark the queue failed; the unexpected are anomalies. */
  private noteError(queue: string, error: unknown, operation: number): void {
    if (error instanceof BerthError) {
      if (error.code === 'ServiceUnavailable') {
        if (!this.faultArmed) this.checker.report('unexpected-error', `${queue}: ServiceUnavailable without a disk fault: ${error.message}`);
        this.figures.diskErrorAnswers++;
        this.checker.diskError(queue, operation);
        return;
      }
      if (error.code === 'InternalError') {
        if (!this.faultArmed) this.checker.report('unexpected-error', `${queue}: InternalError: ${describeError(error)}`);
        return;
      }
      // Expected outcomes a client can get: stale receipts, purge too soon, a move task already running, ...
      return;
    }
    this.checker.report('unexpected-error', `${queue}: ${describeError(error)}`);
  }

  // ---- the end -------------------------------------------------------------------

  private async drain(): Promise<void> {
    this.checker.step = this.options.steps;
    this.record('drain');
    // Let long polls answer, then crash once more: everything acknowledged must survive it.
    await this.advance(6000);
    await this.restart(true);
    if (this.stopped) return;
    // Past every visibility deadline (at most 30 s) and delay (at most 5 s), maintenance included.
    await this.advance(120_000);
    for (let round = 0; round < 12; round++) {
      let received = 0;
      for (const queue of this.queueNames) {
        for (let attempt = 0; attempt < 10_000; attempt++) {
          const before = this.checker.figures.deliveries;
          await this.awaitOperation(this.startReceive(queue, true, 10));
          const got = this.checker.figures.deliveries - before;
          const list = this.deliveredByQueue.get(queue)!;
          const batch = list.slice(list.length - got);
          if (got === 0) break;
          received += got;
          const startOperation = this.operationCounter + 1;
          const deleteOperation = this.launch(
            `drain-delete ${queue} ${got}`,
            (broker) => broker.deleteMessages(queue, batch.map((delivered) => delivered.receiptHandle)),
            (results, error, endOperation) => {
              this.record(`answer ${startOperation} drain-delete ${results === undefined ? describeError(error) : results.map((result) => result?.code ?? 'ok').join(',')}`);
              if (results === undefined) {
                this.noteError(queue, error, endOperation);
                return;
              }
              results.forEach((result, index) => {
                const delivered = batch[index]!;
                if (result !== null) {
                  this.checker.report('drain-delete-failed', `${queue}: deleting ${delivered.messageId} during the drain failed: ${result.code} ${result.message}`);
                  return;
                }
                this.checker.deleteResult({ queue, messageId: delivered.messageId, receiptHandle: delivered.receiptHandle, outcome: 'ok', unknownReceivesAtDelivery: delivered.unknownReceivesAtDelivery, startOperation, concurrentReceive: false });
              });
            },
            () => undefined,
          );
          await this.awaitOperation(deleteOperation);
        }
      }
      // Dead-letter moves run in the background; let them finish and maintenance load backlogs.
      await this.advance(3000);
      if (received === 0 && round > 0) break;
    }
    const counts = new Map<string, { visible: number; inflight: number; delayed: number }>();
    for (const queue of this.queueNames) counts.set(queue, await this.requireBroker().queueCounts(queue));
    this.checker.finish({ nowMs: this.timeline.nowMs(), counts });
  }

  // ---- helpers -------------------------------------------------------------------

  /** Fires timers (a group commit may wait on one) until the operation answered. */
  private async awaitOperation(id: number): Promise<void> {
    await this.settle();
    for (let round = 0; round < 10_000 && this.outstanding.has(id); round++) {
      const dueMs = this.timeline.nextDueMs();
      if (dueMs === undefined) break;
      this.timeline.fireNext(dueMs);
      await this.settle();
    }
    if (this.outstanding.has(id)) this.checker.report('operation-stuck', `operation ${id} (${this.outstanding.get(id)!.describe}) never answered`);
  }

  private requireBroker(): LocalBroker {
    if (this.broker === undefined) throw new Error('simulator: no broker is running');
    return this.broker;
  }

  private record(line: string): void {
    const text = `${this.timeline.nowMs()} ${line}`;
    this.trace.update(text).update('\n');
    this.options.onTrace?.(text);
  }
}

/** Errors after which the operation's effect is unknown (it may have been appended). */
function isUnknownOutcome(error: unknown): boolean {
  return !(error instanceof BerthError) || error.code === 'ServiceUnavailable' || error.code === 'InternalError';
}

function describeError(error: unknown): string {
  if (error instanceof BerthError) return `${error.code}: ${error.message}`;
  if (error instanceof Error) return `${error.name}: ${error.message}${error.stack === undefined ? '' : ` @ ${error.stack.split('\n').slice(1, 3).join(' | ').trim()}`}`;
  return String(error);
}

function hex(random: SeededRandom, length: number): string {
  let text = '';
  for (let index = 0; index < length; index++) text += '0123456789abcdef'[random.int(16)];
  return text;
}
