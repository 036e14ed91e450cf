import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { PrimaryReplication, SnapshotAssembly, checkpointSafeEnd, committedEnd, decideCatchUp, decideReplicate, divergencePoint, epochRunsOf } from './state.js';
import { SeededRandom } from '../core/random.js';
import { AckStatus, FrameKind, FrameSplitter, decodeFrame, encodeFrame, type Frame } from './wire.js';

describe('commit rule', () => {
  test('r=1 is the primary alone; r=k needs the primary and k-1 backups', () => {
    assert.equal(committedEnd(10, [3, 7], 1), 10);
    assert.equal(committedEnd(10, [3, 7], 2), 7);
    assert.equal(committedEnd(10, [3, 7], 3), 3);
    assert.equal(committedEnd(5, [9, 9], 3), 5, 'the primary itself must hold it durably');
    assert.equal(committedEnd(10, [7], 3), 0, 'not enough replicas: nothing committed');
  });

  test('the committed end is the (r-1)-th largest backup end, capped by the primary own, for any ends (against a sort)', () => {
    const random = new SeededRandom(1123);
    const bySort = (own: number, ends: number[], replicaCount: number): number => {
      if (replicaCount <= 1) return own;
      const needed = [...ends].sort((a, b) => b - a)[replicaCount - 2];
      return needed === undefined ? 0 : Math.min(own, needed);
    };
    for (let round = 0; round < 2000; round++) {
      const ends = Array.from({ length: random.int(6) }, () => random.int(12));
      const own = random.int(12);
      const replicaCount = 1 + random.int(7);
      assert.equal(committedEnd(own, ends, replicaCount), bySort(own, ends, replicaCount), `own ${own}, ends [${ends.join(', ')}], r=${replicaCount}`);
    }
  });
});

describe('primary replication, scenario', () => {
  test('handshake, pipelined window, acks, a stale epoch supersedes the primary', () => {
    // Primary at epoch 4 with backups b and c; window of 5 records, frames of 3.
    const state = new PrimaryReplication(4, ['b', 'c'], 5);
    assert.equal(state.nextSend('b', 10, 3), undefined, 'nothing is sent before the handshake');
    // b's log matched ours up to 2; c was empty.
    state.startStreaming('b', 2);
    state.startStreaming('c', 0);
    assert.deepEqual(state.nextSend('b', 10, 3), { from: 2, to: 5 });
    state.markSent('b', 5);
    assert.deepEqual(state.nextSend('b', 10, 3), { from: 5, to: 7 }, 'window: at most 5 beyond the durable end 2');
    state.markSent('b', 7);
    assert.equal(state.nextSend('b', 10, 3), undefined);
    // b acknowledges 5 durable: the window opens again.
    assert.equal(state.onAck('b', 4, AckStatus.Ok, 5), 'none');
    assert.deepEqual(state.nextSend('b', 10, 3), { from: 7, to: 10 });
    // Commit: primary durable to 10, b to 5, c to 0.
    assert.equal(state.committedEnd(10, 2), 5);
    assert.equal(state.committedEnd(10, 3), 0);
    // An ack of an older epoch changes nothing; an old ack never moves durable backwards.
    assert.equal(state.onAck('b', 3, AckStatus.Ok, 9), 'none');
    state.onAck('b', 4, AckStatus.Ok, 4);
    assert.equal(state.backups.get('b')!.durableEnd, 5);
    // c needs a resync (say it restarted).
    assert.equal(state.onAck('c', 4, AckStatus.NeedsSync, 0), 'resync');
    assert.equal(state.nextSend('c', 10, 3), undefined);
    // b says a newer epoch exists.
    assert.equal(state.onAck('b', 5, AckStatus.StaleEpoch, 0), 'superseded');
    assert.equal(state.superseded, true);
    assert.equal(state.committedEnd(10, 2), 0, 'a stale backup no longer counts');
  });
});

describe('backup decisions', () => {
  test('refuses lower epochs, unsynced epochs and gaps; skips records it holds', () => {
    const state = { knownEpoch: 5, syncedEpoch: 5, endOffset: 10 };
    assert.deepEqual(decideReplicate(state, 4, 10, 1), { action: 'refuse', status: AckStatus.StaleEpoch });
    assert.deepEqual(decideReplicate({ ...state, syncedEpoch: 0 }, 5, 10, 1), { action: 'refuse', status: AckStatus.NeedsSync });
    assert.deepEqual(decideReplicate(state, 5, 11, 1), { action: 'refuse', status: AckStatus.NeedsSync });
    assert.deepEqual(decideReplicate(state, 5, 8, 4), { action: 'append', skip: 2 });
    assert.deepEqual(decideReplicate(state, 5, undefined, 0), { action: 'append', skip: 0 });
  });
});

describe('divergence', () => {
  const runs = (...pairs: Array<[number, number]>) => pairs.map(([offset, epoch]) => ({ offset, epoch }));

  test('identical logs: keep everything', () => {
    assert.equal(divergencePoint(0, runs([0, 1]), 10, runs([0, 1]), 10), 10);
  });

  test('backup behind: keep everything it has', () => {
    assert.equal(divergencePoint(0, runs([0, 1], [6, 2]), 10, runs([0, 1], [6, 2]), 8), 8);
  });

  test('backup holds an uncommitted tail of the old epoch beyond the new primary', () => {
    // Old primary (epoch 2) sent 0..12 to this backup, the new primary only got 0..9 and
    // then appended at epoch 3 from 9 on.
    assert.equal(divergencePoint(0, runs([0, 1], [5, 2], [9, 3]), 15, runs([0, 1], [5, 2]), 12), 9);
  });

  test('backup ahead of the primary in the same epoch is cut to the primary end', () => {
    assert.equal(divergencePoint(0, runs([0, 2]), 6, runs([0, 2]), 9), 6);
  });

  test('nothing matches within the tail: cut at the tail start', () => {
    assert.equal(divergencePoint(4, runs([4, 3]), 9, runs([4, 2]), 9), 4);
  });

  test('epoch runs compress records', () => {
    const records = [0, 1, 2, 3, 4].map((offset) => ({ offset, epoch: offset < 3 ? 1 : 2 }));
    assert.deepEqual(epochRunsOf(records), runs([0, 1], [3, 2]));
  });
});

describe('catch-up decisions', () => {
  const base = { primaryStartOffset: 100, primaryEndOffset: 500, backupFloorOffset: 0, snapshotOffset: 300 };

  test('records while the primary still holds the cut and the backup may cut there', () => {
    assert.deepEqual(decideCatchUp({ ...base, cut: 100 }), { action: 'records', from: 100 });
    assert.deepEqual(decideCatchUp({ ...base, cut: 450, backupFloorOffset: 450 }), { action: 'records', from: 450 });
  });

  test('a snapshot when the backup is behind the log start, or would have to cut below its own checkpoint', () => {
    assert.deepEqual(decideCatchUp({ ...base, cut: 99 }), { action: 'snapshot' });
    assert.deepEqual(decideCatchUp({ ...base, cut: 0 }), { action: 'snapshot' });
    // A backup whose checkpoint covers a tail the new primary lacks (it was ahead): replaced by the snapshot.
    assert.deepEqual(decideCatchUp({ ...base, cut: 200, backupFloorOffset: 250 }), { action: 'snapshot' });
  });

  test('waits when no usable checkpoint exists', () => {
    assert.equal(decideCatchUp({ ...base, cut: 50, snapshotOffset: undefined }).action, 'wait');
    assert.equal(decideCatchUp({ ...base, cut: 50, snapshotOffset: 90 }).action, 'wait', 'a checkpoint below the log start cannot be followed by records');
  });

  test('checkpoints: a down backup stops holding them back while another streams; with none streaming, nothing new', () => {
    const streaming = (durableEnd: number) => ({ phase: 'streaming' as const, nextOffset: durableEnd, durableEnd });
    const syncing = { phase: 'syncing' as const, nextOffset: 0, durableEnd: 0 };
    assert.equal(checkpointSafeEnd(90, []), 90, 'a partition without backups');
    assert.equal(checkpointSafeEnd(90, [streaming(70), streaming(80)]), 70);
    assert.equal(checkpointSafeEnd(90, [streaming(80), syncing]), 80);
    assert.equal(checkpointSafeEnd(60, [streaming(80), syncing]), 60, 'never beyond the primary itself');
    assert.equal(checkpointSafeEnd(90, [syncing, { ...syncing, phase: 'stale' as const }]), 0);
  });
});

describe('snapshot assembly (backup side)', () => {
  const chunk = (position: number, data: number[], epoch = 5) => ({ epoch, snapshotOffset: 40, totalBytes: 5, position, data: new Uint8Array(data) });

  test('collects chunks in order and hands out the whole snapshot once', () => {
    const assembly = new SnapshotAssembly();
    assert.equal(assembly.add(5, chunk(0, [1, 2])), true);
    assert.equal(assembly.add(5, chunk(2, [3, 4, 5])), true);
    assert.equal(assembly.take(5, 40, 4), undefined, 'another size');
    assert.equal(assembly.add(5, chunk(0, [1, 2])), true);
    assert.equal(assembly.add(5, chunk(2, [3, 4, 5])), true);
    assert.deepEqual(assembly.take(5, 40, 5), new Uint8Array([1, 2, 3, 4, 5]));
    assert.equal(assembly.take(5, 40, 5), undefined, 'taken once');
  });

  test('refuses a stale epoch, a gap and an incomplete transfer', () => {
    const assembly = new SnapshotAssembly();
    assert.equal(assembly.add(6, chunk(0, [1, 2])), false, 'epoch 5 < known 6');
    assert.equal(assembly.take(5, 40, 5), undefined);
    assert.equal(assembly.add(5, chunk(0, [1, 2])), true);
    assert.equal(assembly.add(5, chunk(3, [4, 5])), false, 'gap at 2');
    assert.equal(assembly.take(5, 40, 5), undefined);
    assert.equal(assembly.add(5, chunk(0, [1, 2])), true);
    assert.equal(assembly.take(5, 40, 5), undefined, 'incomplete');
    // A newer primary's transfer replaces an older one in progress.
    assert.equal(assembly.add(5, chunk(0, [1, 2])), true);
    assert.equal(assembly.add(5, chunk(0, [9, 9, 9, 9, 9], 7)), true);
    assert.equal(assembly.add(5, chunk(2, [3, 4, 5])), false, 'a chunk of the older transfer');
    assert.deepEqual(assembly.take(7, 40, 5), new Uint8Array([9, 9, 9, 9, 9]), 'the newer transfer is intact');
  });
});

describe('peer wire format', () => {
  test('every frame kind round-trips, split at any byte', () => {
    const frames: Frame[] = [
      { kind: FrameKind.Request, requestId: 7, method: 'send', body: { a: 1, bytes: new Uint8Array([1, 2, 3]), list: ['x'] } },
      { kind: FrameKind.Response, requestId: 7, ok: false, body: { code: 'ServiceUnavailable', message: 'no' } },
      { kind: FrameKind.Cancel, requestId: 9 },
      {
        kind: FrameKind.Replicate,
        key: 'inc/0',
        epoch: 3,
        committedEnd: 41,
        records: [
          { type: 1, epoch: 3, offset: 41, timestampMs: 1_700_000_000_123, payload: new Uint8Array([9, 8, 7]), leafHash: new Uint8Array(32) },
          { type: 2, epoch: 3, offset: 42, timestampMs: 1_700_000_000_124, payload: new Uint8Array(0), leafHash: new Uint8Array(32) },
        ],
      },
      { kind: FrameKind.Ack, key: 'inc/0', epoch: 3, status: AckStatus.Ok, durableEnd: 2 ** 40 },
      { kind: FrameKind.SnapshotChunk, key: 'inc/0', epoch: 4, snapshotOffset: 2 ** 33, totalBytes: 10, position: 6, data: new Uint8Array([1, 2, 3, 4]) },
    ];
    const stream = Buffer.concat(frames.map(encodeFrame));
    for (const cut of [1, 3, 17, stream.length - 1]) {
      const splitter = new FrameSplitter();
      const bodies = [...splitter.push(stream.subarray(0, cut)), ...splitter.push(stream.subarray(cut))];
      assert.deepEqual(bodies.map(decodeFrame), frames);
    }
  });

  test('a frame announcing more than the maximum is refused', () => {
    const splitter = new FrameSplitter();
    const header = Buffer.alloc(4);
    header.writeUInt32BE(0xffffffff, 0);
    assert.throws(() => splitter.push(header), /out of bounds/);
  });
});
