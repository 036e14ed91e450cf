// Live line charts on uPlot. The plot is created once per set of series and fed new data
// on every poll (setData), so a chart does not flicker or re-layout each second-and-a-half.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface ChartLine {
  label: string;
  color: string;
  values: Array<number | null>;
}

export interface ChartProps {
  /** Accessible description of what the chart shows. */
  title: string;
  startMs: number;
  stepMs: number;
  lines: ChartLine[];
  /** Fixed width in pixels; absent: the chart fills its container and follows resizes. */
  width?: number;
  height: number;
  /** A sparkline: no axes, legend or cursor. */
  compact?: boolean;
  /** Formats y values in the axis and legend. */
  unit?: string;
}

export function Chart(props: ChartProps) {
  const container = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = `${props.lines.map((line) => line.label).join('|')}:${props.width ?? 'fill'}x${props.height}:${props.compact === true}`;

  const data = (): uPlot.AlignedData => {
    const length = Math.max(0, ...props.lines.map((line) => line.values.length));
    const times = Array.from({ length }, (_, index) => (props.startMs + index * props.stepMs) / 1000);
    return [times, ...props.lines.map((line) => line.values)] as uPlot.AlignedData;
  };

  useEffect(() => {
    const element = container.current;
    if (element === null) return;
    const compact = props.compact === true;
    const unit = props.unit ?? '';
    const widthOf = (): number => props.width ?? Math.max(200, element.clientWidth);
    const options: uPlot.Options = {
      width: widthOf(),
      height: props.height,
      legend: { show: !compact },
      cursor: { show: !compact },
      scales: { y: { range: (_self, minimum, maximum) => [Math.min(0, minimum), Math.max(1, maximum * 1.1)] } },
      axes: compact
        ? [{ show: false }, { show: false }]
        : [{ stroke: '#5b6472', grid: { stroke: '#eef0f3' }, space: 70, values: (_self, ticks) => ticks.map((tick) => clockTime(tick)) }, { stroke: '#5b6472', grid: { stroke: '#eef0f3' }, size: 56, values: (_self, ticks) => ticks.map((tick) => `${tick}${unit}`) }],
      series: [
        {},
        ...props.lines.map((line) => ({ label: line.label, stroke: line.color, width: compact ? 1.25 : 1.75, spanGaps: false, points: { show: false }, value: (_self: uPlot, value: number | null) => (value === null ? '–' : `${Number(value.toFixed(2))}${unit}`) })),
      ],
    };
    plot.current = new uPlot(options, data(), element);
    let observer: ResizeObserver | undefined;
    if (props.width === undefined) {
      observer = new ResizeObserver(() => plot.current?.setSize({ width: widthOf(), height: props.height }));
      observer.observe(element);
    }
    return () => {
      observer?.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [shape]);

  useEffect(() => {
    plot.current?.setData(data());
  });

  return <div class={props.compact === true ? 'chart compact' : 'chart'} ref={container} role="img" aria-label={props.title} />;
}

export const colors = {
  sent: '#2563eb',
  received: '#16a34a',
  deleted: '#d97706',
  requests: '#7c3aed',
  errors: '#dc2626',
  p50: '#0891b2',
  p99: '#be185d',
} as const;

/** "14:05:30" for an epoch-seconds tick: the charts span minutes, so no date is needed. */
function clockTime(epochSeconds: number): string {
  const date = new Date(epochSeconds * 1000);
  const pad = (value: number): string => String(value).padStart(2, '0');
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}
