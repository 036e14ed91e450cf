// One logical queue: the per-consumer state over a partition's records (a plain SQS
// queue has exactly one; a topic's subscriptions will each have one).
//
// Where a message is, for this logical queue:
//
//   backlog ──load / apply(enqueue) with room──▶ window ──delete / expire / dead-letter / purge──▶ gone
//      │                                           ▲
//      └──(replay only) a record names it ─────────┘  ("taken ahead": its sequence offset goes
//                                                       into `aheadSequences` so loading skips it)
//
//   backlog: enqueue records at or beyond `readCursorOffset`, on disk only; counted in
//            `backlogCount` and summarised by BacklogRuns. Their state is fully given by the
//            enqueue record plus queue-wide records (purge moves the cursor past them all).
//   window:  MessageEntry objects (metadata only), grouped by message group and kept in
//            sequence order within a group.
//
// A window entry's visibility is a function of time: visible when visibleAtMs <= now;
// otherwise in flight when it was received at least once (receiveCount > 0), else delayed.
// A message whose sent time + retention has passed counts as gone even before a record
// removes it.
//
// Invariants:
// - Within a FIFO group, entries that were received form a prefix of the group (receives
//   take consecutive messages from the head; new messages join at the tail).
// - `unreceivedCount` = window entries with receiveCount 0; the window limit applies to
//   these, so in-flight messages never push waiting ones out.
// - ACK level = min(readCursorOffset, smallest current offset of a window entry).

import { assert } from '../core/assert.js';
import { BacklogRuns } from './backlog.js';
import type { FilterPolicy } from './filter.js';
import type { EnqueueMetadata } from './records.js';
import type { QueueConfig } from './types.js';

export class MessageEntry {
  /** Offset of the record that holds the message now (changes when it is relocated). */
  offset: number;
  visibleAtMs: number;
  receiveCount = 0;
  firstReceiveTimestampMs = 0;
  /** Offset of the Receive record that last delivered it: the current receipt; -1 before the first receive. */
  receiptOffset = -1;
  /** Timestamp of that Receive record (the 12-hour visibility limit counts from it). */
  receivedAtMs = 0;
  /** Earlier and current offsets other than `sequenceOffset` (after relocation); receipts naming them still work. */
  aliasOffsets: number[] | undefined;
  /** Counted in the logical queue's tracked in-flight number (see InflightTracker). */
  tracked = false;
  /** In its logical queue's window (false once removed: a tombstone in its group's list). */
  inWindow = false;

  constructor(
    /** Offset of the original enqueue: gives the order within a group and the SequenceNumber. */
    readonly sequenceOffset: number,
    readonly messageId: string,
    readonly groupId: string | undefined,
    readonly deduplicationId: string | undefined,
    readonly sentTimestampMs: number,
    readonly sizeBytes: number,
  ) {
    this.offset = sequenceOffset;
    this.visibleAtMs = sentTimestampMs;
  }
}

/**
 * The window messages of one message group in sequence order: an array with tombstones
 * (entries whose `inWindow` is false), cheaper than a Map to build at restore. Removed
 * entries are skipped by iteration and compacted away once they outnumber live ones.
 */
export class MessageGroup {
  private list: MessageEntry[] = [];
  private head = 0;
  size = 0;
  /**
   * Standard queues: every live entry before list index `skipIndex` stays in flight until at
   * least `skipValidUntilMs`, so a receive before then starts its scan there instead of
   * stepping over all of them again (receives would otherwise cost O(in flight)). Anything
   * that could make one of them visible sooner, or that moves indices, drops the hint.
   */
  private skipIndex = 0;
  private skipValidUntilMs = -Infinity;

  constructor(readonly key: string) {}

  insert(entry: MessageEntry): void {
    const list = this.list;
    const last = list[list.length - 1];
    if (last === undefined || last.sequenceOffset < entry.sequenceOffset) {
      list.push(entry);
    } else {
      // Rare (replay takes a message in ahead of older ones still in the backlog): insert in order.
      let low = this.head;
      let high = list.length;
      while (low < high) {
        const middle = (low + high) >>> 1;
        if (list[middle]!.sequenceOffset < entry.sequenceOffset) low = middle + 1;
        else high = middle;
      }
      list.splice(low, 0, entry);
      this.dropSkipHint();
    }
    this.size++;
  }

  dropSkipHint(): void {
    this.skipValidUntilMs = -Infinity;
  }

  /** A scan that started at `cursor`'s start found only in-flight entries before `cursor.prefixEnd`. */
  noteInflightPrefix(cursor: GroupCursor): void {
    if (cursor.prefixEnd <= cursor.start) return;
    this.skipValidUntilMs = cursor.startedFromHint ? Math.min(this.skipValidUntilMs, cursor.prefixUntilMs) : cursor.prefixUntilMs;
    this.skipIndex = cursor.prefixEnd;
  }

  /** Called after the entry's `inWindow` was cleared. */
  remove(): void {
    this.size--;
    if (this.size === 0) {
      this.list = [];
      this.head = 0;
      this.dropSkipHint();
      return;
    }
    while (this.head < this.list.length && !this.list[this.head]!.inWindow) this.head++;
    if (this.list.length - this.size > Math.max(32, this.size)) {
      this.list = this.list.filter((each) => each.inWindow);
      this.head = 0;
      this.dropSkipHint();
    }
  }

  /**
   * Iterates live entries in sequence order; the group must not change meanwhile. Given
   * `nowMs` (standard queues), it may start past a prefix known to be in flight then.
   */
  cursor(nowMs?: number): GroupCursor {
    const fromHint = nowMs !== undefined && nowMs < this.skipValidUntilMs && this.skipIndex > this.head;
    return new GroupCursor(this.list, fromHint ? this.skipIndex : this.head, fromHint);
  }
}

export class GroupCursor {
  private index: number;
  /** The scan's leading run of in-flight entries ends before this list index. */
  prefixEnd: number;
  /** The earliest time an entry of that leading run becomes visible. */
  prefixUntilMs = Infinity;
  private leading = true;

  constructor(
    private readonly list: readonly MessageEntry[],
    readonly start: number,
    readonly startedFromHint = false,
  ) {
    this.index = start;
    this.prefixEnd = start;
  }

  next(): MessageEntry | undefined {
    while (this.index < this.list.length) {
      const entry = this.list[this.index++]!;
      if (entry.inWindow) return entry;
      if (this.leading) this.prefixEnd = this.index;
    }
    return undefined;
  }

  /** The entry `next` returned last was skipped because it is in flight until `visibleAtMs`. */
  skippedInflight(visibleAtMs: number): void {
    if (!this.leading) return;
    this.prefixEnd = this.index;
    if (visibleAtMs < this.prefixUntilMs) this.prefixUntilMs = visibleAtMs;
  }

  /** The entry `next` returned last was not skipped as in flight: the leading run ends. */
  endPrefix(): void {
    this.leading = false;
  }
}

/** A binary min-heap of (timeMs, entry) pairs kept in two parallel arrays (no object per item). */
class DeadlineHeap {
  times: number[] = [];
  entries: MessageEntry[] = [];

  get size(): number {
    return this.times.length;
  }

  clear(): void {
    this.times = [];
    this.entries = [];
  }

  push(timeMs: number, entry: MessageEntry): void {
    const times = this.times;
    const entries = this.entries;
    let index = times.length;
    times.push(timeMs);
    entries.push(entry);
    while (index > 0) {
      const parent = (index - 1) >>> 1;
      if (times[parent]! <= timeMs) break;
      times[index] = times[parent]!;
      entries[index] = entries[parent]!;
      index = parent;
    }
    times[index] = timeMs;
    entries[index] = entry;
  }

  pop(): MessageEntry {
    const times = this.times;
    const entries = this.entries;
    const top = entries[0]!;
    const lastTime = times.pop()!;
    const lastEntry = entries.pop()!;
    if (times.length > 0) {
      let index = 0;
      const length = times.length;
      for (;;) {
        const left = index * 2 + 1;
        if (left >= length) break;
        const right = left + 1;
        const child = right < length && times[right]! < times[left]! ? right : left;
        if (times[child]! >= lastTime) break;
        times[index] = times[child]!;
        entries[index] = entries[child]!;
        index = child;
      }
      times[index] = lastTime;
      entries[index] = lastEntry;
    }
    return top;
  }
}

/**
 * Counts in-flight messages without scanning: a min-heap of (visibleAtMs, entry) pushed
 * whenever a received entry's deadline is set; items whose deadline has passed are popped
 * lazily by `inflightCount(nowMs)`. Stale items (the entry got a newer deadline or left)
 * are skipped, and the heap is rebuilt from its live items once stale ones outnumber them:
 * without that, a deleted message's entry stayed in memory until its visibility deadline
 * (up to 12 hours), so memory grew with the receive rate times the visibility timeout
 * instead of with the messages in flight. Assumes `nowMs` does not go backwards between calls; if it does, messages
 * whose deadline fell between the two times count as visible a little early (for the
 * in-flight limit only).
 *
 * Below `staleCompactionItemsMin` items the heap is never rebuilt, so that many stale items
 * (each holding a deleted message's entry) may wait per logical queue while anything is in
 * flight. At 1,024 that was an estimated 150-200 KB per queue (an entry and its id string
 * each), which adds up across many queues; a smaller minimum costs no more per untrack, since
 * a rebuild of S items follows at least S/2 stale ones.
 */
const staleCompactionItemsMin = 64;

export class InflightTracker {
  private heap = new DeadlineHeap();
  trackedCount = 0;

  track(entry: MessageEntry): void {
    if (!entry.tracked) {
      entry.tracked = true;
      this.trackedCount++;
    } else if (this.heap.size > staleCompactionItemsMin && this.heap.size > 2 * this.trackedCount) {
      this.compact(); // lease extensions leave the older deadlines behind as stale items
    }
    this.heap.push(entry.visibleAtMs, entry);
  }

  untrack(entry: MessageEntry): void {
    if (entry.tracked) {
      entry.tracked = false;
      this.trackedCount--;
      // Nothing in flight: every item left is stale (a drained queue kept up to 1,024 of
      // them, with their entries, until their deadlines passed, which may be 12 hours).
      if (this.trackedCount === 0) this.heap.clear();
      else if (this.heap.size > staleCompactionItemsMin && this.heap.size > 2 * this.trackedCount) this.compact();
    }
  }

  /** Keeps only live items (tracked, at the entry's current deadline) and restores the heap order. O(items), amortised O(1) per untrack. */
  private compact(): void {
    const { times, entries } = this.heap;
    this.heap = new DeadlineHeap();
    for (let index = 0; index < times.length; index++) {
      const entry = entries[index]!;
      const timeMs = times[index]!;
      if (entry.tracked && entry.visibleAtMs === timeMs) this.heap.push(timeMs, entry);
    }
  }

  /** Live + stale items (for tests). */
  get heapSize(): number {
    return this.heap.size;
  }

  clear(): void {
    this.heap.clear();
    this.trackedCount = 0;
  }

  inflightCount(nowMs: number): number {
    this.next(nowMs);
    return this.trackedCount;
  }

  /** The in-flight entry whose deadline (its visibleAtMs) comes first after `nowMs`; deadlines passed by then end their tracking. */
  next(nowMs: number): MessageEntry | undefined {
    for (;;) {
      const heap = this.heap; // untrack may compact into a new heap
      if (heap.size === 0) return undefined;
      const timeMs = heap.times[0]!;
      const entry = heap.entries[0]!;
      const live = entry.tracked && entry.visibleAtMs === timeMs;
      if (live && timeMs > nowMs) return entry;
      heap.pop();
      if (live) this.untrack(entry);
    }
  }
}

/**
 * Delayed window messages (never received, visible later), as a heap of their visible
 * times, so the next moment one becomes visible is found without scanning the window.
 * Items whose entry left the window, was received, or whose time has passed are dropped
 * when they reach the top.
 */
class DelayedTracker {
  private readonly heap = new DeadlineHeap();

  add(entry: MessageEntry): void {
    this.heap.push(entry.visibleAtMs, entry);
  }

  clear(): void {
    this.heap.clear();
  }

  /** The delayed entry that becomes visible first after `nowMs`. */
  next(nowMs: number): MessageEntry | undefined {
    const heap = this.heap;
    while (heap.size > 0) {
      const timeMs = heap.times[0]!;
      const entry = heap.entries[0]!;
      if (timeMs > nowMs && entry.inWindow && entry.receiveCount === 0 && entry.visibleAtMs === timeMs) return entry;
      heap.pop();
    }
    return undefined;
  }
}

export interface ReceiveAttempt {
  timestampMs: number;
  receiveOffset: number;
  offsets: number[];
}

export interface CollectInput {
  nowMs: number;
  room: number;
  fifo: boolean;
  retentionMs: number;
  maxReceiveCount: number | undefined;
  exclude: ReadonlySet<number> | undefined;
}

export interface CollectResult {
  deliver: MessageEntry[];
  deadLetter: number[];
  expired: number[];
}

export class LogicalQueue {
  /** Window entries by sequence offset. */
  readonly bySequence = new Map<number, MessageEntry>();
  /** Other offsets (current after relocation, and earlier ones) -> sequence offset. */
  readonly aliases = new Map<number, number>();
  readonly groups = new Map<string, MessageGroup>();
  unreceivedCount = 0;
  readCursorOffset = 0;
  backlogCount = 0;
  readonly backlog = new BacklogRuns();
  /** Sequence offsets at or beyond the cursor already taken out of the backlog (replay only). */
  readonly aheadSequences = new Set<number>();
  /** Offsets at or beyond the cursor of Relocate records (they hold window messages, not backlog ones). */
  readonly relocationsAhead = new Set<number>();
  lastPurgeTimestampMs: number | undefined;
  /** Standard fair queues: the group served last, so the next receive starts after it. */
  lastServedGroupKey: string | undefined;
  /** FIFO ReceiveRequestAttemptId -> what that receive delivered (5 minutes). */
  readonly attempts = new Map<string, ReceiveAttempt>();
  private readonly inflight = new InflightTracker();
  private readonly delayed = new DelayedTracker();
  /** A topic subscription's own settings (visibility, retention, redrive); undefined: the partition's config (a plain queue). */
  config: QueueConfig | undefined;
  /** A subscription's filter policy, as JSON text and parsed; undefined: every message. */
  filterPolicy: string | undefined;
  filter: FilterPolicy | undefined;
  /**
   * Filters replaced while messages applied under them were still in the backlog, oldest
   * first: each decided for the enqueues before its `untilOffset`. Loading must ask the
   * filter that decided at apply time, or the backlog count would drift. Dropped once the
   * cursor passes them.
   */
  filterHistory: Array<{ untilOffset: number; filterPolicy: string | undefined; filter: FilterPolicy | undefined }> = [];

  constructor(readonly id: number) {}

  /** The filter that decided whether the enqueue at `offset` joined this logical queue. */
  filterAt(offset: number): FilterPolicy | undefined {
    for (const past of this.filterHistory) if (offset < past.untilOffset) return past.filter;
    return this.filter;
  }

  get windowSize(): number {
    return this.bySequence.size;
  }

  lookup(offset: number): MessageEntry | undefined {
    const direct = this.bySequence.get(offset);
    if (direct !== undefined) return direct;
    const sequenceOffset = this.aliases.get(offset);
    return sequenceOffset === undefined ? undefined : this.bySequence.get(sequenceOffset);
  }

  /** Whether an offset names a message still in the backlog (never taken into the window). */
  inBacklog(offset: number): boolean {
    return this.backlogCount > 0 && offset >= this.readCursorOffset && !this.aheadSequences.has(offset) && !this.relocationsAhead.has(offset);
  }

  static groupKey(groupId: string | undefined): string {
    return groupId ?? '';
  }

  insert(entry: MessageEntry): void {
    assert(!this.bySequence.has(entry.sequenceOffset), () => `message ${entry.sequenceOffset} already in the window`);
    this.bySequence.set(entry.sequenceOffset, entry);
    const key = LogicalQueue.groupKey(entry.groupId);
    let group = this.groups.get(key);
    if (group === undefined) {
      group = new MessageGroup(key);
      this.groups.set(key, group);
    }
    entry.inWindow = true;
    group.insert(entry);
    if (entry.receiveCount === 0) {
      this.unreceivedCount++;
      if (entry.visibleAtMs > entry.sentTimestampMs) this.delayed.add(entry);
    } else {
      this.inflight.track(entry);
    }
  }

  remove(entry: MessageEntry): void {
    const found = this.bySequence.get(entry.sequenceOffset);
    assert(found === entry, 'removing an entry that is not in the window');
    this.bySequence.delete(entry.sequenceOffset);
    const key = LogicalQueue.groupKey(entry.groupId);
    const group = this.groups.get(key)!;
    entry.inWindow = false;
    group.remove();
    if (group.size === 0) this.groups.delete(key);
    if (entry.aliasOffsets !== undefined) for (const alias of entry.aliasOffsets) this.aliases.delete(alias);
    if (entry.receiveCount === 0) this.unreceivedCount--;
    this.inflight.untrack(entry);
  }

  /** A record removes the message at `offset` (expire, dead-letter); it may still be in the backlog on replay. */
  removeOffset(offset: number): boolean {
    const entry = this.lookup(offset);
    if (entry !== undefined) {
      this.remove(entry);
      return true;
    }
    if (this.inBacklog(offset)) {
      this.takeFromBacklog(offset);
      return true;
    }
    return false;
  }

  /** Takes a message out of the backlog ahead of the cursor (replay: a record names a message live had loaded). */
  takeFromBacklog(offset: number): void {
    assert(this.inBacklog(offset), () => `offset ${offset} is not in the backlog`);
    this.backlog.remove(offset);
    this.backlogCount--;
    this.aheadSequences.add(offset);
    this.settleCursor(Infinity);
  }

  /** Called after each applied record: with no backlog, the cursor follows the log's end. */
  settleCursor(appliedEndOffset: number): void {
    if (this.backlogCount === 0) {
      if (appliedEndOffset !== Infinity) this.readCursorOffset = appliedEndOffset;
      // Set.clear() allocates a fresh table even when empty: this runs after every record.
      if (this.aheadSequences.size > 0) this.aheadSequences.clear();
      if (this.relocationsAhead.size > 0) this.relocationsAhead.clear();
      if (this.filterHistory.length > 0) this.filterHistory = [];
    }
    while (this.filterHistory.length > 0 && this.filterHistory[0]!.untilOffset <= this.readCursorOffset) this.filterHistory.shift();
  }

  addToBacklog(offset: number, metadata: EnqueueMetadata): void {
    this.backlog.add(offset, metadata.sentTimestampMs, metadata.delaySeconds * 1000);
    this.backlogCount++;
  }

  receive(entry: MessageEntry, receiveOffset: number, timestampMs: number, visibleAtMs: number): void {
    if (entry.receiveCount === 0) {
      this.unreceivedCount--;
      entry.firstReceiveTimestampMs = timestampMs;
    }
    entry.receiveCount++;
    entry.receiptOffset = receiveOffset;
    entry.receivedAtMs = timestampMs;
    entry.visibleAtMs = visibleAtMs;
    this.inflight.track(entry);
  }

  changeVisibility(entry: MessageEntry, visibleAtMs: number): void {
    entry.visibleAtMs = visibleAtMs;
    this.groups.get(LogicalQueue.groupKey(entry.groupId))?.dropSkipHint();
    this.inflight.track(entry);
  }

  relocate(entry: MessageEntry, newOffset: number): void {
    if (entry.offset !== entry.sequenceOffset) {
      // The previous current offset stays an alias: receipts may name it.
      assert(this.aliases.get(entry.offset) === entry.sequenceOffset, 'relocated entry without alias');
    }
    entry.offset = newOffset;
    (entry.aliasOffsets ??= []).push(newOffset);
    this.aliases.set(newOffset, entry.sequenceOffset);
    if (this.backlogCount > 0 && newOffset >= this.readCursorOffset) this.relocationsAhead.add(newOffset);
  }

  purge(purgeOffset: number, timestampMs: number): void {
    this.bySequence.clear();
    this.aliases.clear();
    this.groups.clear();
    this.unreceivedCount = 0;
    this.backlogCount = 0;
    this.backlog.clear();
    this.aheadSequences.clear();
    this.relocationsAhead.clear();
    this.attempts.clear();
    this.inflight.clear();
    this.delayed.clear();
    this.readCursorOffset = purgeOffset + 1;
    this.lastPurgeTimestampMs = timestampMs;
  }

  inflightCount(nowMs: number): number {
    return this.inflight.inflightCount(nowMs);
  }

  /**
   * The earliest moment after `nowMs` a window message within its retention becomes
   * visible (Infinity: none). From the two heaps in O(log n); only when the first of them
   * is past its retention (it waits for the maintenance's Expire record) does it scan.
   */
  windowNextVisibleAtMs(nowMs: number, retentionMs: number): number {
    const inflightNext = this.inflight.next(nowMs);
    const delayedNext = this.delayed.next(nowMs);
    const retained = (entry: MessageEntry | undefined): boolean => entry === undefined || entry.sentTimestampMs + retentionMs > nowMs;
    if (retained(inflightNext) && retained(delayedNext)) return Math.min(inflightNext?.visibleAtMs ?? Infinity, delayedNext?.visibleAtMs ?? Infinity);
    let next = Infinity;
    for (const entry of this.bySequence.values()) {
      if (entry.visibleAtMs > nowMs && entry.visibleAtMs < next && entry.sentTimestampMs + retentionMs > nowMs) next = entry.visibleAtMs;
    }
    return next;
  }

  /**
   * Chooses what a receive would deliver now, without changing state: at most `room`
   * messages; dead-letter candidates (receive count reached) and expired messages met on
   * the way are listed apart.
   */
  collect(input: CollectInput): CollectResult {
    return input.fifo ? this.collectFifo(input) : this.collectStandard(input);
  }

  // Standard (fair) queues: round-robin across message groups in group-key order, starting
  // after the group served last; within a group, oldest visible first.
  private collectStandard(input: CollectInput): CollectResult {
    const { nowMs, room, retentionMs, maxReceiveCount, exclude } = input;
    const result: CollectResult = { deliver: [], deadLetter: [], expired: [] };
    if (room <= 0) return result;
    const keys = [...this.groups.keys()].sort();
    let start = 0;
    if (this.lastServedGroupKey !== undefined) {
      const last = this.lastServedGroupKey;
      start = keys.findIndex((key) => key > last);
      if (start < 0) start = 0;
    }
    const cursors: GroupCursor[] = [];
    const cursorGroups: MessageGroup[] = [];
    for (let index = 0; index < keys.length; index++) {
      const group = this.groups.get(keys[(start + index) % keys.length]!)!;
      cursorGroups.push(group);
      cursors.push(group.cursor(nowMs));
    }
    let active = cursors;
    while (result.deliver.length < room && active.length > 0) {
      const stillActive: GroupCursor[] = [];
      for (const iterator of active) {
        let found: MessageEntry | undefined;
        for (let entry = iterator.next(); entry !== undefined; entry = iterator.next()) {
          if (entry.sentTimestampMs + retentionMs <= nowMs) {
            iterator.endPrefix();
            result.expired.push(entry.offset);
            continue;
          }
          if (entry.visibleAtMs > nowMs) {
            iterator.skippedInflight(entry.visibleAtMs);
            continue;
          }
          iterator.endPrefix();
          if (exclude !== undefined && exclude.has(entry.offset)) continue;
          if (maxReceiveCount !== undefined && entry.receiveCount >= maxReceiveCount) {
            result.deadLetter.push(entry.offset);
            continue;
          }
          found = entry;
          break;
        }
        if (found === undefined) continue;
        result.deliver.push(found);
        stillActive.push(iterator);
        if (result.deliver.length >= room) break;
      }
      active = stillActive;
    }
    cursors.forEach((cursor, index) => cursorGroups[index]!.noteInflightPrefix(cursor));
    return result;
  }

  // FIFO: a group gives the consecutive visible messages at its head, unless any of its
  // messages is in flight. Groups are served oldest head first; one receive may take
  // several messages of one group and messages of several groups.
  private collectFifo(input: CollectInput): CollectResult {
    const { nowMs, room, retentionMs, maxReceiveCount, exclude } = input;
    const result: CollectResult = { deliver: [], deadLetter: [], expired: [] };
    if (room <= 0) return result;
    const candidates: MessageEntry[][] = [];
    for (const group of this.groups.values()) {
      const collected: MessageEntry[] = [];
      let deadLetter: number | undefined;
      let stopped = false;
      let blocked = false;
      const cursor = group.cursor();
      for (let entry = cursor.next(); entry !== undefined; entry = cursor.next()) {
        if (entry.sentTimestampMs + retentionMs <= nowMs) {
          result.expired.push(entry.offset);
          continue;
        }
        const received = entry.receiveCount > 0;
        if (received && entry.visibleAtMs > nowMs) {
          blocked = true;
          break;
        }
        // Past the received prefix nothing can be in flight, so once collection stopped we are done.
        if (stopped) {
          if (!received) break;
          continue;
        }
        if (entry.visibleAtMs > nowMs || (exclude !== undefined && exclude.has(entry.offset))) {
          stopped = true;
        } else if (maxReceiveCount !== undefined && entry.receiveCount >= maxReceiveCount) {
          // Order is kept: the group waits until the dead-lettered head is gone.
          deadLetter = entry.offset;
          stopped = true;
        } else {
          collected.push(entry);
          if (collected.length >= room) stopped = true;
        }
        if (stopped && !received) break;
      }
      if (blocked) continue;
      if (deadLetter !== undefined) result.deadLetter.push(deadLetter);
      if (collected.length > 0) candidates.push(collected);
    }
    candidates.sort((a, b) => a[0]!.sequenceOffset - b[0]!.sequenceOffset);
    for (const collected of candidates) {
      for (const entry of collected) {
        if (result.deliver.length >= room) return result;
        result.deliver.push(entry);
      }
    }
    return result;
  }
}
