// The contract between the benchmark and one system under test.
//
// A driver is used from two places. The main thread calls start() once per system: it
// launches the server(s) on loopback in a temp directory and returns a RunningSystem that
// can create queues and stop everything it started. Worker threads (the load generator)
// get only the serialisable Endpoint and QueueSpec and call producer()/consumer() to
// open their own connections, so every driver module must be importable in a worker.
//
// New rows (Berth's native protocol, clusters for W5) add a module and a line in
// registry.ts; nothing else in the bench changes.

/** What a worker needs to reach a system: JSON-serialisable (it crosses postMessage). */
export interface Endpoint {
  host: string;
  port: number;
  /** Driver-specific extras (URLs, credentials, stream names). */
  extra?: Record<string, string | number | boolean>;
}

export interface QueueSpec {
  name: string;
  /** Ordered per message group (W4). Only asked of drivers whose `fifo` is set. */
  fifo: boolean;
  /** Driver-specific queue details filled by createQueue (e.g. the SQS QueueUrl). */
  extra?: Record<string, string | number | boolean>;
}

export interface OutgoingMessage {
  body: string;
  /** Message group (FIFO order key); absent for unordered workloads. */
  group?: string;
  /** Unique id of the message inside the run, usable as a deduplication id. */
  id: number;
}

export interface Delivery {
  body: string;
  /** Opaque handle the same consumer passes back to ack(). */
  handle: unknown;
}

export interface Producer {
  /** Resolves when every message of the batch is durably acknowledged by the system. */
  send(batch: OutgoingMessage[]): Promise<void>;
  close(): Promise<void>;
}

export interface Consumer {
  /** Up to `maxMessages`; waits at most about `waitMs` for the first one, may return []. */
  receive(maxMessages: number, waitMs: number): Promise<Delivery[]>;
  /** Deletes / acknowledges the deliveries (a delete in SQS terms). */
  ack(deliveries: Delivery[]): Promise<void>;
  close(): Promise<void>;
}

export interface StartContext {
  /** A fresh directory for this system's data; removed by the bench afterwards. */
  directory: string;
  log(line: string): void;
}

export interface RunningSystem {
  endpoint: Endpoint;
  /** Processes whose RSS and CPU are sampled as "the server". */
  serverPids(): number[];
  createQueue(name: string, fifo: boolean): Promise<QueueSpec>;
  /** Stops every process start() launched; idempotent. */
  stop(): Promise<void>;
}

/** How a driver takes part in W4 (order per message group). */
export type FifoSupport =
  | { kind: 'groups'; note: string }
  | { kind: 'single-queue-order'; note: string }
  | { kind: 'none'; note: string };

export interface Driver {
  /** Name used by --systems. */
  readonly id: string;
  readonly label: string;
  /** Exactly when the system fsyncs relative to acknowledging a producer. */
  readonly durabilityNote: string;
  /** True when every acknowledged send has been fsynced (counts for "best durable peer"). */
  readonly fsyncPerAck: boolean;
  /** Berth's own rows are compared against the peers. */
  readonly isBerth: boolean;
  readonly fifo: FifoSupport;
  /** Caps the message counts for client-bound rows. */
  readonly messagesMax?: number;
  /** Workloads this driver skips (with the reason shown in the table). */
  readonly skipWorkloads?: Partial<Record<WorkloadId, string>>;
  /** Set for the W5 cluster rows: they run only under W5 (W1 and W2 on the cluster). */
  readonly cluster?: ClusterShape;
  /** Binaries that must be on PATH (bench/setup.sh installs peers). */
  readonly binaries: string[];
  start(context: StartContext): Promise<RunningSystem>;
  producer(endpoint: Endpoint, queue: QueueSpec, index: number): Promise<Producer>;
  consumer(endpoint: Endpoint, queue: QueueSpec, index: number): Promise<Consumer>;
}

export interface ClusterShape {
  nodes: number;
  /** Copies of every message before its send is acknowledged (or a majority of them; see the durability note). */
  replicas: number;
  /** The single-node row of the same system, for "share of its single node" in the report. */
  singleNodeId?: string;
}

export type WorkloadId = 'W1' | 'W2' | 'W3' | 'W4';

/** What --workloads selects: W5 is W1 and W2 again on the cluster rows (at the cluster rate). */
export type BenchWorkloadId = WorkloadId | 'W5';
