// The README's SDK examples, run as written (only the server's port is changed) against a
// real `berth serve`, importing the package by its name ('berth') as a user would.

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Berth } from '../src/client/index.js';
import { freePort, repoRoot, runCommand, startBerth, waitUntil, type BerthProcess } from './harness/server.js';
import { spawn } from 'node:child_process';

let server: BerthProcess;
let nativePort: number;
// Inside the package so that `import ... from 'berth'` resolves to this package (self-reference).
const scratch = path.join(repoRoot, 'test-artifacts', `readme-examples-${process.pid}`);

function sdkExamples(): string[] {
  const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## SDK\n');
  assert.ok(start >= 0, 'README has a "## SDK" section');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end === -1 ? undefined : end);
  const blocks = [...section.matchAll(/```js\n([\s\S]*?)```/g)].map((match) => match[1]!);
  assert.ok(blocks.length >= 3, 'a producer and two consumer examples');
  return blocks.map((block) => block.replaceAll('berth://127.0.0.1:9325', `berth://127.0.0.1:${nativePort}`));
}

function writeExample(name: string, code: string): string {
  const file = path.join(scratch, `${name}.mjs`);
  writeFileSync(file, code);
  return file;
}

before(async () => {
  nativePort = await freePort();
  server = await startBerth({ args: ['--native-port', String(nativePort), '--log-level', 'warn'] });
  mkdirSync(scratch, { recursive: true });
});

after(async () => {
  await server?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

test('README SDK examples run as written', async () => {
  const [producerCode, iteratorCode, handlerCode] = sdkExamples();
  const producer = writeExample('producer', producerCode!);
  const iterator = writeExample('iterator', iteratorCode!);
  const handler = writeExample('handler', handlerCode!);

  const produced = await runCommand(process.execPath, [producer], { timeoutMs: 60_000 });
  assert.equal(produced.code, 0, `producer example failed: ${produced.stderr}`);
  assert.match(produced.stdout, /^sent 1000 orders, the first is \S+/);

  const consumed = await runCommand(process.execPath, [iterator], { timeoutMs: 60_000 });
  assert.equal(consumed.code, 0, `iterator example failed: ${consumed.stderr}`);
  assert.match(consumed.stdout, /received all 1000 orders/);

  const berth = await Berth.connect({ url: `berth://127.0.0.1:${nativePort}` });
  try {
    const counts = await berth.queueCounts('orders');
    assert.deepEqual([counts.visible, counts.inflight], [0, 0], 'the iterator acked every order');
    // The handler example runs until SIGTERM: feed it, wait for the queue to empty, stop it.
    const again = await runCommand(process.execPath, [producer], { timeoutMs: 60_000 });
    assert.equal(again.code, 0, again.stderr);
    const child = spawn(process.execPath, [handler], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitUntil(async () => {
        const now = await berth.queueCounts('orders');
        return now.visible === 0 && now.inflight === 0;
      }, 'the handler example to process every order', 60_000);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, `handler example exits cleanly on SIGTERM: ${stderr}`);
    assert.equal(stdout.trim().split('\n').filter((line) => line.startsWith('order ')).length >= 1000, true, 'it logged every order');
  } finally {
    await berth.close();
  }
});
