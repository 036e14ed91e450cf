// Server: live throughput (requests, errors, messages sent / received / deleted per
// second) and request latency (p50, p99 per second) for the last five minutes.
import { api } from './api.js';
import { usePoll } from './hooks.js';
import { Chart, colors } from './chart.js';
import { formatMs, formatRate, last } from './format.js';
import { ErrorBanner, Stat } from './widgets.js';

export function ServerPage() {
  const polled = usePoll(() => api.series(300), 'series');
  const data = polled.data;
  return (
    <section>
      <div class="page-head">
        <h1>Server</h1>
        <a class="link" href="/metrics">
          Prometheus metrics
        </a>
      </div>
      <ErrorBanner error={polled.error} />
      {data === undefined ? (
        polled.error === undefined && <p>Loading…</p>
      ) : (
        <>
          <div class="stats" aria-label="Server rates">
            <Stat label="Requests per second" value={formatRate(data.rates.requestsPerSecond)} />
            <Stat label="Errors per second" value={formatRate(data.rates.errorsPerSecond)} />
            <Stat label="Sent per second" value={formatRate(data.rates.sentPerSecond)} />
            <Stat label="Received per second" value={formatRate(data.rates.receivedPerSecond)} />
            <Stat label="Deleted per second" value={formatRate(data.rates.deletedPerSecond)} />
            <Stat label="Latency p99 (last second)" value={formatMs(latestValue(data.series.latencyP99Ms))} />
          </div>
          <div class="card">
            <h2>Throughput per second, last 5 minutes</h2>
            <Chart
              title="Server throughput per second, last 5 minutes"
              height={220}
              startMs={data.series.startMs}
              stepMs={data.series.stepMs}
              lines={[
                { label: 'requests', color: colors.requests, values: data.series.requests },
                { label: 'errors', color: colors.errors, values: data.series.errors },
                { label: 'sent', color: colors.sent, values: data.series.sent },
                { label: 'received', color: colors.received, values: data.series.received },
                { label: 'deleted', color: colors.deleted, values: data.series.deleted },
              ]}
            />
          </div>
          <div class="card">
            <h2>Request latency, last 5 minutes</h2>
            <Chart
              title="Request latency p50 and p99 in milliseconds, last 5 minutes"
              height={220}
              unit=" ms"
              startMs={data.series.startMs}
              stepMs={data.series.stepMs}
              lines={[
                { label: 'p50', color: colors.p50, values: data.series.latencyP50Ms },
                { label: 'p99', color: colors.p99, values: data.series.latencyP99Ms },
              ]}
            />
            <p class="muted">Long polls count at their full wait; per-second quantiles are accurate to about 20%.</p>
          </div>
        </>
      )}
    </section>
  );
}

/** The newest second that had requests (the current second may have none yet). */
function latestValue(values: Array<number | null>): number | null {
  for (let index = values.length - 1; index >= Math.max(0, values.length - 5); index -= 1) {
    const value = values[index];
    if (value !== null && value !== undefined) return value;
  }
  return last(values) ?? null;
}
