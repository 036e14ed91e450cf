// The console's view of the JSON API served by src/server/console-routes.ts. The wire
// shapes are restated here (the console imports no server code); keep them in step.

export interface QueueCounts {
  visible: number;
  inflight: number;
  delayed: number;
  oldestMessageAgeSeconds: number;
}

export interface Rates {
  sentPerSecond: number;
  receivedPerSecond: number;
  deletedPerSecond: number;
}

export interface Series {
  startMs: number;
  stepMs: number;
  sent: number[];
  received: number[];
  deleted: number[];
}

export interface ServerSeries extends Series {
  requests: number[];
  errors: number[];
  latencyP50Ms: Array<number | null>;
  latencyP99Ms: Array<number | null>;
}

export interface QueueSummary {
  name: string;
  fifo: boolean;
  /** Topics: set for a topic, and for a subscription with its topic's name. */
  kind?: 'topic' | 'subscription';
  topic?: string;
  counts: QueueCounts;
  rates: Rates;
  series: Series;
}

export interface MoveTask {
  taskHandle: string;
  status: string;
  sourceArn: string;
  destinationArn?: string;
  approximateNumberOfMessagesMoved: number;
  approximateNumberOfMessagesToMove: number;
  failureReason?: string;
  startedTimestampMs: number;
}

export interface QueueDetail {
  name: string;
  arn: string;
  fifo: boolean;
  kind?: 'topic' | 'subscription';
  topic?: string;
  attributes: Record<string, string>;
  tags: Record<string, string>;
  counts: QueueCounts;
  rates: Rates;
  series: Series;
  deadLetterQueue?: string;
  maxReceiveCount?: number;
  deadLetterSourceQueues: string[];
  moveTasks: MoveTask[];
}

export interface PeekedMessage {
  messageId: string;
  body: string;
  bodyTruncated: boolean;
  sentTimestampMs: number;
  receiveCount: number;
  groupId?: string;
  sequenceNumber?: string;
  attributes: Record<string, { dataType: string; value: string }>;
}

export interface ClusterStatus {
  mode: 'single-node' | 'cluster';
  selfId: string;
  nodes: Array<{ id: string; region: string; zone: string; health: 'healthy' | 'suspect' | 'down'; address?: string }>;
  partitions: Array<{ queue: string; partition: number; primary: string; backups: string[]; epoch: number; replicaLag: number }>;
}

export interface Session {
  authRequired: boolean;
  authenticated: boolean;
  accessKeyId?: string;
  region: string;
  accountId: string;
}

/** A failed call: the API's error code and message, or a network failure. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const credentialsKey = 'berth.console.credentials';

/** The access key pair lives in sessionStorage: gone when the tab closes. */
export function setCredentials(accessKeyId: string, secretAccessKey: string): void {
  sessionStorage.setItem(credentialsKey, btoa(unescape(encodeURIComponent(`${accessKeyId}:${secretAccessKey}`))));
}

export function clearCredentials(): void {
  sessionStorage.removeItem(credentialsKey);
}

type UnauthorizedListener = () => void;
let onUnauthorized: UnauthorizedListener = () => {};
export function setUnauthorizedListener(listener: UnauthorizedListener): void {
  onUnauthorized = listener;
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const credentials = sessionStorage.getItem(credentialsKey);
  if (credentials !== null) headers['authorization'] = `Basic ${credentials}`;
  if (method !== 'GET') headers['x-berth-console'] = '1';
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(`/console/api${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  } catch (error) {
    throw new ApiError(0, 'NetworkError', `the server did not answer (${String(error)})`);
  }
  const text = await response.text();
  let value: unknown;
  try {
    value = text === '' ? {} : JSON.parse(text);
  } catch {
    throw new ApiError(response.status, 'BadResponse', `the server answered ${response.status} with something that is not JSON`);
  }
  if (!response.ok) {
    const error = (value as { error?: { code?: string; message?: string } }).error;
    if (response.status === 401) onUnauthorized();
    throw new ApiError(response.status, error?.code ?? 'Error', error?.message ?? `HTTP ${response.status}`);
  }
  return value as T;
}

const queuePath = (name: string): string => `/queues/${encodeURIComponent(name)}`;

export const api = {
  session: () => call<Session>('GET', '/session'),
  queues: () => call<{ queues: QueueSummary[] }>('GET', '/queues'),
  createQueue: (name: string, attributes: Record<string, string>) => call<{ name: string; arn: string }>('POST', '/queues', { name, attributes }),
  queue: (name: string) => call<QueueDetail>('GET', queuePath(name)),
  deleteQueue: (name: string) => call<{ deleted: string }>('DELETE', queuePath(name)),
  setAttributes: (name: string, attributes: Record<string, string>) => call<QueueDetail>('PUT', `${queuePath(name)}/attributes`, { attributes }),
  purge: (name: string) => call<{ purged: string }>('POST', `${queuePath(name)}/purge`),
  send: (name: string, message: { body: string; groupId?: string; deduplicationId?: string; delaySeconds?: number }) =>
    call<{ messageId: string; sequenceNumber?: string }>('POST', `${queuePath(name)}/messages`, message),
  peek: (name: string, max: number) => call<{ messages: PeekedMessage[] }>('GET', `${queuePath(name)}/messages?max=${max}`),
  redrive: (name: string, destinationQueue?: string) =>
    call<{ taskHandle: string }>('POST', `${queuePath(name)}/redrive`, destinationQueue === undefined ? {} : { destinationQueue }),
  cancelRedrive: (taskHandle: string) => call<{ approximateNumberOfMessagesMoved: number }>('POST', '/redrive/cancel', { taskHandle }),
  cluster: () => call<ClusterStatus>('GET', '/cluster'),
  series: (seconds: number) => call<{ rates: Rates & { requestsPerSecond: number; errorsPerSecond: number }; series: ServerSeries }>('GET', `/series?seconds=${seconds}`),
};
