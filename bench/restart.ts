// Restart benchmark (npm run bench:restart): how long a queue partition takes to come back
// with a large backlog and many messages in flight.
//
// It drives the real broker in-process (no HTTP): creates a standard queue, sends
// --messages 1 KiB messages in batches, receives --inflight of them with a 12 h visibility
// timeout (so they stay in flight), closes the broker (flush, fsync), then opens it again
// and reports the open time, what recovery did (checkpoint, records replayed), the counts
// after recovery, and memory. It then receives a few messages to show the backlog streams.
//
// The in-flight count is capped by SQS's limit of 120,000 per queue (OverLimit past it),
// so the default leaves 100,000 in flight (room for the receive after the restart); the queue machine's own restore of 1,000,000
// in-flight entries is measured by its unit test (QUEUE_SNAPSHOT_ENTRIES).
//
// usage: node dist/bench/restart.js [--messages 10000000] [--inflight 100000] [--directory DIR] [--keep]

import { randomBytes, randomUUID } from 'node:crypto';
import { rmSync, statfsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalBroker } from '../src/broker/local-broker.js';
import { NodeFileSystem } from '../src/io/node-filesystem.js';
import { SystemClock } from '../src/io/system-clock.js';
import type { SendInput } from '../src/queue/types.js';

interface Arguments {
  messages: number;
  inflight: number;
  directory: string;
  keep: boolean;
}

function parseArguments(argv: string[]): Arguments {
  const result: Arguments = { messages: 10_000_000, inflight: 100_000, directory: path.join(os.tmpdir(), `berth-bench-restart-${process.pid}`), keep: false };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i];
    if (key === '--keep') {
      result.keep = true;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`missing value for ${key}`);
    if (key === '--messages') result.messages = Number(value);
    else if (key === '--inflight') result.inflight = Number(value);
    else if (key === '--directory') result.directory = value;
    else throw new Error(`unknown option ${key} (known: --messages, --inflight, --directory, --keep)`);
  }
  if (!(result.inflight <= result.messages)) throw new Error('--inflight must not exceed --messages');
  if (result.inflight > 120_000) throw new Error('--inflight above 120,000: a standard queue refuses receives past 120,000 in flight (OverLimit), as SQS does');
  return result;
}

const silent = { info: () => undefined, warn: () => undefined, error: (object: object, message: string) => console.error(message, object) };

function openBroker(directory: string): Promise<LocalBroker> {
  return LocalBroker.open({
    fs: new NodeFileSystem(),
    dataDirectory: directory,
    clock: new SystemClock(),
    logger: silent,
    region: 'us-east-1',
    accountId: '000000000000',
    newId: () => randomUUID(),
    newIncarnation: () => randomBytes(8).toString('hex'),
  });
}

const lastPrinted = new Map<string, number>();

/** One line per tenth of the work (a live counter on a terminal). */
function progress(label: string, done: number, total: number, startedMs: number): void {
  const tenth = Math.floor((done * 10) / total);
  const terminal = process.stderr.isTTY === true;
  if ((lastPrinted.get(label) ?? -1) >= (terminal ? done : tenth)) return;
  lastPrinted.set(label, terminal ? done : tenth);
  const seconds = (performance.now() - startedMs) / 1000;
  const line = `${label}: ${done.toLocaleString('en')} / ${total.toLocaleString('en')} (${Math.round(done / Math.max(seconds, 0.001)).toLocaleString('en')}/s)`;
  process.stderr.write(terminal ? `\r${line}   ${done >= total ? '\n' : ''}` : `${line}\n`);
}

function megabytes(bytes: number): string {
  return `${Math.round(bytes / 1024 / 1024)} MiB`;
}

async function main(): Promise<void> {
  const options = parseArguments(process.argv.slice(2));
  mkdirSync(options.directory, { recursive: true });
  const free = statfsSync(options.directory);
  const neededBytes = options.messages * 1200 * 1.2;
  if (free.bavail * free.bsize < neededBytes) {
    throw new Error(`${options.directory} has ${megabytes(free.bavail * free.bsize)} free, the run needs about ${megabytes(neededBytes)}: lower --messages`);
  }
  const body = 'x'.repeat(1024);
  const queue = 'restart-bench';
  let broker = await openBroker(options.directory);
  await broker.createQueue(queue, { VisibilityTimeout: '43200' }, {});

  const batch: SendInput[] = Array.from({ length: 10 }, () => ({ body, attributes: {}, systemAttributes: {}, senderId: 'bench' }));
  let startedMs = performance.now();
  let sent = 0;
  const concurrency = 64;
  const sendLoop = async (): Promise<void> => {
    while (sent < options.messages) {
      sent += batch.length;
      await broker.send(queue, batch);
      progress('send', Math.min(sent, options.messages), options.messages, startedMs);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, sendLoop));
  const sendSeconds = (performance.now() - startedMs) / 1000;

  startedMs = performance.now();
  let received = 0;
  let claimed = 0; // what the loops have asked for, so together they never pass the in-flight limit
  const receiveLoop = async (): Promise<void> => {
    while (claimed < options.inflight) {
      const want = Math.min(10, options.inflight - claimed);
      claimed += want;
      const messages = await broker.receive(queue, { maxMessages: want, waitTimeSeconds: 0 });
      received += messages.length;
      progress('receive (leave in flight)', Math.min(received, options.inflight), options.inflight, startedMs);
      if (messages.length === 0) break;
    }
  };
  await Promise.all(Array.from({ length: 16 }, receiveLoop));
  const receiveSeconds = (performance.now() - startedMs) / 1000;
  const before = await broker.queueCounts(queue);
  await broker.close();

  const rssBefore = process.memoryUsage().rss;
  startedMs = performance.now();
  broker = await openBroker(options.directory);
  const openSeconds = (performance.now() - startedMs) / 1000;
  const after = await broker.queueCounts(queue);
  const recovery = broker.partitionRecovery();
  const memory = process.memoryUsage();

  startedMs = performance.now();
  const firstReceive = await broker.receive(queue, { maxMessages: 10, waitTimeSeconds: 0 });
  const firstReceiveMs = performance.now() - startedMs;
  await broker.close();
  if (!options.keep) rmSync(options.directory, { recursive: true, force: true });

  const report = {
    messages: options.messages,
    inflight: options.inflight,
    sendRatePerSecond: Math.round(options.messages / sendSeconds),
    receiveRatePerSecond: Math.round(received / receiveSeconds),
    countsBeforeClose: before,
    countsAfterOpen: after,
    openSeconds: Number(openSeconds.toFixed(2)),
    recovery,
    firstReceiveAfterOpenMs: Number(firstReceiveMs.toFixed(1)),
    firstReceiveMessages: firstReceive.length,
    heapUsedAfterOpen: megabytes(memory.heapUsed),
    rssBeforeOpen: megabytes(rssBefore),
    rssAfterOpen: megabytes(memory.rss),
  };
  console.log(JSON.stringify(report, null, 2));
  if (after.visible !== before.visible || after.inflight !== before.inflight) {
    console.error('FAILED: the counts after the restart differ from those before it');
    process.exitCode = 1;
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
