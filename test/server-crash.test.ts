// Crash test against a real `berth serve`: several SDK senders (standard single sends,
// standard batches, FIFO groups) run while the server is SIGKILLed at a seeded moment
// (after a seeded number of acknowledged sends: an event, not a time); the server is
// restarted on the same data dir and the queues are drained.
//
// Checked:
// - every send acknowledged with a MessageId before the kill is received afterwards, with
//   that MessageId and body (a send that was in flight at the kill may or may not be
//   there: both are correct);
// - FIFO: per group, what is received is in send order with no gaps among the
//   acknowledged sends and no duplicates.
//
// Seeds: BERTH_CRASH_SEEDS=1,2,3 (default three seeds). The seed is in each test name and
// in every assertion message.

import assert from 'node:assert/strict';
import { SeededRandom } from '../src/core/random.js';
import { describe, test } from 'node:test';
import { CreateQueueCommand, SendMessageBatchCommand, SendMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import { makeTempDir, sqsClient, startBerth } from './harness/server.js';
import { receiveUntil } from './harness/sqs.js';

const seeds = (process.env.BERTH_CRASH_SEEDS ?? '11,22,33').split(',').map((seed) => Number(seed.trim())).filter((seed) => Number.isInteger(seed));

/** A seeded generator (the project's SeededRandom), so a failing seed replays. */
function seededRandom(seed: number): () => number {
  const random = new SeededRandom(seed);
  return () => random.next();
}

interface Acknowledged {
  body: string;
  messageId: string;
}

interface SenderState {
  acknowledged: Acknowledged[];
  attempted: number;
  stoppedBy?: string;
}

describe('server crash: acknowledged sends survive a SIGKILL', () => {
  for (const seed of seeds) {
    test(`seed ${seed}`, async (t) => {
      const random = seededRandom(seed);
      const crashAfterAcknowledged = 30 + Math.floor(random() * 250);
      const cleanups: Array<() => unknown> = [];
      t.after(async () => {
        for (const cleanup of cleanups.reverse()) await cleanup();
      });
      const dataDir = makeTempDir(`berth-crash-${seed}-`);
      cleanups.push(() => dataDir.remove());

      const first = await startBerth({ dataDir: dataDir.path, name: `server-crash-${seed}-before` });
      cleanups.push(() => first.stop());
      const client = sqsClient(first.url);
      cleanups.push(() => client.destroy());
      const standardUrl = (await client.send(new CreateQueueCommand({ QueueName: 'crash', Attributes: { VisibilityTimeout: '300' } }))).QueueUrl!;
      const fifoUrl = (await client.send(new CreateQueueCommand({ QueueName: 'crash.fifo', Attributes: { FifoQueue: 'true', VisibilityTimeout: '300' } }))).QueueUrl!;

      let totalAcknowledged = 0;
      let killed = false;
      let resolveKill!: () => void;
      const killReached = new Promise<void>((resolve) => {
        resolveKill = resolve;
      });
      const acknowledge = (state: SenderState, entry: Acknowledged) => {
        state.acknowledged.push(entry);
        totalAcknowledged += 1;
        if (totalAcknowledged >= crashAfterAcknowledged) resolveKill();
      };

      // Each sender sends one message (or batch) at a time until a send fails (the kill).
      const limitPerSender = 2_000;
      async function singleSender(name: string, state: SenderState, queueUrl: string, groupId?: string): Promise<void> {
        for (let index = 0; index < limitPerSender && !killed; index += 1) {
          const body = `${name}:${index}`;
          state.attempted += 1;
          try {
            const response = await client.send(
              new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body, MessageGroupId: groupId, MessageDeduplicationId: groupId === undefined ? undefined : body }),
            );
            assert.ok(response.MessageId, `seed ${seed}: an acknowledged send has a MessageId`);
            acknowledge(state, { body, messageId: response.MessageId });
          } catch (error) {
            if (error instanceof assert.AssertionError) throw error;
            state.stoppedBy = (error as Error).message;
            return;
          }
        }
      }
      async function batchSender(name: string, state: SenderState, queueUrl: string): Promise<void> {
        for (let batch = 0; batch < limitPerSender / 10 && !killed; batch += 1) {
          const bodies = Array.from({ length: 1 + Math.floor(random() * 10) }, (_, index) => `${name}:${batch}-${index}`);
          state.attempted += bodies.length;
          try {
            const response = await client.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: bodies.map((body, index) => ({ Id: `e${index}`, MessageBody: body })) }));
            assert.deepEqual(response.Failed ?? [], [], `seed ${seed}: no entry fails before the kill`);
            for (const entry of response.Successful ?? []) {
              const body = bodies[Number(entry.Id?.slice(1))];
              assert.ok(body !== undefined && entry.MessageId, `seed ${seed}: batch entry ${entry.Id} answered`);
              acknowledge(state, { body, messageId: entry.MessageId });
            }
          } catch (error) {
            if (error instanceof assert.AssertionError) throw error;
            state.stoppedBy = (error as Error).message;
            return;
          }
        }
      }

      const states = new Map<string, SenderState>();
      const newState = (name: string) => {
        const state: SenderState = { acknowledged: [], attempted: 0 };
        states.set(name, state);
        return state;
      };
      const fifoGroups = ['group-a', 'group-b'];
      const senders = [
        singleSender('single-1', newState('single-1'), standardUrl),
        singleSender('single-2', newState('single-2'), standardUrl),
        batchSender('batch-1', newState('batch-1'), standardUrl),
        ...fifoGroups.map((group) => singleSender(group, newState(group), fifoUrl, group)),
      ];
      const allSendersDone = Promise.all(senders);

      // Crash once enough sends were acknowledged (or when every sender already ended).
      await Promise.race([killReached, allSendersDone]);
      killed = true;
      first.kill('SIGKILL');
      const exit = await first.waitForExit();
      assert.equal(exit.signal, 'SIGKILL', `seed ${seed}: the server died of the SIGKILL`);
      await allSendersDone;
      assert.ok(totalAcknowledged >= crashAfterAcknowledged, `seed ${seed}: ${totalAcknowledged} sends acknowledged before the kill (wanted ${crashAfterAcknowledged}); sender errors: ${JSON.stringify([...states].map(([name, state]) => [name, state.stoppedBy]))}`);

      t.diagnostic(`seed ${seed}: killed after ${totalAcknowledged} acknowledged sends (target ${crashAfterAcknowledged}): ${JSON.stringify(Object.fromEntries([...states].map(([name, state]) => [name, state.acknowledged.length])))}`);
      const second = await startBerth({ dataDir: dataDir.path, name: `server-crash-${seed}-after` });
      cleanups.push(() => second.stop());
      const after = sqsClient(second.url);
      cleanups.push(() => after.destroy());

      // Standard queue: every acknowledged (body, MessageId) is there.
      const expectedStandard = new Map<string, string>();
      for (const name of ['single-1', 'single-2', 'batch-1']) for (const entry of states.get(name)!.acknowledged) expectedStandard.set(entry.body, entry.messageId);
      const standardReceived = await drainUntilSeen(after, standardUrl, new Set(expectedStandard.keys()), seed);
      for (const [body, messageId] of expectedStandard) {
        const message = standardReceived.get(body);
        assert.ok(message, `seed ${seed}: acknowledged message ${body} was lost in the crash`);
        assert.equal(message.MessageId, messageId, `seed ${seed}: ${body} keeps its MessageId`);
      }

      // FIFO queue: per group, send order, no duplicates, nothing acknowledged missing.
      const expectedFifo = new Set<string>();
      for (const group of fifoGroups) for (const entry of states.get(group)!.acknowledged) expectedFifo.add(entry.body);
      const fifoSequence: Message[] = [];
      await receiveUntil(
        after,
        { QueueUrl: fifoUrl },
        (messages) => {
          fifoSequence.splice(0, fifoSequence.length, ...messages);
          return [...expectedFifo].every((body) => messages.some((message) => message.Body === body));
        },
        { deleteEach: true, timeoutMs: 60_000, what: `seed ${seed}: every acknowledged FIFO message` },
      );
      for (const group of fifoGroups) {
        const indices = fifoSequence.filter((message) => message.Body?.startsWith(`${group}:`)).map((message) => Number(message.Body?.split(':')[1]));
        const acknowledgedCount = states.get(group)!.acknowledged.length;
        for (let position = 0; position < indices.length; position += 1) {
          assert.equal(indices[position], position, `seed ${seed}: ${group} delivered in send order without gaps or duplicates: ${JSON.stringify(indices)}`);
        }
        assert.ok(indices.length >= acknowledgedCount && indices.length <= acknowledgedCount + 1, `seed ${seed}: ${group}: ${indices.length} received, ${acknowledgedCount} acknowledged (at most one more was in flight)`);
      }
      const exitAfter = await second.stop();
      assert.equal(exitAfter.code, 0, `seed ${seed}: the restarted server stops cleanly`);
    });
  }
});

/** Receives and deletes until every body in `wanted` was seen; returns body -> first message. */
async function drainUntilSeen(client: SQSClient, queueUrl: string, wanted: Set<string>, seed: number): Promise<Map<string, Message>> {
  const seen = new Map<string, Message>();
  await receiveUntil(
    client,
    { QueueUrl: queueUrl },
    (messages) => {
      for (const message of messages) if (message.Body !== undefined && !seen.has(message.Body)) seen.set(message.Body, message);
      return [...wanted].every((body) => seen.has(body));
    },
    { deleteEach: true, timeoutMs: 90_000, what: `seed ${seed}: ${wanted.size} acknowledged standard messages` },
  ).catch((error: Error) => {
    const missing = [...wanted].filter((body) => !seen.has(body));
    throw new Error(`${error.message}; missing ${missing.length}: ${missing.slice(0, 20).join(', ')}`);
  });
  return seen;
}
