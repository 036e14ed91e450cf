// A node that is alive but cannot commit steps aside: against a real etcd, an
// EtcdCoordinator whose oldest running fsync (`pendingSyncAgeMs`, a cluster node's
// NodeFileSystem's) has waited longer than the lease TTL revokes its lease, so
// its registration vanishes at once and its acknowledgement fence shuts; it stays away
// while the reason holds and registers again, fence open after a fresh view, once it is
// gone. The chaos harness's disk stall (test/chaos-short.test.ts) drives the whole node.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { EtcdCoordinator } from '../src/io/etcd-coordinator.js';
import { stalledDiskReason } from '../src/cluster/lease-keeper.js';
import { startEtcd } from './harness/cluster.js';
import { waitUntil } from './harness/server.js';

test('stalledDiskReason: only an fsync older than the lease TTL is a reason to step aside', () => {
  assert.equal(stalledDiskReason(0, 3000), undefined);
  assert.equal(stalledDiskReason(3000, 3000), undefined);
  assert.match(stalledDiskReason(3001, 3000) ?? '', /fsync has waited 3001 ms, longer than the lease TTL \(3000 ms\)/);
});

test('a coordinator with a stalled reason revokes its lease, stays away while it holds, and registers again after', { timeout: 60_000 }, async () => {
  const etcd = await startEtcd();
  const prefix = '/step-aside-test/';
  const reader = new Etcd3({ hosts: [etcd.url] });
  const warnings: string[] = [];
  // How long the node's oldest running fsync has waited: past the 2 s TTL it is stalled.
  let syncAgeMs = 0;
  const coordinator = new EtcdCoordinator({
    endpoints: [etcd.url],
    prefix,
    leaseTtlSeconds: 2,
    fenceMarginMs: 500,
    pollIntervalMs: 100,
    pendingSyncAgeMs: () => syncAgeMs,
    logger: { info: () => undefined, warn: (_object, message) => warnings.push(message) },
  });
  const registered = async (): Promise<boolean> => (await reader.get(`${prefix}nodes/n1`).string()) !== null;
  const fenceOpen = (): boolean => coordinator.acknowledgeUntilMs() > performance.now();
  try {
    await coordinator.start({ id: 'n1', zone: 'z1', region: 'r1', httpUrl: '', peerAddress: '127.0.0.1:1' });
    await waitUntil(fenceOpen, 'the fence to open after registering', 10_000);
    assert.equal(await registered(), true);

    syncAgeMs = 10_000;
    await waitUntil(async () => !(await registered()), 'the registration to vanish once the node is stalled', 10_000);
    assert.equal(fenceOpen(), false, 'a node that stepped aside may not acknowledge');
    assert.ok(warnings.some((message) => message.startsWith('stepping aside')), warnings.join('\n'));
    // Well past the TTL: a node still stalled has not registered again.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    assert.equal(await registered(), false, 'registered again while still stalled');
    assert.equal(fenceOpen(), false);

    syncAgeMs = 0;
    await waitUntil(registered, 'the node to register again once the reason is gone', 10_000);
    await waitUntil(fenceOpen, 'the fence to reopen after a fresh view', 10_000);
  } finally {
    await coordinator.close();
    reader.close();
    etcd.child.kill('SIGKILL');
    await new Promise<void>((resolve) => (etcd.child.exitCode !== null ? resolve() : etcd.child.once('exit', () => resolve())));
    etcd.dir.remove();
  }
});
