import { Inject } from '@nestjs/common';
import { getRingDictToken } from './ring-redis.constants.js';

/**
 * Group names asked for by `@InjectRingDict`. A module that does not declare one of them
 * registers a provider that explains the mistake, instead of Nest's generic "can't resolve
 * dependencies". Decorators run when classes are defined, before `forRoot()` builds the module.
 */
export const requestedRingGroups = new Set<string>();

/** Injects the RingDict of group `name` (default `'default'`). */
export function InjectRingDict(name = 'default'): ParameterDecorator & PropertyDecorator {
  requestedRingGroups.add(name);
  return Inject(getRingDictToken(name));
}
