// W1 and W2 are run several times on the same running system (each time on a new queue)
// and the median run is reported, with the spread beside it. One run of each swung by
// 15-20% here from one minute to the next on this shared 2-core VM (Redis Streams' W1 went
// from 21,681 to 17,257 msg/s between two runs of the same build), enough to turn a target
// met into one missed; a median of three is steadier, and the spread says how steady.

import type { WorkloadResult } from './workloads.js';

export interface RepeatSummary {
  /** What the median is taken of. */
  metric: 'msg/s' | 'p99 ms';
  /** The headline figure of every run, in the order run. */
  values: number[];
}

/** The headline figure a repetition is ranked by: W2's p99 (lower is better), else throughput. */
export function headlineOf(result: WorkloadResult): { metric: RepeatSummary['metric']; value: number | undefined } {
  if (result.workload === 'W2') return { metric: 'p99 ms', value: result.latency?.p99Ms };
  return { metric: 'msg/s', value: result.messagesPerSecond };
}

/**
 * The result to report for repeated runs of one workload: a failed or broken run if any
 * (a failure is never averaged away), else the median run by the headline figure (the
 * upper middle for an even count), carrying every run's figure in `repeats`.
 */
export function medianRun(results: readonly WorkloadResult[]): WorkloadResult {
  const first = results[0];
  if (first === undefined) throw new Error('medianRun needs at least one result');
  const broken = results.find((result) => result.status !== 'ok');
  if (broken !== undefined || results.length === 1) return broken ?? first;
  const values = results.map((result) => headlineOf(result).value ?? Number.NaN);
  const byValue = values.map((_, index) => index).sort((a, b) => values[a]! - values[b]!);
  const median = results[byValue[Math.floor(byValue.length / 2)]!]!;
  return { ...median, repeats: { metric: headlineOf(first).metric, values } };
}

/** " (16,976-22,263, median of 3)" style spread for a cell (`label` before the range, e.g. "p99 "), or '' for a single run. */
export function spreadText(result: WorkloadResult | undefined, format: (value: number) => string, label = ''): string {
  const repeats = result?.repeats;
  if (repeats === undefined || repeats.values.length < 2) return '';
  const finite = repeats.values.filter((value) => Number.isFinite(value));
  if (finite.length === 0) return '';
  return ` (${label}${format(Math.min(...finite))}-${format(Math.max(...finite))}, median of ${repeats.values.length})`;
}
