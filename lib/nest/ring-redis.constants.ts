/** The names a group's RingDict provider is injected by. */
export function getRingDictToken(name = 'default'): string {
  return `RingRedis:dict:${name}`;
}

/** The group names declared synchronously (`forRoot`'s keys, `forRootAsync({ groups })`). */
export const RING_REDIS_DECLARED_GROUPS = Symbol('RING_REDIS_DECLARED_GROUPS');

/** The logger context of everything this package logs. */
export const RING_REDIS_LOGGER_CONTEXT = 'RingRedis';
