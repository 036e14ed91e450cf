import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BacklogRuns } from './backlog.js';

test('a backlog of a million enqueues with ever-changing sent times keeps at most runsMax runs and exact totals', () => {
  const runsMax = 1024;
  const backlog = new BacklogRuns(runsMax);
  const messages = 1_000_000;
  // One distinct sent time per 3 messages and a delay on every 7th: no two neighbours merge by themselves.
  for (let offset = 0; offset < messages; offset++) backlog.add(offset, 1_000 + Math.floor(offset / 3), offset % 7 === 0 ? 60_000 : 0);
  assert.ok(backlog.runCount <= runsMax, `${backlog.runCount} runs for ${messages} messages (bound ${runsMax})`);
  const tally = backlog.tally(10_000_000, 86_400_000);
  assert.equal(tally.visible + tally.delayed, messages);
  // Loading from the front takes messages out one by one; runs only shrink.
  for (let offset = 0; offset < 500_000; offset++) backlog.remove(offset);
  const after = backlog.tally(10_000_000, 86_400_000);
  assert.equal(after.visible + after.delayed, messages - 500_000);
  assert.ok(backlog.runCount <= runsMax);
});
