export * from './codec.js';
export { isConnectionError, RingConnectionError } from './node/connection-errors.js';
export * from './errors.js';
export * from './hashing/hash-functions.js';
export type {
  HandoffMode,
  HandoffOverflowPolicy,
  HandoffReport,
} from './handoff/handoff-report.js';
export {
  defaultSlices,
  HashRing,
  type HashRingOptions,
  type RingDistribution,
} from './hashing/hash-ring.js';
export type { RingNodePing, RingNodeState } from './node/node-health.js';
export type { RingGroupsConfig, RingNodeConfig, RingNodesConfig } from './config/ring-config.js';
export { parseRingNodes } from './config/parse-ring-nodes.js';
export type { RingMigration } from './config/migration-option.js';
export * from './ring-dict.js';
export { RING_DICT_OPTION_NAMES, type RingDictOptions } from './config/ring-dict-options.js';
export { RING_EVENT_CHANNEL, type RingEventMessage } from './metrics/ring-diagnostics.js';
export type { RingNearCacheOptions } from './config/near-cache-options.js';
