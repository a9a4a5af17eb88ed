/** The methods of a dict whose commands are counted, as `ring_redis.operations` names them. */
export type RingOperation =
  | 'get'
  | 'getRaw'
  | 'set'
  | 'setRaw'
  | 'delete'
  | 'has'
  | 'visitRedis'
  | 'getMany'
  | 'setMany'
  | 'deleteMany';

/** What a command answered: a read found its entry or not; any other command is `ok`. */
export type OperationOutcome = 'hit' | 'miss' | 'ok' | 'error';

/** Reads whose reply says hit or miss: GET answers null, EXISTS 0 for a missing entry. */
const READS: ReadonlySet<RingOperation> = new Set(['get', 'getRaw', 'has']);

/** The outcome of `operation` that answered `reply`. */
export function outcomeOf(operation: RingOperation, reply: unknown): OperationOutcome {
  if (!READS.has(operation)) return 'ok';
  return reply === null || reply === 0 ? 'miss' : 'hit';
}

/** Entries a round of MGET replies found: getMany's hits on one node. */
export function hitsIn(rounds: readonly (readonly unknown[])[]): number {
  let hits = 0;
  for (const round of rounds) for (const reply of round) if (reply !== null) hits++;
  return hits;
}
