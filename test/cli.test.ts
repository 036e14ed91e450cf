// The berth command's queue commands against a real server: they go through the Berth SDK
// over the native protocol, so this is also an end-to-end test of the SDK's admin calls.
// Each command runs as its own process (bin/berth.js), as a user would run it.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { berthBin, startBerth, type BerthProcess } from './harness/server.js';

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function runCli(endpoint: string, args: string[], input?: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [berthBin, '--endpoint', endpoint, ...args], { timeout: 60_000, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

describe('berth CLI over the native protocol', () => {
  let server: BerthProcess;
  let endpoint: string;
  const cli = (...args: string[]): Promise<CliResult> => runCli(endpoint, args);

  before(async () => {
    server = await startBerth({ name: 'cli' });
    assert.ok(server.nativePort !== undefined);
    endpoint = `berth://127.0.0.1:${server.nativePort}`;
  });
  after(async () => {
    await server?.stop();
  });

  test('create, send (argument, stdin, --count), queues, receive, purge, delete-queue', async () => {
    assert.equal((await cli('create', 'cli-orders')).code, 0);
    const created = await cli('create', 'cli-jobs', '--fifo');
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /cli-jobs\.fifo/);

    const sent = await cli('send', 'cli-orders', 'hello there');
    assert.equal(sent.code, 0, sent.stderr);
    const messageId = /sent ([0-9a-f-]{36})/.exec(sent.stdout)?.[1];
    assert.ok(messageId !== undefined, sent.stdout);
    const piped = await runCli(endpoint, ['send', 'cli-orders'], 'from stdin\n');
    assert.equal(piped.code, 0, piped.stderr);
    const many = await cli('send', 'cli-orders', 'load', '--count', '250');
    assert.equal(many.code, 0, many.stderr);
    assert.match(many.stdout, /sent 250 messages/);
    const fifoSend = await cli('send', 'cli-jobs.fifo', 'job-1', '--group', 'g1', '--dedup', 'd1');
    assert.match(fifoSend.stdout, /seq \d+/);

    const listed = JSON.parse((await cli('queues', '--json')).stdout) as Array<{ name: string; fifo: boolean; visible: number }>;
    assert.deepEqual(listed.map((row) => [row.name, row.fifo, row.visible]).sort(), [['cli-jobs.fifo', true, 1], ['cli-orders', false, 252]]);

    // receive deletes what it printed (up to --max; a receive may answer fewer than are visible).
    const received = await cli('receive', 'cli-orders', '--max', '100', '--json');
    assert.equal(received.code, 0, received.stderr);
    const lines = received.stdout.trim().split('\n').map((line) => JSON.parse(line) as { MessageId: string; Body: string });
    assert.ok(lines.length >= 1 && lines.length <= 100, `${lines.length} messages`);
    const afterReceive = JSON.parse((await cli('queues', '--json', '--prefix', 'cli-orders')).stdout) as Array<{ visible: number; inflight: number }>;
    assert.equal(afterReceive[0]!.visible + afterReceive[0]!.inflight, 252 - lines.length, 'received messages were deleted');

    const kept = await cli('receive', 'cli-jobs.fifo', '--keep', '--json');
    const job = JSON.parse(kept.stdout.trim()) as { Body: string; MessageGroupId: string };
    assert.deepEqual([job.Body, job.MessageGroupId], ['job-1', 'g1']);
    const jobsAfter = JSON.parse((await cli('queues', '--json', '--prefix', 'cli-jobs')).stdout) as Array<{ inflight: number }>;
    assert.equal(jobsAfter[0]!.inflight, 1, '--keep leaves the message in flight');

    assert.equal((await cli('purge', 'cli-orders')).code, 0);
    const purged = JSON.parse((await cli('queues', '--json', '--prefix', 'cli-orders')).stdout) as Array<{ visible: number }>;
    assert.equal(purged[0]!.visible, 0);

    assert.equal((await cli('delete-queue', 'cli-orders')).code, 0);
    const gone = await cli('receive', 'cli-orders');
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /QueueDoesNotExist/);
  });

  test('clear errors: an HTTP endpoint, an unreachable one, a bad flag', async () => {
    const http = await runCli(server.url, ['queues']);
    assert.equal(http.code, 1);
    assert.match(http.stderr, /native protocol: give berth:\/\/host:port/);
    const unreachable = await runCli('berth://127.0.0.1:1', ['queues']);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /cannot reach berth:\/\/127\.0\.0\.1:1/);
    const badMax = await cli('receive', 'anything', '--max', '0');
    assert.equal(badMax.code, 1);
    assert.match(badMax.stderr, /--max must be an integer from 1 to 1000/);
    const emptyBody = await runCli(endpoint, ['send', 'anything'], '');
    assert.equal(emptyBody.code, 1);
    assert.match(emptyBody.stderr, /message body is empty/);
  });
});
