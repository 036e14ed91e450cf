// Checks a chaos run's complete history (pure: no I/O, no clock). Reasoning uses only what
// the clients saw, conservatively: a server acts on a call somewhere between the call's
// start and its answer, so "A happened before B on the server" is certain only when A's
// answer came before B's start. An answer that never came (error, timeout) leaves the
// effect unknown and is never held against the server.
//
// Findings:
// - lost acknowledged (fails the run): an acknowledged send never delivered; or, when the
//   final drain completed, delivered but never deleted (no delete even attempted) and never
//   seen again: it vanished.
// - twice in one answer: one ReceiveMessage answer holding a MessageId twice.
// - unknown or corrupt bodies: a delivery whose key no send made, or whose body differs.
// - duplicates: a message delivered after a delete of it was acknowledged, or one send
//   stored under two MessageIds. Allowed (counted) on standard queues; reported on FIFO
//   queues (a FIFO pair within the deduplication window is an anomaly).
// - early redelivery: a message delivered again before the visibility deadline of an
//   earlier delivery (second answer before first start + visibility timeout).
// - FIFO reorder: a message of a group delivered while an acknowledged earlier one of the
//   group had not been delivered yet (its first delivery started after this one ended).
// - FIFO group in flight: a delivery of a group while another message of the group was
//   certainly in flight (delivered, no delete started, visibility not passed).

import { keyOfBody, type DeliveredMessage, type FaultKind, type History, type ReceiveEvent, type SendEvent } from './history.js';

export interface Anomaly {
  kind: 'lost-acknowledged' | 'twice-in-one-answer' | 'unknown-body' | 'corrupt-body' | 'fifo-duplicate' | 'early-redelivery' | 'fifo-reorder' | 'fifo-group-in-flight';
  queue: string;
  messageId?: string;
  detail: string;
}

export interface QueueFigures {
  queue: string;
  fifo: boolean;
  replicaCount: number;
  sends: number;
  acknowledged: number;
  sendErrors: number;
  receives: number;
  receiveErrors: number;
  deliveries: number;
  deletes: number;
  deleteErrors: number;
  /** Deliveries after the visibility timeout of an undeleted earlier delivery (expected). */
  redeliveries: number;
  /** Standard queues: duplicates allowed by the at-least-once contract, counted. */
  standardDuplicates: number;
  /** Acknowledged and never delivered, or vanished after delivery. */
  lost: number;
}

export interface CheckReport {
  queues: QueueFigures[];
  anomalies: Anomaly[];
  operations: number;
  faults: Record<FaultKind, number>;
  drainComplete: boolean;
  /** False when an acknowledged message was lost (the run fails). */
  ok: boolean;
}

interface Delivery {
  receive: ReceiveEvent;
  position: number;
  message: DeliveredMessage;
}

interface DeleteAttempt {
  startMs: number;
  endMs: number;
  ok: boolean;
  receipt: string;
}

/**
 * Whether a delete certainly used the message's latest receipt. SQS answers a delete with a
 * superseded receipt with success and keeps the message, so only a delete whose receipt was
 * current promises that the message is gone: its own delivery is known, every other
 * delivery of the message either answered before that one started or started after the
 * delete was answered, and no receive that failed (its answer lost, so it may have taken
 * the message and made a newer receipt) ran between the end of the delivery's visibility
 * and the delete.
 */
function deleteUsedCurrentReceipt(attempt: DeleteAttempt, deliveries: readonly Delivery[], unansweredReceives: readonly ReceiveEvent[]): boolean {
  const own = deliveries.find((delivery) => delivery.message.receipt === attempt.receipt);
  if (own === undefined) return false;
  if (!deliveries.every((other) => other === own || other.receive.endMs < own.receive.startMs || other.receive.startMs > attempt.endMs)) return false;
  const visibleAgainMs = own.receive.startMs + own.receive.visibilityTimeoutSeconds * 1000;
  return unansweredReceives.every((receive) => receive.endMs <= visibleAgainMs || receive.startMs >= attempt.endMs);
}

/** One message's deliveries and deletes in time order, for a report that must be read from a CI log alone. */
function timelineOf(deliveries: readonly Delivery[], deletes: readonly DeleteAttempt[]): string {
  const events = [
    ...deliveries.map((delivery) => ({ atMs: delivery.receive.startMs, text: `receive ${delivery.receive.startMs}-${delivery.receive.endMs} via ${delivery.receive.entry} receipt ${delivery.message.receipt}` })),
    ...deletes.map((attempt) => ({ atMs: attempt.startMs, text: `delete ${attempt.startMs}-${attempt.endMs} ${attempt.ok ? 'ok' : 'failed'} receipt ${attempt.receipt}` })),
  ].sort((a, b) => a.atMs - b.atMs);
  return `timeline: ${events.slice(0, 12).map((event) => event.text).join(' | ')}`;
}

const anomaliesListedMax = 200;

export function checkHistory(history: History): CheckReport {
  const anomalies: Anomaly[] = [];
  const faults: Record<FaultKind, number> = { 'kill-primary': 0, 'kill-backup': 0, 'pause-primary': 0, 'stall-disk-primary': 0, 'restart-all': 0, 'partition-node': 0, 'isolate-node': 0, 'partition-pair': 0 };
  let operations = 0;
  const figures = new Map<string, QueueFigures>();
  for (const queue of history.queues) {
    figures.set(queue.name, {
      queue: queue.name, fifo: queue.fifo, replicaCount: queue.replicaCount, sends: 0, acknowledged: 0, sendErrors: 0, receives: 0, receiveErrors: 0,
      deliveries: 0, deletes: 0, deleteErrors: 0, redeliveries: 0, standardDuplicates: 0, lost: 0,
    });
  }
  const figuresOf = (queue: string): QueueFigures => {
    const found = figures.get(queue);
    if (found === undefined) throw new Error(`history names an undeclared queue ${queue}`);
    return found;
  };
  const fifoOf = (queue: string): boolean => figuresOf(queue).fifo;

  // Index the history.
  const sendsByKey = new Map<string, SendEvent[]>(); // queue-qualified key (keys already start with the queue)
  const deliveriesById = new Map<string, Delivery[]>();
  const deletesById = new Map<string, DeleteAttempt[]>();
  /** Receives answered with an error: each may have taken messages (and made receipts) the client never saw. */
  const unansweredReceivesByQueue = new Map<string, ReceiveEvent[]>();
  for (const event of history.events) {
    if (event.type === 'fault') {
      faults[event.kind]++;
      continue;
    }
    operations++;
    const queueFigures = figuresOf(event.queue);
    if (event.type === 'send') {
      queueFigures.sends++;
      if (event.outcome === 'ok') queueFigures.acknowledged++;
      else queueFigures.sendErrors++;
      const list = sendsByKey.get(event.key) ?? [];
      list.push(event);
      sendsByKey.set(event.key, list);
    } else if (event.type === 'receive') {
      queueFigures.receives++;
      if (event.outcome !== 'ok') {
        queueFigures.receiveErrors++;
        const list = unansweredReceivesByQueue.get(event.queue) ?? [];
        list.push(event);
        unansweredReceivesByQueue.set(event.queue, list);
      }
      const inAnswer = new Set<string>();
      for (const message of event.messages) {
        // One MessageId twice in one answer (two log records of one message): a delete of one receipt leaves the other.
        if (inAnswer.has(message.messageId)) anomalies.push({ kind: 'twice-in-one-answer', queue: event.queue, messageId: message.messageId, detail: `one ReceiveMessage answer (via ${event.entry}, ${event.startMs}-${event.endMs}) holds ${message.messageId} twice, receipts differ` });
        inAnswer.add(message.messageId);
      }
      event.messages.forEach((message, position) => {
        queueFigures.deliveries++;
        const list = deliveriesById.get(message.messageId) ?? [];
        list.push({ receive: event, position, message });
        deliveriesById.set(message.messageId, list);
      });
    } else {
      queueFigures.deletes++;
      if (event.outcome !== 'ok') queueFigures.deleteErrors++;
      const list = deletesById.get(event.messageId) ?? [];
      list.push({ startMs: event.startMs, endMs: event.endMs, ok: event.outcome === 'ok', receipt: event.receipt });
      deletesById.set(event.messageId, list);
    }
  }
  for (const list of deliveriesById.values()) list.sort((a, b) => a.receive.startMs - b.receive.startMs || a.position - b.position);

  const report = (anomaly: Anomaly): void => {
    anomalies.push(anomaly);
  };

  // Bodies: every delivery is of a body some send made, unchanged; one key, one MessageId.
  const idsByKey = new Map<string, Set<string>>();
  for (const [messageId, deliveries] of deliveriesById) {
    for (const delivery of deliveries) {
      const key = keyOfBody(delivery.message.body);
      const sends = sendsByKey.get(key);
      if (sends === undefined) {
        report({ kind: 'unknown-body', queue: delivery.receive.queue, messageId, detail: `body key ${key} was never sent` });
        continue;
      }
      if (!sends.some((send) => send.body === delivery.message.body)) {
        report({ kind: 'corrupt-body', queue: delivery.receive.queue, messageId, detail: `body of ${key} differs from what was sent (${delivery.message.body.length} characters)` });
      }
      const ids = idsByKey.get(key) ?? new Set<string>();
      ids.add(messageId);
      idsByKey.set(key, ids);
    }
  }
  for (const [key, ids] of idsByKey) {
    if (ids.size < 2) continue;
    const sends = sendsByKey.get(key)!;
    const queue = sends[0]!.queue;
    if (fifoOf(queue)) {
      const starts = sends.map((send) => send.startMs);
      const spanMs = starts.reduce((a, b) => Math.max(a, b), -Infinity) - starts.reduce((a, b) => Math.min(a, b), Infinity);
      if (spanMs <= history.deduplicationWindowMs) {
        report({ kind: 'fifo-duplicate', queue, detail: `deduplication id of ${key} stored as ${ids.size} messages (${[...ids].join(', ')}) by ${sends.length} sends within ${Math.round(spanMs)} ms` });
      }
    } else {
      figuresOf(queue).standardDuplicates += ids.size - 1;
    }
  }

  // Per message: lost, delivered after an acknowledged delete, early redelivery.
  const acknowledgedSends = new Map<string, SendEvent>();
  for (const sends of sendsByKey.values()) {
    for (const send of sends) if (send.outcome === 'ok' && send.messageId !== undefined) acknowledgedSends.set(send.messageId, send);
  }
  for (const [messageId, send] of acknowledgedSends) {
    const deliveries = deliveriesById.get(messageId) ?? [];
    if (deliveries.length === 0) {
      figuresOf(send.queue).lost++;
      report({ kind: 'lost-acknowledged', queue: send.queue, messageId, detail: `${send.key} acknowledged at ${send.endMs} via ${send.entry}, never delivered` });
      continue;
    }
    if (history.drainComplete) {
      const last = deliveries[deliveries.length - 1]!;
      const deletes = deletesById.get(messageId) ?? [];
      if (!deletes.some((attempt) => attempt.startMs >= last.receive.startMs)) {
        figuresOf(send.queue).lost++;
        report({ kind: 'lost-acknowledged', queue: send.queue, messageId, detail: `${send.key} last delivered at ${last.receive.endMs} via ${last.receive.entry}, never deleted after, and not delivered again by the drain: it vanished` });
      }
    }
  }
  for (const [messageId, deliveries] of deliveriesById) {
    const queue = deliveries[0]!.receive.queue;
    const fifo = fifoOf(queue);
    const deletes = deletesById.get(messageId) ?? [];
    for (let index = 1; index < deliveries.length; index++) {
      const later = deliveries[index]!;
      const acknowledgedDelete = deletes.find((attempt) => attempt.ok && attempt.endMs < later.receive.startMs && deleteUsedCurrentReceipt(attempt, deliveries, unansweredReceivesByQueue.get(queue) ?? []));
      if (acknowledgedDelete !== undefined) {
        if (fifo) report({ kind: 'fifo-duplicate', queue, messageId, detail: `delivered at ${later.receive.endMs} via ${later.receive.entry} after a delete acknowledged at ${acknowledgedDelete.endMs} with the then current receipt ${acknowledgedDelete.receipt}; ${timelineOf(deliveries, deletes)}` });
        else figuresOf(queue).standardDuplicates++;
        continue;
      }
      let early = false;
      for (let earlierIndex = 0; earlierIndex < index; earlierIndex++) {
        const earlier = deliveries[earlierIndex]!;
        if (earlier.receive === later.receive) continue;
        // Either may have been served first: certain only when both orders break the deadline.
        const deadlineMs = earlier.receive.startMs + earlier.receive.visibilityTimeoutSeconds * 1000;
        const otherDeadlineMs = later.receive.startMs + later.receive.visibilityTimeoutSeconds * 1000;
        if (later.receive.endMs < deadlineMs && earlier.receive.endMs < otherDeadlineMs) {
          early = true;
          report({
            kind: 'early-redelivery', queue, messageId,
            detail: `delivered via ${earlier.receive.entry} (call ${earlier.receive.startMs}-${earlier.receive.endMs}, visibility ${earlier.receive.visibilityTimeoutSeconds} s) and again via ${later.receive.entry} answered at ${later.receive.endMs}, ${deadlineMs - later.receive.endMs} ms before the deadline`,
          });
          break;
        }
      }
      if (!early) figuresOf(queue).redeliveries++;
    }
  }

  const sendStartOf = (body: string): number => {
    const sends = sendsByKey.get(keyOfBody(body)) ?? [];
    return sends.reduce((earliest, send) => Math.min(earliest, send.startMs), Infinity);
  };

  // FIFO groups: order and in-flight exclusion.
  for (const queue of history.queues) {
    if (!queue.fifo) continue;
    const groups = new Map<string, Map<number, SendEvent>>(); // group -> index -> acknowledged send
    for (const send of acknowledgedSends.values()) {
      if (send.queue !== queue.name || send.group === undefined || send.index === undefined) continue;
      const group = groups.get(send.group) ?? new Map<number, SendEvent>();
      group.set(send.index, send);
      groups.set(send.group, group);
    }
    const groupDeliveries = new Map<string, Array<Delivery & { index: number }>>();
    for (const [, deliveries] of deliveriesById) {
      for (const delivery of deliveries) {
        if (delivery.receive.queue !== queue.name) continue;
        const parts = keyOfBody(delivery.message.body).split('/');
        const group = parts[1];
        const index = Number(parts[2]);
        if (group === undefined || !Number.isInteger(index)) continue;
        const list = groupDeliveries.get(group) ?? [];
        list.push({ ...delivery, index });
        groupDeliveries.set(group, list);
      }
    }
    for (const [group, deliveries] of groupDeliveries) {
      const acknowledged = groups.get(group) ?? new Map<number, SendEvent>();
      // First delivery of each index (earliest start).
      const firstOf = new Map<number, Delivery & { index: number }>();
      for (const delivery of deliveries) {
        const current = firstOf.get(delivery.index);
        if (current === undefined || delivery.receive.startMs < current.receive.startMs) firstOf.set(delivery.index, delivery);
      }
      // For index k: the acknowledged earlier index whose first delivery started last.
      const indices = [...acknowledged.keys()].sort((a, b) => a - b);
      const latestBefore = new Map<number, Delivery & { index: number }>();
      let latest: (Delivery & { index: number }) | undefined;
      for (const index of indices) {
        if (latest !== undefined) latestBefore.set(index, latest);
        const first = firstOf.get(index);
        if (first !== undefined && (latest === undefined || first.receive.startMs > latest.receive.startMs)) latest = first;
      }
      const latestBeforeIndex = (index: number): (Delivery & { index: number }) | undefined => {
        if (latestBefore.has(index)) return latestBefore.get(index);
        let found: (Delivery & { index: number }) | undefined;
        for (const earlierIndex of indices) {
          if (earlierIndex >= index) break;
          const first = firstOf.get(earlierIndex);
          if (first !== undefined && (found === undefined || first.receive.startMs > found.receive.startMs)) found = first;
        }
        return found;
      };
      let reordersReported = 0;
      for (const delivery of deliveries) {
        const first = latestBeforeIndex(delivery.index);
        if (first === undefined) continue;
        const after = first.receive === delivery.receive ? first.position > delivery.position : first.receive.startMs > delivery.receive.endMs;
        if (after && reordersReported < 5) {
          reordersReported++;
          report({ kind: 'fifo-reorder', queue: queue.name, messageId: delivery.message.messageId, detail: `group ${group}: index ${delivery.index} delivered (answered ${delivery.receive.endMs}) before acknowledged index ${first.index} (first delivered in a call started ${first.receive.startMs})` });
        }
      }
      // In flight: another message of the group delivered, no delete of it started, its visibility not passed.
      const sorted = [...deliveries].sort((a, b) => a.receive.startMs - b.receive.startMs);
      const visibilityMsMax = sorted.reduce((most, delivery) => Math.max(most, delivery.receive.visibilityTimeoutSeconds * 1000), 0);
      let inFlightReported = 0;
      for (let later = 0; later < sorted.length; later++) {
        const second = sorted[later]!;
        for (let earlier = later - 1; earlier >= 0; earlier--) {
          const first = sorted[earlier]!;
          if (first.receive.startMs + visibilityMsMax < second.receive.startMs) break;
          if (first.receive === second.receive || first.message.messageId === second.message.messageId) continue;
          // Certainly served first: answered before the second could have been served (a long
          // poll can start before its message was even sent).
          const secondEarliestMs = Math.max(second.receive.startMs, sendStartOf(second.message.body));
          if (first.receive.endMs >= secondEarliestMs) continue;
          if (second.receive.endMs >= first.receive.startMs + first.receive.visibilityTimeoutSeconds * 1000) continue;
          const deleteStarted = (deletesById.get(first.message.messageId) ?? []).some((attempt) => attempt.startMs >= first.receive.startMs && attempt.startMs < second.receive.endMs);
          if (deleteStarted || inFlightReported >= 5) continue;
          inFlightReported++;
          report({ kind: 'fifo-group-in-flight', queue: queue.name, messageId: second.message.messageId, detail: `group ${group}: index ${second.index} delivered (answered ${second.receive.endMs}) while index ${first.index} was in flight (delivered in a call started ${first.receive.startMs}, never deleted before)` });
        }
      }
    }
  }

  const lost = anomalies.filter((anomaly) => anomaly.kind === 'lost-acknowledged').length;
  return { queues: [...figures.values()], anomalies, operations, faults, drainComplete: history.drainComplete, ok: lost === 0 };
}

export function formatReport(report: CheckReport): string {
  const lines: string[] = [];
  lines.push(`operations ${report.operations}; drain ${report.drainComplete ? 'complete' : 'INCOMPLETE (vanished messages not checked)'}`);
  lines.push(`faults: ${Object.entries(report.faults).filter(([, count]) => count > 0).map(([kind, count]) => `${kind} ${count}`).join(', ') || 'none'}`);
  for (const queue of report.queues) {
    lines.push(
      `  ${queue.queue} (${queue.fifo ? 'FIFO' : 'standard'}, r=${queue.replicaCount}): sends ${queue.sends} (acknowledged ${queue.acknowledged}, errors ${queue.sendErrors}), ` +
        `receives ${queue.receives} (errors ${queue.receiveErrors}), deliveries ${queue.deliveries}, deletes ${queue.deletes} (errors ${queue.deleteErrors}), ` +
        `redeliveries ${queue.redeliveries}, standard duplicates ${queue.standardDuplicates}, lost ${queue.lost}`,
    );
  }
  const byKind = new Map<string, number>();
  for (const anomaly of report.anomalies) byKind.set(anomaly.kind, (byKind.get(anomaly.kind) ?? 0) + 1);
  lines.push(`anomalies: ${report.anomalies.length === 0 ? 'none' : [...byKind].map(([kind, count]) => `${kind} ${count}`).join(', ')}`);
  for (const anomaly of report.anomalies.slice(0, anomaliesListedMax)) lines.push(`  ${anomaly.kind} ${anomaly.queue} ${anomaly.messageId ?? ''}: ${anomaly.detail}`);
  if (report.anomalies.length > anomaliesListedMax) lines.push(`  ... ${report.anomalies.length - anomaliesListedMax} more`);
  lines.push(report.ok ? 'result: no acknowledged message lost' : 'result: FAILED (acknowledged messages lost)');
  return lines.join('\n');
}
