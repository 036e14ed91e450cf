import { performance } from 'node:perf_hooks';
import type { Clock, TimerHandle } from '../core/clock.js';

/** The real clock: Date.now for wall time, performance.now for durations, setTimeout for timers. */
export class SystemClock implements Clock {
  nowMs(): number {
    return Date.now();
  }

  monotonicMs(): number {
    return performance.now();
  }

  setTimer(delayMs: number, callback: () => void): TimerHandle {
    const handle = setTimeout(callback, Math.max(0, delayMs));
    return { cancel: () => clearTimeout(handle) };
  }
}
