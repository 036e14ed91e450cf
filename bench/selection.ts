// Which systems and workloads a bench run covers (pure; tested in bench.test.ts).
//
// --workloads picks from W1-W4 (the single-node rows) and W5 (the 3-node cluster rows,
// which run W1 and W2 again on the cluster). Without --systems, every row that has
// something to run; the cluster rows always after the single-node rows.

import { InvalidArgumentError } from 'commander';
import type { BenchWorkloadId, Driver, WorkloadId } from './drivers/types.js';

export const singleNodeWorkloads: WorkloadId[] = ['W1', 'W2', 'W3', 'W4'];
export const allWorkloads: BenchWorkloadId[] = [...singleNodeWorkloads, 'W5'];

/**
 * The systems to run, single-node rows first. Without --systems: every single-node row when
 * W1-W4 are asked for, every cluster row when W5 is. A cluster row named in --systems
 * needs W5 (it runs nothing else).
 */
export function selectSystems(drivers: readonly Driver[], systems: string[] | undefined, workloads: BenchWorkloadId[]): Driver[] {
  const wantsSingleNode = workloads.some((workload) => workload !== 'W5');
  const wantsCluster = workloads.includes('W5');
  const clusterLast = (chosen: Driver[]): Driver[] => [...chosen.filter((driver) => driver.cluster === undefined), ...chosen.filter((driver) => driver.cluster !== undefined)];
  if (systems === undefined) return clusterLast(drivers.filter((driver) => (driver.cluster === undefined ? wantsSingleNode : wantsCluster)));
  const named = systems.map((id) => {
    const driver = drivers.find((candidate) => candidate.id === id);
    if (driver === undefined) throw new InvalidArgumentError(`unknown system "${id}"; known: ${drivers.map((known) => known.id).join(', ')}`);
    return driver;
  });
  const clusterWithoutW5 = named.find((driver) => driver.cluster !== undefined && !wantsCluster);
  if (clusterWithoutW5 !== undefined) throw new InvalidArgumentError(`${clusterWithoutW5.id} is a cluster row: it runs only W5 (add W5 to --workloads)`);
  const chosen = named.filter((driver) => (driver.cluster === undefined ? wantsSingleNode : true));
  if (chosen.length === 0) throw new InvalidArgumentError(`nothing to run: ${systems.join(', ')} with ${workloads.join(', ')} (the single-node rows run W1-W4, the cluster rows W5)`);
  return clusterLast(chosen);
}

/** W1-W4 as selected for a single-node row; W1 and W2 for a cluster row (selected only under W5). */
export function workloadsOf(driver: Driver, workloads: BenchWorkloadId[]): WorkloadId[] {
  if (driver.cluster !== undefined) return ['W1', 'W2'];
  return singleNodeWorkloads.filter((workload) => workloads.includes(workload));
}

