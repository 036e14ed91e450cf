// Queues: every queue with its depth by state, oldest message age, send / receive /
// delete rates and a one-minute sparkline; a form to create a queue.
import { useState } from 'preact/hooks';
import { api, type QueueSummary } from './api.js';
import { usePoll, navigate } from './hooks.js';
import { Chart, colors } from './chart.js';
import { formatAge, formatCount, formatRate } from './format.js';
import { Link } from './app.js';
import { ErrorBanner, TopicBadge } from './widgets.js';

export function QueuesPage() {
  const queues = usePoll(() => api.queues(), 'queues');
  const [filter, setFilter] = useState('');
  const list = (queues.data?.queues ?? []).filter((queue) => queue.name.includes(filter.trim()));
  return (
    <section>
      <div class="page-head">
        <h1>Queues</h1>
        <CreateQueue onCreated={queues.refresh} />
      </div>
      <ErrorBanner error={queues.error} />
      <div class="toolbar">
        <input type="search" aria-label="Filter queues" placeholder="Filter by name" value={filter} onInput={(event) => setFilter(event.currentTarget.value)} />
        <span class="muted">{queues.data === undefined ? 'Loading…' : `${formatCount(queues.data.queues.length)} queues`}</span>
      </div>
      <table class="data" aria-label="Queues">
        <thead>
          <tr>
            <th>Name</th>
            <th class="number">Visible</th>
            <th class="number">In flight</th>
            <th class="number">Delayed</th>
            <th class="number">Oldest</th>
            <th class="number">Sent/s</th>
            <th class="number">Received/s</th>
            <th class="number">Deleted/s</th>
            <th>Last minute</th>
          </tr>
        </thead>
        <tbody>
          {list.map((queue) => (
            <QueueRow key={queue.name} queue={queue} />
          ))}
          {queues.data !== undefined && list.length === 0 && (
            <tr>
              <td colSpan={9} class="empty">
                {queues.data.queues.length === 0 ? 'No queues yet: create one above, or with any SQS client.' : 'No queue matches the filter.'}
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </section>
  );
}

function QueueRow({ queue }: { queue: QueueSummary }) {
  return (
    <tr data-queue={queue.name}>
      <td>
        <Link to={`/queues/${encodeURIComponent(queue.name)}`}>{queue.name}</Link>
        {queue.fifo && <span class="badge">FIFO</span>}
        <TopicBadge kind={queue.kind} topic={queue.topic} />
      </td>
      <td class="number" data-column="visible">{formatCount(queue.counts.visible)}</td>
      <td class="number" data-column="inflight">{formatCount(queue.counts.inflight)}</td>
      <td class="number" data-column="delayed">{formatCount(queue.counts.delayed)}</td>
      <td class="number">{formatAge(queue.counts.oldestMessageAgeSeconds, queue.counts.visible + queue.counts.inflight + queue.counts.delayed)}</td>
      <td class="number">{formatRate(queue.rates.sentPerSecond)}</td>
      <td class="number">{formatRate(queue.rates.receivedPerSecond)}</td>
      <td class="number">{formatRate(queue.rates.deletedPerSecond)}</td>
      <td>
        <Chart
          title={`Messages per second in ${queue.name} over the last minute`}
          compact
          width={140}
          height={28}
          startMs={queue.series.startMs}
          stepMs={queue.series.stepMs}
          lines={[
            { label: 'sent', color: colors.sent, values: queue.series.sent },
            { label: 'received', color: colors.received, values: queue.series.received },
            { label: 'deleted', color: colors.deleted, values: queue.series.deleted },
          ]}
        />
      </td>
    </tr>
  );
}

function CreateQueue(props: { onCreated: () => Promise<void> }) {
  const [name, setName] = useState('');
  const [fifo, setFifo] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  return (
    <form
      class="inline-form"
      aria-label="Create queue"
      onSubmit={async (event) => {
        event.preventDefault();
        const trimmed = name.trim();
        const fullName = fifo && !trimmed.endsWith('.fifo') ? `${trimmed}.fifo` : trimmed;
        setBusy(true);
        try {
          await api.createQueue(fullName, fifo ? { FifoQueue: 'true' } : {});
          setName('');
          setError(undefined);
          await props.onCreated();
          navigate(`/queues/${encodeURIComponent(fullName)}`);
        } catch (caught) {
          setError(caught instanceof Error ? caught.message : String(caught));
        } finally {
          setBusy(false);
        }
      }}
    >
      <input aria-label="New queue name" placeholder="new-queue-name" value={name} onInput={(event) => setName(event.currentTarget.value)} required maxLength={80} />
      <label class="check">
        <input type="checkbox" checked={fifo} onChange={(event) => setFifo(event.currentTarget.checked)} /> FIFO
      </label>
      <button type="submit" disabled={busy}>
        Create queue
      </button>
      {error !== undefined && (
        <span class="error" role="alert">
          {error}
        </span>
      )}
    </form>
  );
}
