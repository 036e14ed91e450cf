import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { chooseReplicaSet, emptyLoad, loadOf, placePartitions, type PlacementNode } from './placement.js';

const nodes = (spec: Array<[string, string]>): PlacementNode[] => spec.map(([id, zone]) => ({ id, zone, region: 'r1' }));

describe('placement', () => {
  test('replicas land on distinct nodes and distinct zones when there are enough zones', () => {
    const cluster = nodes([['a', 'z1'], ['b', 'z1'], ['c', 'z2'], ['d', 'z2'], ['e', 'z3'], ['f', 'z3']]);
    const sets = placePartitions(cluster, 12, 3);
    for (const set of sets) {
      assert.equal(new Set(set).size, 3);
      const zones = set.map((id) => cluster.find((node) => node.id === id)!.zone);
      assert.equal(new Set(zones).size, 3, `replica set ${set.join(',')} shares a zone`);
    }
  });

  test('primaries are balanced across nodes', () => {
    const cluster = nodes([['a', ''], ['b', ''], ['c', '']]);
    const sets = placePartitions(cluster, 9, 2);
    const primaries = new Map<string, number>();
    for (const set of sets) primaries.set(set[0]!, (primaries.get(set[0]!) ?? 0) + 1);
    assert.deepEqual([...primaries.values()], [3, 3, 3]);
  });

  test('takes existing load into account', () => {
    const cluster = nodes([['a', ''], ['b', ''], ['c', '']]);
    const load = loadOf([{ primary: 'a', replicas: ['a', 'b'] }, { primary: 'b', replicas: ['b', 'a'] }]);
    const [set] = placePartitions(cluster, 1, 1, load);
    assert.deepEqual(set, ['c']);
  });

  test('a replica set larger than the cluster is refused', () => {
    assert.throws(() => placePartitions(nodes([['a', '']]), 1, 2), /needs 2 nodes/);
  });

  test('replacement never picks a node already in the set and prefers a new zone', () => {
    const cluster = nodes([['a', 'z1'], ['b', 'z2'], ['c', 'z1'], ['d', 'z3']]);
    const picked = chooseReplicaSet(cluster, 1, emptyLoad(), [cluster[0]!, cluster[1]!]);
    assert.deepEqual(picked, ['d']);
  });

  test('property: distinct nodes, and distinct zones whenever zones suffice', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 9 }),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 6 }),
        (zoneIndexes, replicaSetSize, partitions) => {
          const cluster = zoneIndexes.map((zone, index) => ({ id: `n${index}`, zone: `z${zone}`, region: 'r' }));
          if (replicaSetSize > cluster.length) return;
          const zoneCount = new Set(zoneIndexes).size;
          for (const set of placePartitions(cluster, partitions, replicaSetSize)) {
            assert.equal(new Set(set).size, replicaSetSize);
            const zones = new Set(set.map((id) => cluster.find((node) => node.id === id)!.zone));
            assert.equal(zones.size, Math.min(zoneCount, replicaSetSize));
          }
        },
      ),
      { seed: 42, numRuns: 300 },
    );
  });
});
