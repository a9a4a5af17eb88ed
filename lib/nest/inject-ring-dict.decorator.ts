import { Inject } from '@nestjs/common';
import { RingConfigError } from '../core/index.js';
import { recordRequestedRingGroup } from './ring-group-registry.js';
import { getRingDictToken } from './ring-redis.constants.js';

/**
 * Injects the RingDict of group `name` (default `'default'`): `Inject(getRingDictToken(name))`.
 * The name is recorded so that a group no `RingRedisModule` declares fails the boot with an
 * error naming it and the declared groups.
 */
export function InjectRingDict(name = 'default'): ParameterDecorator & PropertyDecorator {
  if (typeof name !== 'string' || name === '') {
    throw new RingConfigError(
      `@InjectRingDict: expected a group name (a non-empty string), got ${JSON.stringify(name)}`,
    );
  }
  recordRequestedRingGroup(name);
  return Inject(getRingDictToken(name));
}
