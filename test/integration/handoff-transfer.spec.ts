import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { transferEntries } from '../../lib/core/handoff/transfer.js';
import { useRingFleet } from '../helpers/ring-fleet.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

/**
 * The copy of entries back to a returning node (`handoff: 'copy'`): values as they are, and a
 * TTL that never outlives the entry's — the copy takes a round trip, and more under load.
 */

const fleet = useRingFleet(2);
const open: { close(): unknown }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((item) => item.close()));
});

function client(port: number): Redis {
  const redis = new Redis(port, '127.0.0.1');
  open.push({ close: () => redis.disconnect() });
  return redis;
}

describe('transferEntries', () => {
  // Each copy lengthened the life by its round trip: a 400 ms TTL was read 409 ms on.
  it('gives the copy no longer a life than the entry had left, over a slow link', async () => {
    const [from, to] = fleet.fleet.servers;
    const slow = await TcpProxy.start(from.port);
    open.push(slow);
    slow.delay(100);
    const source = client(slow.port);
    const target = client(to.port);
    await client(from.port).set('t:k', 'v', 'PX', 2000);
    const setAt = performance.now();
    await transferEntries(source, target, ['t:k']);
    const left = 2000 - (performance.now() - setAt);
    expect(await target.get('t:k')).toBe('v');
    expect(await target.pttl('t:k')).toBeLessThanOrEqual(Math.ceil(left) + 5);
    // No TTL stays none; an entry gone there is answered missing.
    await client(from.port).set('t:forever', 'v');
    expect(await transferEntries(source, target, ['t:forever', 't:gone'])).toEqual(['t:gone']);
    expect(await target.pttl('t:forever')).toBe(-1);
  });
});
