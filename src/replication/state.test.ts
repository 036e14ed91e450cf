import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { PrimaryReplication, committedEnd, decideReplicate, divergencePoint, epochRunsOf } from './state.js';
import { AckStatus, FrameKind, FrameSplitter, decodeFrame, encodeFrame, type Frame } from './wire.js';

describe('commit rule', () => {
  test('r=1 is the primary alone; r=k needs the primary and k-1 backups', () => {
    assert.equal(committedEnd(10, [3, 7], 1), 10);
    assert.equal(committedEnd(10, [3, 7], 2), 7);
    assert.equal(committedEnd(10, [3, 7], 3), 3);
    assert.equal(committedEnd(5, [9, 9], 3), 5, 'the primary itself must hold it durably');
    assert.equal(committedEnd(10, [7], 3), 0, 'not enough replicas: nothing committed');
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
