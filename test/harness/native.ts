// Berth SDK helpers for the integration tests: bounded receive loops that wait for an
// event instead of sleeping.

import assert from 'node:assert/strict';
import type { Berth, Message } from '../../src/client/index.js';

/** Receives (long polls of waitMs) and acks until `count` distinct bodies were seen; fails after 30 s. Sorted. */
export async function takeDistinctBodies(berth: Berth, queue: string, count: number, waitMs = 1000): Promise<string[]> {
  const seen = new Set<string>();
  const deadline = Date.now() + 30_000;
  while (seen.size < count) {
    assert.ok(Date.now() < deadline, `timed out on ${queue}: ${seen.size} of ${count}`);
    const messages: Message[] = await berth.receive(queue, { maxMessages: 10, waitMs });
    for (const message of messages) {
      seen.add(message.body);
      await message.ack();
    }
  }
  return [...seen].sort();
}
