// The backlog summary of a logical queue: the enqueues at or beyond its read cursor,
// which are on disk only. Memory must not grow with the backlog, yet counts
// (visible / delayed / expired / oldest age) must stay right, so consecutive enqueues
// with the same sent time and delay share one run: {firstOffset, lastOffset, count}.
// Runs are ordered by offset and disjoint. When there are more than `runsMax` runs,
// neighbours are merged (their sent time becomes the later one, their delay the longer
// one): counts of a very large, very varied backlog are then approximate, which SQS
// allows (every count is "Approximate...").

import { assert } from '../core/assert.js';
import type { Reader, Writer } from './codec.js';

interface Run {
  firstOffset: number;
  lastOffset: number;
  count: number;
  sentTimestampMs: number;
  delayMs: number;
}

export interface BacklogTally {
  visible: number;
  delayed: number;
  /** Smallest sent time of a live (not expired) backlog message; Infinity when none. */
  oldestSentTimestampMs: number;
  /** Earliest time after `nowMs` at which a delayed backlog message becomes visible; Infinity when none. */
  nextVisibleAtMs: number;
}

export class BacklogRuns {
  private runs: Run[] = [];
  private head = 0;

  constructor(private readonly runsMax = 65_536) {}

  get runCount(): number {
    return this.runs.length - this.head;
  }

  add(offset: number, sentTimestampMs: number, delayMs: number): void {
    const last = this.runs[this.runs.length - 1];
    if (last !== undefined && this.runs.length > this.head) {
      assert(offset > last.lastOffset, 'backlog offsets must increase');
      if (last.sentTimestampMs === sentTimestampMs && last.delayMs === delayMs) {
        last.lastOffset = offset;
        last.count++;
        return;
      }
    }
    this.runs.push({ firstOffset: offset, lastOffset: offset, count: 1, sentTimestampMs, delayMs });
    if (this.runCount > this.runsMax) this.coarsen();
  }

  /** Removes one message (it was loaded into the window, or taken out of the backlog by a record). */
  remove(offset: number): void {
    let low = this.head;
    let high = this.runs.length - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const run = this.runs[middle]!;
      if (offset < run.firstOffset) high = middle - 1;
      else if (offset > run.lastOffset) low = middle + 1;
      else {
        assert(run.count > 0, 'backlog run underflow');
        run.count--;
        if (run.count === 0) {
          if (middle === this.head) this.head++;
          else this.runs.splice(middle, 1);
          this.trimHead();
        }
        return;
      }
    }
    assert(false, () => `offset ${offset} is not in the backlog`);
  }

  clear(): void {
    this.runs = [];
    this.head = 0;
  }

  tally(nowMs: number, retentionMs: number): BacklogTally {
    const tally: BacklogTally = { visible: 0, delayed: 0, oldestSentTimestampMs: Infinity, nextVisibleAtMs: Infinity };
    for (let index = this.head; index < this.runs.length; index++) {
      const run = this.runs[index]!;
      if (run.sentTimestampMs + retentionMs <= nowMs) continue;
      if (run.sentTimestampMs < tally.oldestSentTimestampMs) tally.oldestSentTimestampMs = run.sentTimestampMs;
      const visibleAtMs = run.sentTimestampMs + run.delayMs;
      if (visibleAtMs > nowMs) {
        tally.delayed += run.count;
        if (visibleAtMs < tally.nextVisibleAtMs) tally.nextVisibleAtMs = visibleAtMs;
      } else tally.visible += run.count;
    }
    return tally;
  }

  write(writer: Writer): void {
    writer.varint(this.runCount);
    for (let index = this.head; index < this.runs.length; index++) {
      const run = this.runs[index]!;
      writer.varint(run.firstOffset).varint(run.lastOffset).varint(run.count).f64(run.sentTimestampMs).f64(run.delayMs);
    }
  }

  read(reader: Reader): void {
    this.clear();
    const count = reader.varint();
    for (let index = 0; index < count; index++) {
      this.runs.push({ firstOffset: reader.varint(), lastOffset: reader.varint(), count: reader.varint(), sentTimestampMs: reader.f64(), delayMs: reader.f64() });
    }
  }

  private trimHead(): void {
    if (this.head > 1024 && this.head * 2 > this.runs.length) {
      this.runs = this.runs.slice(this.head);
      this.head = 0;
    }
  }

  private coarsen(): void {
    const merged: Run[] = [];
    for (let index = this.head; index < this.runs.length; index += 2) {
      const first = this.runs[index]!;
      const second = this.runs[index + 1];
      if (second === undefined) {
        merged.push(first);
        continue;
      }
      merged.push({
        firstOffset: first.firstOffset,
        lastOffset: second.lastOffset,
        count: first.count + second.count,
        sentTimestampMs: Math.max(first.sentTimestampMs, second.sentTimestampMs),
        delayMs: Math.max(first.delayMs, second.delayMs),
      });
    }
    this.runs = merged;
    this.head = 0;
  }
}
