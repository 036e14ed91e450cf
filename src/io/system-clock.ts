import { performance } from 'node:perf_hooks';
import type { Clock, TimerHandle } from '../core/clock.js';

/** The real clock: Date.now for wall time, performance.now for durations, setTimeout for timers, setImmediate to defer. */
export class SystemClock implements Clock {
  nowMs(): number {
    return Date.now();
  }

  monotonicMs(): number {
    return performance.now();
  }

  setTimer(delayMs: number, callback: () => void, options?: { background?: boolean }): TimerHandle {
    const handle = setTimeout(callback, Math.max(0, delayMs));
    if (options?.background === true) handle.unref();
    return { cancel: () => clearTimeout(handle) };
  }

  defer(callback: () => void): void {
    setImmediate(callback);
  }
}
