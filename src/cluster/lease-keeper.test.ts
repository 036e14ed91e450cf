// The lease flow both coordinators run, on a hand-driven clock with an in-memory backend
// (the real backends are covered by test/etcd-step-aside.test.ts against etcd and by the
// cluster simulator).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock, sleepOn } from '../core/clock.js';
import { LeaseKeeper, type KeepaliveOutcome } from './lease-keeper.js';

const ttlMs = 3000;
const marginMs = 500;

function keeperOn(clock: ManualClock, stalled: { syncAgeMs?: number } = {}) {
  const calls: string[] = [];
  let nextId = 1;
  let keepaliveOutcome: KeepaliveOutcome = 'renewed';
  const warnings: string[] = [];
  const keeper = new LeaseKeeper<number>(
    {
      grant: async () => {
        calls.push(`grant ${nextId}`);
        return nextId++;
      },
      keepalive: async (id) => {
        calls.push(`keepalive ${id}`);
        return keepaliveOutcome;
      },
      revoke: async (id) => {
        calls.push(`revoke ${id}`);
      },
      monotonicMs: () => clock.monotonicMs(),
      sleep: (ms) => sleepOn(clock, ms),
      running: () => true,
      describe: (id) => ({ leaseId: id }),
    },
    { ttlMs, fenceMarginMs: marginMs, pendingSyncAgeMs: () => stalled.syncAgeMs ?? 0, logger: { info: () => undefined, warn: (_object, message) => warnings.push(message) } },
  );
  return { keeper, calls, warnings, expireNext: () => (keepaliveOutcome = 'expired'), renewNext: () => (keepaliveOutcome = 'renewed') };
}

/** Lets the keeper's promises run, and the clock's timers due by `ms`. */
async function settle(clock: ManualClock, ms = 0): Promise<void> {
  for (let step = 0; step < 20; step++) {
    await new Promise((resolve) => setImmediate(resolve));
    clock.advance(ms / 20);
  }
}

test('the fence opens only after a view read that started after the grant, and follows keepalives', async () => {
  const clock = new ManualClock();
  const { keeper } = keeperOn(clock);
  const before = clock.monotonicMs();
  await keeper.grant();
  keeper.viewRead(before - 1, true);
  assert.equal(keeper.acknowledgeUntilMs(), 0, 'a view read started before the grant does not open the fence');
  keeper.viewRead(clock.monotonicMs(), true);
  assert.equal(keeper.acknowledgeUntilMs(), before + ttlMs - marginMs);
  clock.advance(1000);
  keeper.keepalive();
  await settle(clock);
  assert.equal(keeper.acknowledgeUntilMs(), before + 1000 + ttlMs - marginMs, 'a confirmed keepalive moves the fence to its send time + TTL');
});

test('an expired lease, or this node missing from the view, shuts the fence and registers again', async () => {
  const clock = new ManualClock();
  const { keeper, calls, warnings, expireNext, renewNext } = keeperOn(clock);
  await keeper.grant();
  keeper.viewRead(clock.monotonicMs(), true);
  expireNext();
  keeper.keepalive();
  await settle(clock);
  assert.equal(keeper.acknowledgeUntilMs(), 0);
  assert.deepEqual(calls, ['grant 1', 'keepalive 1', 'grant 2']);
  assert.equal(keeper.lease, 2);
  assert.ok(warnings.some((message) => message.startsWith('etcd lease lost')));
  keeper.viewRead(clock.monotonicMs(), true);
  assert.ok(keeper.acknowledgeUntilMs() > 0, 'open again after a view read following the new grant');

  renewNext();
  keeper.viewRead(clock.monotonicMs(), false);
  await settle(clock);
  assert.equal(keeper.lease, 3, 'the missing key made it register again');
  assert.equal(keeper.acknowledgeUntilMs(), 0);
});

test('a stalled node steps aside: it revokes its lease, keeps none while the reason holds, and registers again after', async () => {
  const clock = new ManualClock();
  const stalled: { syncAgeMs?: number } = {};
  const { keeper, calls, warnings } = keeperOn(clock, stalled);
  await keeper.grant();
  keeper.viewRead(clock.monotonicMs(), true);
  stalled.syncAgeMs = ttlMs + 1; // an fsync older than the lease
  keeper.keepalive();
  assert.equal(keeper.acknowledgeUntilMs(), 0, 'the fence shuts at once');
  assert.equal(keeper.lease, undefined);
  await settle(clock, 2000);
  keeper.keepalive(); // no keepalive, no grant while the reason holds
  await settle(clock, 2000);
  assert.deepEqual(calls, ['grant 1', 'revoke 1']);
  assert.ok(warnings.some((message) => message.startsWith('stepping aside')));
  delete stalled.syncAgeMs;
  await settle(clock, 1000);
  assert.deepEqual(calls, ['grant 1', 'revoke 1', 'grant 2']);
  assert.equal(keeper.lease, 2);
  keeper.viewRead(clock.monotonicMs(), true);
  assert.ok(keeper.acknowledgeUntilMs() > 0);
  await keeper.close();
  assert.equal(keeper.acknowledgeUntilMs(), 0);
  assert.deepEqual(calls, ['grant 1', 'revoke 1', 'grant 2', 'revoke 2']);
});
