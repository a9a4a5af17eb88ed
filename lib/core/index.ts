export * from './codec.js';
export { isConnectionError, RingConnectionError } from './connection-errors.js';
export * from './errors.js';
export * from './hash-functions.js';
export type { HandoffOverflowPolicy, HandoffReport } from './hinted-handoff.js';
export {
  defaultSlices,
  HashRing,
  type HashRingOptions,
  type RingDistribution,
} from './hash-ring.js';
export type { RingNodeState } from './node-health.js';
export type { RingGroupsConfig, RingNodeConfig, RingNodesConfig } from './ring-config.js';
export * from './ring-dict.js';
export { RING_DICT_OPTION_NAMES, type RingDictOptions } from './ring-dict-options.js';
