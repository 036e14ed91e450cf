// One view of request parameters over both SQS wire protocols, so each action is written
// once. JSON 1.0 members are read from the parsed body; Query members from the flattened
// form (`Attribute.1.Name`, `SendMessageBatchRequestEntry.2.Id`, ...). A JSON member of the
// wrong type is a SerializationException (what AWS JSON services answer); a Query value
// that does not parse is an InvalidParameterValue.

import { BerthError } from '../../protocol/errors.js';
import { setOwn } from '../../core/own-property.js';

export interface MessageAttributeInput {
  dataType: string | undefined;
  stringValue: string | undefined;
  binaryValue: Uint8Array | undefined;
  /** StringListValues / BinaryListValues were given (reserved by SQS, not supported). */
  hasListValues: boolean;
}

export interface Params {
  readonly protocol: 'json' | 'query';
  string(name: string): string | undefined;
  integer(name: string): number | undefined;
  stringList(jsonName: string, queryName: string): string[] | undefined;
  stringMap(jsonName: string, queryName: string, keyName: string): Record<string, string> | undefined;
  messageAttributes(jsonName: string, queryName: string): Record<string, MessageAttributeInput> | undefined;
  entries(jsonName: string, queryName: string): Params[] | undefined;
}

const integerPattern = /^[+-]?\d{1,15}$/;
const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$/;

function serializationError(name: string, expected: string): BerthError {
  return new BerthError('SerializationException', `Member ${name} must be ${expected}.`);
}

export function decodeBase64(value: string, name: string): Uint8Array {
  if (!base64Pattern.test(value)) {
    throw new BerthError('InvalidParameterValue', `Value for parameter ${name} is not valid base64.`);
  }
  return Buffer.from(value, 'base64');
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class JsonParams implements Params {
  readonly protocol = 'json' as const;
  private readonly members: Record<string, unknown>;

  constructor(members: unknown) {
    if (!isPlainObject(members)) throw new BerthError('SerializationException', 'Request body must be a JSON object.');
    this.members = members;
  }

  string(name: string): string | undefined {
    const value = this.members[name];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string') throw serializationError(name, 'a string');
    return value;
  }

  integer(name: string): number | undefined {
    const value = this.members[name];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw serializationError(name, 'an integer');
    return value;
  }

  stringList(jsonName: string): string[] | undefined {
    const value = this.members[jsonName];
    if (value === undefined || value === null) return undefined;
    if (!Array.isArray(value)) throw serializationError(jsonName, 'a list of strings');
    for (const item of value) if (typeof item !== 'string') throw serializationError(jsonName, 'a list of strings');
    return value as string[];
  }

  stringMap(jsonName: string): Record<string, string> | undefined {
    const value = this.members[jsonName];
    if (value === undefined || value === null) return undefined;
    if (!isPlainObject(value)) throw serializationError(jsonName, 'a map of strings');
    const result: Record<string, string> = {};
    for (const key of Object.keys(value)) {
      const item = value[key];
      if (typeof item !== 'string') throw serializationError(`${jsonName}.${key}`, 'a string');
      setOwn(result, key, item);
    }
    return result;
  }

  messageAttributes(jsonName: string): Record<string, MessageAttributeInput> | undefined {
    const value = this.members[jsonName];
    if (value === undefined || value === null) return undefined;
    if (!isPlainObject(value)) throw serializationError(jsonName, 'a map of message attribute values');
    const result: Record<string, MessageAttributeInput> = {};
    for (const name of Object.keys(value)) {
      const item = value[name];
      if (!isPlainObject(item)) throw serializationError(`${jsonName}.${name}`, 'a message attribute value');
      const { DataType: dataType, StringValue: stringValue, BinaryValue: binaryValue, StringListValues: stringList, BinaryListValues: binaryList } = item;
      if (dataType !== undefined && dataType !== null && typeof dataType !== 'string') throw serializationError(`${name}.DataType`, 'a string');
      if (stringValue !== undefined && stringValue !== null && typeof stringValue !== 'string') throw serializationError(`${name}.StringValue`, 'a string');
      if (binaryValue !== undefined && binaryValue !== null && typeof binaryValue !== 'string') throw serializationError(`${name}.BinaryValue`, 'a base64 string');
      setOwn(result, name, {
        dataType: dataType ?? undefined,
        stringValue: stringValue ?? undefined,
        binaryValue: typeof binaryValue === 'string' ? decodeBase64(binaryValue, `${name}.BinaryValue`) : undefined,
        hasListValues: (Array.isArray(stringList) && stringList.length > 0) || (Array.isArray(binaryList) && binaryList.length > 0),
      });
    }
    return result;
  }

  entries(jsonName: string): Params[] | undefined {
    const value = this.members[jsonName];
    if (value === undefined || value === null) return undefined;
    if (!Array.isArray(value)) throw serializationError(jsonName, 'a list');
    return value.map((entry) => {
      if (!isPlainObject(entry)) throw serializationError(jsonName, 'a list of structures');
      return new JsonParams(entry);
    });
  }
}

export class QueryParams implements Params {
  readonly protocol = 'query' as const;

  constructor(
    private readonly values: Map<string, string>,
    private readonly prefix = '',
  ) {}

  string(name: string): string | undefined {
    return this.values.get(this.prefix + name);
  }

  integer(name: string): number | undefined {
    const value = this.values.get(this.prefix + name);
    if (value === undefined) return undefined;
    if (!integerPattern.test(value)) {
      throw new BerthError('InvalidParameterValue', `Value ${value} for parameter ${name} is invalid. Reason: must be an integer.`);
    }
    return Number(value);
  }

  /** Sorted indices N of the keys `<prefix><listName>.N...`. */
  private indices(listName: string): number[] {
    const start = this.prefix + listName + '.';
    const found = new Set<number>();
    for (const key of this.values.keys()) {
      if (!key.startsWith(start)) continue;
      const rest = key.slice(start.length);
      const dot = rest.indexOf('.');
      const indexText = dot === -1 ? rest : rest.slice(0, dot);
      if (!/^\d{1,6}$/.test(indexText)) continue;
      found.add(Number(indexText));
    }
    return [...found].sort((a, b) => a - b);
  }

  stringList(_jsonName: string, queryName: string): string[] | undefined {
    const indices = this.indices(queryName);
    if (indices.length === 0) return undefined;
    const result: string[] = [];
    for (const index of indices) {
      const value = this.values.get(`${this.prefix}${queryName}.${index}`);
      if (value !== undefined) result.push(value);
    }
    return result;
  }

  stringMap(_jsonName: string, queryName: string, keyName: string): Record<string, string> | undefined {
    const indices = this.indices(queryName);
    if (indices.length === 0) return undefined;
    const result: Record<string, string> = {};
    for (const index of indices) {
      const base = `${this.prefix}${queryName}.${index}.`;
      const key = this.values.get(base + keyName);
      if (key === undefined) throw new BerthError('MissingParameter', `The request must contain the parameter ${queryName}.${index}.${keyName}.`);
      setOwn(result, key, this.values.get(base + 'Value') ?? '');
    }
    return result;
  }

  messageAttributes(_jsonName: string, queryName: string): Record<string, MessageAttributeInput> | undefined {
    const indices = this.indices(queryName);
    if (indices.length === 0) return undefined;
    const result: Record<string, MessageAttributeInput> = {};
    for (const index of indices) {
      const base = `${this.prefix}${queryName}.${index}.`;
      const name = this.values.get(base + 'Name');
      if (name === undefined) throw new BerthError('MissingParameter', `The request must contain the parameter ${queryName}.${index}.Name.`);
      const binaryText = this.values.get(base + 'Value.BinaryValue');
      const nested = new QueryParams(this.values, base + 'Value.');
      setOwn(result, name, {
        dataType: this.values.get(base + 'Value.DataType'),
        stringValue: this.values.get(base + 'Value.StringValue'),
        binaryValue: binaryText === undefined ? undefined : decodeBase64(binaryText, `${queryName}.${index}.Value.BinaryValue`),
        hasListValues: nested.indices('StringListValue').length > 0 || nested.indices('BinaryListValue').length > 0,
      });
    }
    return result;
  }

  entries(_jsonName: string, queryName: string): Params[] | undefined {
    const indices = this.indices(queryName);
    if (indices.length === 0) return undefined;
    return indices.map((index) => new QueryParams(this.values, `${this.prefix}${queryName}.${index}.`));
  }
}

/** Parses a form body or query string (`+` is a space; bad escapes and invalid UTF-8 decode leniently, as in browsers). */
export function parseForm(text: string, into: Map<string, string>): void {
  if (text.length === 0) return;
  for (const [key, value] of new URLSearchParams(text)) into.set(key, value);
}
