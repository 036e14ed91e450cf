// Every system the bench knows, in table order: the drivers of loaders.ts, all imported.
// A new row (Berth's native protocol, a Berth cluster for W5) is one Driver module and one
// line in loaders.ts. The W5 (cluster) rows run only when W5 is selected, after the
// single-node rows.

import { driverLoaders } from './loaders.js';
import type { Driver } from './types.js';

export const drivers: readonly Driver[] = await Promise.all(Object.values(driverLoaders).map((load) => load()));

export function driverById(id: string): Driver {
  const driver = drivers.find((candidate) => candidate.id === id);
  if (driver === undefined) throw new Error(`unknown system "${id}"; known: ${drivers.map((known) => known.id).join(', ')}`);
  return driver;
}
