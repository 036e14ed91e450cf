// Small shared pieces: error banner, confirm dialog, stat tiles.
import type { ComponentChildren } from 'preact';
import type { ApiError } from './api.js';
import { Link } from './app.js';

export function ErrorBanner({ error }: { error: ApiError | undefined }) {
  if (error === undefined) return null;
  return (
    <p class="error banner" role="alert">
      {error.code}: {error.message}
    </p>
  );
}

/** A topic's badge, or a subscription's with a link to its topic (docs/topics.md); nothing for a plain queue. */
export function TopicBadge({ kind, topic }: { kind: 'topic' | 'subscription' | undefined; topic: string | undefined }) {
  if (kind === 'topic') return <span class="badge">topic</span>;
  if (kind === 'subscription' && topic !== undefined) {
    return (
      <span class="badge">
        subscription of <Link to={`/queues/${encodeURIComponent(topic)}`}>{topic}</Link>
      </span>
    );
  }
  return null;
}

export function Stat(props: { label: string; value: string; name?: string }) {
  return (
    <div class="stat" data-stat={props.name}>
      <div class="stat-value" aria-label={props.label}>
        {props.value}
      </div>
      <div class="stat-label">{props.label}</div>
    </div>
  );
}

/** An in-page confirmation (not window.confirm: it is testable and does not block the page). */
export function Confirm(props: { title: string; children: ComponentChildren; confirmLabel: string; onConfirm: () => void; onCancel: () => void; danger?: boolean }) {
  return (
    <div class="overlay">
      <div class="card dialog" role="dialog" aria-modal="true" aria-label={props.title}>
        <h2>{props.title}</h2>
        <div>{props.children}</div>
        <div class="actions">
          <button type="button" class="secondary" onClick={props.onCancel}>
            Cancel
          </button>
          <button type="button" class={props.danger === true ? 'danger' : ''} onClick={props.onConfirm}>
            {props.confirmLabel}
          </button>
        </div>
      </div>
    </div>
  );
}
