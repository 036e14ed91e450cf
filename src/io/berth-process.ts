// How a `berth serve` process is started when it is spawned with `node bin/berth.js`
// (dev-cluster nodes, the bench) rather than through bin/berth.js's shebang: the same Node
// flags and environment the shebang gives (see bin/berth.js for why each is there). One
// place, so the spawners cannot drift from each other; a test checks the shebang agrees.

/** Node flags of a Berth server: a 16 MiB young generation, an old generation limit of at least 256 MiB. */
export const berthNodeFlags: readonly string[] = ['--max-semi-space-size=16', '--initial-old-space-size=256'];

/** Environment variables of a Berth server: glibc's fixed mmap threshold. */
export const berthEnvironmentVariables: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: '131072' };

/** `base` (default: this process's environment) with the Berth server's variables. */
export function berthProcessEnvironment(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...base, ...berthEnvironmentVariables };
}
