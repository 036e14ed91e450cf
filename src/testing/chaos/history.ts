// The history of one chaos run: every client call the load made against the cluster, with
// its wall-clock start and end (Date.now() of the driver; the servers run on the same
// machine) and its outcome, plus the faults injected. The checker reads only this.
//
// Message bodies carry a key that names the send attempt that made them:
//   standard: `<queue>/<producer>/<attempt>`   (every attempt a new key)
//   FIFO:     `<queue>/<group>/<index>`        (a retried send keeps key and deduplication id)
// followed by a space and filler, so a delivery can be tied to its send even when the
// send's answer was lost.

export interface QueueSpec {
  name: string;
  fifo: boolean;
  replicaCount: number;
}

export type Outcome = 'ok' | 'error';

export interface SendEvent {
  type: 'send';
  queue: string;
  key: string;
  body: string;
  group?: string;
  /** FIFO: position in its group (sends of a group are strictly sequential). */
  index?: number;
  deduplicationId?: string;
  entry: string;
  startMs: number;
  endMs: number;
  outcome: Outcome;
  messageId?: string;
  sequenceNumber?: string;
  error?: string;
}

export interface DeliveredMessage {
  messageId: string;
  body: string;
  receipt: string;
  receiveCount?: number;
}

export interface ReceiveEvent {
  type: 'receive';
  queue: string;
  entry: string;
  startMs: number;
  endMs: number;
  visibilityTimeoutSeconds: number;
  outcome: Outcome;
  error?: string;
  messages: DeliveredMessage[];
}

export interface DeleteEvent {
  type: 'delete';
  queue: string;
  entry: string;
  messageId: string;
  receipt: string;
  startMs: number;
  endMs: number;
  outcome: Outcome;
  error?: string;
}

export type FaultKind = 'kill-primary' | 'kill-backup' | 'pause-primary' | 'stall-disk-primary' | 'restart-all' | 'partition-node' | 'isolate-node' | 'partition-pair';

export interface FaultEvent {
  type: 'fault';
  kind: FaultKind;
  targets: string[];
  detail: string;
  startMs: number;
  endMs: number;
}

export type HistoryEvent = SendEvent | ReceiveEvent | DeleteEvent | FaultEvent;

export interface History {
  queues: QueueSpec[];
  events: HistoryEvent[];
  /** True when the final drain saw every queue empty after every visibility timeout passed. */
  drainComplete: boolean;
  /** FIFO deduplication window. */
  deduplicationWindowMs: number;
}

export function keyOfBody(body: string): string {
  const space = body.indexOf(' ');
  return space < 0 ? body : body.slice(0, space);
}
