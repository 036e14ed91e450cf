// One queue: depth by state, live rates, attributes (editable), purge with confirm, send
// a test message, peek (does not change visibility), and its dead-letter relations with
// a redrive button when it is a dead-letter queue.
import { useState } from 'preact/hooks';
import { api, ApiError, type PeekedMessage, type QueueDetail } from './api.js';
import { navigate, usePoll } from './hooks.js';
import { Chart, colors } from './chart.js';
import { formatAge, formatCount, formatRate, formatTime } from './format.js';
import { Link } from './app.js';
import { Confirm, ErrorBanner, Stat, TopicBadge } from './widgets.js';

/** The attributes the console edits, with their SQS limits for the input fields. */
const editableAttributes: Array<{ name: string; label: string; minimum?: number; maximum?: number; unit?: string; fifoOnly?: boolean; text?: boolean }> = [
  { name: 'VisibilityTimeout', label: 'Visibility timeout', minimum: 0, maximum: 43_200, unit: 's' },
  { name: 'DelaySeconds', label: 'Delivery delay', minimum: 0, maximum: 900, unit: 's' },
  { name: 'ReceiveMessageWaitTimeSeconds', label: 'Receive wait time', minimum: 0, maximum: 20, unit: 's' },
  { name: 'MessageRetentionPeriod', label: 'Retention period', minimum: 60, maximum: 1_209_600, unit: 's' },
  { name: 'MaximumMessageSize', label: 'Maximum message size', minimum: 1024, maximum: 1_048_576, unit: 'bytes' },
  { name: 'RedrivePolicy', label: 'Redrive policy (JSON)', text: true },
];

export function QueuePage({ name }: { name: string }) {
  const detail = usePoll(() => api.queue(name), `queue:${name}`);
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const [actionError, setActionError] = useState<string | undefined>(undefined);
  const [confirming, setConfirming] = useState<'purge' | 'delete' | undefined>(undefined);

  const act = async (what: () => Promise<string>): Promise<void> => {
    try {
      const message = await what();
      setNotice(message);
      setActionError(undefined);
      await detail.refresh();
    } catch (error) {
      setNotice(undefined);
      setActionError(error instanceof ApiError ? `${error.code}: ${error.message}` : String(error));
    }
  };

  const queue = detail.data;
  if (queue === undefined) {
    return (
      <section>
        <p class="crumbs">
          <Link to="/">Queues</Link> / {name}
        </p>
        {detail.error === undefined ? <p>Loading…</p> : <ErrorBanner error={detail.error} />}
      </section>
    );
  }

  return (
    <section>
      <p class="crumbs">
        <Link to="/">Queues</Link> / {queue.name}
      </p>
      <div class="page-head">
        <h1>
          {queue.name} {queue.fifo && <span class="badge">FIFO</span>}{' '}
          <TopicBadge kind={queue.kind} topic={queue.topic} />
        </h1>
        <div class="actions">
          <button type="button" class="danger" onClick={() => setConfirming('purge')}>
            Purge queue
          </button>
          <button type="button" class="danger secondary" onClick={() => setConfirming('delete')}>
            Delete queue
          </button>
        </div>
      </div>
      <p class="muted mono">{queue.arn}</p>
      <ErrorBanner error={detail.error} />
      {notice !== undefined && (
        <p class="notice" role="status">
          {notice}
        </p>
      )}
      {actionError !== undefined && (
        <p class="error banner" role="alert">
          {actionError}
        </p>
      )}

      <div class="stats" aria-label="Queue depth">
        <Stat name="visible" label="Visible messages" value={formatCount(queue.counts.visible)} />
        <Stat name="inflight" label="Messages in flight" value={formatCount(queue.counts.inflight)} />
        <Stat name="delayed" label="Delayed messages" value={formatCount(queue.counts.delayed)} />
        <Stat name="oldest" label="Oldest message age" value={formatAge(queue.counts.oldestMessageAgeSeconds, queue.counts.visible + queue.counts.inflight + queue.counts.delayed)} />
        <Stat name="sent-rate" label="Sent per second" value={formatRate(queue.rates.sentPerSecond)} />
        <Stat name="deleted-rate" label="Deleted per second" value={formatRate(queue.rates.deletedPerSecond)} />
      </div>

      <div class="card">
        <h2>Messages per second, last 5 minutes</h2>
        <Chart
          title={`Messages per second in ${queue.name}, last 5 minutes`}
          height={180}
          startMs={queue.series.startMs}
          stepMs={queue.series.stepMs}
          lines={[
            { label: 'sent', color: colors.sent, values: queue.series.sent },
            { label: 'received', color: colors.received, values: queue.series.received },
            { label: 'deleted', color: colors.deleted, values: queue.series.deleted },
          ]}
        />
      </div>

      <div class="columns">
        <SendMessage queue={queue} onSent={(messageId) => act(async () => `Sent message ${messageId}.`)} />
        <DeadLetters queue={queue} act={act} />
      </div>

      <Peek queue={queue} />
      <Attributes queue={queue} act={act} />

      {confirming === 'purge' && (
        <Confirm
          title={`Purge ${queue.name}?`}
          confirmLabel="Confirm purge"
          danger
          onCancel={() => setConfirming(undefined)}
          onConfirm={() => {
            setConfirming(undefined);
            void act(async () => {
              await api.purge(queue.name);
              return `Purged ${queue.name}.`;
            });
          }}
        >
          <p>Every message in the queue is deleted, including those in flight. This cannot be undone, and a queue can be purged once a minute.</p>
        </Confirm>
      )}
      {confirming === 'delete' && (
        <Confirm
          title={`Delete ${queue.name}?`}
          confirmLabel="Confirm delete"
          danger
          onCancel={() => setConfirming(undefined)}
          onConfirm={async () => {
            setConfirming(undefined);
            try {
              await api.deleteQueue(queue.name);
              navigate('/');
            } catch (error) {
              setActionError(error instanceof Error ? error.message : String(error));
            }
          }}
        >
          <p>The queue and all its messages are deleted. A queue of the same name can be created again after 60 seconds.</p>
        </Confirm>
      )}
    </section>
  );
}

function SendMessage({ queue, onSent }: { queue: QueueDetail; onSent: (messageId: string) => Promise<void> }) {
  const [body, setBody] = useState('');
  const [groupId, setGroupId] = useState('');
  const [deduplicationId, setDeduplicationId] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  return (
    <form
      class="card"
      aria-label="Send a test message"
      onSubmit={async (event) => {
        event.preventDefault();
        try {
          const outcome = await api.send(queue.name, {
            body,
            ...(queue.fifo ? { groupId: groupId.trim() } : {}),
            ...(queue.fifo && deduplicationId.trim() !== '' ? { deduplicationId: deduplicationId.trim() } : {}),
          });
          setBody('');
          setDeduplicationId('');
          setError(undefined);
          await onSent(outcome.messageId);
        } catch (caught) {
          setError(caught instanceof ApiError ? `${caught.code}: ${caught.message}` : String(caught));
        }
      }}
    >
      <h2>Send a test message</h2>
      <label>
        Message body
        <textarea rows={4} value={body} onInput={(event) => setBody(event.currentTarget.value)} required />
      </label>
      {queue.fifo && (
        <div class="row">
          <label>
            Message group id
            <input value={groupId} onInput={(event) => setGroupId(event.currentTarget.value)} required />
          </label>
          <label>
            Deduplication id
            <input value={deduplicationId} placeholder={queue.attributes['ContentBasedDeduplication'] === 'true' ? 'from the body' : 'required unless content-based'} onInput={(event) => setDeduplicationId(event.currentTarget.value)} />
          </label>
        </div>
      )}
      {error !== undefined && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <button type="submit">Send message</button>
    </form>
  );
}

function DeadLetters({ queue, act }: { queue: QueueDetail; act: (what: () => Promise<string>) => Promise<void> }) {
  const running = queue.moveTasks.find((task) => task.status === 'RUNNING');
  return (
    <div class="card" aria-label="Dead-letter queue">
      <h2>Dead-letter queue</h2>
      {queue.deadLetterQueue !== undefined ? (
        <p>
          Messages received more than {queue.maxReceiveCount ?? '?'} times move to{' '}
          <Link to={`/queues/${encodeURIComponent(queue.deadLetterQueue)}`}>{queue.deadLetterQueue}</Link>.
        </p>
      ) : (
        <p class="muted">No redrive policy: failed messages stay in this queue.</p>
      )}
      {queue.deadLetterSourceQueues.length > 0 && (
        <>
          <p>
            Dead-letter queue of{' '}
            {queue.deadLetterSourceQueues.map((source, index) => (
              <span key={source}>
                {index > 0 && ', '}
                <Link to={`/queues/${encodeURIComponent(source)}`}>{source}</Link>
              </span>
            ))}
            .
          </p>
          {running === undefined ? (
            <button
              type="button"
              disabled={queue.counts.visible === 0}
              onClick={() =>
                act(async () => {
                  await api.redrive(queue.name);
                  return 'Redrive started: messages go back to the queues they came from.';
                })
              }
            >
              Redrive messages to source queues
            </button>
          ) : (
            <button
              type="button"
              class="secondary"
              onClick={() =>
                act(async () => {
                  const result = await api.cancelRedrive(running.taskHandle);
                  return `Redrive cancelled after ${result.approximateNumberOfMessagesMoved} messages.`;
                })
              }
            >
              Cancel redrive
            </button>
          )}
          {queue.moveTasks.length > 0 && (
            <table class="data compact" aria-label="Redrive tasks">
              <thead>
                <tr>
                  <th>Started</th>
                  <th>Status</th>
                  <th class="number">Moved</th>
                </tr>
              </thead>
              <tbody>
                {queue.moveTasks.map((task) => (
                  <tr key={task.taskHandle}>
                    <td>{formatTime(task.startedTimestampMs)}</td>
                    <td>
                      {task.status}
                      {task.failureReason !== undefined ? ` (${task.failureReason})` : ''}
                    </td>
                    <td class="number">
                      {formatCount(task.approximateNumberOfMessagesMoved)} / {formatCount(task.approximateNumberOfMessagesToMove)}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </div>
  );
}

function Peek({ queue }: { queue: QueueDetail }) {
  const [messages, setMessages] = useState<PeekedMessage[] | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  return (
    <div class="card" aria-label="Peek at messages">
      <div class="page-head">
        <h2>Peek</h2>
        <button
          type="button"
          class="secondary"
          onClick={async () => {
            try {
              setMessages((await api.peek(queue.name, 10)).messages);
              setError(undefined);
            } catch (caught) {
              setError(caught instanceof Error ? caught.message : String(caught));
            }
          }}
        >
          Peek messages
        </button>
      </div>
      <p class="muted">Shows up to 10 messages without receiving them: their visibility and receive counts do not change.</p>
      {error !== undefined && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {messages !== undefined && messages.length === 0 && <p class="empty">No messages to show.</p>}
      {messages !== undefined && messages.length > 0 && (
        <table class="data" aria-label="Peeked messages">
          <thead>
            <tr>
              <th>Message id</th>
              <th>Sent</th>
              <th class="number">Receives</th>
              {queue.fifo && <th>Group</th>}
              <th>Body</th>
            </tr>
          </thead>
          <tbody>
            {messages.map((message) => (
              <tr key={message.messageId}>
                <td class="mono">{message.messageId}</td>
                <td>{formatTime(message.sentTimestampMs)}</td>
                <td class="number">{message.receiveCount}</td>
                {queue.fifo && <td>{message.groupId ?? ''}</td>}
                <td>
                  <pre class="body">
                    {message.body}
                    {message.bodyTruncated ? '…' : ''}
                  </pre>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

function Attributes({ queue, act }: { queue: QueueDetail; act: (what: () => Promise<string>) => Promise<void> }) {
  const [editing, setEditing] = useState(false);
  const [values, setValues] = useState<Record<string, string>>({});
  const names = Object.keys(queue.attributes).sort();
  return (
    <div class="card" aria-label="Attributes">
      <div class="page-head">
        <h2>Attributes</h2>
        {!editing && (
          <button
            type="button"
            class="secondary"
            onClick={() => {
              setValues(Object.fromEntries(editableAttributes.map((attribute) => [attribute.name, queue.attributes[attribute.name] ?? ''])));
              setEditing(true);
            }}
          >
            Edit attributes
          </button>
        )}
      </div>
      {editing ? (
        <form
          class="grid-form"
          aria-label="Edit attributes"
          onSubmit={async (event) => {
            event.preventDefault();
            const changed: Record<string, string> = {};
            for (const attribute of editableAttributes) {
              const value = (values[attribute.name] ?? '').trim();
              if (value !== (queue.attributes[attribute.name] ?? '')) changed[attribute.name] = value;
            }
            if (Object.keys(changed).length === 0) {
              setEditing(false);
              return;
            }
            await act(async () => {
              await api.setAttributes(queue.name, changed);
              setEditing(false);
              return `Saved ${Object.keys(changed).join(', ')}.`;
            });
          }}
        >
          {editableAttributes.map((attribute) => (
            <label key={attribute.name}>
              {attribute.label}
              {attribute.unit !== undefined ? ` (${attribute.unit})` : ''}
              {attribute.text === true ? (
                <textarea rows={2} name={attribute.name} value={values[attribute.name] ?? ''} onInput={(event) => setValues({ ...values, [attribute.name]: event.currentTarget.value })} />
              ) : (
                <input
                  type="number"
                  name={attribute.name}
                  min={attribute.minimum}
                  max={attribute.maximum}
                  value={values[attribute.name] ?? ''}
                  onInput={(event) => setValues({ ...values, [attribute.name]: event.currentTarget.value })}
                />
              )}
            </label>
          ))}
          <div class="actions">
            <button type="button" class="secondary" onClick={() => setEditing(false)}>
              Cancel
            </button>
            <button type="submit">Save attributes</button>
          </div>
        </form>
      ) : (
        <table class="data compact" aria-label="Queue attributes">
          <tbody>
            {names.map((attribute) => (
              <tr key={attribute}>
                <th scope="row">{attribute}</th>
                <td class="mono">{queue.attributes[attribute]}</td>
              </tr>
            ))}
            {Object.entries(queue.tags).map(([tag, value]) => (
              <tr key={`tag:${tag}`}>
                <th scope="row">tag: {tag}</th>
                <td class="mono">{value}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
