/*
 * The scripts of the shared view of the fleet (see FleetView). Lease times are taken from the
 * server's own clock (TIME), so the clocks of the application machines never matter.
 */

/**
 * Reports a node out for one process, or renews the report, until `lease` ms from now; reports
 * that expired are deleted. KEYS: the reports hash. ARGV: field (`<node> <process>`), lease
 * ms, channel, message (empty: renew quietly).
 */
export const REPORT_OUT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) <= now then redis.call('HDEL', KEYS[1], all[i]) end
end
redis.call('HSET', KEYS[1], ARGV[1], now + lease)
if redis.call('PTTL', KEYS[1]) < 2 * lease then redis.call('PEXPIRE', KEYS[1], 2 * lease) end
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return 1
`;

/**
 * Withdraws one process's report of a node. KEYS: the reports hash. ARGV: field, channel,
 * message.
 */
export const WITHDRAW = `
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`;

/**
 * What a process reads of the fleet on one node at every tick: the live reports, and for each
 * node named, how many hints this node holds for it. Read-only (no-writes): it runs while the
 * server pauses writes. KEYS: the reports hash, then `hints:<node>` for each node. Answers
 * [fields, counts].
 */
export const POLL = `#!lua flags=no-writes
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) > now then live[#live + 1] = all[i] end
end
local heirs = {}
for i = 2, #KEYS do heirs[#heirs + 1] = redis.call('HLEN', KEYS[i]) end
return { live, heirs }
`;
