import { RingConfigError } from '../core/index.js';
import { shown } from '../core/config/option-checks.js';
import type { RingRedisModuleOptions } from './ring-redis-module-options.interface.js';
import { quotedList } from './quoted-list.js';

/** Options a group takes from `groups` and its own name, never from `defaults`/`groupOptions`. */
const GROUP_OWN: readonly string[] = ['nodes', 'name'];

/**
 * Checks `defaults` and `groupOptions` of the module's options against the groups configured:
 * each an object; `groupOptions` naming configured groups only, each with an object; neither
 * giving `nodes` or `name`, which the module sets from `groups` over whatever they say (a
 * value written there would be dropped without a word).
 */
export function checkGroupOptions(
  options: RingRedisModuleOptions,
  groups: readonly string[],
): void {
  const { defaults, groupOptions } = options;
  // forRootAsync and @InjectRingDict refuse the name: such a group could never be injected.
  if (groups.includes('')) throw new RingConfigError('RingRedisModule: a group name is empty');
  checkObject(defaults, 'options.defaults');
  checkObject(groupOptions, 'options.groupOptions');
  checkOwnOptions(defaults, 'defaults');
  for (const [name, own] of Object.entries(groupOptions ?? {})) {
    if (!groups.includes(name)) {
      throw new RingConfigError(
        `RingRedisModule: groupOptions names group "${name}", which is not configured (${quotedList(groups)})`,
      );
    }
    checkObject(own, `groupOptions.${name}`);
    checkOwnOptions(own, `groupOptions.${name}`);
  }
}

function checkObject(value: unknown, where: string): void {
  if (
    value !== undefined &&
    (value === null || typeof value !== 'object' || Array.isArray(value))
  ) {
    throw new RingConfigError(`RingRedisModule: ${where} must be an object, got ${shown(value)}`);
  }
}

function checkOwnOptions(value: object | undefined, where: string): void {
  const field = GROUP_OWN.find((own) => value !== undefined && Object.hasOwn(value, own));
  if (field !== undefined) {
    throw new RingConfigError(
      `RingRedisModule: ${where}.${field}: not an option here; a group's ${field === 'nodes' ? 'nodes are given in `groups`' : 'name is its key in `groups`'}`,
    );
  }
}
