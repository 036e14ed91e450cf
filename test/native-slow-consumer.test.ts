// A subscriber that grants a huge credit and then stops reading its socket. The server
// must stop pushing once the socket's unsent bytes pass its high-water mark: the messages
// it leases to that subscriber stay a small fraction of what was sent, and its RSS does
// not grow with the data pushed at it. The stalled subscriber still sends heartbeats (its
// process is alive, only its reading is stuck): without them the server's idle timeout
// (15 s) closes it whenever the two rounds of sends take longer than that on a busy machine.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { FrameDecoder, FrameType, encodeAuth, encodeEmpty, encodeSubscribe, type Frame } from '../src/api/native/wire.js';
import { Berth } from '../src/client/index.js';
import { freePort, startBerth, waitUntil, type BerthProcess } from './harness/server.js';

const bodyBytes = 16 * 1024;
const messageCount = 8_000; // 128 MiB of bodies
const queue = `slow-${process.pid}`;

let server: BerthProcess;
let nativePort: number;

before(async () => {
  nativePort = await freePort();
  server = await startBerth({ args: ['--native-port', String(nativePort), '--log-level', 'warn'] });
});

after(async () => {
  await server?.stop();
});

function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(match);
  return Number(match[1]) * 1024;
}

/** Authenticates, subscribes with `credit`, waits for SUBSCRIBED, then stops reading. */
function stalledSubscriber(credit: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port: nativePort });
    const decoder = new FrameDecoder();
    socket.on('error', reject);
    const onData = (chunk: Buffer): void => {
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch (error) {
        reject(error as Error);
        return;
      }
      for (const frame of frames) {
        if (frame.type === FrameType.Challenge) socket.write(encodeAuth(1, { clientNonce: Buffer.alloc(16, 1), accessKeyId: 'slow', signature: Buffer.alloc(0) }));
        else if (frame.type === FrameType.AuthOk) socket.write(encodeSubscribe(2, { queue, credit, visibilityTimeoutSeconds: 600, batchMax: 100 }));
        else if (frame.type === FrameType.Subscribed) {
          socket.off('data', onData);
          socket.pause();
          const heartbeats = setInterval(() => socket.write(encodeEmpty(FrameType.Heartbeat, 0)), 2_000);
          socket.on('close', () => clearInterval(heartbeats));
          resolve(socket);
          return;
        } else if (frame.type === FrameType.Error) {
          reject(new Error('subscribe failed'));
          return;
        }
      }
    };
    socket.on('data', onData);
  });
}

test('a subscriber that stops reading does not make the server buffer without bound', async () => {
  const berth = await Berth.connect({ url: `berth://127.0.0.1:${nativePort}` });
  await berth.createQueue(queue, { attributes: { MaximumMessageSize: '262144' } });
  const stalled = await stalledSubscriber(1_000_000);
  const rssBefore = rssBytes(server.pid);

  // Two rounds of sends: if the server buffered for the stalled subscriber, the second
  // round would add its bytes to the server's memory as the first did.
  const body = 'x'.repeat(bodyBytes);
  const sendRound = async (): Promise<void> => {
    const producer = berth.producer(queue, { batchSize: 50 });
    await Promise.all(Array.from({ length: messageCount }, () => producer.send(body)));
    await producer.close();
  };
  const settle = async (): Promise<void> => {
    // The server pushes until the socket is above its high-water mark, then waits for drain.
    let last = -1;
    await waitUntil(async () => {
      const counts = await berth.queueCounts(queue);
      const settled = counts.inflight === last;
      last = counts.inflight;
      return settled;
    }, 'the pushed count to stop moving', 30_000, 500);
  };
  await sendRound();
  await settle();
  const afterFirst = await berth.queueCounts(queue);
  const rssFirst = rssBytes(server.pid);
  await sendRound();
  await settle();
  const counts = await berth.queueCounts(queue);
  const rssSecond = rssBytes(server.pid);
  const sentMiB = (2 * messageCount * bodyBytes) / 1048576;
  const pushedMiB = (counts.inflight * bodyBytes) / 1048576;
  const mib = (bytes: number): string => (bytes / 1048576).toFixed(1);
  console.log(`RSS ${mib(rssBefore)} -> ${mib(rssFirst)} -> ${mib(rssSecond)} MiB; pushed ${counts.inflight} messages (${pushedMiB.toFixed(1)} MiB) of ${sentMiB} MiB sent`);
  assert.equal(counts.inflight + counts.visible, 2 * messageCount, 'every message is either leased to the stalled subscriber or waiting');
  assert.ok(afterFirst.inflight > 0, 'the subscriber got some messages before it stalled');
  assert.ok(pushedMiB < 32, `the server stopped pushing after ${pushedMiB.toFixed(1)} MiB (${counts.inflight} messages) of ${sentMiB} MiB`);
  assert.ok(counts.inflight - afterFirst.inflight < 100, `the second round pushed nothing more to the stalled subscriber (${afterFirst.inflight} -> ${counts.inflight})`);
  assert.ok(rssSecond - rssFirst < 96 * 1048576, `server RSS kept growing with the data sent: ${mib(rssFirst)} -> ${mib(rssSecond)} MiB after ${sentMiB / 2} MiB more`);

  // Reading again drains what the server held back: it resumes pushing.
  let received = 0;
  const decoder = new FrameDecoder();
  stalled.on('data', (chunk: Buffer) => {
    for (const frame of decoder.push(chunk)) if (frame.type === FrameType.Delivery) received += frame.payload.readUInt16BE(0);
  });
  stalled.resume();
  await waitUntil(() => received > counts.inflight, 'pushing resumes once the subscriber reads', 30_000);
  stalled.destroy();
  await berth.close();
});
