// What the main thread and the load-generator worker threads share: the layout of the
// shared counters, the messages they exchange, the producer plan and the W4 group layout.

import type { Endpoint, QueueSpec } from './drivers/types.js';

export const Counter = {
  sent: 0,
  received: 1,
  distinct: 2,
  duplicates: 3,
  orderViolations: 4,
  stop: 5,
  sendErrors: 6,
  ackErrors: 7,
  decodeErrors: 8,
} as const;
export const counterCount = 9;

export interface ProducerPlan {
  firstId: number;
  count: number;
  batchSize: number;
  /** Concurrent batches awaiting their acknowledgement. */
  inFlightMax: number;
  /** Absent: as fast as the system takes them. Present: open-loop schedule at this rate. */
  ratePerSecond?: number;
  /** W4: the producer's messages cycle over its own groups (see groupOf). */
  groups?: { total: number; producers: number };
}

/** What a worker keeps for its whole life: who it is and which clients it opens. */
export interface WorkerSetup {
  role: 'producer' | 'consumer';
  index: number;
  driverId: string;
  endpoint: Endpoint;
  queue: QueueSpec;
  receiveWaitMs: number;
  /** Consumers: concurrent receive loops in this thread, each with its own client. */
  consumerLanes: number;
}

/**
 * One pass over the queue. A W2 run makes two with the same workers and clients (the
 * unmeasured warm-up, then the measured one), so the measured pass starts with warm clients.
 */
export interface PassInput {
  totalMessages: number;
  producer?: ProducerPlan;
  counters: SharedArrayBuffer;
  receivedCounts: SharedArrayBuffer;
  groupLast?: SharedArrayBuffer;
}

export type WorkerInput = WorkerSetup & PassInput;

export interface WorkerResult {
  role: 'producer' | 'consumer';
  index: number;
  /** Consumers: latency from the (intended) send time to receipt, µs, compressed HDR. */
  histogram?: string;
  /** Consumers: when the last ack covering a first delivery completed, µs since epoch. */
  lastAckUs?: number;
  firstError?: string;
}

export type WorkerMessage =
  | { kind: 'ready' }
  | { kind: 'done'; result: WorkerResult }
  | { kind: 'failed'; error: string };

/** 'go' starts a pass (the worker answers 'done'); 'close' closes its clients and ends it. */
export type MainMessage = { kind: 'go'; startUs: number; pass: PassInput } | { kind: 'close' };

/** Message group and sequence of the producer's local message k (W4 layout). */
export function groupOf(producerIndex: number, localIndex: number, groups: { total: number; producers: number }): { group: number; sequence: number } {
  const groupsPerProducer = Math.floor(groups.total / groups.producers);
  return {
    group: producerIndex + groups.producers * (localIndex % groupsPerProducer),
    sequence: Math.floor(localIndex / groupsPerProducer),
  };
}

