// Turns a bench run into its outputs: the terminal tables (single node, and "Cluster (W5)"
// when the run has cluster rows), bench/results/latest.{json,md,svg} and the "## Peers and
// end-to-end" section of BENCHMARKS.md (only that section is rewritten; other sections,
// such as "## Storage", are kept byte for byte).

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import Table from 'cli-table3';
import type { BenchWorkloadId, ClusterShape, WorkloadId } from './drivers/types.js';
import type { RawDiskResult } from './raw-disk.js';
import type { WorkloadResult } from './workloads.js';
import { spreadText } from './repeats.js';

export interface SystemRun {
  id: string;
  label: string;
  durabilityNote: string;
  fsyncPerAck: boolean;
  isBerth: boolean;
  status: 'ok' | 'FAILED' | 'error';
  error?: string;
  startMs?: number;
  /** Present on the W5 cluster rows (their W1 and W2 ran on the cluster). */
  cluster?: ClusterShape;
  workloads: Partial<Record<WorkloadId, WorkloadResult>>;
}

export interface BenchRun {
  startedAt: string;
  durationMs: number;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; kernel: string; node: string; versions: Record<string, string>; loadAverageStart: number[]; loadAverageEnd: number[] };
  options: { systems: string[]; workloads: BenchWorkloadId[]; messages: number; backlog: number; ratePerSecond: number; clusterRatePerSecond?: number; latencySeconds: number; fifoMessages: number; fifoGroups: number; quick: boolean; /** Runs of W1 and W2 per system (absent in runs before repeats). */ repeats?: number };
  rawDisk: RawDiskResult[];
  systems: SystemRun[];
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function formatCount(value: number | undefined): string {
  return value === undefined ? '-' : integer.format(value);
}

function formatMs(value: number): string {
  if (value >= 100) return integer.format(value);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

function formatBytes(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  return mib >= 1024 ? `${(mib / 1024).toFixed(2)} GiB` : `${mib.toFixed(0)} MiB`;
}

function statusCell(result: WorkloadResult | undefined): string | undefined {
  if (result === undefined) return '-';
  if (result.status === 'ok') return undefined;
  if (result.status === 'FAILED') return `FAILED (${result.note ?? 'see json'})`;
  return `${result.status}${result.note === undefined ? '' : `: ${result.note}`}`;
}

export function w1Cell(system: SystemRun): string {
  const result = system.workloads.W1;
  return statusCell(result) ?? `${formatCount(result?.messagesPerSecond)}${spreadText(result, formatCount)}`;
}

export function w2Cell(system: SystemRun): string {
  const result = system.workloads.W2;
  const status = statusCell(result);
  if (status !== undefined) return status;
  const latency = result?.latency;
  if (latency === undefined) return 'no data';
  const figures = `${formatMs(latency.p50Ms)} / ${formatMs(latency.p99Ms)} / ${formatMs(latency.p999Ms)} / ${formatMs(latency.maxMs)}${spreadText(result, formatMs, 'p99 ')}`;
  // Below the offered rate the open-loop schedule runs ahead of the system and latency is queueing time.
  const achieved = result?.messagesPerSecond;
  const offered = result?.offeredPerSecond;
  if (achieved !== undefined && offered !== undefined && achieved < 0.95 * offered) return `${figures} (saturated: ${formatCount(achieved)} of ${formatCount(offered)} msg/s)`;
  return figures;
}

export function w3Cell(system: SystemRun): string {
  const result = system.workloads.W3;
  const status = statusCell(result);
  if (status !== undefined) return status;
  const resources = result?.resources;
  if (resources === undefined) return '-';
  const growth = resources.rssPeakBytes - resources.rssBaselineBytes;
  return `${formatBytes(resources.rssPeakBytes)} / +${formatBytes(growth)} (${formatCount(result?.messages)} msgs; fill ${formatCount(result?.fillMessagesPerSecond)}/s, drain ${formatCount(result?.drainMessagesPerSecond)}/s)`;
}

export function w4Cell(system: SystemRun): string {
  const result = system.workloads.W4;
  const status = statusCell(result);
  if (status !== undefined) return status;
  return `order ok, ${formatCount(result?.messagesPerSecond)} msg/s (${formatCount(result?.messages)} msgs${result?.note === undefined ? '' : `; ${result.note}`})`;
}

function cpuCell(system: SystemRun, which: 'clientCpuPercent' | 'serverCpuPercent'): string {
  const resources = system.workloads.W1?.resources ?? system.workloads.W2?.resources;
  return resources === undefined ? '-' : `${resources[which].toFixed(0)}%`;
}

function overallStatus(system: SystemRun): string {
  if (system.status === 'error') return `error: ${(system.error ?? '').split('\n')[0]?.slice(0, 120)}`;
  const problems: string[] = [];
  for (const [workload, result] of Object.entries(system.workloads)) {
    if (result.status === 'FAILED' || result.status === 'error') problems.push(`${workload} ${result.status}`);
    else if ((result.duplicates ?? 0) > 0) problems.push(`${workload}: ${formatCount(result.duplicates)} duplicates`);
  }
  return problems.length === 0 ? 'ok' : problems.join('; ');
}

export const tableHeader = ['System', 'Durability (fsync per ack?)', 'W1 msg/s', 'W2 p50 / p99 / p99.9 / max ms', 'W3 peak RSS / growth', 'W4 FIFO', 'Client CPU', 'Server CPU', 'Status'];

/** The single-node rows (W1-W4); the cluster rows have their own table. */
export function singleNodeSystems(run: BenchRun): SystemRun[] {
  return run.systems.filter((system) => system.cluster === undefined);
}

export function clusterSystems(run: BenchRun): SystemRun[] {
  return run.systems.filter((system) => system.cluster !== undefined);
}

export function tableRows(run: BenchRun): string[][] {
  return singleNodeSystems(run).map((system) => [
    system.label,
    `${system.fsyncPerAck ? 'yes' : 'NO'}: ${system.durabilityNote}`,
    w1Cell(system),
    w2Cell(system),
    w3Cell(system),
    w4Cell(system),
    cpuCell(system, 'clientCpuPercent'),
    cpuCell(system, 'serverCpuPercent'),
    overallStatus(system),
  ]);
}

function okResult(system: SystemRun, workload: WorkloadId): WorkloadResult | undefined {
  const result = system.workloads[workload];
  return result?.status === 'ok' ? result : undefined;
}

/** The peer whose value (where it has one) sorts first by `order`: the best durable peer for a figure. */
function bestPeer<T>(peers: SystemRun[], valueOf: (peer: SystemRun) => T | undefined, order: (a: T, b: T) => number): { peer: SystemRun; value: T } | undefined {
  return peers
    .map((peer) => ({ peer, value: valueOf(peer) }))
    .filter((entry): entry is { peer: SystemRun; value: T } => entry.value !== undefined)
    .sort((a, b) => order(a.value, b.value))[0];
}

const verdict = (met: boolean): string => (met ? 'met' : 'MISSED');

/** The issues' single-node targets: W1 x1.5 the best durable peer and half the raw durable write limit, W2 p99 no worse. */
export const throughputTarget = 1.5;
export const rawDiskShareTarget = 0.5;

/**
 * "Berth vs best durable peer" lines (durable = fsync before every acknowledgement), one
 * set per Berth row: the SQS row, the native row and the client-bound AWS SDK row each get
 * their own ratios, with the target's verdict.
 */
export function ratioLines(run: BenchRun): string[] {
  const systems = singleNodeSystems(run);
  const berthRows = systems.filter((system) => system.isBerth);
  const peers = systems.filter((system) => !system.isBerth && system.fsyncPerAck);
  if (berthRows.length === 0 || peers.length === 0) return ['Ratios: need a Berth row and at least one durable peer in the run.'];
  const lines: string[] = [];
  const bestW1 = bestPeer(peers, (peer) => okResult(peer, 'W1')?.messagesPerSecond, (a, b) => b - a);
  const bestW2 = bestPeer(peers, (peer) => okResult(peer, 'W2')?.latency, (a, b) => a.p99Ms - b.p99Ms);
  const bestW3 = bestPeer(peers, (peer) => okResult(peer, 'W3')?.resources, (a, b) => a.rssPeakBytes - b.rssPeakBytes);
  // The raw loop with the smallest batches (10 records per fsync, the bench's batch size).
  const raw = [...run.rawDisk].sort((a, b) => a.recordsPerBatch - b.recordsPerBatch)[0];
  for (const berth of berthRows) {
    const berthW1 = okResult(berth, 'W1')?.messagesPerSecond;
    if (berthW1 !== undefined && bestW1 !== undefined) {
      const ratio = berthW1 / bestW1.value;
      lines.push(`W1 throughput: ${berth.label} ${formatCount(berthW1)} msg/s vs best durable peer ${bestW1.peer.label} ${formatCount(bestW1.value)} msg/s = x${ratio.toFixed(2)} (target x${throughputTarget.toFixed(2)}: ${verdict(ratio >= throughputTarget)})`);
      if (raw !== undefined) {
        const share = berthW1 / raw.recordsPerSecond;
        lines.push(`W1 against the raw durable write limit: ${berth.label} ${formatCount(berthW1)} msg/s = ${(share * 100).toFixed(0)}% of ${formatCount(raw.recordsPerSecond)} records/s (write + fdatasync of ${raw.recordsPerBatch} x 1 KiB; target ${(rawDiskShareTarget * 100).toFixed(0)}%: ${verdict(share >= rawDiskShareTarget)})`);
      }
    } else lines.push(`W1 throughput: no ratio for ${berth.label} (it or every durable peer has no ok W1 result)`);
    const berthW2 = okResult(berth, 'W2')?.latency;
    if (berthW2 !== undefined && bestW2 !== undefined) {
      const ratio = berthW2.p99Ms / bestW2.value.p99Ms;
      lines.push(
        `W2 p99 latency at ${formatCount(run.options.ratePerSecond)} msg/s: ${berth.label} ${formatMs(berthW2.p99Ms)} ms vs best durable peer ${bestW2.peer.label} ${formatMs(bestW2.value.p99Ms)} ms = x${ratio.toFixed(2)} (lower is better; target no worse: ${verdict(ratio <= 1)})`,
      );
    } else lines.push(`W2 latency: no ratio for ${berth.label} (it or every durable peer has no ok W2 result)`);
    const berthW3 = okResult(berth, 'W3')?.resources;
    if (berthW3 !== undefined && bestW3 !== undefined) {
      lines.push(`W3 peak RSS: ${berth.label} ${formatBytes(berthW3.rssPeakBytes)} vs leanest durable peer ${bestW3.peer.label} ${formatBytes(bestW3.value.rssPeakBytes)} = x${(berthW3.rssPeakBytes / bestW3.value.rssPeakBytes).toFixed(2)} (lower is better)`);
    }
  }
  return lines;
}

/** The issue's W5 targets for the Berth cluster against the durable cluster peer (RabbitMQ). */
export const clusterThroughputTarget = 1.5;
export const clusterP99Target = 1;

function clusterRate(run: BenchRun): number {
  return run.options.clusterRatePerSecond ?? 1000;
}

/** "x% of its single node": the cluster row's W1 against its single-node row's W1 in the same run. */
export function singleNodeShare(run: BenchRun, system: SystemRun): number | undefined {
  const singleNodeId = system.cluster?.singleNodeId;
  if (singleNodeId === undefined) return undefined;
  const single = run.systems.find((candidate) => candidate.id === singleNodeId && candidate.cluster === undefined);
  const clusterW1 = okResult(system, 'W1')?.messagesPerSecond;
  const singleW1 = single === undefined ? undefined : okResult(single, 'W1')?.messagesPerSecond;
  return clusterW1 === undefined || singleW1 === undefined || singleW1 <= 0 ? undefined : clusterW1 / singleW1;
}

export function clusterTableHeader(run: BenchRun): string[] {
  return ['System', 'Durability (fsync per ack?)', 'W1 msg/s (share of its single node)', `W2 at ${formatCount(clusterRate(run))} msg/s: p50 / p99 / p99.9 / max ms`, 'Client CPU', 'Server CPU (all nodes)', 'Status'];
}

export function clusterTableRows(run: BenchRun): string[][] {
  return clusterSystems(run).map((system) => {
    const share = singleNodeShare(run, system);
    const w1 = w1Cell(system);
    return [
      system.label,
      `${system.fsyncPerAck ? 'yes' : 'NO'}: ${system.durabilityNote}`,
      share === undefined ? w1 : `${w1} (${Math.round(share * 100)}%)`,
      w2Cell(system),
      cpuCell(system, 'clientCpuPercent'),
      cpuCell(system, 'serverCpuPercent'),
      overallStatus(system),
    ];
  });
}

/**
 * "Berth cluster vs best durable cluster peer" (the RabbitMQ quorum queue; NATS does not
 * fsync per ack) with the issue's targets: W1 at least x1.5, W2 p99 no worse.
 */
export function clusterRatioLines(run: BenchRun): string[] {
  const systems = clusterSystems(run);
  const berthRows = systems.filter((system) => system.isBerth);
  const peers = systems.filter((system) => !system.isBerth && system.fsyncPerAck);
  if (berthRows.length === 0 || peers.length === 0) return ['Cluster ratios: need a Berth cluster row and a durable cluster peer (rabbitmq-cluster) in the run.'];
  const lines: string[] = [];
  const bestW1 = bestPeer(peers, (peer) => okResult(peer, 'W1')?.messagesPerSecond, (a, b) => b - a);
  const bestW2 = bestPeer(peers, (peer) => okResult(peer, 'W2')?.latency?.p99Ms, (a, b) => a - b);
  for (const berth of berthRows) {
    const berthW1 = okResult(berth, 'W1')?.messagesPerSecond;
    if (berthW1 !== undefined && bestW1 !== undefined) {
      const ratio = berthW1 / bestW1.value;
      lines.push(`W5 throughput: ${berth.label} ${formatCount(berthW1)} msg/s vs ${bestW1.peer.label} ${formatCount(bestW1.value)} msg/s = x${ratio.toFixed(2)} (target x${clusterThroughputTarget.toFixed(2)}: ${verdict(ratio >= clusterThroughputTarget)})`);
    } else lines.push(`W5 throughput: no ratio for ${berth.label} (it or every durable cluster peer has no ok W1 result)`);
    const berthP99 = okResult(berth, 'W2')?.latency?.p99Ms;
    if (berthP99 !== undefined && bestW2 !== undefined) {
      const ratio = berthP99 / bestW2.value;
      lines.push(
        `W5 p99 latency at ${formatCount(clusterRate(run))} msg/s: ${berth.label} ${formatMs(berthP99)} ms vs ${bestW2.peer.label} ${formatMs(bestW2.value)} ms = x${ratio.toFixed(2)} (target no worse, x${clusterP99Target.toFixed(2)} or lower: ${verdict(ratio <= clusterP99Target)})`,
      );
    } else lines.push(`W5 latency: no ratio for ${berth.label} (it or every durable cluster peer has no ok W2 result)`);
  }
  return lines;
}

export function rawDiskLines(run: BenchRun): string[] {
  return run.rawDisk.map(
    (result) =>
      `write + fdatasync of ${result.recordsPerBatch} x 1 KiB per call: ${formatCount(result.fsyncsPerSecond)} fsyncs/s = ${formatCount(result.recordsPerSecond)} records/s (fdatasync p50 ${formatMs(result.fdatasyncP50Ms)} ms, p99 ${formatMs(result.fdatasyncP99Ms)} ms)`,
  );
}

export function terminalTable(run: BenchRun): string {
  const table = new Table({ head: tableHeader, wordWrap: true, colWidths: [18, 30, 10, 18, 26, 22, 8, 8, 18] });
  for (const row of tableRows(run)) table.push(row);
  return table.toString();
}

export function clusterTerminalTable(run: BenchRun): string {
  const table = new Table({ head: clusterTableHeader(run), wordWrap: true, colWidths: [24, 34, 14, 22, 8, 10, 18] });
  for (const row of clusterTableRows(run)) table.push(row);
  return table.toString();
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function markdownOf(header: string[], rows: string[][]): string {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const row of rows) lines.push(`| ${row.map(escapeCell).join(' | ')} |`);
  return lines.join('\n');
}

export function markdownTable(run: BenchRun): string {
  return markdownOf(tableHeader, tableRows(run));
}

export function clusterMarkdownTable(run: BenchRun): string {
  return markdownOf(clusterTableHeader(run), clusterTableRows(run));
}

function runSummaryLine(run: BenchRun): string {
  const options = run.options;
  return (
    `Run ${run.startedAt}${options.quick ? ' (--quick)' : ''}, ${(run.durationMs / 60_000).toFixed(1)} min; ` +
    `${run.machine.cpus}-core shared VM (${run.machine.cpuModel}), ${run.machine.memoryGiB} GiB, Linux ${run.machine.kernel}, Node ${run.machine.node}. ` +
    (singleNodeSystems(run).length > 0
      ? `W1 ${formatCount(options.messages)} messages; W2 ${formatCount(options.ratePerSecond)} msg/s for ${options.latencySeconds} s; ` +
        (options.repeats !== undefined && options.repeats > 1 ? `W1 and W2 ${options.repeats} times each, the median run shown; ` : '') +
        `W3 backlog ${formatCount(options.backlog)}; W4 ${formatCount(options.fifoMessages)} messages over ${formatCount(options.fifoGroups)} groups. `
      : '') +
    (clusterSystems(run).length > 0 ? `W5 (3-node clusters): W1 with ${formatCount(options.messages)} messages and W2 at ${formatCount(clusterRate(run))} msg/s for ${options.latencySeconds} s. ` : '') +
    `Load average (1/5/15 min) at start ${run.machine.loadAverageStart.map((value) => value.toFixed(1)).join('/')}, at end ${run.machine.loadAverageEnd.map((value) => value.toFixed(1)).join('/')}: ` +
    `other work on this shared VM competes for its 2 cores and its disk, so read the figures as relative, from one run.`
  );
}

export function latestMarkdown(run: BenchRun): string {
  const versions = Object.entries(run.machine.versions)
    .map(([name, version]) => `${name} ${version}`)
    .join(', ');
  const singleNode =
    singleNodeSystems(run).length === 0
      ? []
      : [markdownTable(run), '', 'Client CPU and server CPU are measured during W1 (% of one core; the machine has 2).', '', '**Berth vs best durable peer**', '', ...ratioLines(run).map((line) => `- ${line}`), ''];
  const cluster =
    clusterSystems(run).length === 0
      ? []
      : [
          '**Cluster (W5)**: three nodes of each system on this one machine (loopback), replicas on all three; clients spread over the nodes.',
          '',
          clusterMarkdownTable(run),
          '',
          'Server CPU adds up every process of the cluster (for Berth: its three nodes and etcd), % of one core during W1. The share is the cluster W1 against the same system\'s single-node W1 in this run.',
          '',
          '**Berth cluster vs durable cluster peer** (targets from the issue: W1 at least x1.5, W2 p99 no worse)',
          '',
          ...clusterRatioLines(run).map((line) => `- ${line}`),
          '',
        ];
  return [
    runSummaryLine(run),
    '',
    `Versions: ${versions}.`,
    '',
    ...singleNode,
    ...cluster,
    '**Raw durable write limit of this disk** (one writer, no queue)',
    '',
    ...rawDiskLines(run).map((line) => `- ${line}`),
    '',
  ].join('\n');
}

/** A hand-built SVG: W1 throughput bars and W2 p99 latency bars per system. */
export function chartSvg(run: BenchRun): string {
  const rowHeight = 26;
  const labelWidth = 330;
  const barWidth = 420;
  const panelGap = 40;
  // The cluster rows' W2 ran at another rate; they are in their own table, not in this chart.
  const systems = singleNodeSystems(run);
  const panelHeight = 40 + systems.length * rowHeight;
  const width = labelWidth + barWidth + 140;
  const height = panelHeight * 2 + panelGap + 30;
  const escape = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
  ];
  const panel = (top: number, title: string, values: Array<number | undefined>, format: (value: number) => string, colorOf: (index: number) => string, logScale: boolean): void => {
    parts.push(`<text x="10" y="${top + 20}" font-weight="bold" font-size="15">${escape(title)}</text>`);
    const present = values.filter((value): value is number => value !== undefined && value > 0);
    const maximum = Math.max(1e-9, ...present);
    // Latencies span orders of magnitude between systems: a log axis from a decade below the smallest.
    const floor = logScale ? Math.min(...present, maximum) / 10 : 0;
    const scale = (value: number): number => (logScale ? Math.log10(value / floor) / Math.log10(maximum / floor) : value / maximum);
    systems.forEach((system, index) => {
      const y = top + 34 + index * rowHeight;
      parts.push(`<text x="${labelWidth - 8}" y="${y + 15}" text-anchor="end">${escape(system.label)}</text>`);
      const value = values[index];
      if (value === undefined) {
        parts.push(`<text x="${labelWidth + 4}" y="${y + 15}" fill="#888">n/a</text>`);
        return;
      }
      const length = Math.max(1, scale(value) * barWidth);
      parts.push(`<rect x="${labelWidth}" y="${y + 2}" width="${length.toFixed(1)}" height="${rowHeight - 8}" fill="${colorOf(index)}"/>`);
      parts.push(`<text x="${(labelWidth + length + 6).toFixed(1)}" y="${y + 15}">${escape(format(value))}</text>`);
    });
  };
  const color = (index: number): string => (systems[index]?.isBerth ? '#1f6feb' : systems[index]?.fsyncPerAck ? '#6e7781' : '#d0a000');
  panel(0, 'W1 throughput, msg/s end to end (higher is better)', systems.map((system) => okResult(system, 'W1')?.messagesPerSecond), (value) => `${formatCount(value)} msg/s`, color, false);
  panel(panelHeight + panelGap, `W2 p99 latency at ${formatCount(run.options.ratePerSecond)} msg/s, ms, log scale (lower is better)`, systems.map((system) => okResult(system, 'W2')?.latency?.p99Ms), (value) => `${formatMs(value)} ms`, color, true);
  parts.push(
    `<text x="10" y="${height - 10}" fill="#555" font-size="11">${escape(`blue: Berth; grey: fsync before ack; yellow: no fsync per ack. ${run.startedAt}${run.options.quick ? ' --quick' : ''}, ${run.machine.cpus}-core shared VM`)}</text>`,
  );
  parts.push('</svg>');
  return parts.join('\n');
}

export const sectionTitle = '## Peers and end-to-end';

export function methodMarkdown(): string {
  return `How to run: \`npm run bench\` (builds, installs missing peers with \`bench/setup.sh\` via apt, runs every system and workload, writes \`bench/results/latest.{json,md,svg}\` and this section). Short runs: \`npm run bench -- --quick\` (about 16 minutes here for the single-node rows; the W5 cluster rows come on top), or \`--systems berth,redis --workloads W1,W2 --messages 50000 --backlog 1000000\`; \`--no-update-doc\` leaves this file alone; \`--report-only\` rewrites the outputs from \`bench/results/latest.json\` without running. A full run (200,000 / 5,000,000-message backlog) takes about 3 hours on this VM at the rates below, most of it W3 for Berth and BullMQ. Systems: \`berth\`, \`berth-native\`, \`berth-sdk\`, \`redis\`, \`bullmq\`, \`rabbitmq\`, \`nats\`; W5 cluster rows \`berth-cluster\`, \`berth-cluster-native\`, \`rabbitmq-cluster\`, \`nats-cluster\` (run only with W5, after the single-node rows: \`--systems berth-cluster,rabbitmq-cluster --workloads W5\`; \`--cluster-rate\` sets the W5 latency rate, default 1,000 msg/s; \`BERTH_BENCH_CLUSTER_PARTITIONS\` the Berth queue's partitions, default 1). For tuning Berth itself: \`BERTH_BENCH_NODE_FLAGS\` adds Node flags to the Berth servers the bench starts (e.g. \`--max-semi-space-size=64\`), \`BERTH_BENCH_CPU_PROFILE_DIR\` writes their V8 CPU profiles there, and server settings given as environment variables (e.g. \`BERTH_GROUP_COMMIT_DELAY_MS\`) reach them.

Method. The bench starts each system itself (Berth as \`MALLOC_MMAP_THRESHOLD_=131072 node --max-semi-space-size=16 --initial-old-space-size=256 bin/berth.js serve\`, the flags and environment its \`berth\` command runs with) on 127.0.0.1 in a fresh temp directory, runs the workloads against it, stops it and removes the directory, then moves to the next system, so only one system loads the machine at a time. Messages are 1 KiB and carry their id, message group, sequence in group and send time. Producers and consumers run in worker threads of the bench process (4 + 4), each with its own connection; producers send batches of 10 (SQS SendMessageBatch, a Redis pipeline, 10 confirmed AMQP publishes, 10 JetStream publishes, BullMQ addBulk) and consumers receive up to 10 and delete/ack them (DeleteMessageBatch, XACK+XDEL, basic.ack, JetStream ack, BullMQ job completion).

- Repeats: W1 and W2 run \`--repeats\` times on each system (3 unless told otherwise; \`--quick\`: 1), each on a new queue of the same running server, and the table shows the median run, by throughput for W1 and by p99 for W2, with the range of the runs beside it ("median of 3"); a failed run is reported instead of any median. One run of each swung by 15-20% between consecutive runs on this shared VM (Redis Streams' W1 measured 17,257 and 21,681 msg/s minutes apart), enough to flip a target. W3 and W4 run once.
- W1 throughput: 4 producer threads (8 batches in flight each) + 4 consumer threads (4 receive loops each: 16 concurrent receivers; every loop has its own connection, except Berth native, where the 4 loops of a consumer thread take from one SDK client and one push subscription, as the SDK is meant to be used, since a stream serves any number of readers); messages per second from the start until the last message is deleted/acked. A receive loop overlaps its acknowledgement with its next receive (one ack outstanding per loop, as a consumer that processes while its last ack travels); the run ends when the last ack is answered. Redis acks on a second connection per loop, so an XACK never waits behind the next blocking XREADGROUP. (Until session 3 each loop waited for its ack before receiving again, which measured the ack's round trip for Berth and Redis, whose acks are durable, and not for RabbitMQ, NATS and BullMQ, whose acks are not awaited.)
- W2 latency: an open-loop schedule at a fixed offered rate (5,000 msg/s for 20 s, split over 4 producers); each message carries its *intended* send time and latency is taken from that to receipt by a consumer, so a system that stalls the producer is charged for the wait (no coordinated omission). Before the measured pass, every system (cluster rows included) gets the same load for 3 s on the same queue, unmeasured, from the same load-generator threads and connections as the measured pass, and must deliver and acknowledge all of it first: the queue's leader may be a process that has served nothing yet, and without the warm-up its first second (code not yet optimised by V8, buffers and connections growing) built a backlog that the whole run's p99 carried; fresh load-generator threads for the measured pass ran 7-22 ms full collections in their first seconds, so the warm-up warms them too. Each producer sends whatever is due (up to 10 per call, up to 64 calls in flight), so at 5,000 msg/s most calls carry 1-2 messages. When a system cannot sustain the offered rate the cell says "saturated" with the rate it achieved, and the percentiles are mostly queueing time. Percentiles from HdrHistogram (hdr-histogram-js) merged over consumers.
- W3 backlog: the producers enqueue the whole backlog first, then the consumers drain it; the server's RSS (VmRSS from /proc/<pid>/status) is sampled every 250 ms; reported as peak and growth over the baseline (the idle server's RSS when W3 begins: in a full run, after W1 and W2 ran on the same server process, so a working set any load brings, such as a grown young generation and the record cache, is in the baseline), with fill and drain rates.
- W4 FIFO: a Berth FIFO queue with 1,000 message groups; each producer owns 250 groups and never has two sends of one group in flight, and consumers check that every first delivery is the next sequence number of its group (a gap or reorder is a violation). RabbitMQ takes part with a single-active-consumer quorum queue (one consumer at a time, whole-queue order). Peers without an equivalent are n/a.
- W5 cluster: each system as three nodes on this one machine (loopback, distinct ports and data directories), every message on all three: W1 as above, then W2 at \`--cluster-rate\` (default 1,000 msg/s, the issue's cluster rate) with the same open-loop method. Client connection k goes to node k mod 3 (producers 0-3, consumer loops 0-15), so most calls reach a node that is not the queue's leader and is forwarded, as behind a load balancer. Berth: etcd plus three \`berth serve --etcd\` nodes in three zones, the queue created with ReplicaCount 3 (one partition unless \`BERTH_BENCH_CLUSTER_PARTITIONS\` says otherwise), over the SQS JSON client and over the native protocol. RabbitMQ: nodes bench1-3@localhost joined with \`rabbitmqctl join_cluster\`, a quorum queue with \`x-quorum-initial-group-size\` 3. NATS: three nats-server processes with routes between them, a stream with 3 replicas. Every node shares the machine's 2 cores, so a cluster row measures replication overhead, not scale-out.
- Every run checks delivery: each message id is counted once received; a run with a missing message is FAILED and shows no figure; duplicates are counted and shown in the status.
- CPU: the client figure is \`process.cpuUsage()\` of the whole bench process (all load-generator threads), the server figure the utime+stime of the server process from /proc/<pid>/stat, both over the workload's wall time as % of one core. The machine has 2 cores shared by client and server, so the client's share is visible beside every figure.
- Raw durable write limit: in the same run, a plain loop of write + fdatasync of 10 and of 100 x 1 KiB records to a file in the temp directory.

Durability as configured (the table's second column says it per row):
- Berth: every acknowledged send, receive and delete is in the log and fsynced (group commit) before the answer.
- Redis Streams and BullMQ: \`appendonly yes\`, \`appendfsync always\` (Redis writes and fsyncs the AOF for one event-loop turn before sending its replies), RDB snapshots off.
- RabbitMQ 3.10: quorum queue, persistent messages, publisher confirms (a quorum queue confirms after its Raft log write is fsynced); consumer acks are basic.ack (not confirmed).
- NATS JetStream (nats-server 2.9.10 from Debian 12): file storage; a PubAck follows the write to the page cache, not an fsync (background flush every 2 minutes). \`sync_interval: always\` exists only from nats-server 2.10 and the Debian version refuses it, so there is no like-for-like NATS row; treat the NATS figures as not durable per ack.
- Berth cluster (r=3): a send is acknowledged after the primary and both backups fsynced it (group commit); receives and deletes commit at r=3 as well.
- RabbitMQ cluster: a quorum queue of 3 members confirms after a majority (2 of 3) fsynced the Raft entry.
- NATS cluster (R3): a PubAck follows the Raft commit on a majority (2 of 3) of the servers, written to the page cache, not fsynced.
- "Berth SQS via @aws-sdk/client-sqs" uses the official SDK with a small message count: it measures what the SDK costs on the client (client-bound), not the server.`;
}

export function updateBenchmarksDocument(path: string, run: BenchRun): void {
  const section = [sectionTitle, '', methodMarkdown(), '', '### Latest run', '', latestMarkdown(run).trimEnd(), ''].join('\n');
  const existing = existsSync(path) ? readFileSync(path, 'utf8') : '# Benchmarks\n';
  const start = existing.indexOf(`\n${sectionTitle}\n`);
  let updated: string;
  if (start === -1) {
    updated = `${existing.trimEnd()}\n\n${section}`;
  } else {
    const afterTitle = start + 1 + sectionTitle.length;
    const nextSection = existing.slice(afterTitle).search(/\n## /);
    const end = nextSection === -1 ? existing.length : afterTitle + nextSection + 1;
    updated = `${existing.slice(0, start + 1)}${section}${end < existing.length ? `\n${existing.slice(end)}` : ''}`;
  }
  writeFileSync(path, updated.endsWith('\n') ? updated : `${updated}\n`);
}
