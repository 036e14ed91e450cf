// One simulated node's clock: the shared timeline seen through the node's own skew, and
// paused while the node's process is stopped (SIGSTOP, a long GC, a VM migration).
//
// Skew. Wall time (nowMs: what SQS timestamps and visibility deadlines use) is the true
// time plus a constant offset. Monotonic time (monotonicMs: durations, the lease fence)
// runs at `rate` node milliseconds per true millisecond, from the moment the process
// started. A timer of d node milliseconds fires after d / rate true milliseconds.
//
// Pause. States: running -> paused (pause()) -> running (resume()). While paused, a due
// timer and a network delivery (runOrHold) are held, not run; resume() runs the held ones
// in the order they came due, one timeline turn each. Work already queued as promise
// continuations still completes (the simulator cannot stop a microtask): a pause stops the
// node between events, not inside one.
//
// Death. The process view (sim-process.ts ProcessClock) dies with a crash: its timers never
// fire, and nothing is run or held for it again.

import type { Clock, TimerHandle } from '../../core/clock.js';
import type { ProcessClock, SimTimeline } from '../simulator/sim-process.js';

export class NodeClock implements Clock {
  private paused = false;
  private held: Array<() => void> = [];
  private readonly startedMs: number;

  constructor(
    private readonly process: ProcessClock,
    private readonly timeline: SimTimeline,
    readonly wallOffsetMs: number,
    readonly rate: number,
  ) {
    this.startedMs = timeline.nowMs();
  }

  get alive(): boolean {
    return this.process.alive;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  nowMs(): number {
    return this.timeline.nowMs() + this.wallOffsetMs;
  }

  monotonicMs(): number {
    // Starts at 1000 like a fresh process's performance.now(), whatever the true time.
    return 1000 + (this.timeline.nowMs() - this.startedMs) * this.rate;
  }

  setTimer(delayMs: number, callback: () => void): TimerHandle {
    // Whole true milliseconds, rounded up: a timer never fires before its node-time delay,
    // and the timeline (near 1.7e12) cannot move by fractions of a millisecond anyway.
    const trueDelayMs = delayMs > 0 ? Math.ceil(delayMs / this.rate) : 0;
    return this.process.setTimer(trueDelayMs, () => this.runOrHold(callback));
  }

  defer(callback: () => void): void {
    this.process.setTimer(0, () => this.runOrHold(callback));
  }

  /** Runs `callback` now, or at resume() while paused; never once the process died. */
  runOrHold(callback: () => void): void {
    if (!this.process.alive) return;
    if (this.paused) this.held.push(callback);
    else callback();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const held = this.held;
    this.held = [];
    for (const callback of held) this.process.setTimer(0, () => this.runOrHold(callback));
  }
}
