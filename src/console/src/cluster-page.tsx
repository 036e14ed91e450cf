// Cluster: the nodes (id, region, zone, health) and every partition's primary, backups,
// epoch and replica lag. A single node shows itself and one partition per queue.
import { api } from './api.js';
import { usePoll } from './hooks.js';
import { formatCount } from './format.js';
import { Link } from './app.js';
import { ErrorBanner } from './widgets.js';

export function ClusterPage() {
  const cluster = usePoll(() => api.cluster(), 'cluster', 2000);
  const status = cluster.data;
  return (
    <section>
      <div class="page-head">
        <h1>Cluster</h1>
        {status !== undefined && <span class="badge">{status.mode === 'single-node' ? 'single node' : `${status.nodes.length} nodes`}</span>}
      </div>
      <ErrorBanner error={cluster.error} />
      {status === undefined ? (
        cluster.error === undefined && <p>Loading…</p>
      ) : (
        <>
          <div class="card">
            <h2>Nodes</h2>
            <table class="data" aria-label="Nodes">
              <thead>
                <tr>
                  <th>Node</th>
                  <th>Region</th>
                  <th>Zone</th>
                  <th>Address</th>
                  <th>Health</th>
                </tr>
              </thead>
              <tbody>
                {status.nodes.map((node) => (
                  <tr key={node.id}>
                    <td class="mono">
                      {node.id}
                      {node.id === status.selfId && <span class="badge">this node</span>}
                    </td>
                    <td>{node.region || '–'}</td>
                    <td>{node.zone || '–'}</td>
                    <td class="mono">{node.address ?? '–'}</td>
                    <td>
                      <span class={`health ${node.health}`}>{node.health}</span>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <div class="card">
            <h2>Partitions</h2>
            <table class="data" aria-label="Partitions">
              <thead>
                <tr>
                  <th>Queue</th>
                  <th class="number">Partition</th>
                  <th>Primary</th>
                  <th>Backups</th>
                  <th class="number">Epoch</th>
                  <th class="number">Replica lag (records)</th>
                </tr>
              </thead>
              <tbody>
                {status.partitions.map((partition) => (
                  <tr key={`${partition.queue}/${partition.partition}`}>
                    <td>
                      <Link to={`/queues/${encodeURIComponent(partition.queue)}`}>{partition.queue}</Link>
                    </td>
                    <td class="number">{partition.partition}</td>
                    <td class="mono">{partition.primary === '' ? <span class="health down">none</span> : partition.primary}</td>
                    <td class="mono">{partition.backups.length === 0 ? '–' : partition.backups.join(', ')}</td>
                    <td class="number">{partition.epoch}</td>
                    <td class={partition.replicaLag > 0 ? 'number warn' : 'number'}>{formatCount(partition.replicaLag)}</td>
                  </tr>
                ))}
                {status.partitions.length === 0 && (
                  <tr>
                    <td colSpan={6} class="empty">
                      No partitions: there are no queues yet.
                    </td>
                  </tr>
                )}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}
