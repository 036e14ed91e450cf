// Wraps a QueueService to count messages for metrics and the console's live charts:
// sends, receives and deletes per queue, and end-to-end latency from send to delete
// (the receipt handles of a sample of received messages remember their send time,
// bounded: one message in `latencySampleEvery`, so the hot path keeps no map entry and
// observes no histogram for most messages, and the percentiles stay representative).

import type { BerthError } from '../protocol/errors.js';
import type { QueueService } from '../broker/service.js';
import type { BerthMetrics } from './metrics.js';

const rememberedReceiptsMax = 50_000;
const latencySampleEvery = 8;

export function instrumentService(service: QueueService, metrics: BerthMetrics, clock: { nowMs(): number }): QueueService {
  const sentTimeByReceipt = new Map<string, number>();
  let receivedCount = 0;
  const remember = (receiptHandle: string, sentTimestampMs: number): void => {
    sentTimeByReceipt.set(receiptHandle, sentTimestampMs);
    if (sentTimeByReceipt.size > rememberedReceiptsMax) {
      const oldest = sentTimeByReceipt.keys().next();
      if (oldest.done !== true) sentTimeByReceipt.delete(oldest.value);
    }
  };
  const wrapped: QueueService = Object.create(service) as QueueService;
  Object.defineProperties(wrapped, {
    region: { get: () => service.region },
    accountId: { get: () => service.accountId },
  });
  wrapped.send = async (name, messages) => {
    const results = await service.send(name, messages);
    const sent = results.filter((result) => !isError(result)).length;
    if (sent > 0) metrics.recordMessages(name, 'sent', sent);
    return results;
  };
  wrapped.receive = async (name, input) => {
    const messages = await service.receive(name, input);
    if (messages.length > 0) {
      metrics.recordMessages(name, 'received', messages.length);
      for (const message of messages) if (receivedCount++ % latencySampleEvery === 0) remember(message.receiptHandle, message.sentTimestampMs);
    }
    return messages;
  };
  wrapped.deleteMessages = async (name, receiptHandles) => {
    const results = await service.deleteMessages(name, receiptHandles);
    let deleted = 0;
    const nowMs = clock.nowMs();
    results.forEach((result, index) => {
      if (result !== null) return;
      deleted++;
      const handle = receiptHandles[index]!;
      const sentMs = sentTimeByReceipt.get(handle);
      if (sentMs !== undefined) {
        sentTimeByReceipt.delete(handle);
        metrics.recordEndToEndLatency(name, Math.max(0, nowMs - sentMs));
      }
    });
    if (deleted > 0) metrics.recordMessages(name, 'deleted', deleted);
    return results;
  };
  // Methods not overridden are found on the prototype (the real service) with `this`
  // bound to the wrapper, so bind them to the service.
  for (const key of ['createQueue', 'deleteQueue', 'describeQueue', 'listQueues', 'setQueueAttributes', 'setQueueTags', 'queueCounts', 'purgeQueue', 'changeVisibility', 'listDeadLetterSourceQueues', 'startMessageMoveTask', 'listMessageMoveTasks', 'cancelMessageMoveTask', 'peekMessages'] as const) {
    const method = service[key] as (...args: unknown[]) => unknown;
    (wrapped as unknown as Record<string, unknown>)[key] = method.bind(service);
  }
  return wrapped;
}

function isError(result: unknown): result is BerthError {
  return result instanceof Error;
}
