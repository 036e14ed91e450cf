// The record cache holds payloads consumers will ask for soon: a send taken into the queue
// machine's window is cached, a send behind a backlog is not (it is read back from the log
// with the backlog, and cached then). Caching those pushed out the payloads the consumers
// needed next: with 500,000 messages waiting, the server evicted one payload per send.
// Real partition runner on the simulated disk, a clock moved only by the test.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../core/clock.js';
import { openTestRunner } from '../testing/test-partition.js';
import { testPayload } from '../testing/test-payloads.js';

const sameSize = (index: number): string => `body-${String(index).padStart(3, '0')}`;

test('sends behind a backlog are not cached, and the backlog is still delivered in order with its payloads read from the log', async () => {
  const clock = new ManualClock();
  const runner = await openTestRunner({ name: 'backlog-cache', clock, windowMessagesMax: 4 });
  try {
    await runner.send(Array.from({ length: 4 }, (_, index) => testPayload(clock, index, sameSize(index))));
    const windowBytes = runner.heldForSpeed.cachedPayloadBytes;
    assert.ok(windowBytes > 0, 'sends taken into the window are cached');

    await runner.send(Array.from({ length: 26 }, (_, index) => testPayload(clock, 4 + index, sameSize(4 + index))));
    assert.equal(runner.heldForSpeed.cachedPayloadBytes, windowBytes, 'sends behind the backlog add nothing to the cache');

    const bodies: string[] = [];
    for (let receives = 0; receives < 20 && bodies.length < 30; receives++) {
      const delivered = await runner.receive({ maxMessages: 10, waitTimeSeconds: 0, visibilityTimeoutSeconds: 600 });
      bodies.push(...delivered.map((delivery) => delivery.payload.body));
    }
    assert.deepEqual(bodies, Array.from({ length: 30 }, (_, index) => sameSize(index)), 'every message, once, in send order');
  } finally {
    await runner.close();
  }
});

test('once the backlog is drained, sends are cached again', async () => {
  const clock = new ManualClock();
  const runner = await openTestRunner({ name: 'backlog-cache-after', clock, windowMessagesMax: 2 });
  try {
    await runner.send(Array.from({ length: 6 }, (_, index) => testPayload(clock, index, sameSize(index))));
    let delivered = 0;
    for (let receives = 0; receives < 20 && delivered < 6; receives++) {
      delivered += (await runner.receive({ maxMessages: 10, waitTimeSeconds: 0, visibilityTimeoutSeconds: 600 })).length;
    }
    assert.equal(delivered, 6);
    const before = runner.heldForSpeed.cachedPayloadBytes;
    await runner.send([testPayload(clock, 6, sameSize(6))]);
    assert.ok(runner.heldForSpeed.cachedPayloadBytes > before, 'a send into an empty window is cached');
  } finally {
    await runner.close();
  }
});
