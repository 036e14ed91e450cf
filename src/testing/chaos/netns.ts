// Network namespaces for chaos partitions (Linux, root, iproute2).
//
// Layout (every address lives inside the run's own namespaces; the host's namespace gets
// no interface and no address):
//
//   <prefix>-hub   bridge br0 10.213.0.1/24: etcd and the chaos driver (the load's SQS
//                  clients) run here; one veth end per node attached to br0
//   <prefix>-nK    eth0 10.213.0.(10+K)/24: berth node nK
//
// Partitions are routes inside the namespaces, because this kernel may lack tc's drop
// actions: `blackhole` (the sender's own packets fail at once, EINVAL) or `silent` (a next
// hop that never answers ARP: packets wait and are dropped, connects time out, like a
// cut cable). A cut between A and B installs the route on both sides; healing deletes it.
// teardown() deletes the namespaces (and with them every veth and route).

import { execFileSync, spawnSync } from 'node:child_process';

export const hubAddress = '10.213.0.1';
const unansweredNextHop = '10.213.0.250';

export function nodeAddress(index: number): string {
  return `10.213.0.${11 + index}`;
}

export type CutMode = 'blackhole' | 'silent';

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Whether this machine can make network namespaces (root, iproute2, kernel support): tries one. */
export function probeNetns(): { ok: true } | { ok: false; reason: string } {
  const name = `berth-probe-${process.pid}`;
  const which = spawnSync('ip', ['-V'], { encoding: 'utf8' });
  if (which.error !== undefined) return { ok: false, reason: 'the ip command (iproute2) is missing' };
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return { ok: false, reason: 'not root' };
  const added = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
  if (added.status !== 0) return { ok: false, reason: `ip netns add failed: ${added.stderr.trim()}` };
  try {
    const veth = spawnSync('ip', ['-n', name, 'link', 'add', 'probe0', 'type', 'veth', 'peer', 'name', 'probe1'], { encoding: 'utf8' });
    if (veth.status !== 0) return { ok: false, reason: `veth pairs not possible: ${veth.stderr.trim()}` };
    return { ok: true };
  } finally {
    spawnSync('ip', ['netns', 'del', name]);
  }
}

export interface ChaosNetwork {
  readonly prefix: string;
  readonly hub: string;
  readonly nodeNamespaces: string[];
  /** Cuts traffic between two namespaces' addresses, both directions. */
  cut(a: number | 'hub', b: number | 'hub', mode: CutMode): void;
  /** Removes every cut. */
  healAll(): void;
  teardown(): void;
}

export function namespaceNames(prefix: string, nodes: number): { hub: string; nodes: string[] } {
  return { hub: `${prefix}-hub`, nodes: Array.from({ length: nodes }, (_, index) => `${prefix}-n${index + 1}`) };
}

/** Makes the namespaces, bridge and veth pairs. On any failure removes what it made and throws. */
export function setupNetwork(prefix: string, nodes: number): ChaosNetwork {
  const names = namespaceNames(prefix, nodes);
  const made: string[] = [];
  try {
    ip(['netns', 'add', names.hub]);
    made.push(names.hub);
    ip(['-n', names.hub, 'link', 'set', 'lo', 'up']);
    ip(['-n', names.hub, 'link', 'add', 'br0', 'type', 'bridge']);
    ip(['-n', names.hub, 'addr', 'add', `${hubAddress}/24`, 'dev', 'br0']);
    ip(['-n', names.hub, 'link', 'set', 'br0', 'up']);
    names.nodes.forEach((namespace, index) => {
      ip(['netns', 'add', namespace]);
      made.push(namespace);
      ip(['-n', namespace, 'link', 'set', 'lo', 'up']);
      ip(['-n', names.hub, 'link', 'add', `v-n${index + 1}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', namespace]);
      ip(['-n', names.hub, 'link', 'set', `v-n${index + 1}`, 'master', 'br0', 'up']);
      ip(['-n', namespace, 'addr', 'add', `${nodeAddress(index)}/24`, 'dev', 'eth0']);
      ip(['-n', namespace, 'link', 'set', 'eth0', 'up']);
    });
  } catch (error) {
    for (const namespace of made.reverse()) spawnSync('ip', ['netns', 'del', namespace]);
    throw new Error(`network namespace setup failed: ${(error as Error).message}`);
  }
  return attachNetwork(prefix, nodes);
}

/** The network of an already set up run (the driver runs inside the hub and gets the prefix). */
export function attachNetwork(prefix: string, nodes: number): ChaosNetwork {
  const names = namespaceNames(prefix, nodes);
  const cuts: Array<{ namespace: string; address: string }> = [];
  return {
    prefix,
    hub: names.hub,
    nodeNamespaces: names.nodes,
    cut(a, b, mode) {
      const side = (end: number | 'hub') => (end === 'hub' ? { namespace: names.hub, address: hubAddress } : { namespace: names.nodes[end]!, address: nodeAddress(end) });
      const one = side(a);
      const two = side(b);
      for (const [from, to] of [[one, two], [two, one]] as const) {
        const route = mode === 'blackhole' ? ['route', 'replace', 'blackhole', `${to.address}/32`] : ['route', 'replace', `${to.address}/32`, 'via', unansweredNextHop];
        ip(['-n', from.namespace, ...route]);
        cuts.push({ namespace: from.namespace, address: to.address });
      }
    },
    healAll() {
      for (const cut of cuts.splice(0)) spawnSync('ip', ['-n', cut.namespace, 'route', 'del', `${cut.address}/32`]);
    },
    teardown() {
      for (const namespace of [...names.nodes, names.hub]) spawnSync('ip', ['netns', 'del', namespace]);
    },
  };
}
