import type { RingDictOptions, RingGroupsConfig } from '../core/index.js';

/** RingDict options that can be given for every group or per group. */
export type RingGroupOptions = Omit<RingDictOptions<unknown, unknown>, 'nodes' | 'name'>;

export interface RingRedisModuleOptions {
  /** Group name → nodes. Each group becomes a RingDict provider. */
  groups: RingGroupsConfig;
  /** RingDict options applied to every group. */
  defaults?: RingGroupOptions;
  /** Per-group RingDict options, over `defaults`. */
  groupOptions?: Record<string, RingGroupOptions>;
}

/** A class for `forRootAsync({ useClass })` / `({ useExisting })`: Nest calls its method. */
export interface RingRedisOptionsFactory {
  createRingRedisOptions(): RingRedisModuleOptions | Promise<RingRedisModuleOptions>;
}
