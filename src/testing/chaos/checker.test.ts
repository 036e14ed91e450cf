import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { checkHistory } from './checker.js';
import type { History, HistoryEvent, QueueSpec } from './history.js';

const standard: QueueSpec = { name: 'std', fifo: false, replicaCount: 2 };
const fifo: QueueSpec = { name: 'f.fifo', fifo: true, replicaCount: 2 };

function send(queue: string, key: string, messageId: string, atMs: number, extra: Partial<HistoryEvent> = {}): HistoryEvent {
  return { type: 'send', queue, key, body: `${key} x`, entry: 'n1', startMs: atMs, endMs: atMs + 5, outcome: 'ok', messageId, ...extra } as HistoryEvent;
}
function receive(queue: string, startMs: number, endMs: number, messages: Array<[string, string]>, visibilityTimeoutSeconds = 10): HistoryEvent {
  return { type: 'receive', queue, entry: 'n2', startMs, endMs, visibilityTimeoutSeconds, outcome: 'ok', messages: messages.map(([messageId, key]) => ({ messageId, body: `${key} x`, receipt: `r-${messageId}-${startMs}` })) };
}
/** A delete; `receivedAtMs` names the delivery whose receipt it uses (the start of that receive). */
function remove(queue: string, messageId: string, atMs: number, outcome: 'ok' | 'error' = 'ok', receivedAtMs?: number): HistoryEvent {
  const receipt = receivedAtMs === undefined ? 'r' : `r-${messageId}-${receivedAtMs}`;
  return { type: 'delete', queue, entry: 'n3', messageId, receipt, startMs: atMs, endMs: atMs + 5, outcome };
}
function history(events: HistoryEvent[], drainComplete = true): History {
  return { queues: [standard, fifo], events, drainComplete, deduplicationWindowMs: 300_000 };
}
const kinds = (h: History): string[] => checkHistory(h).anomalies.map((anomaly) => anomaly.kind);

describe('chaos history checker', () => {
  test('a clean history has no anomalies', () => {
    const report = checkHistory(history([send('std', 'std/p/0', 'a', 0), receive('std', 10, 20, [['a', 'std/p/0']]), remove('std', 'a', 30)]));
    assert.equal(report.ok, true);
    assert.deepEqual(report.anomalies, []);
  });

  test('an acknowledged send never delivered is lost and fails the run; an unacknowledged one is not', () => {
    const report = checkHistory(history([send('std', 'std/p/0', 'a', 0), send('std', 'std/p/1', 'b', 0, { outcome: 'error', messageId: undefined } as never)]));
    assert.equal(report.ok, false);
    assert.deepEqual(report.anomalies.map((anomaly) => anomaly.messageId), ['a']);
  });

  test('delivered, never deleted, and not seen again by a complete drain: vanished', () => {
    const events = [send('std', 'std/p/0', 'a', 0), receive('std', 10, 20, [['a', 'std/p/0']])];
    assert.deepEqual(kinds(history(events, true)), ['lost-acknowledged']);
    assert.deepEqual(kinds(history(events, false)), []);
  });

  test('redelivery before the visibility deadline is reported; after it, counted as a redelivery', () => {
    const early = [send('std', 'std/p/0', 'a', 0), receive('std', 10, 20, [['a', 'std/p/0']]), receive('std', 5_000, 5_010, [['a', 'std/p/0']]), remove('std', 'a', 5_020)];
    assert.deepEqual(kinds(history(early)), ['early-redelivery']);
    const late = [send('std', 'std/p/0', 'a', 0), receive('std', 10, 20, [['a', 'std/p/0']]), receive('std', 10_020, 10_030, [['a', 'std/p/0']]), remove('std', 'a', 10_040)];
    const report = checkHistory(history(late));
    assert.deepEqual(report.anomalies, []);
    assert.equal(report.queues[0]!.redeliveries, 1);
  });

  test('standard duplicates are counted, FIFO duplicates reported', () => {
    const standardEvents = [send('std', 'std/p/0', 'a', 0), receive('std', 10, 20, [['a', 'std/p/0']]), remove('std', 'a', 30, 'ok', 10), receive('std', 100, 110, [['a', 'std/p/0']]), remove('std', 'a', 120, 'ok', 100)];
    const standardReport = checkHistory(history(standardEvents));
    assert.deepEqual(standardReport.anomalies, []);
    assert.equal(standardReport.queues[0]!.standardDuplicates, 1);
    // One FIFO deduplication id stored as two messages.
    const fifoEvents = [
      send('f.fifo', 'f.fifo/g/0', 'a', 0, { group: 'g', index: 0, outcome: 'error', messageId: undefined } as never),
      send('f.fifo', 'f.fifo/g/0', 'b', 1_000, { group: 'g', index: 0 } as never),
      receive('f.fifo', 2_000, 2_010, [['a', 'f.fifo/g/0']]), remove('f.fifo', 'a', 2_020),
      receive('f.fifo', 3_000, 3_010, [['b', 'f.fifo/g/0']]), remove('f.fifo', 'b', 3_020),
    ];
    assert.deepEqual(kinds(history(fifoEvents)), ['fifo-duplicate']);
  });

  test('FIFO: a delivery after a delete with the current receipt is reported; a delete with a superseded receipt promises nothing (SQS keeps the message)', () => {
    const current = [
      send('f.fifo', 'f.fifo/g/0', 'a', 0, { group: 'g', index: 0 } as never),
      receive('f.fifo', 100, 110, [['a', 'f.fifo/g/0']], 5), remove('f.fifo', 'a', 200, 'ok', 100),
      receive('f.fifo', 6_000, 6_010, [['a', 'f.fifo/g/0']], 5), remove('f.fifo', 'a', 6_020, 'ok', 6_000),
    ];
    assert.deepEqual(kinds(history(current)), ['fifo-duplicate']);
    // The first consumer's visibility ran out, a second consumer received the message, and
    // only then did the first delete with its old receipt: success, message kept. The second
    // consumer's delete failed, so the message came back once more.
    const superseded = [
      send('f.fifo', 'f.fifo/g/0', 'a', 0, { group: 'g', index: 0 } as never),
      receive('f.fifo', 100, 110, [['a', 'f.fifo/g/0']], 5),
      receive('f.fifo', 5_200, 5_210, [['a', 'f.fifo/g/0']], 5),
      remove('f.fifo', 'a', 5_300, 'ok', 100),
      remove('f.fifo', 'a', 5_400, 'error', 5_200),
      receive('f.fifo', 10_300, 10_310, [['a', 'f.fifo/g/0']], 5), remove('f.fifo', 'a', 10_320, 'ok', 10_300),
    ];
    assert.deepEqual(kinds(history(superseded)), []);
    // A receive that failed after the first delivery's visibility ran out may have taken the
    // message (its answer was lost): the first consumer's delete is then stale too.
    const lostAnswer = [
      send('f.fifo', 'f.fifo/g/0', 'a', 0, { group: 'g', index: 0 } as never),
      receive('f.fifo', 100, 110, [['a', 'f.fifo/g/0']], 5),
      { type: 'receive', queue: 'f.fifo', entry: 'n1', startMs: 5_150, endMs: 5_900, visibilityTimeoutSeconds: 5, outcome: 'error', error: 'timeout', messages: [] } as HistoryEvent,
      remove('f.fifo', 'a', 5_300, 'ok', 100),
      receive('f.fifo', 10_300, 10_310, [['a', 'f.fifo/g/0']], 5), remove('f.fifo', 'a', 10_320, 'ok', 10_300),
    ];
    assert.deepEqual(kinds(history(lostAnswer)), []);
    // The same failed receive before the visibility ran out could not have taken it.
    const early = lostAnswer.map((event) => (event.type === 'receive' && event.outcome === 'error' ? { ...event, startMs: 1_000, endMs: 1_500 } : event));
    assert.deepEqual(kinds(history(early)), ['fifo-duplicate']);
  });

  test('FIFO: a later message of a group before an earlier acknowledged one is a reorder', () => {
    const events = [
      send('f.fifo', 'f.fifo/g/0', 'a', 0, { group: 'g', index: 0 } as never),
      send('f.fifo', 'f.fifo/g/1', 'b', 10, { group: 'g', index: 1 } as never),
      receive('f.fifo', 100, 110, [['b', 'f.fifo/g/1']]), remove('f.fifo', 'b', 120),
      receive('f.fifo', 200, 210, [['a', 'f.fifo/g/0']]), remove('f.fifo', 'a', 220),
    ];
    assert.deepEqual(kinds(history(events)), ['fifo-reorder']);
    const inOrder = [events[0]!, events[1]!, receive('f.fifo', 100, 110, [['a', 'f.fifo/g/0'], ['b', 'f.fifo/g/1']]), remove('f.fifo', 'a', 120), remove('f.fifo', 'b', 130)];
    assert.deepEqual(kinds(history(inOrder)), []);
  });

  test('FIFO: a delivery while another message of the group is certainly in flight is reported', () => {
    const events = [
      send('f.fifo', 'f.fifo/g/0', 'a', 0, { group: 'g', index: 0 } as never),
      send('f.fifo', 'f.fifo/g/1', 'b', 10, { group: 'g', index: 1 } as never),
      receive('f.fifo', 100, 110, [['a', 'f.fifo/g/0']]),
      receive('f.fifo', 200, 210, [['b', 'f.fifo/g/1']]), remove('f.fifo', 'b', 220),
      receive('f.fifo', 10_200, 10_210, [['a', 'f.fifo/g/0']]), remove('f.fifo', 'a', 10_220),
    ];
    assert.ok(kinds(history(events)).includes('fifo-group-in-flight'));
  });

  test('a body no send made, or a changed body, is reported', () => {
    const events: HistoryEvent[] = [
      send('std', 'std/p/0', 'a', 0),
      { type: 'receive', queue: 'std', entry: 'n1', startMs: 10, endMs: 20, visibilityTimeoutSeconds: 10, outcome: 'ok', messages: [{ messageId: 'a', body: 'std/p/0 y', receipt: 'r' }, { messageId: 'z', body: 'std/p/9 x', receipt: 'r' }] },
      remove('std', 'a', 30), remove('std', 'z', 30),
    ];
    assert.deepEqual(kinds(history(events)).sort(), ['corrupt-body', 'unknown-body']);
  });
});
