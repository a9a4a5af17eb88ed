import type { RingNodesConfig } from '../lib/index.js';

/**
 * Parses `RING_REDIS_NODES`: comma-separated `name=url` pairs, with an optional capacity
 * after the name: `node0=redis://127.0.0.1:7001,big:2=redis://127.0.0.1:7002`.
 */
export function nodesFromEnv(value: string): RingNodesConfig {
  const nodes: RingNodesConfig = {};
  for (const part of value
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) {
      throw new Error(`RING_REDIS_NODES: expected name=redis://host:port, got "${part}"`);
    }
    const [name, capacity = '1'] = part.slice(0, eq).split(':');
    nodes[name] = { capacity: Number(capacity), connection: part.slice(eq + 1) };
  }
  if (Object.keys(nodes).length === 0) throw new Error('RING_REDIS_NODES names no node');
  return nodes;
}
