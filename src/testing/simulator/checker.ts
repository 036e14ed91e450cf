// The simulator's history and invariant checker. It sees only what a client sees: the
// operations it started, what each answered (or that it never answered: the process
// crashed, or the answer was a disk error, which leaves the effect unknown), and what the
// final drain found. From that it decides what the server was ALLOWED to do.
//
// Message identity is the MessageId. A send's fate is one of
//   acknowledged   the producer got a MessageId: the message must survive every crash
//   unknown        no answer or a disk error: the message may or may not exist
//   refused        an expected error (validation): it must not exist (not checked)
// A message may be legitimately gone at the end when, in some queue of its family (a queue
// and its dead-letter queue), a delete with the latest receipt the client held succeeded
// or ended unknown, a purge that may have followed its send succeeded or ended unknown, or
// its retention elapsed.
//
// Checked when each answer arrives:
//   - a delivery's body is the body sent with that MessageId (no record served corrupt)
//   - no message is handed out again before its visibility deadline (lower bound: the
//     start of the receive or visibility change that set it), across crashes too
//   - FIFO: no message of a group is delivered while another of the group is in flight
//   - FIFO: a send with a deduplication id seen within 5 minutes returns the first
//     MessageId and SequenceNumber
//   - a message deleted for sure is never delivered again from the same queue
//   - after a queue answered a disk error, no operation started later acknowledges an
//     effect on it until the server restarts (a failed log stops for good)
//   - no unexpected error (InternalError, a non-Berth error, ServiceUnavailable without a
//     fault) while the disk is healthy
// Checked at the end:
//   - every acknowledged message not legitimately gone was found by the drain
//   - FIFO: a delivery never passes an earlier message (by SequenceNumber) of its group
//     that was not yet deleted, dead-lettered, purged or expired
//   - counts are zero after the drain

import { fifoDeduplicationWindowMs } from '../../queue/types.js';

export interface Anomaly {
  kind: string;
  step: number;
  detail: string;
}

export interface QueueInfo {
  name: string;
  family: string;
  fifo: boolean;
  visibilityTimeoutSeconds: number;
  retentionSeconds: number;
  /** Some queue's dead-letter queue: a crash during a move may leave a second copy here (at least once, by design). */
  deadLetterTarget: boolean;
  /** RedrivePolicy maxReceiveCount, when the queue has a dead-letter queue. */
  maxReceiveCount?: number;
}

interface InFlight {
  receiptHandle: string;
  /** A lower bound of the visibility deadline the client knows of. */
  notBeforeMs: number;
  deliveryIndex: number;
  /** Operation counter when the delivering receive answered: only receives started after it were planned after it. */
  answeredOperation: number;
  /** Operation counter when the delivering receive started. */
  startOperation: number;
  /** ApproximateReceiveCount of this delivery: orders deliveries of one message in one queue as the server made them. */
  receiveCount: number;
  /**
   * Deletes and visibility changes with this receipt that started (not yet answered: the
   * answer then sets notBeforeMs): from the operation counter at their start on, the
   * deadline may already be this one. See deadlineFor().
   */
  pendingChanges: Array<{ startOperation: number; notBeforeMs: number }>;
}

/**
 * The deadline the client can hold a receive ending at `endOperation` to. A delete or a
 * visibility change started before the receive ended may have been applied before the
 * receive was planned, although its answer came later (seed 632, 300 steps: a delete of
 * the group's in-flight message started, then a receive of the queue started, and the
 * receive's answer, with the group's next message, settled before the delete's).
 */
function deadlineFor(flight: InFlight, endOperation: number): number {
  let deadlineMs = flight.notBeforeMs;
  for (const change of flight.pendingChanges) if (change.startOperation < endOperation) deadlineMs = Math.min(deadlineMs, change.notBeforeMs);
  return deadlineMs;
}

interface MessageState {
  messageId: string;
  body: string | undefined;
  homeQueue: string;
  acknowledged: boolean;
  sentStartMs: number;
  /** Operation counter at the send's start (orders it against purges). */
  sentStartOperation: number;
  groupId: string | undefined;
  sequenceByQueue: Map<string, string>;
  inFlight: Map<string, InFlight>;
  /** Queues where a delete with the latest receipt succeeded (only when no unobserved receive may have made it stale). */
  deletedSure: Set<string>;
  /** A delete with the latest receipt succeeded or ended unknown, at this operation counter. */
  deletedMaybeAtOperation: number | undefined;
  foundInDrain: Set<string>;
  /** Any delivery from a queue other than its home queue (it was dead-lettered or moved). */
  seenOutsideHome: boolean;
  /** Per queue: the restart count at its last delivery there. */
  restartsAtDelivery: Map<string, number>;
  /** Highest ApproximateReceiveCount the client saw. */
  receiveCountSeen: number;
  /** Standard dead-letter queues where two copies of this message showed (see delivered()). */
  copiesIn: Set<string>;
}

export interface DeliveryRecord {
  index: number;
  queue: string;
  messageId: string;
  groupId: string | undefined;
  sequenceNumber: string | undefined;
  startMs: number;
  endMs: number;
  startOperation: number;
  endOperation: number;
  receiveOperation: number;
}

interface PurgeRecord {
  queue: string;
  startOperation: number;
  /** The checker's restart count when it started: a purge cannot take effect in a later incarnation. */
  restartCount: number;
  /** Infinity while it may still take effect (unknown outcome). */
  endOperation: number;
}

export class SimChecker {
  readonly anomalies: Anomaly[] = [];
  readonly queues = new Map<string, QueueInfo>();
  private readonly messages = new Map<string, MessageState>();
  private readonly bodies = new Map<string, string>();
  private readonly deliveries: DeliveryRecord[] = [];
  private readonly purges: PurgeRecord[] = [];
  /** Per queue: receives that ended unknown (they may have made receipts stale). */
  private readonly unknownReceives = new Map<string, number>();
  private readonly deduplication = new Map<string, { messageId: string; sequenceNumber: string | undefined; startMs: number } | 'tainted'>();
  /** Queues that answered a disk error since the last restart, with the operation counter then. */
  private readonly failedQueues = new Map<string, number>();
  /** Families where a move task ran: a message may come back to a queue it was deleted from. */
  private readonly movedFamilies = new Set<string>();
  /** Deliveries per receive operation, for FIFO batches (a batch may hold several of one group). */
  private readonly batchByOperation = new Map<number, Set<string>>();
  private restartCount = 0;
  step = 0;
  anomaliesMax = 50;

  addQueue(info: QueueInfo): void {
    this.queues.set(info.name, info);
    this.unknownReceives.set(info.name, 0);
  }

  report(kind: string, detail: string): void {
    if (this.anomalies.length < this.anomaliesMax) this.anomalies.push({ kind, step: this.step, detail });
  }

  unknownReceiveCount(queue: string): number {
    return this.unknownReceives.get(queue) ?? 0;
  }

  // ---- sends ---------------------------------------------------------------------

  /** Called when a send starts, before any answer. */
  sendStarted(queue: string, deduplicationId: string | undefined): boolean {
    if (deduplicationId === undefined) return false;
    const key = `${queue}\u0000${deduplicationId}`;
    const reused = this.deduplicationIdsSent.has(key);
    this.deduplicationIdsSent.add(key);
    return reused;
  }

  private readonly deduplicationIdsSent = new Set<string>();

  sendAcknowledged(input: {
    queue: string; body: string; messageId: string; sequenceNumber: string | undefined; groupId: string | undefined;
    deduplicationId: string | undefined; deduplicationIdReused: boolean; startMs: number; startOperation: number;
  }): void {
    // A deduplicated FIFO send appends nothing: the broker answers it with the first send's
    // MessageId only once that first record is durable (PartitionRunner.send waits for its
    // offset), so answering it after the log stopped promises nothing the disk does not
    // hold (seeds 72 and 171: a reused deduplication id answered after a disk error). It
    // counts as a deduplicated answer when the MessageId is one the client already knows
    // or the deduplication id was used before (the first send's answer may have been lost).
    const deduplicatedAnswer = this.messages.has(input.messageId) || input.deduplicationIdReused;
    if (!deduplicatedAnswer) this.checkNotFailed(input.queue, input.startOperation, 'send');
    const info = this.queueInfo(input.queue);
    if (info.fifo && input.deduplicationId !== undefined) {
      const key = `${input.queue}\u0000${input.deduplicationId}`;
      const first = this.deduplication.get(key);
      if (first === undefined) {
        this.deduplication.set(key, { messageId: input.messageId, sequenceNumber: input.sequenceNumber, startMs: input.startMs });
      } else if (first !== 'tainted') {
        // The window runs from the first message's enqueue time, which is at or after its send started.
        const inWindow = input.startMs < first.startMs + fifoDeduplicationWindowMs;
        if (inWindow && (first.messageId !== input.messageId || first.sequenceNumber !== input.sequenceNumber)) {
          this.report('fifo-deduplication', `${input.queue}: deduplication id ${input.deduplicationId} answered ${input.messageId}/${input.sequenceNumber ?? '-'} within the window of ${first.messageId}/${first.sequenceNumber ?? '-'}`);
        }
        if (!inWindow && first.messageId !== input.messageId) {
          this.deduplication.set(key, { messageId: input.messageId, sequenceNumber: input.sequenceNumber, startMs: input.startMs });
        }
      }
    }
    const known = this.messages.get(input.messageId);
    if (known !== undefined) {
      // A deduplicated send (the first message is now acknowledged too), or a message a
      // receive delivered before this answer arrived.
      known.acknowledged = true;
      if (input.sequenceNumber !== undefined && !known.sequenceByQueue.has(input.queue)) known.sequenceByQueue.set(input.queue, input.sequenceNumber);
      return;
    }
    // With a deduplication id used before, the MessageId may be an earlier send's (whose
    // answer was lost): the body and the group are then learnt from the first delivery
    // (deduplication is queue-wide, so the first send may have had another group: seed 2,
    // where a g2 message answered a g1 send looked like a g1 message passed in order).
    const reused = input.deduplicationIdReused;
    // Its send may also have started before a purge that ended before this send started
    // (seed 1788: the purge removed it, the deduplication entry outlived it), so any purge
    // of the family may have removed it: its send start counts as the first operation.
    const state = this.newMessage(input.messageId, input.queue, reused ? undefined : input.body, input.startMs, reused ? 0 : input.startOperation, reused ? undefined : input.groupId);
    state.acknowledged = true;
    if (input.sequenceNumber !== undefined) state.sequenceByQueue.set(input.queue, input.sequenceNumber);
    this.bodies.set(input.body, input.messageId);
  }

  /**
   * A send has started and not been answered yet: a receive may deliver its message before
   * the send's answer arrives (the receive record commits after the enqueue record, so the
   * message is durable; only the answer is still on its way).
   */
  sendInFlight(queue: string, body: string, startMs: number, startOperation: number): void {
    this.pendingBodies.set(body, { queue, startMs, startOperation });
  }

  /** No answer, or a disk error: the message may exist. */
  sendUnknown(queue: string, body: string, deduplicationId: string | undefined, startMs: number, startOperation: number): void {
    this.pendingBodies.set(body, { queue, startMs, startOperation });
    if (deduplicationId !== undefined) this.deduplication.set(`${queue}\u0000${deduplicationId}`, 'tainted');
  }

  private readonly pendingBodies = new Map<string, { queue: string; startMs: number; startOperation: number }>();

  // ---- receives ------------------------------------------------------------------

  /** One message handed to the client. `batch` holds the MessageIds delivered by the same receive. */
  delivered(input: {
    queue: string; messageId: string; body: string; receiptHandle: string; groupId: string | undefined; sequenceNumber: string | undefined; receiveCount: number;
    visibilityTimeoutSeconds: number; startMs: number; endMs: number; startOperation: number; endOperation: number; batch: Set<string>; drain: boolean;
  }): void {
    this.checkNotFailed(input.queue, input.startOperation, 'receive');
    let state = this.messages.get(input.messageId);
    if (state === undefined) {
      const pending = this.pendingBodies.get(input.body);
      if (pending === undefined) {
        this.report('unknown-message', `${input.queue}: delivered ${input.messageId} with a body no send carried: ${JSON.stringify(input.body.slice(0, 60))}`);
        return;
      }
      state = this.newMessage(input.messageId, pending.queue, input.body, pending.startMs, pending.startOperation, input.groupId);
      this.bodies.set(input.body, input.messageId);
    }
    state.groupId ??= input.groupId;
    if (state.body === undefined) state.body = input.body;
    else if (state.body !== input.body) {
      this.report('body-mismatch', `${input.queue}: ${input.messageId} delivered with body ${JSON.stringify(input.body.slice(0, 40))}, sent with ${JSON.stringify(state.body.slice(0, 40))}`);
    }
    const info = this.queueInfo(input.queue);
    if (input.queue !== state.homeQueue) state.seenOutsideHome = true;
    if (input.queue === state.homeQueue) state.receiveCountSeen = Math.max(state.receiveCountSeen, input.receiveCount);
    // In a dead-letter queue, a delivery after a restart may be a second copy of the message.
    // A FIFO copy has a SequenceNumber of its own; a standard one cannot be told apart, so any
    // restart since the last delivery there may have made one.
    //
    // A standard copy is made by every retry of a move whose copy was durable but whose
    // DeadLettered record in the source was not (a crash, or a disk error in the source log:
    // the move is retried after a pause), so copies are not tied to restarts: both copies
    // may be delivered after the last restart (seeds 12, 39, 91, 163: two deliveries of one
    // MessageId in the drain, both with ApproximateReceiveCount 1). One copy's receive count
    // rises with every delivery (each receive record increments it, and a delivered count is
    // durable before the answer), so a delivery whose count is not above the count of the
    // delivery the client holds comes from another copy. Once a message showed two copies
    // in a queue, its deliveries there are not held to one copy's deadlines or deletes.
    const restartsBefore = state.restartsAtDelivery.get(input.queue);
    const knownSequence = state.sequenceByQueue.get(input.queue);
    const heldFlight = state.inFlight.get(input.queue);
    // A move task (dead-letter queue back to its source) copies the same way, so a queue of
    // a family where one ran may hold two copies too (seed 953 with --preallocate: a move
    // retried after its source's log stopped on ENOSPC; both copies delivered in the drain
    // with ApproximateReceiveCount 1).
    const copiesArrive = info.deadLetterTarget || this.movedFamilies.has(info.family);
    if (copiesArrive && !info.fifo && heldFlight !== undefined && input.receiveCount <= heldFlight.receiveCount
      && input.startOperation > heldFlight.answeredOperation) {
      state.copiesIn.add(input.queue);
    }
    const maybeCopy = copiesArrive && (info.fifo
      ? knownSequence !== undefined && input.sequenceNumber !== undefined && knownSequence !== input.sequenceNumber
      : state.copiesIn.has(input.queue) || (restartsBefore !== undefined && restartsBefore !== this.restartCount));
    state.restartsAtDelivery.set(input.queue, this.restartCount);
    this.batchByOperation.set(input.startOperation, input.batch);
    if (state.deletedSure.has(input.queue) && !this.movedFamilies.has(info.family) && !maybeCopy) {
      this.report('delivered-after-delete', `${input.queue}: ${input.messageId} delivered again after a delete with its latest receipt succeeded`);
    }
    const previous = state.inFlight.get(input.queue);
    if (previous !== undefined && input.startOperation > previous.answeredOperation && input.endMs < deadlineFor(previous, input.endOperation) && !maybeCopy) {
      this.report('visibility', `${input.queue}: ${input.messageId} delivered at ${input.endMs} before its visibility deadline (not before ${deadlineFor(previous, input.endOperation)})`);
    }
    if (info.fifo && input.groupId !== undefined) {
      for (const other of this.messages.values()) {
        if (other.messageId === input.messageId || other.groupId !== input.groupId || input.batch.has(other.messageId)) continue;
        const flight = other.inFlight.get(input.queue);
        if (flight !== undefined && input.startOperation > flight.answeredOperation && deadlineFor(flight, input.endOperation) > input.endMs && !other.deletedSure.has(input.queue) && other.deletedMaybeAtOperation === undefined) {
          this.report('fifo-group-in-flight', `${input.queue}: ${input.messageId} of group ${input.groupId} delivered while ${other.messageId} of the group is in flight until at least ${deadlineFor(flight, input.endOperation)}`);
        }
      }
    }
    if (input.sequenceNumber !== undefined) {
      const known = state.sequenceByQueue.get(input.queue);
      if (known !== undefined && known !== input.sequenceNumber && !this.movedFamilies.has(info.family) && !maybeCopy) {
        this.report('sequence-number', `${input.queue}: ${input.messageId} delivered with SequenceNumber ${input.sequenceNumber}, acknowledged with ${known}`);
      }
      state.sequenceByQueue.set(input.queue, input.sequenceNumber);
    }
    const index = this.deliveries.length;
    this.deliveries.push({
      index, queue: input.queue, messageId: input.messageId, groupId: input.groupId, sequenceNumber: input.sequenceNumber,
      startMs: input.startMs, endMs: input.endMs, startOperation: input.startOperation, endOperation: input.endOperation, receiveOperation: input.startOperation,
    });
    // Two receives running at once may answer in the other order than the server served them
    // (a visibility-0 receive, then a second receive of the same message, both in one commit
    // batch). The receipt the server holds as current is the one with the higher receive
    // count, so an older delivery answering late must not replace it: otherwise a delete with
    // the truly current receipt looks stale to the checker, its effect is ignored, and the
    // message is reported lost (seed 182, 300 steps). Only for overlapping receives: across a
    // move back into the queue the count may restart.
    const olderThanKnown = previous !== undefined && input.startOperation < previous.answeredOperation && previous.startOperation < input.endOperation
      && input.receiveCount < previous.receiveCount;
    if (!olderThanKnown) {
      // A purge running at the same time as this receive may have been applied after the
    // receive record: the message is then gone although the client holds it in flight, and
    // the rest of its group may be delivered at once (seed 39: receive and purge of
    // fifo.fifo started in one turn, the purge answered first). Such a delivery sets no
    // deadline, as a purge started later does (purgeStarted).
    const purgedMaybe = this.purges.some((purge) => purge.queue === input.queue && purge.restartCount === this.restartCount
      && purge.startOperation < input.endOperation && purge.endOperation > input.startOperation);
    state.inFlight.set(input.queue, {
        receiptHandle: input.receiptHandle, notBeforeMs: purgedMaybe ? Number.NEGATIVE_INFINITY : input.startMs + input.visibilityTimeoutSeconds * 1000, deliveryIndex: index,
        answeredOperation: input.endOperation, startOperation: input.startOperation, receiveCount: input.receiveCount, pendingChanges: [],
      });
    }
    if (input.drain) state.foundInDrain.add(input.queue);
  }

  receiveUnknown(queue: string): void {
    this.unknownReceives.set(queue, this.unknownReceiveCount(queue) + 1);
  }

  /** Whether this receipt is the latest delivery of its message the client saw in this queue. */
  isLatestReceipt(queue: string, messageId: string, receiptHandle: string): boolean {
    return this.messages.get(messageId)?.inFlight.get(queue)?.receiptHandle === receiptHandle;
  }

  // ---- deletes and visibility ----------------------------------------------------

  /**
   * A delete answered success (`outcome` 'ok') or ended unknown. `unknownReceivesAtStart`
   * is the queue's unknown-receive count when the delete's receipt was obtained.
   */
  deleteResult(input: {
    queue: string; messageId: string; receiptHandle: string; outcome: 'ok' | 'unknown'; unknownReceivesAtDelivery: number; startOperation: number;
    /** A receive of this queue ran at the same time: it may have made the receipt stale first. */
    concurrentReceive: boolean;
  }): void {
    if (input.outcome === 'ok') this.checkNotFailed(input.queue, input.startOperation, 'delete');
    const state = this.messages.get(input.messageId);
    if (state === undefined) return;
    if (!this.isLatestReceipt(input.queue, input.messageId, input.receiptHandle)) return; // stale: a no-op by design
    state.deletedMaybeAtOperation ??= input.startOperation;
    if (input.outcome === 'ok' && !input.concurrentReceive && this.unknownReceiveCount(input.queue) === input.unknownReceivesAtDelivery) state.deletedSure.add(input.queue);
  }

  /**
   * A delete (`notBeforeMs` -Infinity) or a visibility change of a delivery started: until
   * it answers, it may already have taken effect (see deadlineFor()).
   */
  changeStarted(input: { queue: string; messageId: string; receiptHandle: string; startOperation: number; notBeforeMs: number }): void {
    const flight = this.messages.get(input.messageId)?.inFlight.get(input.queue);
    if (flight === undefined || flight.receiptHandle !== input.receiptHandle) return;
    flight.pendingChanges.push({ startOperation: input.startOperation, notBeforeMs: input.notBeforeMs });
  }

  visibilityChanged(input: {
    queue: string; messageId: string; receiptHandle: string; visibilityTimeoutSeconds: number; startMs: number; outcome: 'ok' | 'unknown'; startOperation: number;
  }): void {
    if (input.outcome === 'ok') this.checkNotFailed(input.queue, input.startOperation, 'change visibility');
    const flight = this.messages.get(input.messageId)?.inFlight.get(input.queue);
    if (flight === undefined || flight.receiptHandle !== input.receiptHandle) return;
    const notBeforeMs = input.startMs + input.visibilityTimeoutSeconds * 1000;
    flight.notBeforeMs = input.outcome === 'ok' ? notBeforeMs : Math.min(flight.notBeforeMs, notBeforeMs);
  }

  purgeStarted(queue: string, startOperation: number): PurgeRecord {
    const record: PurgeRecord = { queue, startOperation, restartCount: this.restartCount, endOperation: Number.POSITIVE_INFINITY };
    this.purges.push(record);
    // Whatever was in flight may be gone now: stop holding the client to those deadlines.
    // (The receipt stays: a delete with it after a refused purge is still the latest.)
    for (const state of this.messages.values()) {
      const flight = state.inFlight.get(queue);
      if (flight !== undefined) flight.notBeforeMs = Number.NEGATIVE_INFINITY;
    }
    return record;
  }

  purgeEnded(record: PurgeRecord, outcome: 'ok' | 'refused' | 'unknown', endOperation: number): void {
    if (outcome === 'ok') this.checkNotFailed(record.queue, record.startOperation, 'purge');
    if (outcome === 'refused') this.purges.splice(this.purges.indexOf(record), 1);
    else if (outcome === 'ok') record.endOperation = endOperation;
  }

  moveTaskStarted(queue: string): void {
    this.movedFamilies.add(this.queueInfo(queue).family);
  }

  /**
   * The run no longer promises this acknowledged message survives (the cluster simulator:
   * as many nodes failed at once as its replica count): its loss, and its absence from a
   * group's order, are not anomalies.
   */
  excuseLoss(messageId: string): void {
    const state = this.messages.get(messageId);
    if (state !== undefined) state.deletedMaybeAtOperation ??= Number.NEGATIVE_INFINITY;
  }

  /**
   * The run no longer promises that what was acknowledged on this queue so far lasts (the
   * cluster simulator: as many nodes failed at once as the queue's replica count, so a
   * failover may cut committed receive and delete records): in-flight deadlines and
   * deletes known so far stop binding the server; a deleted message may come back.
   */
  excuseQueue(queue: string): void {
    for (const state of this.messages.values()) {
      const flight = state.inFlight.get(queue);
      if (flight !== undefined) flight.notBeforeMs = Number.NEGATIVE_INFINITY;
      state.deletedSure.delete(queue);
    }
  }

  // ---- errors and restarts -------------------------------------------------------

  diskError(queue: string, operation: number): void {
    if (!this.failedQueues.has(queue)) this.failedQueues.set(queue, operation);
  }

  restarted(): void {
    this.restartCount++;
    this.failedQueues.clear();
  }

  private checkNotFailed(queue: string, startOperation: number, what: string): void {
    const failedAt = this.failedQueues.get(queue);
    if (failedAt !== undefined && startOperation > failedAt) {
      this.report('acknowledged-after-disk-failure', `${queue}: a ${what} started after the queue answered a disk error was acknowledged before a restart`);
    }
  }

  // ---- end of run ----------------------------------------------------------------

  /** After the drain: what must have been found, and FIFO order over the whole history. */
  finish(input: { nowMs: number; counts: Map<string, { visible: number; inflight: number; delayed: number }> }): void {
    for (const [queue, counts] of input.counts) {
      if (counts.visible + counts.inflight + counts.delayed !== 0) {
        this.report('counts-after-drain', `${queue}: visible ${counts.visible}, in flight ${counts.inflight}, delayed ${counts.delayed} after draining everything`);
      }
    }
    for (const state of this.messages.values()) {
      if (!state.acknowledged) continue;
      const family = this.queueInfo(state.homeQueue).family;
      const familyQueues = [...this.queues.values()].filter((queue) => queue.family === family);
      if (familyQueues.some((queue) => state.foundInDrain.has(queue.name))) continue;
      if (state.deletedMaybeAtOperation !== undefined) continue;
      const retentionMs = Math.min(...familyQueues.map((queue) => queue.retentionSeconds)) * 1000;
      if (state.sentStartMs + retentionMs <= input.nowMs) continue;
      if (this.purges.some((purge) => this.queueInfo(purge.queue).family === family && state.sentStartOperation < purge.endOperation)) continue;
      this.report('lost-acknowledged', `${state.homeQueue}: acknowledged message ${state.messageId} (${state.body ?? '?'}) is gone: not deleted, purged, expired or dead-lettered`);
    }
    this.checkFifoOrder(input.nowMs);
  }

  private checkFifoOrder(nowMs: number): void {
    void nowMs;
    for (const delivery of this.deliveries) {
      const info = this.queueInfo(delivery.queue);
      if (!info.fifo || delivery.groupId === undefined || delivery.sequenceNumber === undefined) continue;
      if (this.movedFamilies.has(info.family)) continue;
      const sequence = BigInt(delivery.sequenceNumber);
      for (const other of this.messages.values()) {
        if (other.messageId === delivery.messageId || other.groupId !== delivery.groupId) continue;
        if (this.batchByOperation.get(delivery.receiveOperation)?.has(other.messageId) === true) continue;
        const otherSequence = other.sequenceByQueue.get(delivery.queue);
        if (otherSequence === undefined || BigInt(otherSequence) >= sequence) continue;
        // `other` came first in this group: it must have been done with before `delivery`.
        if (other.deletedMaybeAtOperation !== undefined && other.deletedMaybeAtOperation < delivery.endOperation) continue;
        // Dead-lettered (maybe unseen, then purged in the dead-letter queue): it left when it was visible again.
        const maxReceiveCount = this.queueInfo(other.homeQueue).maxReceiveCount;
        if (maxReceiveCount !== undefined && other.receiveCountSeen + this.unknownReceiveCount(other.homeQueue) >= maxReceiveCount) continue;
        if (other.seenOutsideHome || (delivery.queue === other.homeQueue && [...other.foundInDrain].some((queue) => queue !== delivery.queue))) continue;
        if (this.purges.some((purge) => purge.queue === delivery.queue && purge.startOperation < delivery.endOperation && other.sentStartOperation < purge.endOperation)) continue;
        if (other.sentStartMs + info.retentionSeconds * 1000 <= delivery.endMs) continue;
        this.report('fifo-order', `${delivery.queue}: ${delivery.messageId} (seq ${delivery.sequenceNumber}) of group ${delivery.groupId} delivered while the earlier ${other.messageId} (seq ${otherSequence}) was not yet done`);
      }
    }
  }

  get figures(): { messages: number; acknowledged: number; deliveries: number } {
    let acknowledged = 0;
    for (const state of this.messages.values()) if (state.acknowledged) acknowledged++;
    return { messages: this.messages.size, acknowledged, deliveries: this.deliveries.length };
  }

  private newMessage(messageId: string, homeQueue: string, body: string | undefined, sentStartMs: number, sentStartOperation: number, groupId: string | undefined): MessageState {
    const state: MessageState = {
      messageId, body, homeQueue, acknowledged: false, sentStartMs, sentStartOperation, groupId,
      sequenceByQueue: new Map(), inFlight: new Map(), deletedSure: new Set(), deletedMaybeAtOperation: undefined,
      foundInDrain: new Set(), seenOutsideHome: false, restartsAtDelivery: new Map(), receiveCountSeen: 0, copiesIn: new Set(),
    };
    this.messages.set(messageId, state);
    return state;
  }

  private queueInfo(name: string): QueueInfo {
    const info = this.queues.get(name);
    if (info === undefined) throw new Error(`simulator: unknown queue ${name}`);
    return info;
  }
}
