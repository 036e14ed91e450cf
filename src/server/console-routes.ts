// The web console's HTTP surface, as one request -> response function the HTTP server
// mounts before the SQS handler (it returns undefined for paths it does not own):
//
//   GET  /metrics                                   Prometheus text (BerthMetrics' registry)
//   GET  /console, /console/*                       the single-page app from dist/console
//                                                   (SPA fallback to index.html; hashed
//                                                   assets under /console/assets/ cached for a year)
//   /console/api/*                                  the JSON API the app polls (see `routes` below)
//
// Auth: when `authorize` is given, /metrics and every /console/api/* route except
// /console/api/session need it to return true. The console sends the user's access key
// pair as HTTP Basic credentials (`Authorization: Basic base64(accessKeyId:secretAccessKey)`);
// parseConsoleCredentials reads them back for the server's authorize. Static files are
// public (they hold no data). Mutating API calls must carry `x-berth-console: 1`, which a
// cross-site form cannot send, so a browser that cached the Basic credentials cannot be
// used for cross-site request forgery.
//
// Errors of the JSON API are `{ error: { code, message } }`: BerthError codes with their
// catalogue HTTP status, `InvalidParameterValue` (400) for input that fails validation,
// `Unauthorized` (401), `NotFound` (404), `MethodNotAllowed` (405), `PayloadTooLarge` (413),
// `InternalError` (500).

import { readFile, stat } from 'node:fs/promises';
import { setOwn } from '../core/own-property.js';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { z } from 'zod';
import type { Logger } from 'pino';
import type { QueueService, QueueDescription, MoveTask } from '../broker/service.js';
import { topicRoleOf } from '../broker/topics.js';
import type { QueueCounts, ReceivedMessage, MessageAttributes } from '../queue/types.js';
import { BerthError, isBerthError } from '../protocol/errors.js';
import { checkFifoThroughput, validateQueueAttributes, withCreateDefaults } from '../api/sqs/queue-attributes.js';
import type { BerthMetrics, QueueRates, QueueSeries } from './metrics.js';

import type { HttpRequest, HttpResponse } from '../protocol/http.js';

export type { HttpRequest, HttpResponse } from '../protocol/http.js';

export type NodeHealth = 'healthy' | 'suspect' | 'down';

export interface ClusterNodeStatus {
  id: string;
  region: string;
  zone: string;
  health: NodeHealth;
  /** host:port others reach it at, when known. */
  address?: string;
}

export interface ClusterPartitionStatus {
  queue: string;
  partition: number;
  /** Node id of the primary; '' while the partition has none. */
  primary: string;
  backups: string[];
  epoch: number;
  /** Records the slowest backup is behind the primary (0 without backups). */
  replicaLag: number;
}

export interface ClusterStatus {
  mode: 'single-node' | 'cluster';
  /** The node that answered. */
  selfId: string;
  nodes: ClusterNodeStatus[];
  partitions: ClusterPartitionStatus[];
}

export interface ConsoleDependencies {
  service: QueueService;
  metrics: BerthMetrics;
  /** Default: singleNodeClusterStatus(service, { id: 'local', region: service.region, zone: '' }). */
  clusterStatus?: () => Promise<ClusterStatus>;
  /** Present when auth is on: true lets the request through. */
  authorize?: (request: HttpRequest) => boolean;
  /** Serve /metrics without authorize (e.g. a scraper on a private network). Default false. */
  metricsPublic?: boolean;
  /** The built SPA; default dist/console next to this module's build output. */
  staticDirectory?: string;
  logger?: Logger;
}

/** Limits of the JSON API. */
export const consoleLimits = {
  requestBodyBytesMax: 2 * 1024 * 1024,
  queuesListedMax: 1000,
  peekMessagesMax: 50,
  peekBodyCharactersMax: 16 * 1024,
  seriesSecondsMax: 300,
  queueListSeriesSeconds: 60,
} as const;

const defaultStaticDirectory = fileURLToPath(new URL('../../console/', import.meta.url));

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/** Reads the console's Basic credentials (access key pair) from a request, if any. */
export function parseConsoleCredentials(request: HttpRequest): { accessKeyId: string; secretAccessKey: string } | undefined {
  const header = headerValue(request, 'authorization');
  if (header === undefined) return undefined;
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (match === null || match[1] === undefined) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { accessKeyId: decoded.slice(0, colon), secretAccessKey: decoded.slice(colon + 1) };
}

/** The cluster view of one node: itself, healthy, and one partition per queue. */
export async function singleNodeClusterStatus(service: QueueService, node: { id: string; region: string; zone: string; address?: string }): Promise<ClusterStatus> {
  const queues = await service.listQueues();
  return {
    mode: 'single-node',
    selfId: node.id,
    nodes: [{ ...node, health: 'healthy' }],
    partitions: queues.slice(0, consoleLimits.queuesListedMax).map((queue) => ({ queue, partition: 0, primary: node.id, backups: [], epoch: 1, replicaLag: 0 })),
  };
}

// ---------------------------------------------------------------------------------------
// Input schemas

const queueNamePattern = /^[A-Za-z0-9_-]{1,75}(\.fifo)?$|^[A-Za-z0-9_-]{1,80}$/;
const queueName = z.string().regex(queueNamePattern, 'a queue name is 1-80 letters, digits, - or _ (a FIFO queue ends in .fifo)');
const attributeMap = z.record(z.string().regex(/^[A-Za-z]{1,64}$/, 'attribute names are letters'), z.string().max(262_144));
const tagMap = z.record(z.string().min(1).max(128), z.string().max(256));

/** Attributes the console may set after create (SQS's mutable set). */
const mutableAttributeNames = new Set([
  'DelaySeconds', 'MaximumMessageSize', 'MessageRetentionPeriod', 'Policy', 'ReceiveMessageWaitTimeSeconds', 'VisibilityTimeout',
  'RedrivePolicy', 'RedriveAllowPolicy', 'KmsMasterKeyId', 'KmsDataKeyReusePeriodSeconds', 'SqsManagedSseEnabled',
  'ContentBasedDeduplication', 'DeduplicationScope', 'FifoThroughputLimit',
]);

const createQueueInput = z.object({ name: queueName, attributes: attributeMap.optional(), tags: tagMap.optional() }).strict();
const setAttributesInput = z.object({ attributes: attributeMap.refine((value) => Object.keys(value).length > 0, 'give at least one attribute') }).strict();
const sendInput = z
  .object({
    body: z.string().min(1, 'the message body is empty').max(1_048_576),
    delaySeconds: z.number().int().min(0).max(900).optional(),
    groupId: z.string().min(1).max(128).optional(),
    deduplicationId: z.string().min(1).max(128).optional(),
    /** String message attributes, name -> value. */
    attributes: z.record(z.string().min(1).max(256), z.string().max(262_144)).optional(),
  })
  .strict();
const redriveInput = z
  .object({
    /** Absent: each message returns to the queue it was dead-lettered from. */
    destinationQueue: queueName.optional(),
    maxNumberOfMessagesPerSecond: z.number().int().min(1).max(500).optional(),
  })
  .strict();
const cancelRedriveInput = z.object({ taskHandle: z.string().min(1).max(4096) }).strict();

// ---------------------------------------------------------------------------------------
// Wire shapes of the JSON API (what the SPA reads)

export interface QueueSummary {
  name: string;
  fifo: boolean;
  /** Topics (docs/topics.md): set for a topic, and for a subscription with its topic's name. */
  kind?: 'topic' | 'subscription';
  topic?: string;
  counts: QueueCounts;
  rates: QueueRates;
  series: QueueSeries;
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
  rates: QueueRates;
  series: QueueSeries;
  /** Name of this queue's dead-letter queue, from its RedrivePolicy. */
  deadLetterQueue?: string;
  maxReceiveCount?: number;
  /** Queues that use this queue as their dead-letter queue. */
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

type Route = (context: RouteContext) => Promise<HttpResponse>;

interface RouteContext {
  request: HttpRequest;
  url: URL;
  parameters: string[];
}

export function createConsoleHandler(deps: ConsoleDependencies): (request: HttpRequest) => Promise<HttpResponse | undefined> {
  const { service, metrics } = deps;
  const staticDirectory = path.resolve(deps.staticDirectory ?? defaultStaticDirectory);
  const clusterStatus = deps.clusterStatus ?? (() => singleNodeClusterStatus(service, { id: 'local', region: service.region, zone: '' }));
  const arnOf = (name: string): string => `arn:aws:sqs:${service.region}:${service.accountId}:${name}`;
  const nameOfArn = (arn: string): string | undefined => {
    const parts = arn.split(':');
    return parts.length === 6 && parts[0] === 'arn' && parts[2] === 'sqs' ? parts[5] : undefined;
  };

  async function countsOf(name: string): Promise<QueueCounts> {
    const counts = await service.queueCounts(name);
    metrics.setQueueGauges(name, counts);
    return counts;
  }

  async function queueSummaries(prefix: string | undefined): Promise<QueueSummary[]> {
    const names = (await service.listQueues(prefix)).slice(0, consoleLimits.queuesListedMax);
    const summaries = await Promise.all(
      names.map(async (name): Promise<QueueSummary | undefined> => {
        try {
          const { attributes } = await service.describeQueue(name);
          return { name, fifo: name.endsWith('.fifo'), ...topicRoleOf(attributes), counts: await countsOf(name), rates: metrics.queueRates(name), series: metrics.queueSeries(name, consoleLimits.queueListSeriesSeconds) };
        } catch (error) {
          if (isBerthError(error) && error.code === 'QueueDoesNotExist') return undefined; // deleted meanwhile
          throw error;
        }
      }),
    );
    return summaries.filter((summary): summary is QueueSummary => summary !== undefined);
  }

  /** Brings the queue gauges up to date before a scrape (the service is the source of truth). */
  async function refreshQueueGauges(): Promise<void> {
    const names = (await service.listQueues()).slice(0, consoleLimits.queuesListedMax);
    await Promise.all(names.map((name) => countsOf(name).catch(() => undefined)));
    metrics.retainQueues(names);
  }

  async function queueDetail(name: string): Promise<QueueDetail> {
    const description: QueueDescription = await service.describeQueue(name);
    const counts = await countsOf(name);
    const arn = arnOf(name);
    const attributes: Record<string, string> = {
      ...description.attributes,
      QueueArn: arn,
      ApproximateNumberOfMessages: String(counts.visible),
      ApproximateNumberOfMessagesNotVisible: String(counts.inflight),
      ApproximateNumberOfMessagesDelayed: String(counts.delayed),
      CreatedTimestamp: String(Math.floor(description.createdTimestampMs / 1000)),
      LastModifiedTimestamp: String(Math.floor(description.lastModifiedTimestampMs / 1000)),
    };
    const detail: QueueDetail = {
      name,
      arn,
      fifo: description.attributes['FifoQueue'] === 'true' || name.endsWith('.fifo'),
      ...topicRoleOf(description.attributes),
      attributes,
      tags: description.tags,
      counts,
      rates: metrics.queueRates(name),
      series: metrics.queueSeries(name, consoleLimits.seriesSecondsMax),
      deadLetterSourceQueues: await service.listDeadLetterSourceQueues(name),
      moveTasks: [],
    };
    const redrivePolicy = description.attributes['RedrivePolicy'];
    if (redrivePolicy !== undefined && redrivePolicy !== '') {
      try {
        const parsed = JSON.parse(redrivePolicy) as { deadLetterTargetArn?: unknown; maxReceiveCount?: unknown };
        const target = typeof parsed.deadLetterTargetArn === 'string' ? nameOfArn(parsed.deadLetterTargetArn) : undefined;
        if (target !== undefined) detail.deadLetterQueue = target;
        const maxReceiveCount = Number(parsed.maxReceiveCount);
        if (Number.isFinite(maxReceiveCount)) detail.maxReceiveCount = maxReceiveCount;
      } catch {
        // A stored policy is validated at set time; an unreadable one just shows no link.
      }
    }
    if (detail.deadLetterSourceQueues.length > 0) {
      try {
        detail.moveTasks = await service.listMessageMoveTasks(arn, 10);
      } catch (error) {
        if (!isBerthError(error)) throw error;
      }
    }
    return detail;
  }

  const routes: Array<{ method: string; pattern: RegExp; mutates: boolean; handle: Route }> = [
    {
      method: 'GET',
      pattern: /^\/console\/api\/queues$/,
      mutates: false,
      handle: async ({ url }) => {
        const prefix = url.searchParams.get('prefix') ?? undefined;
        const queues = await queueSummaries(prefix === '' ? undefined : prefix);
        return json(200, { queues });
      },
    },
    {
      method: 'POST',
      pattern: /^\/console\/api\/queues$/,
      mutates: true,
      handle: async ({ request }) => {
        const input = parseBody(request, createQueueInput);
        const attributes = { ...(input.attributes ?? {}) };
        const fifo = input.name.endsWith('.fifo');
        if (fifo && attributes['FifoQueue'] === undefined) attributes['FifoQueue'] = 'true';
        // The same validation and defaults as the SQS API's CreateQueue.
        const validated = validateQueueAttributes(attributes, fifo, true, { region: service.region, accountId: service.accountId });
        const complete = withCreateDefaults(validated.attributes, fifo);
        checkFifoThroughput(complete);
        const description = await service.createQueue(input.name, complete, input.tags ?? {});
        return json(201, { name: description.name, arn: arnOf(description.name) });
      },
    },
    {
      method: 'GET',
      pattern: /^\/console\/api\/queues\/([^/]+)$/,
      mutates: false,
      handle: async ({ parameters }) => json(200, await queueDetail(queueParameter(parameters))),
    },
    {
      method: 'DELETE',
      pattern: /^\/console\/api\/queues\/([^/]+)$/,
      mutates: true,
      handle: async ({ parameters }) => {
        const name = queueParameter(parameters);
        await service.describeQueue(name); // SQS's delete succeeds on a missing queue; the console says so instead
        await service.deleteQueue(name);
        metrics.forgetQueue(name);
        return json(200, { deleted: name });
      },
    },
    {
      method: 'PUT',
      pattern: /^\/console\/api\/queues\/([^/]+)\/attributes$/,
      mutates: true,
      handle: async ({ request, parameters }) => {
        const name = queueParameter(parameters);
        const input = parseBody(request, setAttributesInput);
        for (const attribute of Object.keys(input.attributes)) {
          if (!mutableAttributeNames.has(attribute)) throw new BerthError('InvalidAttributeName', `${attribute} cannot be changed after the queue is created`);
        }
        const current = await service.describeQueue(name);
        const validated = validateQueueAttributes(input.attributes, current.attributes['FifoQueue'] === 'true', false, { region: service.region, accountId: service.accountId });
        checkFifoThroughput({ ...current.attributes, ...validated.attributes });
        await service.setQueueAttributes(name, validated.attributes);
        return json(200, await queueDetail(name));
      },
    },
    {
      method: 'POST',
      pattern: /^\/console\/api\/queues\/([^/]+)\/purge$/,
      mutates: true,
      handle: async ({ parameters }) => {
        const name = queueParameter(parameters);
        await service.purgeQueue(name);
        return json(200, { purged: name });
      },
    },
    {
      method: 'POST',
      pattern: /^\/console\/api\/queues\/([^/]+)\/messages$/,
      mutates: true,
      handle: async ({ request, parameters }) => {
        const name = queueParameter(parameters);
        const input = parseBody(request, sendInput);
        const attributes: MessageAttributes = {};
        for (const [attribute, value] of Object.entries(input.attributes ?? {})) attributes[attribute] = { dataType: 'String', stringValue: value };
        const fifo = name.endsWith('.fifo');
        if (fifo && input.groupId === undefined) throw new BerthError('MissingParameter', 'a FIFO queue needs a message group id');
        if (fifo && input.delaySeconds !== undefined && input.delaySeconds > 0) throw new BerthError('InvalidParameterValue', 'FIFO queues take no per-message delay');
        const [outcome] = await service.send(name, [
          {
            body: input.body,
            ...(input.delaySeconds !== undefined ? { delaySeconds: input.delaySeconds } : {}),
            attributes,
            systemAttributes: {},
            ...(input.groupId !== undefined ? { groupId: input.groupId } : {}),
            ...(input.deduplicationId !== undefined ? { deduplicationId: input.deduplicationId } : {}),
            senderId: parseConsoleCredentials(request)?.accessKeyId ?? service.accountId,
          },
        ]);
        if (outcome === undefined) throw new Error('send returned no outcome for one message');
        if (isBerthError(outcome)) throw outcome;
        // Counting the send is the service's business (the server wraps it with instrumentService).
        return json(201, outcome);
      },
    },
    {
      method: 'GET',
      pattern: /^\/console\/api\/queues\/([^/]+)\/messages$/,
      mutates: false,
      handle: async ({ url, parameters }) => {
        const name = queueParameter(parameters);
        const maxMessages = integerParameter(url, 'max', 10, 1, consoleLimits.peekMessagesMax);
        const messages = await service.peekMessages(name, maxMessages);
        return json(200, { messages: messages.map(peeked) });
      },
    },
    {
      method: 'POST',
      pattern: /^\/console\/api\/queues\/([^/]+)\/redrive$/,
      mutates: true,
      handle: async ({ request, parameters }) => {
        const name = queueParameter(parameters);
        const input = parseBody(request, redriveInput);
        await service.describeQueue(name);
        if (input.destinationQueue !== undefined) await service.describeQueue(input.destinationQueue);
        const taskHandle = await service.startMessageMoveTask(
          arnOf(name),
          input.destinationQueue === undefined ? undefined : arnOf(input.destinationQueue),
          input.maxNumberOfMessagesPerSecond,
        );
        return json(201, { taskHandle });
      },
    },
    {
      method: 'POST',
      pattern: /^\/console\/api\/redrive\/cancel$/,
      mutates: true,
      handle: async ({ request }) => {
        const input = parseBody(request, cancelRedriveInput);
        const moved = await service.cancelMessageMoveTask(input.taskHandle);
        return json(200, { approximateNumberOfMessagesMoved: moved });
      },
    },
    {
      method: 'GET',
      pattern: /^\/console\/api\/cluster$/,
      mutates: false,
      handle: async () => json(200, await clusterStatus()),
    },
    {
      method: 'GET',
      pattern: /^\/console\/api\/series$/,
      mutates: false,
      handle: async ({ url }) => {
        const seconds = integerParameter(url, 'seconds', consoleLimits.seriesSecondsMax, 10, consoleLimits.seriesSecondsMax);
        return json(200, { rates: metrics.serverRates(), series: metrics.serverSeries(seconds) });
      },
    },
  ];

  async function handleApi(request: HttpRequest, url: URL): Promise<HttpResponse> {
    const pathname = url.pathname;
    if (pathname === '/console/api/session') {
      if (request.method !== 'GET') return errorResponse(405, 'MethodNotAllowed', 'use GET');
      const credentials = parseConsoleCredentials(request);
      const authRequired = deps.authorize !== undefined;
      const authenticated = !authRequired || deps.authorize!(request);
      return json(200, { authRequired, authenticated, ...(authenticated && credentials !== undefined ? { accessKeyId: credentials.accessKeyId } : {}), region: service.region, accountId: service.accountId });
    }
    const candidates = routes.filter((route) => route.pattern.test(pathname));
    if (candidates.length === 0) return errorResponse(404, 'NotFound', `no console API at ${pathname}`);
    const route = candidates.find((candidate) => candidate.method === request.method);
    if (route === undefined) {
      return { ...errorResponse(405, 'MethodNotAllowed', `${request.method} is not allowed on ${pathname}`), headers: { ...jsonHeaders, allow: candidates.map((candidate) => candidate.method).join(', ') } };
    }
    if (deps.authorize !== undefined && !deps.authorize(request)) return errorResponse(401, 'Unauthorized', 'sign in with an access key pair');
    if (route.mutates && headerValue(request, 'x-berth-console') !== '1') {
      return errorResponse(403, 'AccessDenied', 'console API writes need the header x-berth-console: 1');
    }
    if (request.body.length > consoleLimits.requestBodyBytesMax) return errorResponse(413, 'PayloadTooLarge', `request bodies are limited to ${consoleLimits.requestBodyBytesMax} bytes`);
    const match = route.pattern.exec(pathname);
    const parameters = (match?.slice(1) ?? []).map((value) => value ?? '');
    try {
      return await route.handle({ request, url, parameters });
    } catch (error) {
      return apiError(error, deps.logger);
    }
  }

  async function handleMetrics(request: HttpRequest): Promise<HttpResponse> {
    if (request.method !== 'GET' && request.method !== 'HEAD') return errorResponse(405, 'MethodNotAllowed', 'use GET');
    if (deps.authorize !== undefined && !deps.metricsPublic && !deps.authorize(request)) {
      return { status: 401, headers: { 'content-type': 'text/plain; charset=utf-8', 'www-authenticate': 'Basic realm="berth metrics"' }, body: Buffer.from('sign in with an access key pair\n') };
    }
    try {
      await refreshQueueGauges();
    } catch (error) {
      deps.logger?.warn({ err: error }, 'metrics: could not refresh queue gauges');
    }
    const { contentType, body } = await metrics.exposition();
    return { status: 200, headers: { 'content-type': contentType, 'cache-control': 'no-store' }, body: request.method === 'HEAD' ? Buffer.alloc(0) : Buffer.from(body) };
  }

  async function handleStatic(request: HttpRequest, url: URL): Promise<HttpResponse> {
    if (request.method !== 'GET' && request.method !== 'HEAD') return errorResponse(405, 'MethodNotAllowed', 'use GET');
    if (url.pathname === '/console') return { status: 308, headers: { location: '/console/' + url.search }, body: Buffer.alloc(0) };
    let relative: string;
    try {
      relative = decodeURIComponent(url.pathname.slice('/console/'.length));
    } catch {
      return errorResponse(400, 'InvalidParameterValue', 'malformed path');
    }
    const file = path.resolve(staticDirectory, relative);
    const inside = file.startsWith(staticDirectory + path.sep);
    const extension = path.extname(file);
    if (inside && relative !== '' && (await isFile(file))) return fileResponse(request, file, relative.startsWith('assets/'));
    // Unknown files with an extension are real misses; anything else is an app route.
    if (relative.startsWith('assets/') || (extension !== '' && extension !== '.html')) return errorResponse(404, 'NotFound', `no file ${url.pathname}`);
    const index = path.join(staticDirectory, 'index.html');
    if (!(await isFile(index))) {
      return { status: 503, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: Buffer.from('The console is not built: run `npm run build` in the Berth folder.\n') };
    }
    return fileResponse(request, index, false);
  }

  return async (request: HttpRequest): Promise<HttpResponse | undefined> => {
    const pathname = request.url.split('?', 1)[0] ?? '';
    if (pathname !== '/metrics' && pathname !== '/console' && !pathname.startsWith('/console/')) return undefined;
    let url: URL;
    try {
      url = new URL(request.url, 'http://console.invalid');
    } catch {
      return errorResponse(400, 'InvalidParameterValue', 'malformed URL');
    }
    try {
      if (url.pathname === '/metrics') return await handleMetrics(request);
      if (url.pathname.startsWith('/console/api/')) return await handleApi(request, url);
      return await handleStatic(request, url);
    } catch (error) {
      return apiError(error, deps.logger);
    }
  };
}

// ---------------------------------------------------------------------------------------
// Helpers

const jsonHeaders = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };

function json(status: number, value: unknown): HttpResponse {
  return { status, headers: { ...jsonHeaders }, body: Buffer.from(JSON.stringify(value)) };
}

function errorResponse(status: number, code: string, message: string): HttpResponse {
  return json(status, { error: { code, message } });
}

function apiError(error: unknown, logger: Logger | undefined): HttpResponse {
  if (isBerthError(error)) return errorResponse(error.spec.httpStatus, error.code, error.message);
  if (error instanceof InputError) return errorResponse(400, 'InvalidParameterValue', error.message);
  logger?.error({ err: error }, 'console API request failed');
  return errorResponse(500, 'InternalError', 'the request failed inside the server; see its log');
}

/** Input that fails validation: 400 with the first problem named. */
class InputError extends Error {}

function parseBody<T>(request: HttpRequest, schema: z.ZodType<T>): T {
  let value: unknown;
  try {
    value = JSON.parse(request.body.length === 0 ? '{}' : request.body.toString('utf8'));
  } catch {
    throw new InputError('the request body is not JSON');
  }
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? '' : `${issue.path.join('.')}: `;
    throw new InputError(`${where}${issue?.message ?? 'invalid input'}`);
  }
  return result.data;
}

function queueParameter(parameters: string[]): string {
  let name: string;
  try {
    name = decodeURIComponent(parameters[0] ?? '');
  } catch {
    throw new InputError('malformed queue name');
  }
  const result = queueName.safeParse(name);
  if (!result.success) throw new InputError(result.error.issues[0]?.message ?? 'invalid queue name');
  return result.data;
}

function integerParameter(url: URL, name: string, fallback: number, minimum: number, maximum: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < minimum || value > maximum) throw new InputError(`${name} must be an integer from ${minimum} to ${maximum}`);
  return value;
}

function headerValue(request: HttpRequest, name: string): string | undefined {
  const value = request.headers[name] ?? request.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

function peeked(message: ReceivedMessage): PeekedMessage {
  const bodyTruncated = message.body.length > consoleLimits.peekBodyCharactersMax;
  const attributes: PeekedMessage['attributes'] = {};
  for (const [name, attribute] of Object.entries(message.attributes)) {
    const value = attribute.stringValue ?? (attribute.binaryValue === undefined ? '' : Buffer.from(attribute.binaryValue).toString('base64'));
    setOwn(attributes, name, { dataType: attribute.dataType, value });
  }
  return {
    messageId: message.messageId,
    body: bodyTruncated ? message.body.slice(0, consoleLimits.peekBodyCharactersMax) : message.body,
    bodyTruncated,
    sentTimestampMs: message.sentTimestampMs,
    receiveCount: message.receiveCount,
    ...(message.groupId !== undefined ? { groupId: message.groupId } : {}),
    ...(message.sequenceNumber !== undefined ? { sequenceNumber: message.sequenceNumber } : {}),
    attributes,
  };
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

async function fileResponse(request: HttpRequest, file: string, hashed: boolean): Promise<HttpResponse> {
  const body = await readFile(file);
  const headers: Record<string, string> = {
    'content-type': contentTypes[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
    // Vite names assets by content hash, so they never change; index.html must be revalidated.
    'cache-control': hashed ? 'public, max-age=31536000, immutable' : 'no-cache',
    'x-content-type-options': 'nosniff',
  };
  if (path.extname(file) === '.html') {
    headers['content-security-policy'] = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'";
  }
  return { status: 200, headers, body: request.method === 'HEAD' ? Buffer.alloc(0) : body };
}
