import { controlKey } from '../keys/control-keys.js';

/**
 * Where the hinted handoff keeps its hints: on the nodes themselves, so that every process
 * sees every process's writes (see HandoffRecorder and HandoffCatchUp).
 *
 * - `hints:<owner>`, a set on the node that took writes for `owner` while it was out: the
 *   entries written or deleted there on its behalf.
 * - `overflow:<owner>`, on that node: it stopped recording hints for `owner` (`handoffLimit`),
 *   so `owner` must be cleared when it returns.
 * - `heirs:<owner>`, a set on every node: the nodes that hold hints for `owner`. It outlives
 *   an heir that dies or restarts empty, which tells that its hints are lost.
 * - `clears:<owner>`, a set on every node: the key prefixes cleared while `owner` was out.
 */
export class HintKeys {
  constructor(private readonly prefix: string) {}

  hints(owner: string): string {
    return controlKey(this.prefix, `hints:${owner}`);
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
 * Records entries in the hints of an owner, unless the node already stopped recording them
 * or the set would grow past the limit, in which case it marks the overflow instead.
 * KEYS: hints, overflow. ARGV: limit, entries… Answers 1 when recorded, 0 on overflow.
 */
export const RECORD_HINTS = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('SCARD', KEYS[1]) + #ARGV - 1 > tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], '1')
  return 0
end
redis.call('SADD', KEYS[1], unpack(ARGV, 2))
return 1
`;
