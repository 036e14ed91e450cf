// What the W5 cluster drivers share: the endpoint of the first node carries every node's
// port (Endpoint.extra crosses postMessage, so it is a plain string), and client
// connection k goes to node k mod N, so producers and consumers spread over the nodes.

import type { Endpoint } from './types.js';

const nodePortsKey = 'nodePorts';

export function nodeEndpointsExtra(ports: number[]): Record<string, string> {
  return { [nodePortsKey]: ports.join(',') };
}

export function nodePortsOf(endpoint: Endpoint): number[] {
  const raw = endpoint.extra?.[nodePortsKey];
  if (typeof raw !== 'string' || raw === '') return [endpoint.port];
  return raw.split(',').map(Number);
}

/** The endpoint of the node that client connection `index` uses. */
export function nodeEndpointFor(endpoint: Endpoint, index: number): Endpoint {
  const ports = nodePortsOf(endpoint);
  const port = ports[index % ports.length];
  if (port === undefined || !Number.isInteger(port)) throw new Error(`bad node ports in ${JSON.stringify(endpoint.extra)}`);
  return { host: endpoint.host, port };
}
