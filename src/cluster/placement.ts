// Placement of partition replicas on nodes (pure: no I/O, no clock, no randomness).
//
// A partition's replica set is its primary followed by its backups, all on distinct nodes.
// Rules, in order of weight:
//   1. distinct nodes, always;
//   2. distinct zones while unused zones remain (never two replicas in one zone when there
//      are at least as many zones as replicas);
//   3. primaries balanced across nodes (the node leading the fewest partitions leads next),
//      then replicas balanced (the node holding the fewest replicas is picked next);
//   4. ties broken by node id, so the same input always gives the same placement.
// Nodes of the preferred region (when given) come before other regions.

export interface PlacementNode {
  id: string;
  zone: string;
  region: string;
}

export interface PlacementLoad {
  /** Partitions each node leads now. */
  primaries: Map<string, number>;
  /** Replicas (primary or backup) each node holds now. */
  replicas: Map<string, number>;
}

export function emptyLoad(): PlacementLoad {
  return { primaries: new Map(), replicas: new Map() };
}

/** Replica sets for `partitionCount` new partitions of `replicaSetSize` nodes each; updates `load`. */
export function placePartitions(
  nodes: readonly PlacementNode[],
  partitionCount: number,
  replicaSetSize: number,
  load: PlacementLoad = emptyLoad(),
  preferredRegion?: string,
): string[][] {
  if (replicaSetSize < 1) throw new RangeError('replicaSetSize must be at least 1');
  if (replicaSetSize > nodes.length) throw new RangeError(`a replica set of ${replicaSetSize} needs ${replicaSetSize} nodes, only ${nodes.length} are live`);
  const sets: string[][] = [];
  for (let partition = 0; partition < partitionCount; partition++) {
    const set = chooseReplicaSet(nodes, replicaSetSize, load, [], preferredRegion);
    sets.push(set);
    add(load.primaries, set[0]!, 1);
    for (const id of set) add(load.replicas, id, 1);
  }
  return sets;
}

/**
 * Picks `count` more nodes for a replica set that already holds `existing` (in order: the
 * first pick is the primary when `existing` is empty). Nodes in `existing` are never picked.
 */
export function chooseReplicaSet(
  nodes: readonly PlacementNode[],
  count: number,
  load: PlacementLoad,
  existing: readonly PlacementNode[],
  preferredRegion?: string,
): string[] {
  const chosen: PlacementNode[] = [...existing];
  const picked: string[] = [];
  for (let step = 0; step < count; step++) {
    const usedIds = new Set(chosen.map((node) => node.id));
    const usedZones = new Set(chosen.map((node) => zoneKey(node)));
    const candidates = nodes.filter((node) => !usedIds.has(node.id));
    if (candidates.length === 0) break;
    const leading = chosen.length === 0;
    candidates.sort((a, b) => {
      const zoneA = usedZones.has(zoneKey(a)) ? 1 : 0;
      const zoneB = usedZones.has(zoneKey(b)) ? 1 : 0;
      if (zoneA !== zoneB) return zoneA - zoneB;
      if (preferredRegion !== undefined) {
        const regionA = a.region === preferredRegion ? 0 : 1;
        const regionB = b.region === preferredRegion ? 0 : 1;
        if (regionA !== regionB) return regionA - regionB;
      }
      if (leading) {
        const primariesA = load.primaries.get(a.id) ?? 0;
        const primariesB = load.primaries.get(b.id) ?? 0;
        if (primariesA !== primariesB) return primariesA - primariesB;
      }
      const replicasA = load.replicas.get(a.id) ?? 0;
      const replicasB = load.replicas.get(b.id) ?? 0;
      if (replicasA !== replicasB) return replicasA - replicasB;
      return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
    });
    const next = candidates[0]!;
    chosen.push(next);
    picked.push(next.id);
  }
  return picked;
}

/** The load implied by existing replica sets (first entry of each set is its primary). */
export function loadOf(replicaSets: Iterable<{ primary: string; replicas: readonly string[] }>): PlacementLoad {
  const load = emptyLoad();
  for (const set of replicaSets) {
    if (set.primary !== '') add(load.primaries, set.primary, 1);
    for (const id of set.replicas) add(load.replicas, id, 1);
  }
  return load;
}

function zoneKey(node: PlacementNode): string {
  // A node without a zone is its own zone: zone-awareness only applies where zones exist.
  return node.zone === '' ? `node:${node.id}` : `${node.region}/${node.zone}`;
}

function add(map: Map<string, number>, key: string, delta: number): void {
  map.set(key, (map.get(key) ?? 0) + delta);
}
