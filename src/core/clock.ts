// Time is passed in, never read inside a state machine, so the same code runs under a
// seeded simulator and in production.

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Wall-clock milliseconds since the Unix epoch (what SQS timestamps use). */
  nowMs(): number;
  /** Monotonic milliseconds, for durations and latency. */
  monotonicMs(): number;
  /**
   * Calls `callback` once after `delayMs`. A `background` timer does not by itself keep
   * the process running (the system clock unrefs it): heartbeats, polls, ticks.
   */
  setTimer(delayMs: number, callback: () => void, options?: { background?: boolean }): TimerHandle;
  /**
   * Calls `callback` soon, after the work already queued (the system clock: setImmediate).
   * Optional: without it, deferOn() uses a zero-delay timer.
   */
  defer?(callback: () => void): void;
}

/** Runs `callback` soon on `clock` (its defer, else a zero-delay timer). */
export function deferOn(clock: Clock, callback: () => void): void {
  if (clock.defer !== undefined) clock.defer(callback);
  else clock.setTimer(0, callback);
}

/** Calls `callback` every `intervalMs` on `clock` until cancelled (setInterval on a Clock). */
export function repeatOn(clock: Clock, intervalMs: number, callback: () => void, options?: { background?: boolean }): TimerHandle {
  let cancelled = false;
  let current: TimerHandle | undefined;
  const arm = (): void => {
    current = clock.setTimer(intervalMs, () => {
      if (cancelled) return;
      arm();
      callback();
    }, options);
  };
  arm();
  return {
    cancel: () => {
      cancelled = true;
      current?.cancel();
    },
  };
}

/** Resolves after `delayMs` on `clock`. */
export function sleepOn(clock: Clock, delayMs: number): Promise<void> {
  return new Promise((resolve) => clock.setTimer(delayMs, resolve));
}

/** A clock driven by hand: tests and the simulator advance it. */
export class ManualClock implements Clock {
  private currentMs: number;
  private timers: { atMs: number; callback: () => void; cancelled: boolean; sequence: number }[] = [];
  private sequence = 0;

  constructor(startMs = 1_700_000_000_000) {
    this.currentMs = startMs;
  }

  nowMs(): number {
    return this.currentMs;
  }

  monotonicMs(): number {
    return this.currentMs;
  }

  setTimer(delayMs: number, callback: () => void): TimerHandle {
    const timer = { atMs: this.currentMs + Math.max(0, delayMs), callback, cancelled: false, sequence: this.sequence++ };
    this.timers.push(timer);
    return { cancel: () => { timer.cancelled = true; } };
  }

  /** Moves time forward, firing due timers in time order. */
  advance(deltaMs: number): void {
    const targetMs = this.currentMs + deltaMs;
    for (;;) {
      this.timers = this.timers.filter((timer) => !timer.cancelled);
      this.timers.sort((a, b) => a.atMs - b.atMs || a.sequence - b.sequence);
      const next = this.timers[0];
      if (next === undefined || next.atMs > targetMs) break;
      this.timers.shift();
      this.currentMs = Math.max(this.currentMs, next.atMs);
      next.callback();
    }
    this.currentMs = targetMs;
  }
}
