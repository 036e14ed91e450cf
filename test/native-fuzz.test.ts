// Seeded fuzzing of the native protocol against a real `berth serve`: random bytes and
// mutated valid frames, before and after authentication. Every byte the server sends must
// parse as frames; frames the protocol calls violations (bad version, impossible length,
// a request before AUTH) get an ERROR and a closed connection; the server stays up (health
// 200, a normal SDK call works) and its RSS stays bounded.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { after, before, test } from 'node:test';
import {
  FrameDecoder,
  FrameType,
  decodeError,
  encodeAck,
  encodeAuth,
  encodeChangeVisibility,
  encodeCredit,
  encodeJsonFrame,
  encodeReceive,
  encodeSend,
  encodeSubscribe,
  encodeUnsubscribe,
  type Frame,
} from '../src/api/native/wire.js';
import { SeededRandom } from '../src/core/random.js';
import { Berth } from '../src/client/index.js';
import { freePort, httpRequest, startBerth, type BerthProcess } from './harness/server.js';

const seed = Number(process.env['BERTH_FUZZ_SEED'] ?? 20_240_611);
const connections = Number(process.env['BERTH_FUZZ_CONNECTIONS'] ?? 400);
const answerWaitMs = 400;
const queue = `fuzz-${process.pid}`;

let server: BerthProcess;
let nativePort: number;

before(async () => {
  nativePort = await freePort();
  server = await startBerth({ args: ['--native-port', String(nativePort), '--log-level', 'error'] });
  const berth = await Berth.connect({ url: `berth://127.0.0.1:${nativePort}` });
  await berth.createQueue(queue);
  await berth.close();
});

after(async () => {
  await server?.stop();
});

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  assert.ok(match, 'VmRSS in /proc/<pid>/status');
  return Number(match[1]) * 1024;
}

interface Outcome {
  frames: Frame[];
  closedByServer: boolean;
  malformedAnswer: string | undefined;
}

type Expectation = 'error-and-close' | 'anything';

/** Connects, optionally authenticates, sends `input`, and collects what comes back within a bound. */
function exchange(input: Buffer, authenticate: boolean): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port: nativePort });
    const decoder = new FrameDecoder();
    const frames: Frame[] = [];
    let malformedAnswer: string | undefined;
    let phase: 'challenge' | 'auth' | 'sent' = 'challenge';
    let timer: NodeJS.Timeout | undefined;
    let finished = false;
    const finish = (closedByServer: boolean): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ frames, closedByServer, malformedAnswer });
    };
    const sendInput = (): void => {
      phase = 'sent';
      socket.write(input);
      timer = setTimeout(() => finish(false), answerWaitMs);
    };
    socket.on('data', (chunk: Buffer) => {
      let received: Frame[];
      try {
        received = decoder.push(chunk);
      } catch (error) {
        malformedAnswer = (error as Error).message;
        finish(false);
        return;
      }
      for (const frame of received) {
        if (phase === 'challenge' && frame.type === FrameType.Challenge) {
          if (authenticate) {
            phase = 'auth';
            socket.write(encodeAuth(1, { clientNonce: Buffer.alloc(16, 7), accessKeyId: 'fuzz', signature: Buffer.alloc(0) }));
          } else {
            sendInput();
          }
          continue;
        }
        if (phase === 'auth' && frame.type === FrameType.AuthOk) {
          sendInput();
          continue;
        }
        if (phase === 'sent') frames.push({ ...frame, payload: Buffer.from(frame.payload) });
      }
    });
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
  });
}

function validFrames(random: SeededRandom): Buffer[] {
  const requestId = 2 + random.int(1000);
  return [
    encodeJsonFrame(FrameType.Admin, requestId, { op: 'listQueues' }),
    encodeJsonFrame(FrameType.Admin, requestId, { op: 'queueCounts', queue }),
    encodeSend(requestId, queue, [{ body: 'fuzz body' }, { body: 'with attributes', attributes: { a: { dataType: 'String', stringValue: 'v' } } }]),
    encodeReceive(requestId, { queue, maxMessages: 5, visibilityTimeoutSeconds: 0, waitMs: 0 }),
    encodeAck(requestId, queue, ['bogus-receipt']),
    encodeChangeVisibility(requestId, queue, [{ receiptHandle: 'bogus', visibilityTimeoutSeconds: 0 }]),
    encodeSubscribe(requestId, { queue, credit: 1, visibilityTimeoutSeconds: 0, batchMax: 1 }),
    encodeCredit(requestId, 5),
    encodeUnsubscribe(requestId, requestId + 1),
  ];
}

function mutate(random: SeededRandom, frame: Buffer): Buffer {
  const copy = Buffer.from(frame);
  switch (random.int(5)) {
    case 0: {
      // Flip a few bytes anywhere after the length field.
      const flips = 1 + random.int(4);
      for (let index = 0; index < flips; index++) {
        const position = 4 + random.int(copy.length - 4);
        copy[position] = random.int(256);
      }
      return copy;
    }
    case 1:
      // Truncate the payload but keep the length field consistent.
      {
        const cut = Math.max(10, random.int(copy.length));
        const truncated = Buffer.from(copy.subarray(0, cut));
        truncated.writeUInt32BE(cut - 4, 0);
        return truncated;
      }
    case 2:
      // Trailing garbage inside the frame.
      {
        const extra = random.bytes(1 + random.int(16));
        const grown = Buffer.concat([copy, extra]);
        grown.writeUInt32BE(grown.length - 4, 0);
        return grown;
      }
    case 3:
      // A random frame type.
      copy[5] = random.int(256);
      return copy;
    default:
      // Random payload under a valid header.
      {
        const payload = Buffer.from(random.bytes(random.int(64)));
        const header = Buffer.from(copy.subarray(0, 10));
        const joined = Buffer.concat([header, payload]);
        joined.writeUInt32BE(joined.length - 4, 0);
        return joined;
      }
  }
}

function makeCase(random: SeededRandom): { input: Buffer; authenticate: boolean; expectation: Expectation; kind: string } {
  const templates = validFrames(random);
  switch (random.int(7)) {
    case 0:
      return { input: Buffer.from(random.bytes(1 + random.int(512))), authenticate: random.int(2) === 0, expectation: 'anything', kind: 'garbage' };
    case 1: {
      const frame = Buffer.from(templates[random.int(templates.length)]!);
      frame[4] = 2 + random.int(200); // a version this server does not speak
      return { input: frame, authenticate: true, expectation: 'error-and-close', kind: 'bad version' };
    }
    case 2: {
      const header = Buffer.alloc(10);
      header.writeUInt32BE(16 * 1024 * 1024 + 1 + random.int(0x7fff_0000), 0);
      header[4] = 1;
      header[5] = FrameType.Send;
      return { input: header, authenticate: random.int(2) === 0, expectation: 'error-and-close', kind: 'oversized' };
    }
    case 3: {
      const header = Buffer.alloc(10);
      header.writeUInt32BE(random.int(6), 0);
      return { input: header, authenticate: true, expectation: 'error-and-close', kind: 'undersized' };
    }
    case 4:
      return { input: templates[random.int(templates.length)]!, authenticate: false, expectation: 'error-and-close', kind: 'request before auth' };
    case 5:
      return { input: templates[random.int(templates.length)]!, authenticate: true, expectation: 'anything', kind: 'valid' };
    default:
      return { input: mutate(random, templates[random.int(templates.length)]!), authenticate: true, expectation: 'anything', kind: 'mutated' };
  }
}

test(`native fuzz: ${connections} seeded connections (seed ${seed}) get well-formed answers, violations close, the server stays up`, async () => {
  const random = new SeededRandom(seed);
  const rssBefore = rssBytes(server.pid);
  const histogram = new Map<string, number>();
  let rssMiddle = 0;
  for (let index = 0; index < connections; index++) {
    if (index === Math.floor(connections / 2)) rssMiddle = rssBytes(server.pid);
    const fuzzCase = makeCase(random);
    const outcome = await exchange(fuzzCase.input, fuzzCase.authenticate);
    const context = `case ${index} (${fuzzCase.kind}, seed ${seed}): input ${fuzzCase.input.subarray(0, 48).toString('hex')}`;
    assert.equal(outcome.malformedAnswer, undefined, `${context}: the server sent bytes that do not parse as frames: ${outcome.malformedAnswer}`);
    for (const frame of outcome.frames) {
      if (frame.type === FrameType.Error) {
        const error = decodeError(frame.payload);
        assert.ok(error.nativeCode >= 1000 && error.code.length > 0, `${context}: ERROR frame carries a catalogue code`);
        assert.notEqual(error.code, 'InternalError', `${context}: no internal error for bad input (${error.message})`);
      }
    }
    if (fuzzCase.expectation === 'error-and-close') {
      assert.ok(outcome.frames.some((frame) => frame.type === FrameType.Error), `${context}: a protocol violation is answered with ERROR`);
      assert.ok(outcome.closedByServer, `${context}: and the connection is closed`);
    }
    const key = `${fuzzCase.kind}: ${outcome.frames.map((frame) => frame.type.toString(16)).join(',') || 'no answer'}${outcome.closedByServer ? ' +closed' : ''}`;
    histogram.set(key, (histogram.get(key) ?? 0) + 1);
  }
  if (process.env['BERTH_FUZZ_VERBOSE'] !== undefined) console.log([...histogram.entries()].sort().map(([key, count]) => `${count}\t${key}`).join('\n'));

  const health = await httpRequest(server.url, { path: '/health/ready' });
  assert.equal(health.status, 200, 'the server is still ready');
  const berth = await Berth.connect({ url: `berth://127.0.0.1:${nativePort}` });
  const [sent] = await berth.send(queue, [{ body: 'after the fuzz' }]);
  assert.ok(sent !== undefined && !(sent instanceof Error), 'a normal SDK call works after the fuzz');
  await berth.close();
  const rssAfter = rssBytes(server.pid);
  const growthMiB = (rssAfter - rssMiddle) / 1024 / 1024;
  assert.ok(rssAfter < rssBefore + 200 * 1024 * 1024, `RSS grew from ${(rssBefore / 1048576).toFixed(0)} MiB to ${(rssAfter / 1048576).toFixed(0)} MiB`);
  assert.ok(growthMiB < 64, `RSS kept growing in the second half of the fuzz: +${growthMiB.toFixed(1)} MiB`);
});
