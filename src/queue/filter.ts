// Subscription filter policies: which published messages a topic's subscription receives,
// decided from the message attributes alone (like SNS filter policies on attributes).
//
// A policy is a JSON object: attribute name -> one condition or a list of conditions
// (any of them matches). Every named attribute must match (all keys). Conditions:
//   "text"                       the attribute's string value equals it
//   5                            a Number attribute whose value equals it numerically
//   {"numeric": [">", 5]}        a Number attribute in a range: one or two (operator, number)
//                                pairs, operators = > >= < <=
//   {"exists": true | false}     the attribute is present / absent
//   {"prefix": "x"}              the attribute's string value starts with it
//
// Matching is a pure function of the policy and the attributes: the queue machine runs it
// at apply time, so every replay and every backup decides the same way.

import type { MessageAttributes } from './types.js';

type Condition =
  | { kind: 'equals'; text: string }
  | { kind: 'numberEquals'; value: number }
  | { kind: 'range'; bounds: Array<{ operator: '>' | '>=' | '<' | '<='; value: number }> }
  | { kind: 'exists'; present: boolean }
  | { kind: 'prefix'; text: string };

/** A validated policy: every attribute name with its alternatives. */
export interface FilterPolicy {
  readonly keys: ReadonlyArray<{ name: string; anyOf: readonly Condition[] }>;
}

/** Limits that keep evaluation cheap on the apply path. */
export const filterPolicyKeysMax = 10;
export const filterPolicyConditionsMax = 150;
export const filterPolicyBytesMax = 16_384;

/** Parses and validates a policy's JSON text: the policy, or a reason it is invalid. */
export function parseFilterPolicy(text: string): { policy: FilterPolicy } | { error: string } {
  if (text.length > filterPolicyBytesMax) return { error: `a filter policy may be at most ${filterPolicyBytesMax} characters` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { error: 'the filter policy is not valid JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { error: 'a filter policy must be a JSON object of attribute name to conditions' };
  const entries = Object.entries(parsed as Record<string, unknown>);
  if (entries.length === 0) return { error: 'a filter policy needs at least one attribute name' };
  if (entries.length > filterPolicyKeysMax) return { error: `a filter policy may name at most ${filterPolicyKeysMax} attributes` };
  const keys: Array<{ name: string; anyOf: Condition[] }> = [];
  let conditionCount = 0;
  for (const [name, value] of entries) {
    const alternatives = Array.isArray(value) ? value : [value];
    if (alternatives.length === 0) return { error: `attribute ${name}: the list of conditions is empty` };
    const anyOf: Condition[] = [];
    for (const alternative of alternatives) {
      const condition = parseCondition(alternative);
      if (typeof condition === 'string') return { error: `attribute ${name}: ${condition}` };
      anyOf.push(condition);
    }
    conditionCount += anyOf.length;
    keys.push({ name, anyOf });
  }
  if (conditionCount > filterPolicyConditionsMax) return { error: `a filter policy may hold at most ${filterPolicyConditionsMax} conditions` };
  return { policy: { keys } };
}

const rangeOperators = new Set(['>', '>=', '<', '<=']);

function parseCondition(value: unknown): Condition | string {
  if (typeof value === 'string') return { kind: 'equals', text: value };
  if (typeof value === 'number') return Number.isFinite(value) ? { kind: 'numberEquals', value } : 'numbers must be finite';
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return `unsupported condition ${JSON.stringify(value)} (use a string, a number, or an object with numeric, exists or prefix)`;
  const fields = Object.entries(value as Record<string, unknown>);
  if (fields.length !== 1) return `a condition object has exactly one of numeric, exists, prefix; got ${JSON.stringify(value)}`;
  const [operator, operand] = fields[0]!;
  switch (operator) {
    case 'exists':
      return typeof operand === 'boolean' ? { kind: 'exists', present: operand } : '"exists" takes true or false';
    case 'prefix':
      return typeof operand === 'string' && operand.length > 0 ? { kind: 'prefix', text: operand } : '"prefix" takes a non-empty string';
    case 'numeric': {
      if (!Array.isArray(operand) || (operand.length !== 2 && operand.length !== 4)) return '"numeric" takes [operator, number] or [operator, number, operator, number]';
      const bounds: Array<{ operator: '>' | '>=' | '<' | '<='; value: number }> = [];
      for (let index = 0; index < operand.length; index += 2) {
        const rangeOperator: unknown = operand[index];
        const bound: unknown = operand[index + 1];
        if (typeof rangeOperator !== 'string' || !rangeOperators.has(rangeOperator)) return `"numeric" operator must be one of > >= < <=, got ${JSON.stringify(rangeOperator)}`;
        if (typeof bound !== 'number' || !Number.isFinite(bound)) return `"numeric" bound must be a finite number, got ${JSON.stringify(bound)}`;
        bounds.push({ operator: rangeOperator as '>' | '>=' | '<' | '<=', value: bound });
      }
      if (bounds.length === 2) {
        const lower = bounds.filter((bound) => bound.operator.startsWith('>')).length;
        if (lower !== 1) return '"numeric" with two bounds needs one lower (> or >=) and one upper (< or <=)';
      }
      return { kind: 'range', bounds };
    }
    default:
      return `unsupported condition operator "${operator}" (supported: numeric, exists, prefix)`;
  }
}

/** Whether a message with these attributes passes the policy. */
export function matchesFilterPolicy(policy: FilterPolicy, attributes: MessageAttributes): boolean {
  for (const key of policy.keys) {
    const attribute = attributes[key.name];
    let matched = false;
    for (const condition of key.anyOf) {
      if (matchesCondition(condition, attribute)) {
        matched = true;
        break;
      }
    }
    if (!matched) return false;
  }
  return true;
}

function matchesCondition(condition: Condition, attribute: MessageAttributes[string] | undefined): boolean {
  if (condition.kind === 'exists') return (attribute !== undefined) === condition.present;
  if (attribute === undefined || attribute.stringValue === undefined) return false;
  const text = attribute.stringValue;
  switch (condition.kind) {
    case 'equals':
      return text === condition.text;
    case 'prefix':
      return text.startsWith(condition.text);
    case 'numberEquals':
    case 'range': {
      if (!attribute.dataType.startsWith('Number')) return false;
      const value = Number(text);
      if (!Number.isFinite(value)) return false;
      if (condition.kind === 'numberEquals') return value === condition.value;
      return condition.bounds.every((bound) => inBound(value, bound.operator, bound.value));
    }
  }
}

function inBound(value: number, operator: '>' | '>=' | '<' | '<=', bound: number): boolean {
  switch (operator) {
    case '>':
      return value > bound;
    case '>=':
      return value >= bound;
    case '<':
      return value < bound;
    case '<=':
      return value <= bound;
  }
}
