// bin/berth.js's shebang and the flags spawners use (berth-process.ts) say the same thing.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { berthEnvironmentVariables, berthNodeFlags } from './berth-process.js';

test('the shebang of bin/berth.js sets the Node flags and environment that spawned servers get', () => {
  // dist/src/io/berth-process.test.js -> the project root is four levels up.
  const binPath = fileURLToPath(new URL('../../../bin/berth.js', import.meta.url));
  const shebang = readFileSync(binPath, 'utf8').split('\n')[0]!;
  const words = shebang.replace(/^#!\/usr\/bin\/env -S /, '').split(/\s+/);
  const nodeAt = words.indexOf('node');
  assert.ok(nodeAt >= 0, `the shebang runs node: ${shebang}`);
  const environment = Object.fromEntries(words.slice(0, nodeAt).map((word) => word.split('=') as [string, string]));
  assert.deepEqual(environment, berthEnvironmentVariables);
  assert.deepEqual(words.slice(nodeAt + 1), [...berthNodeFlags]);
});
