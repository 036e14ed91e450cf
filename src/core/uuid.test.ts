import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUuid } from './uuid.js';

const uuidV4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('randomUuid gives version 4 UUIDs in lower case, each different, across many refills of its random pool', () => {
  const seen = new Set<string>();
  for (let index = 0; index < 10_000; index++) {
    const id = randomUuid();
    assert.match(id, uuidV4);
    seen.add(id);
  }
  assert.equal(seen.size, 10_000);
});

test('randomUuid strings are independent of the buffer they were written in', () => {
  const first = randomUuid();
  const copy = [...first].join(''); // its characters now, in a string of their own
  randomUuid();
  assert.equal(first, copy);
});

test('every hex digit turns up in every free position (the random bytes reach the text)', () => {
  const digitsAt = Array.from({ length: 36 }, () => new Set<string>());
  for (let index = 0; index < 2_000; index++) {
    const id = randomUuid();
    for (let position = 0; position < 36; position++) digitsAt[position]!.add(id[position]!);
  }
  for (let position = 0; position < 36; position++) {
    const expected = [8, 13, 18, 23].includes(position) ? 1 : position === 14 ? 1 : position === 19 ? 4 : 16;
    assert.equal(digitsAt[position]!.size, expected, `position ${position}: ${[...digitsAt[position]!].sort().join('')}`);
  }
});
