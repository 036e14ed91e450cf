// A tiny in-memory QueueService (src/broker/service.ts) for developing the console
// without the broker: no durability, no FIFO ordering guarantees, good enough to click
// through every page. Not used by the server.
// @ts-check

let counter = 0;
const nextId = () => `${Date.now().toString(16)}-${(counter++).toString(16).padStart(6, '0')}`;

class ServiceError extends Error {
  /** @param {string} code @param {string} message */
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

export class MemoryQueueService {
  region = 'us-east-1';
  accountId = '000000000000';
  /** @type {Map<string, {description: any, messages: any[], lastPurgeMs: number}>} */
  queues = new Map();
  /** @type {(code: string, message: string) => Error} */
  makeError;

  /** @param {{ makeError?: (code: string, message: string) => Error }} [options] */
  constructor(options = {}) {
    this.makeError = options.makeError ?? ((code, message) => new ServiceError(code, message));
  }

  /** @param {string} name */
  queue(name) {
    const queue = this.queues.get(name);
    if (queue === undefined) throw this.makeError('QueueDoesNotExist', `queue ${name} does not exist`);
    return queue;
  }

  async createQueue(name, attributes, tags) {
    const existing = this.queues.get(name);
    if (existing !== undefined) return existing.description;
    const now = Date.now();
    const description = {
      name,
      attributes: { VisibilityTimeout: '30', DelaySeconds: '0', MessageRetentionPeriod: '345600', MaximumMessageSize: '262144', ReceiveMessageWaitTimeSeconds: '0', ...attributes },
      tags: { ...tags },
      createdTimestampMs: now,
      lastModifiedTimestampMs: now,
    };
    this.queues.set(name, { description, messages: [], lastPurgeMs: 0 });
    return description;
  }
  async deleteQueue(name) {
    this.queues.delete(name);
  }
  async describeQueue(name) {
    return this.queue(name).description;
  }
  async listQueues(prefix) {
    return [...this.queues.keys()].filter((name) => prefix === undefined || name.startsWith(prefix)).sort();
  }
  async setQueueAttributes(name, attributes) {
    const queue = this.queue(name);
    for (const [key, value] of Object.entries(attributes)) {
      if (key !== 'RedrivePolicy' && key !== 'Policy' && value !== '' && !/^\d+$/.test(value)) throw this.makeError('InvalidAttributeValue', `${key} must be a whole number`);
    }
    Object.assign(queue.description.attributes, attributes);
    queue.description.lastModifiedTimestampMs = Date.now();
  }
  async setQueueTags(name, tags) {
    Object.assign(this.queue(name).description.tags, tags);
  }
  /** @param {string} name */
  async queueCounts(name) {
    const queue = this.queue(name);
    const now = Date.now();
    let visible = 0, inflight = 0, delayed = 0, oldest = now;
    for (const message of queue.messages) {
      if (message.visibleAtMs > now && message.receiveCount > 0) inflight += 1;
      else if (message.visibleAtMs > now) delayed += 1;
      else visible += 1;
      oldest = Math.min(oldest, message.sentTimestampMs);
    }
    return { visible, inflight, delayed, oldestMessageAgeSeconds: queue.messages.length === 0 ? 0 : Math.floor((now - oldest) / 1000) };
  }
  async purgeQueue(name) {
    const queue = this.queue(name);
    if (Date.now() - queue.lastPurgeMs < 60_000) throw this.makeError('PurgeQueueInProgress', 'a queue can be purged once every 60 seconds');
    queue.lastPurgeMs = Date.now();
    queue.messages = [];
  }
  async send(name, messages) {
    const queue = this.queue(name);
    const now = Date.now();
    return messages.map((input) => {
      const delaySeconds = input.delaySeconds ?? Number(queue.description.attributes.DelaySeconds ?? 0);
      const message = { ...input, messageId: nextId(), sentTimestampMs: now, visibleAtMs: now + delaySeconds * 1000, receiveCount: 0, firstReceiveTimestampMs: 0, receiptHandle: '' };
      queue.messages.push(message);
      return { messageId: message.messageId };
    });
  }
  async receive(name, input) {
    const queue = this.queue(name);
    const now = Date.now();
    const visibilitySeconds = input.visibilityTimeoutSeconds ?? Number(queue.description.attributes.VisibilityTimeout ?? 30);
    const picked = queue.messages.filter((message) => message.visibleAtMs <= now).slice(0, input.maxMessages);
    for (const message of picked) {
      message.receiveCount += 1;
      message.firstReceiveTimestampMs ||= now;
      message.visibleAtMs = now + visibilitySeconds * 1000;
      message.receiptHandle = `${message.messageId}:${nextId()}`;
    }
    return picked.map((message) => this.view(message));
  }
  async deleteMessages(name, receiptHandles) {
    const queue = this.queue(name);
    return receiptHandles.map((handle) => {
      queue.messages = queue.messages.filter((message) => message.receiptHandle !== handle);
      return null;
    });
  }
  async changeVisibility(name, changes) {
    return changes.map(() => null);
  }
  async listDeadLetterSourceQueues(name) {
    const arn = `arn:aws:sqs:${this.region}:${this.accountId}:${name}`;
    const targets = (queue) => {
      try {
        return JSON.parse(queue.description.attributes.RedrivePolicy ?? '{}').deadLetterTargetArn === arn;
      } catch {
        return false;
      }
    };
    return [...this.queues.values()].filter(targets).map((queue) => queue.description.name).sort();
  }
  async startMessageMoveTask() {
    return nextId();
  }
  async listMessageMoveTasks() {
    return [];
  }
  async cancelMessageMoveTask() {
    return 0;
  }
  async peekMessages(name, maxMessages) {
    return this.queue(name).messages.slice(0, maxMessages).map((message) => this.view(message));
  }
  view(message) {
    return {
      messageId: message.messageId,
      receiptHandle: message.receiptHandle,
      body: message.body,
      attributes: message.attributes,
      systemAttributes: message.systemAttributes,
      senderId: message.senderId,
      sentTimestampMs: message.sentTimestampMs,
      receiveCount: message.receiveCount,
      firstReceiveTimestampMs: message.firstReceiveTimestampMs,
      ...(message.groupId !== undefined ? { groupId: message.groupId } : {}),
    };
  }
}
