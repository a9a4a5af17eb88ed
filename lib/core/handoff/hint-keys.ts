import { controlKey } from '../keys/control-keys.js';

/**
 * Where the hinted handoff keeps its hints: on the nodes themselves, so that every process
 * sees every process's writes (see HandoffRecorder and HandoffCatchUp).
 *
 * - `hints:<owner>`, a hash on the node that took writes for `owner` while it was out: each
 *   entry written or deleted there on its behalf, with the sequence number of its last hint
 *   (`hintseq:<owner>`), so a pass strikes only the hints it handled, never one recorded again
 *   meanwhile.
 * - `overflow:<owner>`, on that node: it stopped recording hints for `owner` (`handoffLimit`),
 *   so `owner` must be cleared when it returns.
 * - `heirs:<owner>`, a hash on every node: each node that holds hints for `owner`, with the
 *   run_id of its server then. It outlives an heir that dies or restarts empty (a run_id of
 *   its own), which tells that its hints are lost.
 * - `clears:<owner>`, a set on every node: the key prefixes cleared while `owner` was out.
 */
export class HintKeys {
  constructor(private readonly prefix: string) {}

  hints(owner: string): string {
    return controlKey(this.prefix, `hints:${owner}`);
  }

  sequence(owner: string): string {
    return controlKey(this.prefix, `hintseq:${owner}`);
  }

  overflow(owner: string): string {
    return controlKey(this.prefix, `overflow:${owner}`);
  }

  heirs(owner: string): string {
    return controlKey(this.prefix, `heirs:${owner}`);
  }

  clears(owner: string): string {
    return controlKey(this.prefix, `clears:${owner}`);
  }
}

/**
 * Records entries in the hints of an owner, each with a new sequence number, unless the node
 * already stopped recording them or the hash would grow past the limit, in which case it marks
 * the overflow instead. KEYS: hints, overflow, sequence. ARGV: limit, entries… Answers 1 when
 * recorded, 0 on overflow.
 */
export const RECORD_HINTS = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('HLEN', KEYS[1]) + #ARGV - 1 > tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], '1')
  return 0
end
local last = redis.call('INCRBY', KEYS[3], #ARGV - 1)
for i = 2, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], last - #ARGV + i) end
return 1
`;

/**
 * Strikes handled hints: an entry goes only if its sequence number is still the one read
 * (a hint recorded again meanwhile stays, for the next pass). KEYS: hints. ARGV: entry,
 * sequence, entry, sequence… Answers how many went.
 */
export const STRIKE_HINTS = `
local gone = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
    gone = gone + 1
  end
end
return gone
`;
