// Test support for the SQS handler tests (not used by production code): a strict little
// XML parser (well-formedness, entities, allowed characters), the Query-protocol
// flattening of JSON-shaped input, and a reader that turns an XML response back into the
// JSON shape, so one scenario runs against both protocols.

import { ManualClock } from '../../core/clock.js';
import { errorCatalogue, type ErrorCode } from '../../protocol/errors.js';
import { FakeQueueService } from '../../testing/fake-queue-service.js';
import { createSqsHandler, type HttpResponse, type SqsApiOptions, type SqsHandler } from './handler.js';

export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const xmlCharacter = /^[\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]*$/u;

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9A-Fa-f]+|#\d+|amp|lt|gt|quot|apos|[^;]*);?/g, (match, entity: string) => {
    if (!match.endsWith(';')) throw new Error(`bare & in XML: ${match}`);
    if (entity === 'amp') return '&';
    if (entity === 'lt') return '<';
    if (entity === 'gt') return '>';
    if (entity === 'quot') return '"';
    if (entity === 'apos') return "'";
    if (entity.startsWith('#x')) return String.fromCodePoint(parseInt(entity.slice(2), 16));
    if (entity.startsWith('#')) return String.fromCodePoint(parseInt(entity.slice(1), 10));
    throw new Error(`unknown entity &${entity};`);
  });
}

/** Parses a document strictly; throws on anything not well-formed. */
export function parseXml(document: string): XmlElement {
  if (!xmlCharacter.test(document)) throw new Error('XML contains a character XML 1.0 does not allow');
  let position = 0;
  if (document.startsWith('<?xml')) {
    position = document.indexOf('?>') + 2;
    if (position < 2) throw new Error('unterminated XML declaration');
  }
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  while (position < document.length) {
    const open = document.indexOf('<', position);
    const text = document.slice(position, open === -1 ? document.length : open);
    if (text.includes('>')) throw new Error('bare > outside markup is legal but our serializer never emits it');
    if (stack.length === 0) {
      if (text.trim().length > 0) throw new Error('text outside the root element');
    } else {
      stack[stack.length - 1]!.text += decodeEntities(text);
    }
    if (open === -1) break;
    const close = document.indexOf('>', open);
    if (close === -1) throw new Error('unterminated tag');
    const tag = document.slice(open + 1, close);
    position = close + 1;
    if (tag.startsWith('/')) {
      const element = stack.pop();
      if (element === undefined || element.name !== tag.slice(1)) throw new Error(`mismatched closing tag </${tag.slice(1)}>`);
      continue;
    }
    const selfClosing = tag.endsWith('/');
    const body = selfClosing ? tag.slice(0, -1) : tag;
    const match = /^([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_][\w.:-]*="[^"<]*")*)\s*$/.exec(body);
    if (match === null) throw new Error(`malformed tag <${tag}>`);
    const element: XmlElement = { name: match[1]!, attributes: {}, children: [], text: '' };
    for (const attribute of match[2]!.matchAll(/([A-Za-z_][\w.:-]*)="([^"<]*)"/g)) element.attributes[attribute[1]!] = decodeEntities(attribute[2]!);
    if (stack.length === 0) {
      if (root !== undefined) throw new Error('two root elements');
      root = element;
    } else {
      stack[stack.length - 1]!.children.push(element);
    }
    if (!selfClosing) stack.push(element);
  }
  if (stack.length > 0 || root === undefined) throw new Error('unclosed elements or empty document');
  return root;
}

export function child(element: XmlElement, name: string): XmlElement | undefined {
  return element.children.find((candidate) => candidate.name === name);
}

const queryListNames: Record<string, string> = {
  AttributeNames: 'AttributeName',
  MessageAttributeNames: 'MessageAttributeName',
  MessageSystemAttributeNames: 'MessageSystemAttributeName',
  TagKeys: 'TagKey',
  AWSAccountIds: 'AWSAccountId',
  Actions: 'ActionName',
};

/** Flattens JSON-shaped input into Query parameters the way AWS SDKs do. */
export function toQueryParameters(action: string, input: Record<string, unknown>, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined) continue;
    if (key === 'Attributes' || key === 'tags' || key === 'Tags') {
      const [entryName, keyName] = key === 'Attributes' ? ['Attribute', 'Name'] : ['Tag', 'Key'];
      Object.entries(value as Record<string, string>).forEach(([name, item], index) => {
        out[`${prefix}${entryName}.${index + 1}.${keyName}`] = name;
        out[`${prefix}${entryName}.${index + 1}.Value`] = item;
      });
    } else if (key === 'MessageAttributes' || key === 'MessageSystemAttributes') {
      const entryName = key === 'MessageAttributes' ? 'MessageAttribute' : 'MessageSystemAttribute';
      Object.entries(value as Record<string, Record<string, unknown>>).forEach(([name, item], index) => {
        out[`${prefix}${entryName}.${index + 1}.Name`] = name;
        for (const [field, fieldValue] of Object.entries(item)) {
          if (fieldValue !== undefined) out[`${prefix}${entryName}.${index + 1}.Value.${field}`] = String(fieldValue);
        }
      });
    } else if (key === 'Entries') {
      (value as Record<string, unknown>[]).forEach((entry, index) => {
        toQueryParameters(action, entry, `${prefix}${action}RequestEntry.${index + 1}.`, out);
      });
    } else if (Array.isArray(value)) {
      const listName = queryListNames[key] ?? key;
      value.forEach((item, index) => {
        out[`${prefix}${listName}.${index + 1}`] = String(item);
      });
    } else {
      out[prefix + key] = String(value);
    }
  }
  return out;
}

function elementToShape(element: XmlElement, queueUrlList = false): unknown {
  if (element.children.length === 0) return element.text;
  const shape: Record<string, unknown> = {};
  for (const item of element.children) {
    const name = item.name;
    if (name === 'Attribute' || name === 'Tag' || name === 'MessageAttribute') {
      const mapName = name === 'Attribute' ? 'Attributes' : name === 'Tag' ? 'Tags' : 'MessageAttributes';
      const map = (shape[mapName] ??= {}) as Record<string, unknown>;
      const key = child(item, name === 'Tag' ? 'Key' : 'Name')?.text ?? '';
      const value = child(item, 'Value');
      map[key] = value === undefined ? '' : elementToShape(value);
    } else if ((name === 'QueueUrl' && queueUrlList) || name === 'Message' || name.endsWith('ResultEntry') || name === 'BatchResultErrorEntry') {
      const listName = name === 'QueueUrl' ? 'QueueUrls' : name === 'Message' ? 'Messages' : name === 'BatchResultErrorEntry' ? 'Failed' : name === 'ListMessageMoveTasksResultEntry' ? 'Results' : 'Successful';
      ((shape[listName] ??= []) as unknown[]).push(elementToShape(item));
    } else {
      shape[name] = elementToShape(item);
    }
  }
  return shape;
}

export type Protocol = 'json' | 'query';

export interface CallResult {
  status: number;
  /** JSON-shaped output (from JSON, or read back from XML: every scalar a string). */
  output: Record<string, any>;
  /** Catalogue-level view of an error response. */
  error?: { queryCode: string; jsonType?: string; message: string; fault: string };
  response: HttpResponse;
}

export function readResponse(protocol: Protocol, action: string, response: HttpResponse): CallResult {
  const text = typeof response.body === 'string' ? response.body : response.body.toString('utf8');
  if (protocol === 'json') {
    const parsed = JSON.parse(text) as Record<string, any>;
    if (response.status === 200) return { status: 200, output: parsed, response };
    const queryError = response.headers['x-amzn-query-error'] ?? '';
    const [queryCode = '', fault = ''] = queryError.split(';');
    return { status: response.status, output: {}, error: { queryCode, fault, jsonType: String(parsed['__type']).split('#')[1], message: String(parsed['message']) }, response };
  }
  const root = parseXml(text);
  if (response.status === 200) {
    if (root.name !== `${action}Response`) throw new Error(`unexpected root ${root.name}`);
    if (child(child(root, 'ResponseMetadata') ?? root, 'RequestId') === undefined) throw new Error('no RequestId');
    const result = child(root, `${action}Result`);
    const output = result === undefined ? {} : (elementToShape(result, action === 'ListQueues' || action === 'ListDeadLetterSourceQueues') as Record<string, any>);
    if (typeof output !== 'object') return { status: 200, output: {}, response };
    if (action === 'ListDeadLetterSourceQueues' && output['QueueUrls'] !== undefined) {
      output['queueUrls'] = output['QueueUrls'];
      delete output['QueueUrls'];
    }
    return { status: 200, output, response };
  }
  if (root.name !== 'ErrorResponse') throw new Error(`unexpected error root ${root.name}`);
  const error = child(root, 'Error')!;
  return {
    status: response.status,
    output: {},
    error: { queryCode: child(error, 'Code')!.text, fault: child(error, 'Type')!.text, message: child(error, 'Message')?.text ?? '' },
    response,
  };
}

export interface Harness {
  service: FakeQueueService;
  clock: ManualClock;
  handler: SqsHandler;
  host: string;
  call(protocol: Protocol, action: string, input?: Record<string, unknown>, headers?: Record<string, string>): Promise<CallResult>;
}

export function createHarness(options: Partial<SqsApiOptions> = {}): Harness {
  const clock = new ManualClock();
  const service = new FakeQueueService(clock);
  const handler = createSqsHandler(service, { accountId: '000000000000', region: 'us-east-1', auth: { mode: 'open' }, clock, ...options });
  const host = 'sqs.test:9324';
  return {
    service,
    clock,
    handler,
    host,
    async call(protocol, action, input = {}, headers = {}) {
      let response: HttpResponse;
      if (protocol === 'json') {
        response = await handler({
          method: 'POST',
          url: '/',
          headers: { host, 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': `AmazonSQS.${action}`, ...headers },
          body: Buffer.from(JSON.stringify(input)),
        });
      } else {
        const form = new URLSearchParams({ Action: action, Version: '2012-11-05', ...toQueryParameters(action, input) });
        response = await handler({
          method: 'POST',
          url: '/',
          headers: { host, 'content-type': 'application/x-www-form-urlencoded', ...headers },
          body: Buffer.from(form.toString()),
        });
      }
      return readResponse(protocol, action, response);
    },
  };
}

/** Asserts nothing; returns whether the result is exactly the catalogue error `code`. */
export function isError(result: CallResult, code: ErrorCode): boolean {
  const spec = errorCatalogue[code];
  if (result.error === undefined || result.status !== spec.httpStatus || result.error.queryCode !== spec.queryCode) return false;
  return result.error.jsonType === undefined || result.error.jsonType === spec.jsonType;
}
